// SPDX-License-Identifier: GPL-2.0
/*
 * lsm/bpf: restricted bpf() commands (program load, attach, detach, ...) are
 * allowed only to bpfwarden itself and to allowlisted executables whose code
 * was not changed at start; everyone else is refused (or, in audit mode,
 * reported).
 *
 * And self-protection, while bw_settings.protect is on and no break-glass
 * lift is active: nobody but bpfwarden (and PID 1) gets a writable fd to our
 * maps, loads a program that uses them, detaches or updates our links,
 * unmounts the bpffs holding our pins or mounts over our pin directories,
 * stops or kills our processes, or traces them. Who bpfwarden is, is decided
 * here too: at exec time (bprm_committed_creds), from the executable, who
 * started it, its unit's cgroup, its tracer and its environment.
 */
#include "bpfwarden/bpf_hook.bpf.h"
#include "bpfwarden/emit.bpf.h"
#include "bpfwarden/policy_maps.bpf.h"
#include "bpfwarden/scope.bpf.h"
#include "bpfwarden/self.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define FMODE_WRITE 0x2
#define CLONE_THREAD 0x00010000
#define PTRACE_MODE_ATTACH 0x02
#define SIGHUP 1
#define SIGCHLD 17
#define SIGCONT 18
#define SIGURG 23
#define SIGWINCH 28
/* Argument and environment bytes scanned for LD_* at exec (8 KiB); more taints. */
#define ENV_SCAN_CHUNKS 32
#define ENV_SCAN_CHUNK 256

/* Scratch for the environment scan (too large for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[ENV_SCAN_CHUNK + 16]);
} bpfw_env_scratch SEC(".maps");

/* kernfs_node::parent became __parent (RCU) in 6.15. */
struct kernfs_node___pre615 {
	struct kernfs_node___pre615 *parent;
	const char *name;
} __attribute__((preserve_access_index));

