// SPDX-License-Identifier: GPL-2.0
/*
 * The watchdog's tripwire: when a bpf() command that can detach a link, swap
 * a pin or change a map completes successfully in any process but the
 * watchdog, notify it so it verifies at once instead of at the next interval.
 * Owned by the watchdog process (never pinned): if it is removed, the
 * interval check still runs.
 *
 * Two forms, the watchdog loads one: fentry/fexit on the bpf() syscall where
 * the kernel runs trampolines (only bpf() calls pay), else the
 * sys_enter_bpf / sys_exit_bpf tracepoints (which put every syscall of
 * every process on the traced entry path while attached).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "bpfwarden/abi.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 watched_cmds = 0; /* bit (1 << cmd) */
const volatile __u32 watchdog_tgid = 0;

/*
 * Watched commands entered by other processes, refused ones included. The
 * watchdog reads it from the mmapped .bss: while it has not moved, no map can
 * have been changed through bpf(), so the policy-map digests still hold. It
 * never depends on ring-buffer space or on the in_flight LRU.
 */
__u64 watched_calls = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024);
} tamper_events SEC(".maps");

/* Commands entered but not yet returned, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} in_flight SEC(".maps");

static __always_inline bool watched(__u32 cmd, __u64 pid_tgid)
{
	return cmd < 64 && (watched_cmds & (1ULL << cmd)) && (pid_tgid >> 32) != watchdog_tgid;
}

static __always_inline void count_entry(__u32 cmd)
{
	/* A load changes none of our maps: reported for the watchdog's
	 * inventory, without making it digest the policy maps again. */
	if (cmd != BPF_PROG_LOAD)
		__sync_fetch_and_add(&watched_calls, 1);
}

static __always_inline void notify_success(__u32 cmd, __u64 pid_tgid)
{
	struct bw_tamper_event *event = bpf_ringbuf_reserve(&tamper_events, sizeof(*event), 0);

	if (!event)
		return; /* the interval check still catches it */
	event->tgid = pid_tgid >> 32;
	event->cmd = cmd;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_ringbuf_submit(event, 0);
}

SEC("tracepoint/syscalls/sys_enter_bpf")
int bw_tw_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 cmd = (__u32)ctx->args[0];

	if (!watched(cmd, pid_tgid))
		return 0;
	count_entry(cmd);
	bpf_map_update_elem(&in_flight, &pid_tgid, &cmd, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_bpf")
int bw_tw_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 *cmd = bpf_map_lookup_elem(&in_flight, &pid_tgid);
	__u32 entered;

	if (!cmd)
		return 0;
	entered = *cmd;
	bpf_map_delete_elem(&in_flight, &pid_tgid);
	if (ctx->ret >= 0) /* a refused call changed nothing */
		notify_success(entered, pid_tgid);
	return 0;
}

/* The syscall's own registers hold its arguments (x86-64). */
SEC("fentry/__x64_sys_bpf")
int BPF_PROG(bw_tw_fentry, const struct pt_regs *regs)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 cmd = (__u32)BPF_CORE_READ(regs, di);

	if (watched(cmd, pid_tgid))
		count_entry(cmd);
	return 0;
}

SEC("fexit/__x64_sys_bpf")
int BPF_PROG(bw_tw_fexit, const struct pt_regs *regs, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 cmd = (__u32)BPF_CORE_READ(regs, di);

	if (ret >= 0 && watched(cmd, pid_tgid))
		notify_success(cmd, pid_tgid);
	return 0;
}
