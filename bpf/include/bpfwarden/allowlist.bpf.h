/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Exec allowlists (bw_settings.allowlist, bpfw_exec_allowed): a task in an
 * allowlist's scope executes, and maps executable, only what the list names:
 * the file by inode, by its name in its directory, or a directory above it.
 * A copy of a listed binary is another inode at another name: refused. So is
 * a memfd, which no directory holds.
 *
 * Cost: one array read for a task in no allowlist's scope when the policy
 * has allowlists, nothing when it has none; in a scope, a hash lookup per
 * identity tried, up to BW_MAX_SUBTREE_DEPTH directories.
 */
#ifndef BPFWARDEN_ALLOWLIST_BPF_H
#define BPFWARDEN_ALLOWLIST_BPF_H

#include "bpfwarden/rules.bpf.h"

static __always_inline bool bw_allowed(struct bw_allowed_key *key, struct inode *inode, __u32 kind)
{
	key->id = bw_inode_key_of(inode);
	key->kind = kind;
	return bpf_map_lookup_elem(&bpfw_exec_allowed, key) != NULL;
}

/* Whether allowlist `list` names the file at `dentry_addr` (a dentry).
 * Global, so the verifier checks it once rather than at each of the
 * BW_MAX_ALLOWLISTS calls (see bw_address_of()). */
__noinline int bw_allowlisted(__u64 dentry_addr, __u32 list)
{
	struct dentry *dentry = (struct dentry *)dentry_addr;
	struct bw_allowed_key key = {.list = list};
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	struct inode *dir;

	if (inode && bw_allowed(&key, inode, BW_ALLOWED_INODE))
		return true;
	if (!parent || parent == dentry)
		return false;
	dir = BPF_CORE_READ(parent, d_inode);
	if (!dir)
		return false;
	if (bw_dentry_name_hash(dentry, &key.name_hash) && bw_allowed(&key, dir, BW_ALLOWED_NAME))
		return true;
	key.name_hash = 0;
	for (__u32 level = 0; level < BW_MAX_SUBTREE_DEPTH; level++) {
		struct dentry *up;

		if (bw_allowed(&key, dir, BW_ALLOWED_SUBTREE))
			return true;
		up = BPF_CORE_READ(parent, d_parent);
		if (!up || up == parent)
			return false;
		parent = up;
		dir = BPF_CORE_READ(parent, d_inode);
		if (!dir)
			return false;
	}
	return false;
}

/* The verdict of the allowlists whose scope holds the current task on
 * running the file at `dentry` (`text`: the name execve() was given). The
 * first list that does not name the file refuses it. The refusal is built
 * after the loop, from values read in it, so the verifier checks it once
 * rather than once per list. */
static __always_inline int bw_check_allowlists(struct dentry *dentry, __u32 op, const char *text)
{
	const struct bw_settings *settings = bw_settings();
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	struct bw_match match = {};
	bool refused = false;

	if (!settings || !settings->allowlists)
		return 0;
	for (__u32 i = 0; i < BW_MAX_ALLOWLISTS; i++) {
		const struct bw_allowlist *list = &settings->allowlist[i];

		if (i >= settings->allowlists)
			break;
		if (!bw_task_in_scope(list->scope) || bw_allowlisted(bw_address_of(dentry), i))
			continue;
		match.rule.rule_id = list->rule_id;
		match.rule.flags = list->flags;
		refused = true;
		break;
	}
	if (!refused)
		return 0;
	match.rule.action = BW_ACTION_DENY;
	if (inode) {
		match.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		match.ino = BPF_CORE_READ(inode, i_ino);
	}
	return bw_verdict_text(&match, BW_EVENT_EXEC_CHECK, op, text ? NULL : dentry, text);
}

#endif /* BPFWARDEN_ALLOWLIST_BPF_H */
