// SPDX-License-Identifier: GPL-2.0
/*
 * tracepoint sched/sched_process_exec: an audit record of every execution,
 * its path redacted under the policy's redact_paths (redact.bpf.h).
 */
#include "bpfwarden/emit.bpf.h"
#include "bpfwarden/redact.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/sched/sched_process_exec")
int bw_tp_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct bw_event *event = bw_trail_reserve(BW_EVENT_EXEC);
	unsigned int filename_offset;
	struct file *exe;

	if (!event)
		return 0;
	/* __data_loc: low 16 bits are the offset of the string in the record. */
	filename_offset = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(event->path, sizeof(event->path), (void *)ctx + filename_offset);
	bw_redact_path(event->path);
	exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe) {
		struct bw_inode_key key = bw_inode_key_of(BPF_CORE_READ(exe, f_inode));

		event->dev = key.dev;
		event->ino = key.ino;
	}
	bw_event_submit(event);
	return 0;
}
