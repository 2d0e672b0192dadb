/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which rule covers a file, and what to do about it: shared by the file and
 * exec guards.
 *
 * A rule covers a file by any of three identities, looked up in this order:
 *   1. the inode (bpfw_file_rules / bpfw_exec_rules): hard links, renames of
 *      the file itself, bind mounts and other mount namespaces;
 *   2. the name in its directory (bpfw_dirents): whatever file sits at the
 *      rule's path, so a file replaced by rename, or created later, is covered
 *      from its first use;
 *   3. a directory above it with a subtree rule (bpfw_dir_rules), nearest
 *      first, up to bw_settings.subtree_depth parents, within one filesystem
 *      (the walk follows dentries, not mounts, and stops at the root).
 * Directories are looked up only when the policy has any (settings.dir_rules)
 * and only after the bloom filter says the directory may be one: a file under
 * no rule costs one hash lookup plus one array read per parent.
 */
#ifndef BPFWARDEN_RULES_BPF_H
#define BPFWARDEN_RULES_BPF_H

#include "bpfwarden/emit.bpf.h"
#include "bpfwarden/policy_maps.bpf.h"
#include "bpfwarden/redact.bpf.h"
#include "bpfwarden/scope.bpf.h"
#include "bpfwarden/self.bpf.h"

static __always_inline const struct bw_settings *bw_settings(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&bpfw_settings, &zero);
}

static __always_inline bool bw_dir_may_have_rules(const struct bw_inode_key *dir)
{
	__u32 bit = bw_dir_bloom_bit(dir->dev, dir->ino);
	__u32 word = bit / 64;
	__u64 *bits = bpf_map_lookup_elem(&bpfw_dir_bloom, &word);

	return bits && (*bits & (1ULL << (bit % 64)));
}

static __always_inline const struct bw_dir_rules *bw_dir_rules_of(struct dentry *dir,
                                                                  struct bw_inode_key *key)
{
	struct inode *inode = BPF_CORE_READ(dir, d_inode);

	if (!inode)
		return NULL;
	*key = bw_inode_key_of(inode);
	if (!bw_dir_may_have_rules(key))
		return NULL;
	return bpf_map_lookup_elem(&bpfw_dir_rules, key);
}

/* The rule on the name of `dentry` in the directory `dir` (key), if any. */
static __always_inline const struct bw_name_rules *bw_name_rules_of(const struct bw_inode_key *dir,
                                                                    struct dentry *dentry)
{
	struct bw_dirent_key key = {.dir = *dir};

	if (!bw_dentry_name_hash(dentry, &key.name_hash))
		return NULL;
	return bpf_map_lookup_elem(&bpfw_dirents, &key);
}

/* Which rule applies, and to which identity it matched (for the event). */
struct bw_match {
	struct bw_rule rule;
	__u64 dev;
	__u64 ino;
};

/* The entry's rule for the current task: its scoped rule, else its rule
 * for everyone else, if any. */
static __always_inline bool bw_take(struct bw_match *out, const struct bw_rule *rule,
                                    const struct bw_inode_key *key)
{
	if (!rule || rule->action == BW_ACTION_NONE)
		return false;
	out->rule = *rule;
	if (rule->scope && !bw_task_in_scope(rule->scope)) {
		if (rule->else_action == BW_ACTION_NONE)
			return false;
		out->rule.action = rule->else_action;
		out->rule.rule_id = rule->else_rule_id;
		out->rule.flags = rule->else_flags;
	}
	out->dev = key->dev;
	out->ino = key->ino;
	return true;
}

/* The subtree rule of the directory at `dir_addr` (a dentry) for the
 * current task, if any: one level of bw_find_by_path()'s walk up, global so
 * that the verifier checks it once rather than once per level. `*out` must be
 * initialised. */
__noinline int bw_subtree_rule_at(__u64 dir_addr, int exec, struct bw_match *out)
{
	struct bw_inode_key key = {};
	const struct bw_dir_rules *dir;

	if (!out)
		return 0;
	dir = bw_dir_rules_of((struct dentry *)dir_addr, &key);
	if (!dir || !(dir->flags & BW_DIR_SUBTREE))
		return 0;
	return bw_take(out, exec ? &dir->exec : &dir->file, &key);
}

/*
 * The rule covering `dentry` (its inode may be NULL: a name about to be
 * created) by name or by a directory above it. `exec` picks exec rules.
 */
static __always_inline bool bw_find_by_path(struct dentry *dentry, bool exec, struct bw_match *out)
{
	const struct bw_settings *settings = bw_settings();
	const struct bw_dir_rules *dir;
	const struct bw_name_rules *name;
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	struct bw_inode_key key = {};
	__u32 depth;

	if (!settings || !settings->dir_rules || parent == dentry)
		return false;
	dir = bw_dir_rules_of(parent, &key);
	if (dir && (dir->flags & BW_DIR_HAS_ENTRIES)) {
		name = bw_name_rules_of(&key, dentry);
		if (name && bw_take(out, exec ? &name->exec : &name->file, &key))
			return true;
	}
	if (dir && (dir->flags & BW_DIR_SUBTREE) &&
	    bw_take(out, exec ? &dir->exec : &dir->file, &key))
		return true;

	depth = settings->subtree_depth;
	for (__u32 level = 1; level < BW_MAX_SUBTREE_DEPTH; level++) {
		struct dentry *up = BPF_CORE_READ(parent, d_parent);

		if (level >= depth || !up || up == parent)
			break;
		parent = up;
		if (bw_subtree_rule_at((__u64)parent, exec, out))
			return true;
	}
	return false;
}

