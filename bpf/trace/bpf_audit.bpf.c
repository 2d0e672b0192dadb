// SPDX-License-Identifier: GPL-2.0
/*
 * An audit record of every bpf() call that can change state (load, attach,
 * detach, pin, create, write a map, ...). Read-only commands (lookups, walks
 * over ids, object info, getting a pinned object) are reported only when the
 * policy asks (audit_bpf_reads = true): a watchdog's checks alone make dozens
 * a second, and they change nothing.
 *
 * Two forms of one program, loaded one at a time:
 *   - lsm/bpf where BPF LSM works. It runs for bpf() calls only. Calls the
 *     kernel refuses before any LSM is asked (unprivileged bpf() while
 *     kernel.unprivileged_bpf_disabled is set, an attribute too large) and
 *     calls another LSM refuses first are not seen.
 *   - tracepoint syscalls/sys_enter_bpf otherwise. It sees every call,
 *     refused ones included, but while any syscall tracepoint is attached,
 *     every syscall of every process takes the kernel's traced entry path.
 */
#include "bpfwarden/bpf_hook.bpf.h"
#include "bpfwarden/emit.bpf.h"
#include "bpfwarden/policy_maps.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

static __always_inline bool changes_state(__u32 cmd)
{
	switch (cmd) {
	case BPF_MAP_CREATE:
	case BPF_MAP_UPDATE_ELEM:
	case BPF_MAP_DELETE_ELEM:
	case BPF_PROG_LOAD:
	case BPF_OBJ_PIN:
	case BPF_PROG_ATTACH:
	case BPF_PROG_DETACH:
	case BPF_PROG_TEST_RUN: /* runs a program: it may write maps */
	case BPF_RAW_TRACEPOINT_OPEN:
	case BPF_BTF_LOAD:
	case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
	case BPF_MAP_FREEZE:
	case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
	case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH:
	case BPF_LINK_CREATE:
	case BPF_LINK_UPDATE:
	case BPF_ENABLE_STATS:
	case BPF_LINK_DETACH:
	case BPF_PROG_BIND_MAP:
		return true;
	default:
		/* The reads; commands newer than this list (6.9's
		 * token_create) and numbers no kernel knows are reported. */
		return cmd > BPF_PROG_BIND_MAP;
	}
}

static __always_inline bool reads_asked_for(void)
{
	__u32 zero = 0;
	const struct bw_settings *settings = bpf_map_lookup_elem(&bpfw_settings, &zero);

	return settings && settings->audit_bpf_reads;
}

static __always_inline int report_bpf_call(__u32 cmd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct bw_event *event;
	struct file *exe;

	if (!changes_state(cmd) && !reads_asked_for())
		return 0;
	event = bw_trail_reserve(BW_EVENT_BPF_CALL);
	if (!event)
		return 0;
	event->bpf_cmd = cmd;
	exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe) {
		struct bw_inode_key key = bw_inode_key_of(BPF_CORE_READ(exe, f_inode));

		event->dev = key.dev;
		event->ino = key.ino;
		bpf_probe_read_kernel_str(event->path, sizeof(event->path),
		                          BPF_CORE_READ(exe, f_path.dentry, d_name.name));
	}
	bw_event_submit(event);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_bpf")
int bw_tp_bpf(struct trace_event_raw_sys_enter *ctx)
{
	return report_bpf_call((__u32)ctx->args[0]);
}

/* BPF LSM runs the programs of a hook newest attachment first and stops at
 * the first refusal: a call self_guard's bw_bpf refuses may not get here, and
 * is reported by that refusal (bpf_check deny, or tamper). */
SEC("lsm/bpf")
int BPF_PROG(bw_bpf_audit, int cmd, union bpf_attr *attr, unsigned int size)
{
	if (bw_bpf_call_by_kernel(ctx))
		return 0;
	return report_bpf_call((__u32)cmd);
}
