/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Whether the current task is in a rule's scope (bpfw_scopes, enum
 * bw_scope_kind). Decided at each match from what the kernel says about the
 * task now, so a unit's processes are in scope from their first instruction
 * and after every restart (a new cgroup, the same name), with nothing for
 * user space to follow.
 *
 * Cost: nothing for files under no scoped rule. A scoped match costs one
 * hash lookup plus: uid, one helper call; gid, that and a read per
 * supplementary group (at most BW_SCOPE_GROUPS); exe, a few reads; cgroup, one
 * read per level up to the scope's cgroup; unit, one name comparison per
 * level (at most BW_SCOPE_CGROUP_DEPTH).
 *
 * A global function: the verifier checks it once, not at every inlined
 * rule lookup.
 */
#ifndef BPFWARDEN_SCOPE_BPF_H
#define BPFWARDEN_SCOPE_BPF_H

#include "bpfwarden/emit.bpf.h"
#include "bpfwarden/policy_maps.bpf.h"

static __always_inline struct cgroup *bw_cgroup_parent(struct cgroup *cgrp)
{
	struct cgroup_subsys_state *parent = BPF_CORE_READ(cgrp, self.parent);

	return parent ? BPF_CORE_READ(parent, cgroup) : NULL;
}

/*
 * The task's cgroup (unified hierarchy) or one above it is the scope's: the
 * cgroup by id, or the unit by its name and its parent's (the slice). The
 * parent matters: a user's own manager may run a unit of the same name, in
 * its own slices, and must not pass for the system's.
 */
static __always_inline bool bw_in_cgroup_scope(const struct bw_scope *scope)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct cgroup *cgrp = BPF_CORE_READ(task, cgroups, dfl_cgrp);

	for (__u32 level = 0; level < BW_SCOPE_CGROUP_DEPTH && cgrp; level++) {
		struct cgroup *parent = bw_cgroup_parent(cgrp);

		if (scope->kind == BW_SCOPE_CGROUP) {
			if (BPF_CORE_READ(cgrp, kn, id) == scope->cgroup_id)
				return true;
		} else if (parent && bw_kernel_name_is(BPF_CORE_READ(cgrp, kn, name), scope->unit,
		                                       BW_SCOPE_NAME_LEN)) {
			return bw_kernel_name_is(BPF_CORE_READ(parent, kn, name), scope->slice,
			                         BW_SCOPE_NAME_LEN);
		}
		cgrp = parent;
	}
	return false;
}

static __always_inline bool bw_in_exe_scope(const struct bw_scope *scope)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct inode *inode = exe ? BPF_CORE_READ(exe, f_inode) : NULL;
	struct bw_inode_key key;

	if (!inode)
		return false;
	key = bw_inode_key_of(inode);
	return key.dev == scope->exe.dev && key.ino == scope->exe.ino &&
	       key.gen == scope->exe.gen && key.is_dir == scope->exe.is_dir;
}

/* The task's real primary gid, or one of its first BW_SCOPE_GROUPS
 * supplementary groups, is the scope's. */
static __always_inline bool bw_in_gid_scope(__u32 gid, __u64 uid_gid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct group_info *groups;
	int count;

	if ((__u32)(uid_gid >> 32) == gid)
		return true;
	groups = BPF_CORE_READ(task, cred, group_info);
	if (!groups)
		return false;
	count = BPF_CORE_READ(groups, ngroups);
	for (int i = 0; i < BW_SCOPE_GROUPS && i < count; i++) {
		kgid_t group = {};

		bpf_probe_read_kernel(&group, sizeof(group), &groups->gid[i]);
		if (group.val == gid)
			return true;
	}
	return false;
}

__noinline int bw_task_in_scope(__u64 scope_key)
{
	const struct bw_scope *scope = bpf_map_lookup_elem(&bpfw_scopes, &scope_key);
	__u64 uid_gid = bpf_get_current_uid_gid();

	if (!scope)
		return 0; /* a scope the policy does not define holds nobody */
	switch (scope->kind) {
	case BW_SCOPE_UID:
		return (__u32)uid_gid == scope->id;
	case BW_SCOPE_GID:
		return bw_in_gid_scope(scope->id, uid_gid);
	case BW_SCOPE_EXE:
		return bw_in_exe_scope(scope);
	case BW_SCOPE_UNIT:
	case BW_SCOPE_CGROUP:
		return bw_in_cgroup_scope(scope);
	}
	return 0;
}

#endif /* BPFWARDEN_SCOPE_BPF_H */