/*
 * The rule covering the file at `dentry_addr` (a dentry): by inode first,
 * then by path; exec rules if `exec`, else file rules. 1 and `*out` filled
 * if one covers it. Global: the verifier walks its many paths once per
 * program, and a caller goes on from one state whatever was found, not from
 * each path's own (see bw_address_of()). `*out` must be initialised.
 */
__noinline int bw_find_rule_at(__u64 dentry_addr, int exec, struct bw_match *out)
{
	struct dentry *dentry = (struct dentry *)dentry_addr;
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);

	if (!out)
		return 0;
	if (inode) {
		struct bw_inode_key key = bw_inode_key_of(inode);
		const struct bw_rule *rule;

		if (exec)
			rule = bpf_map_lookup_elem(&bpfw_exec_rules, &key);
		else
			rule = bpf_map_lookup_elem(&bpfw_file_rules, &key);
		if (bw_take(out, rule, &key))
			return 1;
	}
	return bw_find_by_path(dentry, exec, out);
}

static __always_inline bool bw_find_file_rule(struct dentry *dentry, struct bw_match *out)
{
	return bw_find_rule_at(bw_address_of(dentry), 0, out);
}

static __always_inline bool bw_find_exec_rule(struct dentry *dentry, struct bw_match *out)
{
	return bw_find_rule_at(bw_address_of(dentry), 1, out);
}

/* Whether the rule lets the current task through anyway. */
static __always_inline bool bw_exempt(const struct bw_rule *rule, __u32 op)
{
	if ((rule->flags & BW_RULE_MODIFY_ONLY) && op == BW_OP_OPEN)
		return true;
	if ((rule->flags & BW_RULE_SELF_EXEMPT) && bw_self_or_unprotected())
		return true;
	if ((rule->flags & BW_RULE_PKG_EXEMPT) && bw_current_role() == BW_ROLE_PACKAGER)
		return true;
	return false;
}

/* A deny that only reports: the rule's (or its scope's) mode is audit, or
 * the policy's is, which leaves bpfwarden's own protection and the canary be. */
static __always_inline bool bw_audit_mode(const struct bw_rule *rule)
{
	const struct bw_settings *settings;

	if (rule->flags & BW_RULE_AUDIT_MODE)
		return true;
	if (rule->flags & (BW_RULE_SELF_EXEMPT | BW_RULE_PKG_EXEMPT | BW_RULE_ALWAYS_ENFORCE))
		return false;
	settings = bw_settings();
	return settings && settings->audit_mode;
}

/*
 * The verdict of a matched rule on `op`, reported with `kind` (FILE_OPEN,
 * FILE_CHANGE, EXEC_CHECK; a rule that protects bpfwarden itself reports
 * TAMPER). The event's path shows `text` (a kernel string) if given, else
 * `name`'s dentry name, either one redacted as the policy asks. A hook that cannot refuse
 * (`can_deny` false: a tracepoint where BPF LSM is unusable) reports a deny as would-deny.
 */
static __always_inline int bw_judge(const struct bw_match *match, __u32 kind, __u32 op,
                                    struct dentry *name, const char *text, bool can_deny)
{
	bool self_protection = match->rule.flags & BW_RULE_SELF_EXEMPT;
	struct bw_event *event;
	__u32 action = match->rule.action;

	if (bw_exempt(&match->rule, op))
		return 0;
	bw_count_rule_hit(match->rule.rule_id);
	if (action == BW_ACTION_DENY && (!can_deny || bw_audit_mode(&match->rule)))
		action = BW_ACTION_WOULD_DENY;
	if (self_protection) {
		kind = BW_EVENT_TAMPER;
		bw_count(&counters.tampers);
	} else if (action == BW_ACTION_DENY) {
		bw_count(&counters.denials);
	} else {
		bw_count(&counters.audits);
	}
	event = bw_event_reserve(kind, action);
	if (event) {
		event->dev = match->dev;
		event->ino = match->ino;
		event->rule_id = match->rule.rule_id;
		event->op = op;
		if (match->rule.flags & BW_RULE_REDACT) {
			bw_write_redacted(event->path);
		} else if (text) {
			/* A path as given to execve(): it may be under a prefix
			 * although no rule's path is (an allowlist's refusal). */
			bpf_probe_read_kernel_str(event->path, sizeof(event->path), text);
			bw_redact_path(event->path);
		} else if (name) {
			bw_event_name(event, name);
		}
		bw_event_submit(event);
	}
	return action == BW_ACTION_DENY ? -EPERM : 0;
}

static __always_inline int bw_verdict_text(const struct bw_match *match, __u32 kind, __u32 op,
                                           struct dentry *name, const char *text)
{
	return bw_judge(match, kind, op, name, text, true);
}

static __always_inline int bw_verdict(const struct bw_match *match, __u32 kind, __u32 op,
                                      struct dentry *name)
{
	return bw_judge(match, kind, op, name, NULL, true);
}

/* The report of a matched rule where nothing can be refused. */
static __always_inline void bw_report(const struct bw_match *match, __u32 kind, __u32 op,
                                      struct dentry *name, const char *text)
{
	bw_judge(match, kind, op, name, text, false);
}

#endif /* BPFWARDEN_RULES_BPF_H */