static __always_inline struct bw_task *task_state(struct task_struct *task, bool create)
{
	return bpf_task_storage_get(&bpfw_tasks, task, 0,
	                            create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

static __always_inline int refuse_tamper(__u32 op, __u32 detail, __u32 target_pid,
                                         struct dentry *name)
{
	struct bw_event *event = bw_event_reserve(BW_EVENT_TAMPER, BW_ACTION_DENY);

	bw_count(&counters.tampers);
	if (event) {
		event->op = op;
		event->bpf_cmd = detail;
		event->target_pid = target_pid;
		if (name)
			bpf_probe_read_kernel_str(event->path, sizeof(event->path),
			                          BPF_CORE_READ(name, d_name.name));
		bw_event_submit(event);
	}
	return -EPERM;
}

static __always_inline bool is_our_map(struct bpf_map *map)
{
	char name[BW_MAP_PREFIX_LEN];

	if (bpf_probe_read_kernel(name, sizeof(name), &map->name))
		return false;
	return name[0] == 'b' && name[1] == 'p' && name[2] == 'f' && name[3] == 'w' &&
	       name[4] == '_';
}

/* ---- Who is bpfwarden ---------------------------------------------------- */

/* NUL-padded to BW_UNIT_LEN, as bw_kernel_name_is() compares. */
static const char system_slice[BW_UNIT_LEN] = "system.slice";

/* The task runs in /system.slice/<unit> of the unified hierarchy. */
static __always_inline bool in_unit(struct task_struct *task, const char *unit)
{
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	const char *parent_name;

	if (!kn || !bw_kernel_name_is(BPF_CORE_READ(kn, name), unit, BW_UNIT_LEN))
		return false;
	if (bpf_core_field_exists(((struct kernfs_node___pre615 *)0)->parent))
		parent_name = BPF_CORE_READ((struct kernfs_node___pre615 *)kn, parent, name);
	else
		parent_name = BPF_CORE_READ(kn, __parent, name);
	return bw_kernel_name_is(parent_name, system_slice, BW_UNIT_LEN);
}

/* A variable that changes what code runs in the new program: LD_* (preload,
 * library path, audit), glibc's GCONV_PATH, OpenSSL's configuration and
 * engine or provider paths. `s` points at the start of one variable. */
static __always_inline bool changes_code(const char *s)
{
	if (s[0] == 'L' && s[1] == 'D' && s[2] == '_')
		return true;
	if (s[0] == 'G' && s[1] == 'C' && s[2] == 'O' && s[3] == 'N' && s[4] == 'V' && s[5] == '_')
		return true;
	return s[0] == 'O' && s[1] == 'P' && s[2] == 'E' && s[3] == 'N' && s[4] == 'S' &&
	       s[5] == 'S' && s[6] == 'L' && s[7] == '_';
}

struct env_scan {
	char *buf;
	__u32 args_left; /* argument strings still to pass before the environment */
	bool at_start;   /* the byte looked at begins a string */
	bool found;
};

static long scan_env_byte(__u32 i, struct env_scan *scan)
{
	if (i >= ENV_SCAN_CHUNK)
		return 1;
	/* A bound the verifier sees on the register used below, whatever the
	 * compiler made of the check above. */
	barrier_var(i);
	i &= ENV_SCAN_CHUNK - 1;
	if (scan->at_start && !scan->args_left && changes_code(scan->buf + i)) {
		scan->found = true;
		return 1;
	}
	scan->at_start = scan->buf[i] == 0;
	if (scan->at_start && scan->args_left)
		scan->args_left--;
	return 0;
}

/* Where the scan of the environment stands between chunks. */
struct env_cursor {
	__u32 args_left;
	__u32 at_start;
};

/* 1 if the chunk of the new stack at `at` (`len` bytes to its end) holds a
 * variable that changes code, or cannot be read. Global: the verifier checks
 * the scan of a chunk once, not once per chunk. */
__noinline int env_chunk_changes_code(__u64 at, __u64 len, struct env_cursor *cursor)
{
	__u32 zero = 0;
	struct env_scan scan = {.buf = bpf_map_lookup_elem(&bpfw_env_scratch, &zero)};

	if (!cursor || !scan.buf)
		return 1;
	scan.args_left = cursor->args_left;
	scan.at_start = cursor->at_start;
	/* 8 bytes more than the chunk, so that a variable starting near its end
	 * is compared whole; zero past the end of the environment. */
	if (len > ENV_SCAN_CHUNK + 8)
		len = ENV_SCAN_CHUNK + 8;
	__builtin_memset(scan.buf, 0, ENV_SCAN_CHUNK + 16);
	if (bpf_probe_read_user(scan.buf, len, (void *)at))
		return 1;
	bpf_loop(ENV_SCAN_CHUNK, scan_env_byte, &scan, 0);
	cursor->args_left = scan.args_left;
	cursor->at_start = scan.at_start;
	return scan.found;
}

/* The new program's environment names code to load, or is too large to read
 * through: either way, its code may not be ours. At bprm_committed_creds the
 * new stack holds the argument strings from bprm->p, then the environment
 * strings up to bprm->exec (the file name); mm->env_start is set only later,
 * by the binary format's loader. */
static __always_inline bool environment_changes_code(struct linux_binprm *bprm)
{
	unsigned long start = BPF_CORE_READ(bprm, p);
	unsigned long end = BPF_CORE_READ(bprm, exec);
	struct env_cursor cursor = {.args_left = BPF_CORE_READ(bprm, argc), .at_start = 1};

	if (end < start || end - start > ENV_SCAN_CHUNKS * ENV_SCAN_CHUNK)
		return true;
	for (__u32 chunk = 0; chunk < ENV_SCAN_CHUNKS; chunk++) {
		unsigned long at = start + chunk * ENV_SCAN_CHUNK;

		if (at >= end)
			break;
		if (env_chunk_changes_code(at, end - at, &cursor))
			return true;
	}
	return false;
}

/* bpfwarden runs as started by PID 1 in its own unit, untraced and with no
 * code of anybody else's loaded at start. */
static __always_inline bool admit_as_self(struct task_struct *task, const struct bw_self_exe *exe,
                                          bool launched, bool tainted)
{
	if (exe->role != BW_ROLE_DAEMON && exe->role != BW_ROLE_WATCHDOG)
		return false;
	return launched && !tainted && in_unit(task, exe->unit);
}

/* A process forked by PID 1 was launched by the service manager; threads of
 * bpfwarden are bpfwarden; a tainted process's children stay tainted until
 * they run other code. */
SEC("lsm/task_alloc")
int BPF_PROG(bw_task_alloc, struct task_struct *task, unsigned long clone_flags, int ret)
{
	struct task_struct *current_task = bpf_get_current_task_btf();
	struct bw_task *parent, *child;

	if (ret)
		return ret;
	if (bw_current_is_init()) {
		child = task_state(task, true);
		if (child)
			child->flags = BW_TASK_LAUNCHED;
		return 0;
	}
	parent = task_state(current_task, false);
	if (!parent || !(parent->flags & (BW_TASK_SELF | BW_TASK_TAINTED)))
		return 0;
	child = task_state(task, true);
	if (!child)
		return 0;
	child->flags = parent->flags & BW_TASK_TAINTED;
	if ((clone_flags & CLONE_THREAD) && (parent->flags & BW_TASK_SELF)) {
		child->flags |= BW_TASK_SELF;
		child->role = parent->role;
	}
	return 0;
}

/* Exec: the new program starts with what it earns now, nothing inherited. */
SEC("lsm/bprm_committed_creds")
int BPF_PROG(bw_bprm_commit, struct linux_binprm *bprm)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct bw_inode_key key = bw_inode_key_of(BPF_CORE_READ(bprm, file, f_inode));
	const struct bw_self_exe *exe = NULL;
	struct bw_task *state = task_state(task, false);
	bool launched = state && (state->flags & BW_TASK_LAUNCHED);
	struct bw_dirent_key name;
	bool tainted;

	if (bw_dirent_key_of(BPF_CORE_READ(bprm, file, f_path.dentry), &name))
		exe = bpf_map_lookup_elem(&bpfw_self_exes, &name);

	if (state) {
		state->flags &= exe && exe->role == BW_ROLE_LAUNCHER ? BW_TASK_LAUNCHED : 0;
		state->role = BW_ROLE_NONE;
	}
	if (!exe && !bpf_map_lookup_elem(&bpfw_bpf_allow, &key))
		return 0;
	tainted = BPF_CORE_READ(task, ptrace) || environment_changes_code(bprm);
	if (!tainted && !exe)
		return 0;
	state = task_state(task, true);
	if (!state)
		return 0;
	if (tainted)
		state->flags |= BW_TASK_TAINTED;
	if (exe && exe->role == BW_ROLE_PACKAGER && !tainted)
		state->role = BW_ROLE_PACKAGER;
	if (exe && admit_as_self(task, exe, launched, tainted)) {
		state->flags |= BW_TASK_SELF;
		state->role = exe->role;
	}
	return 0;
}

/* ---- bpf() --------------------------------------------------------------- */

/* Restricted commands are for bpfwarden and for allowlisted executables
 * whose code was not changed at start (and, if so marked, only as PID 1;
 * if scoped, only in the entry's scope). An allowed call counts as a hit of
 * the entry's rule. */
static __always_inline bool bpf_allowed(struct task_struct *task, struct bw_inode_key *exe_key)
{
	struct bw_task *state = task_state(task, false);
	const struct bw_bpf_allow *allow;
	struct file *exe;

	if (state && (state->flags & BW_TASK_SELF))
		return true;
	exe = BPF_CORE_READ(task, mm, exe_file);
	if (!exe)
		return true; /* kernel threads have no executable */
	*exe_key = bw_inode_key_of(BPF_CORE_READ(exe, f_inode));
	allow = bpf_map_lookup_elem(&bpfw_bpf_allow, exe_key);
	if (!allow || (state && (state->flags & BW_TASK_TAINTED)))
		return false;
	if ((allow->flags & BW_ALLOW_PID1_ONLY) && !bw_current_is_init())
		return false;
	if (allow->scope && !bw_task_in_scope(allow->scope))
		return false;
	bw_count_rule_hit(allow->rule_id);
	return true;
}

static __always_inline int bpf_policy_verdict(struct task_struct *task, int cmd)
{
	const struct bw_bpf_policy *policy;
	struct bw_inode_key key = {};
	struct bw_event *event;
	struct file *exe;
	__u32 zero = 0;

	policy = bpf_map_lookup_elem(&bpfw_bpf_policy, &zero);
	if (!policy || policy->action == BW_ACTION_NONE)
		return 0;
	if (cmd < 0 || cmd >= 64 || !(policy->restricted_cmds & (1ULL << cmd)))
		return 0;
	if (bpf_allowed(task, &key))
		return 0;
	if (policy->action == BW_ACTION_DENY)
		bw_count(&counters.denials);
	else
		bw_count(&counters.audits);
	event = bw_event_reserve(BW_EVENT_BPF_CHECK, policy->action);
	if (event) {
		exe = BPF_CORE_READ(task, mm, exe_file);
		event->dev = key.dev;
		event->ino = key.ino;
		event->bpf_cmd = cmd;
		bpf_probe_read_kernel_str(event->path, sizeof(event->path),
		                          BPF_CORE_READ(exe, f_path.dentry, d_name.name));
		bw_event_submit(event);
	}
	return policy->action == BW_ACTION_DENY ? -EPERM : 0;
}

/* The link behind fd `fd` of the current task runs one of our programs.
 * (The fd is read again by the kernel after this hook; these commands do
 * nothing to our link types on 6.1/6.12 anyway: this is defence in depth.) */
static __always_inline bool fd_is_our_link(struct task_struct *task, __u32 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	struct bpf_link *link;
	char name[3] = {};

	if (fd >= BPF_CORE_READ(fdt, max_fds) ||
	    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return false;
	link = BPF_CORE_READ(file, private_data);
	if (!link ||
	    bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(link, prog, aux, name)) < 0)
		return false;
	return name[0] == 'b' && name[1] == 'w';
}

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
	struct bw_task *state;
	int verdict;

	if (bw_bpf_call_by_kernel(ctx))
		return 0;
	/* Remember a program load for bw_bpf_prog, which sees the program only. */
	state = task_state(task, cmd == BPF_PROG_LOAD);
	if (state) {
		if (cmd == BPF_PROG_LOAD)
			state->flags |= BW_TASK_IN_PROG_LOAD;
		else
			state->flags &= ~BW_TASK_IN_PROG_LOAD;
	}
	verdict = bpf_policy_verdict(task, cmd);
	if (verdict)
		return verdict;
	if ((cmd == BPF_LINK_DETACH || cmd == BPF_LINK_UPDATE) && !bw_self_or_unprotected()) {
		__u32 fd = cmd == BPF_LINK_DETACH ? BPF_CORE_READ(attr, link_detach.link_fd)
		                                  : BPF_CORE_READ(attr, link_update.link_fd);

		if (fd_is_our_link(task, fd))
			return refuse_tamper(BW_OP_LINK_CHANGE, cmd, 0, NULL);
	}
	return 0;
}

