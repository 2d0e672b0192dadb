/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The policy maps. Declared by the policy_maps object, which the loader loads
 * first on every kernel (so policy is stored, and watched, even where BPF LSM
 * cannot enforce it), and by each LSM object, which then reuses the pinned
 * maps instead of creating its own.
 */
#ifndef BPFWARDEN_POLICY_MAPS_BPF_H
#define BPFWARDEN_POLICY_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfwarden/abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bw_inode_key);
	__type(value, struct bw_rule);
} file_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bw_inode_key);
	__type(value, struct bw_rule);
} exec_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct bw_inode_key);
	__type(value, struct bw_bpf_allow);
} bpf_allow_exe SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bw_bpf_policy);
} bpf_policy SEC(".maps");

#endif /* BPFWARDEN_POLICY_MAPS_BPF_H */
