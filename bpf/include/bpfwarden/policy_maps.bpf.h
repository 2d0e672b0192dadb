/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The store: every map the LSM programs read. Declared by the policy_maps
 * object, which the loader loads first on every kernel (so policy is stored,
 * and watched, even where BPF LSM cannot enforce it), and by each LSM object,
 * which then reuses the pinned maps instead of creating its own.
 *
 * Every name starts with BW_MAP_PREFIX ("bpfw_"): that is how the
 * self-protection programs tell our maps from everybody else's.
 */
#ifndef BPFWARDEN_POLICY_MAPS_BPF_H
#define BPFWARDEN_POLICY_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfwarden/abi.h"

/* Rules on files by identity (the inode): opens and changes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_FILE_RULES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bw_inode_key);
	__type(value, struct bw_rule);
} bpfw_file_rules SEC(".maps");

/* Rules on executables by identity: execution and executable mappings. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_EXEC_RULES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bw_inode_key);
	__type(value, struct bw_rule);
} bpfw_exec_rules SEC(".maps");

/* Rules on names in directories: whatever file sits at a rule's path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_DIRENTS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bw_dirent_key);
	__type(value, struct bw_name_rules);
} bpfw_dirents SEC(".maps");

/* Directories that mean something: names with rules in them, subtree rules,
 * protected directories. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_DIR_RULES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bw_inode_key);
	__type(value, struct bw_dir_rules);
} bpfw_dir_rules SEC(".maps");

/* A filter in front of bpfw_dir_rules: one bit per (dev, ino) hash of each
 * directory in it, so that the usual directory costs an array read. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BW_DIR_BLOOM_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} bpfw_dir_bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bw_inode_key);
	__type(value, struct bw_bpf_allow);
} bpfw_bpf_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_bpf_policy);
} bpfw_bpf_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_settings);
} bpfw_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_lift);
} bpfw_lift SEC(".maps");

/* Who scoped rules are for, keyed by bw_rule.scope. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct bw_scope);
} bpfw_scopes SEC(".maps");

/* What exec allowlists list (bw_settings.allowlist). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bw_allowed_key);
	__type(value, __u32);
} bpfw_exec_allowed SEC(".maps");

/* The executables that may become bpfwarden, and where they must run. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct bw_dirent_key);
	__type(value, struct bw_self_exe);
} bpfw_self_exes SEC(".maps");

/* How often each rule matched since the policy was applied, by rule id: an
 * entry appears with a rule's first hit (user space empties the map when it
 * applies a policy, since rule ids then name other rules). Not policy: the
 * watchdog does not digest it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BW_RULE_HITS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u64);
} bpfw_rule_hits SEC(".maps");

/* One more hit for a policy rule (ids of bpfwarden's own entries are past
 * BW_RULE_HITS_MAX and are not counted). Two first hits racing lose one. */
static __always_inline void bw_count_rule_hit(__u32 rule_id)
{
	__u64 one = 1, *hits;

	if (rule_id >= BW_RULE_HITS_MAX)
		return;
	hits = bpf_map_lookup_elem(&bpfw_rule_hits, &rule_id);
	if (hits)
		__sync_fetch_and_add(hits, 1);
	else
		bpf_map_update_elem(&bpfw_rule_hits, &rule_id, &one, BPF_NOEXIST);
}

/* What we know of each task: launched by PID 1, bpfwarden itself, tainted. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct bw_task);
} bpfw_tasks SEC(".maps");

#endif /* BPFWARDEN_POLICY_MAPS_BPF_H */
