// SPDX-License-Identifier: GPL-2.0
/*
 * lsm/bpf: restricted bpf() commands (program load, attach, detach, ...) are
 * allowed only to allowlisted executables; everyone else is refused (or, in
 * audit mode, reported).
 */
#include "bpfwarden/emit.bpf.h"
#include "bpfwarden/policy_maps.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/*
 * security_bpf() is (cmd, attr, size) on 6.1 and gained a fourth argument,
 * `bool kernel`, later. Declaring only the three leading arguments verifies on
 * both; the return value of earlier programs is not read because its position
 * differs between the two, and a BPF LSM program only runs after earlier ones
 * returned 0 (the trampoline stops at the first non-zero verdict).
 */
SEC("lsm/bpf")
int BPF_PROG(bw_bpf, int cmd, union bpf_attr *attr, unsigned int size)
{
	struct task_struct *task = bpf_get_current_task_btf();
	const struct bw_bpf_policy *policy;
	struct bw_inode_key key;
	struct file *exe;
	struct bw_event *event;
	__u32 zero = 0;

	/* Calls the kernel makes on its own behalf (e.g. loading preload programs). */
	if (bpf_get_func_arg_cnt(ctx) >= 4) {
		__u64 kernel = 0;

		bpf_get_func_arg(ctx, 3, &kernel);
		if (kernel & 0xff)
			return 0;
	}

	policy = bpf_map_lookup_elem(&bpf_policy, &zero);
	if (!policy || policy->action == BW_ACTION_NONE)
		return 0;
	if (cmd < 0 || cmd >= 64 || !(policy->restricted_cmds & (1ULL << cmd)))
		return 0;

	exe = BPF_CORE_READ(task, mm, exe_file);
	if (!exe)
		return 0; /* kernel threads have no executable */
	key = bw_inode_key_of(BPF_CORE_READ(exe, f_inode));
	if (bpf_map_lookup_elem(&bpf_allow_exe, &key))
		return 0;

	if (policy->action == BW_ACTION_DENY)
		bw_count(&counters.denials);
	else
		bw_count(&counters.audits);

	event = bw_event_reserve(BW_EVENT_BPF_CHECK, policy->action);
	if (event) {
		event->dev = key.dev;
		event->ino = key.ino;
		event->bpf_cmd = cmd;
		bpf_probe_read_kernel_str(event->path, sizeof(event->path),
		                          BPF_CORE_READ(exe, f_path.dentry, d_name.name));
		bw_event_submit(event);
	}
	return policy->action == BW_ACTION_DENY ? -EPERM : 0;
}
