// SPDX-License-Identifier: GPL-2.0
/*
 * File and exec rules where BPF LSM is unusable (audit-only mode): nothing
 * can be refused there, but an `audit` rule still reports, and a `deny` rule
 * reports what it would have refused (would-deny). Tracepoints only, as the
 * kernels without BPF LSM this is for may not run trampolines (fentry) or
 * kprobes either.
 *
 * What is seen:
 *   - a file opened by open(2), openat(2), openat2(2) or creat(2) that a
 *     file rule covers (inode, name or subtree, as with BPF LSM), once the
 *     call succeeded: the file behind the returned descriptor;
 *   - a successful execve(2)/execveat(2) of a file an exec rule covers.
 * What is not: failed opens and execs, opens by io_uring or by the kernel
 * itself, changes that do not open (unlink, rename, chmod, ...), executable
 * mappings (`ld.so /denied`), the exec allowlists. While a syscall
 * tracepoint is attached every syscall takes the kernel's traced entry path;
 * in audit-only mode the bpf() audit has one attached already.
 */
#include "bpfwarden/rules.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define FMODE_WRITE 0x2
#define O_TRUNC 01000

/* The file at descriptor `fd` of the current task, if any. */
static __always_inline struct file *file_of_fd(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *table = BPF_CORE_READ(task, files, fdt);
	struct file **files;
	struct file *file = NULL;

	if (!table || fd < 0 || fd >= BPF_CORE_READ(table, max_fds))
		return NULL;
	files = BPF_CORE_READ(table, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &files[fd]);
	return file;
}

/* `ret` of an open call: the descriptor of the file it opened, or an error. */
static __always_inline int report_open(long ret)
{
	struct file *file = file_of_fd(ret);
	struct dentry *dentry;
	struct bw_match match = {};
	bool write;

	if (!file)
		return 0;
	dentry = BPF_CORE_READ(file, f_path.dentry);
	if (!bw_find_file_rule(dentry, &match))
		return 0;
	write = (BPF_CORE_READ(file, f_mode) & FMODE_WRITE) ||
	        (BPF_CORE_READ(file, f_flags) & O_TRUNC);
	bw_report(&match, BW_EVENT_FILE_OPEN, write ? BW_OP_OPEN_WRITE : BW_OP_OPEN, dentry, NULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int bw_ra_open(struct trace_event_raw_sys_exit *ctx)
{
	return report_open(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int bw_ra_openat(struct trace_event_raw_sys_exit *ctx)
{
	return report_open(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int bw_ra_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return report_open(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int bw_ra_creat(struct trace_event_raw_sys_exit *ctx)
{
	return report_open(ctx->ret);
}

/* After a successful exec: the new program's file, shown by the filename
 * passed to execve() as with BPF LSM. */
SEC("tracepoint/sched/sched_process_exec")
int bw_ra_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	/* __data_loc: low 16 bits are the offset of the string in the record. */
	const char *filename = (const char *)ctx + (ctx->__data_loc_filename & 0xFFFF);
	struct bw_match match = {};

	if (!exe || !bw_find_exec_rule(BPF_CORE_READ(exe, f_path.dentry), &match))
		return 0;
	bw_report(&match, BW_EVENT_EXEC_CHECK, BW_OP_EXEC, NULL, filename);
	return 0;
}
