// SPDX-License-Identifier: GPL-2.0
/*
 * Exec rules: a denied executable does not run, whichever way it is started.
 * execve() of it (bprm_check_security), and mapping it executable
 * (mmap_file, file_mprotect): that is how the dynamic loader runs a binary
 * (`ld.so /denied/binary`), and how a program would load it as code. Options
 * (bw_settings.exec_options, off by default): refuse running memfd and other
 * unlinked files (`fexecve` of a memfd), and refuse W->X, memory that was
 * writable becoming executable.
 *
 * Then the exec allowlists (allowlist.bpf.h): in an allowlist's scope, what
 * it does not list does not run, which stops what an inode rule cannot, a
 * copy of a denied binary. A script read by an interpreter is a file rule's
 * job (docs/POLICY.md).
 */
#include "bpfwarden/allowlist.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define PROT_WRITE 0x2
#define PROT_EXEC 0x4
#define VM_WRITE 0x00000002UL
#define VM_EXEC 0x00000004UL

static __always_inline __u32 exec_options(void)
{
	const struct bw_settings *settings = bw_settings();

	return settings ? settings->exec_options : 0;
}

/* An executable that no name reaches: a memfd, an O_TMPFILE, a deleted file. */
static __always_inline bool is_anonymous(struct inode *inode)
{
	return BPF_CORE_READ(inode, i_nlink) == 0;
}

static __always_inline int refuse_anonymous(struct inode *inode, __u32 op, struct dentry *name)
{
	struct bw_match match = {
	        .rule = {.action = BW_ACTION_DENY,
	                 .rule_id = 0xFFFFFFFC /* the option, not a rule */},
	        .dev = BPF_CORE_READ(inode, i_sb, s_dev),
	        .ino = BPF_CORE_READ(inode, i_ino),
	};

	return bw_verdict(&match, BW_EVENT_EXEC_CHECK, op, name);
}

/* The exec rule on `file`, or the anonymous-file option, applied to `op`. */
static __always_inline int guard_code(struct file *file, __u32 op)
{
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct bw_match match = {};
	int verdict;

	if (bw_find_exec_rule(dentry, &match)) {
		verdict = bw_verdict(&match, BW_EVENT_EXEC_CHECK, op, dentry);
		if (verdict)
			return verdict;
	}
	if ((exec_options() & BW_EXEC_DENY_ANONYMOUS) && inode && is_anonymous(inode))
		return refuse_anonymous(inode, BW_OP_EXEC_ANONYMOUS, dentry);
	return bw_check_allowlists(dentry, op, NULL);
}

/* The program's own image, mapped by the kernel at exec (or by itself):
 * bprm_check_security has ruled on it already. */
static __always_inline bool is_own_executable(struct file *file)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);

	return exe && BPF_CORE_READ(exe, f_inode) == BPF_CORE_READ(file, f_inode);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(bw_bprm_check, struct linux_binprm *bprm, int ret)
{
	struct file *file = BPF_CORE_READ(bprm, file);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	/* Events show the filename as passed to execve(). */
	const char *filename = BPF_CORE_READ(bprm, filename);
	struct bw_match match = {};
	int verdict;

	if (ret)
		return ret;
	if (bw_find_exec_rule(dentry, &match)) {
		verdict = bw_verdict_text(&match, BW_EVENT_EXEC_CHECK, BW_OP_EXEC, NULL, filename);
		if (verdict)
			return verdict;
	}
	if ((exec_options() & BW_EXEC_DENY_ANONYMOUS) && is_anonymous(BPF_CORE_READ(file, f_inode)))
		return refuse_anonymous(BPF_CORE_READ(file, f_inode), BW_OP_EXEC_ANONYMOUS, dentry);
	return bw_check_allowlists(dentry, BW_OP_EXEC, filename);
}

SEC("lsm/mmap_file")
int BPF_PROG(bw_mmap_file, struct file *file, unsigned long reqprot, unsigned long prot,
             unsigned long flags, int ret)
{
	if (ret)
		return ret;
	if (!(prot & PROT_EXEC))
		return 0;
	if (!file) {
		/* Anonymous memory both writable and executable. */
		if ((exec_options() & BW_EXEC_DENY_WRITE_EXEC) && (prot & PROT_WRITE)) {
			struct bw_match match = {
			        .rule = {.action = BW_ACTION_DENY, .rule_id = 0xFFFFFFFB}};

			return bw_verdict(&match, BW_EVENT_EXEC_CHECK, BW_OP_WRITE_EXEC, NULL);
		}
		return 0;
	}
	if (is_own_executable(file))
		return 0;
	return guard_code(file, BW_OP_MMAP_EXEC);
}

SEC("lsm/file_mprotect")
int BPF_PROG(bw_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot,
             int ret)
{
	unsigned long vm_flags = BPF_CORE_READ(vma, vm_flags);
	struct file *file = BPF_CORE_READ(vma, vm_file);

	if (ret)
		return ret;
	if (!(prot & PROT_EXEC) || (vm_flags & VM_EXEC))
		return 0; /* not becoming executable */
	if (!file || (vm_flags & VM_WRITE)) {
		if (exec_options() & BW_EXEC_DENY_WRITE_EXEC) {
			struct bw_match match = {
			        .rule = {.action = BW_ACTION_DENY, .rule_id = 0xFFFFFFFB}};

			return bw_verdict(&match, BW_EVENT_EXEC_CHECK, BW_OP_WRITE_EXEC, NULL);
		}
		if (!file)
			return 0;
	}
	return guard_code(file, BW_OP_MPROTECT_EXEC);
}