/* A writable fd to one of our maps (by id, by pin, or by creating one with
 * our name): only for bpfwarden. Read-only fds stay open to everyone. */
SEC("lsm/bpf_map")
int BPF_PROG(bw_bpf_map, struct bpf_map *map, fmode_t fmode, int ret)
{
	if (ret)
		return ret;
	if (!(fmode & FMODE_WRITE) || !is_our_map(map) || bw_self_or_unprotected())
		return 0;
	return refuse_tamper(BW_OP_MAP_WRITE_ACCESS, 0, 0, NULL);
}

/* A program that uses our maps (so could write them) is loaded only by
 * bpfwarden. Fds to existing programs stay open to everyone (inspection). */
SEC("lsm/bpf_prog")
int BPF_PROG(bw_bpf_prog, struct bpf_prog *prog, int ret)
{
	struct bw_task *state = task_state(bpf_get_current_task_btf(), false);
	struct bpf_map **maps;
	__u32 count;

	if (ret)
		return ret;
	if (!state || !(state->flags & BW_TASK_IN_PROG_LOAD) || bw_self_or_unprotected())
		return 0;
	maps = BPF_CORE_READ(prog, aux, used_maps);
	count = BPF_CORE_READ(prog, aux, used_map_cnt);
	for (__u32 i = 0; i < 64 && i < count; i++) {
		struct bpf_map *map = NULL;

		if (bpf_probe_read_kernel(&map, sizeof(map), &maps[i]) || !map)
			break;
		if (is_our_map(map))
			return refuse_tamper(BW_OP_PROG_WITH_OUR_MAPS, 0, 0, NULL);
	}
	return 0;
}

