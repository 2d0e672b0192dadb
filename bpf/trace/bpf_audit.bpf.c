// SPDX-License-Identifier: GPL-2.0
/* tracepoint syscalls/sys_enter_bpf: an audit record of every bpf() call. */
#include "bpfwarden/emit.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_enter_bpf")
int bw_tp_bpf(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct bw_event *event = bw_event_reserve(BW_EVENT_BPF_CALL, BW_ACTION_NONE);
	struct file *exe;

	if (!event)
		return 0;
	event->bpf_cmd = (__u32)ctx->args[0];
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