/* ---- Our processes ------------------------------------------------------- */

static __always_inline bool stops_or_kills(int sig)
{
	return sig != 0 && sig != SIGHUP && sig != SIGCHLD && sig != SIGCONT && sig != SIGURG &&
	       sig != SIGWINCH;
}

SEC("lsm/task_kill")
int BPF_PROG(bw_task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
             const struct cred *cred, int ret)
{
	if (ret)
		return ret;
	if (!stops_or_kills(sig) || !bw_is_self_task(p) || bw_self_or_unprotected())
		return 0;
	return refuse_tamper(BW_OP_SIGNAL, sig, BPF_CORE_READ(p, tgid), NULL);
}

/* Attaching to a process (ptrace, /proc/pid/mem, process_vm_writev,
 * pidfd_getfd): refused for ours; anybody else attached loses its bpf()
 * allowance, its code may have changed. */
SEC("lsm/ptrace_access_check")
int BPF_PROG(bw_ptrace_check, struct task_struct *child, unsigned int mode, int ret)
{
	struct bw_task *state;

	if (ret)
		return ret;
	if (!(mode & PTRACE_MODE_ATTACH))
		return 0;
	if (bw_is_self_task(child) && !bw_self_or_unprotected())
		return refuse_tamper(BW_OP_PTRACE, mode, BPF_CORE_READ(child, tgid), NULL);
	state = task_state(child, true);
	if (state)
		state->flags |= BW_TASK_TAINTED;
	return 0;
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(bw_traceme, struct task_struct *parent, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct bw_task *state;

	if (ret)
		return ret;
	if (bw_is_self_task(task) && !bw_unprotected())
		return refuse_tamper(BW_OP_PTRACE, 0, BPF_CORE_READ(task, tgid), NULL);
	state = task_state(task, true);
	if (state)
		state->flags |= BW_TASK_TAINTED;
	return 0;
}

/* ---- Our pins' filesystem ------------------------------------------------ */

static __always_inline bool holds_our_pins(struct super_block *sb)
{
	__u32 zero = 0;
	const struct bw_settings *settings = bpf_map_lookup_elem(&bpfw_settings, &zero);

	return settings && settings->pin_sb_dev && BPF_CORE_READ(sb, s_dev) == settings->pin_sb_dev;
}

/* A protected directory (our pin directories): no mount over it. */
static __always_inline bool is_protected_dir(struct dentry *dentry)
{
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	const struct bw_dir_rules *rules;
	struct bw_inode_key key;

	if (!inode)
		return false;
	key = bw_inode_key_of(inode);
	rules = bpf_map_lookup_elem(&bpfw_dir_rules, &key);
	return rules && (rules->flags & BW_DIR_PROTECT);
}

/* Unmounting the bpffs that holds our pins would free whatever only the pins
 * hold: enforcement would end. */
SEC("lsm/sb_umount")
int BPF_PROG(bw_sb_umount, struct vfsmount *mnt, int flags, int ret)
{
	if (ret)
		return ret;
	if (!holds_our_pins(BPF_CORE_READ(mnt, mnt_sb)) || bw_self_or_unprotected())
		return 0;
	return refuse_tamper(BW_OP_UNMOUNT, 0, 0, BPF_CORE_READ(mnt, mnt_root));
}

SEC("lsm/sb_mount")
int BPF_PROG(bw_sb_mount, const char *dev_name, const struct path *path, const char *type,
             unsigned long flags, void *data, int ret)
{
	struct dentry *target = BPF_CORE_READ(path, dentry);

	if (ret)
		return ret;
	if (!is_protected_dir(target) || bw_self_or_unprotected())
		return 0;
	return refuse_tamper(BW_OP_MOUNT_OVER, 0, 0, target);
}

SEC("lsm/move_mount")
int BPF_PROG(bw_move_mount, const struct path *from_path, const struct path *to_path, int ret)
{
	struct dentry *target = BPF_CORE_READ(to_path, dentry);

	if (ret)
		return ret;
	if (!is_protected_dir(target) || bw_self_or_unprotected())
		return 0;
	return refuse_tamper(BW_OP_MOUNT_OVER, 1, 0, target);
}
