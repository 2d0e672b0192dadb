/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Structures shared between the BPF programs and user space.
 *
 * Fixed-width types only, explicit padding, no pointers: this header is
 * compiled by clang for the BPF target and by g++ for the daemon, and both
 * must agree on every byte.
 */
#ifndef BPFWARDEN_ABI_H
#define BPFWARDEN_ABI_H

#ifdef __BPF__
/* vmlinux.h provides __u8.. __u64 for BPF builds. */
#else
#include <linux/types.h>
#endif

#define BW_COMM_LEN 16
/* Paths in events are truncated to this many bytes (NUL included). */
#define BW_PATH_LEN 256
/* Every map bpfwarden creates has a name starting so: the self-protection
 * programs recognise our maps by it (bpfw_file_rules, bpfw_fil.bss, ...). */
#define BW_MAP_PREFIX "bpfw_"
#define BW_MAP_PREFIX_LEN 5
/* Parent directories looked at for a subtree rule, at most. */
#define BW_MAX_SUBTREE_DEPTH 32
/* Bits of the directory filter (bpfw_dir_bloom): 1024 words of 64 bits. */
#define BW_DIR_BLOOM_WORDS 1024
/*
 * Entries the rule maps can hold (their max_entries): the hard limits of a
 * policy. The maps allocate entries as they are added (BPF_F_NO_PREALLOC), so
 * kernel memory follows the policy, not these. A name in a directory is one
 * bpfw_dirents entry for both its file and its exec rule: room for both.
 * User space reads the same numbers (policy_compiler.h).
 */
#define BW_FILE_RULES_MAX 131072
#define BW_EXEC_RULES_MAX 32768
#define BW_DIRENTS_MAX 262144
#define BW_DIR_RULES_MAX 131072
/* Rules with a hit counter (bpfw_rule_hits): every rule id a policy can have. */
#define BW_RULE_HITS_MAX (BW_FILE_RULES_MAX + BW_EXEC_RULES_MAX + 2048)

/* What a policy rule asks for when it matches. */
enum bw_action {
	BW_ACTION_NONE = 0,
	BW_ACTION_AUDIT = 1, /* allow and report */
	BW_ACTION_DENY = 2,  /* refuse with EPERM and report */
	/* Events only: a deny rule in audit mode matched and let it through. */
	BW_ACTION_WOULD_DENY = 3,
};

/* Where an event comes from. */
enum bw_event_kind {
	BW_EVENT_FILE_OPEN = 1,   /* a file rule matched an open */
	BW_EVENT_EXEC_CHECK = 2,  /* an exec rule matched an execution or an executable mapping */
	BW_EVENT_BPF_CHECK = 3,   /* lsm/bpf restricted command outside the allowlist */
	BW_EVENT_BPF_CALL = 4,    /* tracepoint syscalls/sys_enter_bpf: every bpf() call */
	BW_EVENT_EXEC = 5,        /* tracepoint sched/sched_process_exec: every exec */
	BW_EVENT_FILE_CHANGE = 6, /* a file rule matched a change: truncate, unlink, rename, ... */
	BW_EVENT_TAMPER =
	        7, /* self-protection refused (or, lifted, let through) a change to bpfwarden */
};

/* The operation an event is about (bw_event.op). */
enum bw_op {
	BW_OP_NONE = 0,
	BW_OP_OPEN = 1,
	BW_OP_OPEN_WRITE = 2,
	BW_OP_TRUNCATE = 3,
	BW_OP_UNLINK = 4,
	BW_OP_RENAME_FROM = 5,
	BW_OP_RENAME_ONTO = 6,
	BW_OP_LINK = 7,
	BW_OP_SETATTR = 8, /* chmod, chown, utimes, truncate by setattr */
	BW_OP_SETXATTR = 9,
	BW_OP_REMOVEXATTR = 10,
	BW_OP_CREATE = 11, /* create, mkdir, mknod, symlink in a guarded directory */
	BW_OP_RMDIR = 12,
	BW_OP_EXEC = 13,
	BW_OP_MMAP_EXEC = 14,
	BW_OP_MPROTECT_EXEC = 15,
	BW_OP_EXEC_ANONYMOUS = 16, /* execution or executable mapping of a memfd or deleted file */
	BW_OP_WRITE_EXEC = 17,     /* W->X: making writable memory executable */
	/* Self-protection. */
	BW_OP_MAP_WRITE_ACCESS = 32,   /* a writable fd to one of our maps */
	BW_OP_PROG_WITH_OUR_MAPS = 33, /* loading a program that uses our maps */
	BW_OP_LINK_CHANGE = 34,        /* detaching or updating one of our links */
	BW_OP_SIGNAL = 35,  /* a signal that stops or kills our processes (bpf_cmd: the signal) */
	BW_OP_PTRACE = 36,  /* ptrace or /proc/pid/mem of our processes */
	BW_OP_UNMOUNT = 37, /* unmounting the bpffs that holds our pins */
	BW_OP_MOUNT_OVER = 38, /* mounting over our pin directories */
};

/*
 * The kernel's view of a file: s_dev is (major << 20) | minor. gen is the
 * inode's i_generation on filesystems that reuse inode numbers (ext4, xfs,
 * btrfs, f2fs: a deleted file's number comes back for the next new file, the
 * generation does not), 0 elsewhere; it keeps a rule from passing to an
 * unrelated file that gets the same inode number.
 */
struct bw_inode_key {
	__u64 dev;
	__u64 ino;
	__u32 gen;
	/* 1 for a directory. On overlayfs over layers on different filesystems
	 * a directory's inode number is the mount's own counter while a file's
	 * is its layer's: a directory and a file of one mount may share (dev,
	 * ino), and a rule on one must not match the other. */
	__u32 is_dir;
};

/* Rule flags (bw_rule.flags). */
#define BW_RULE_MODIFY_ONLY                                                                        \
	(1u << 0) /* opens for reading pass: only writes and changes are refused */
#define BW_RULE_SELF_EXEMPT (1u << 1) /* bpfwarden itself is not refused (its own files) */
#define BW_RULE_PKG_EXEMPT (1u << 2)  /* the package manager is not refused either (images) */
/* A deny that only reports ("would deny"): the rule's, its scope's or the
 * policy's mode is audit. */
#define BW_RULE_AUDIT_MODE (1u << 3)
/* Kept even in the policy's audit mode: the watchdog's canary. */
#define BW_RULE_ALWAYS_ENFORCE (1u << 4)
/* The rule's path is under a redact_paths prefix (or, a subtree, holds one):
 * its events name the file BW_REDACTED_PATH, never by its name. */
#define BW_RULE_REDACT (1u << 5)

/*
 * Value of the file and exec rule maps (inode, directory entry, directory).
 * A file has one entry; a rule limited to a scope (scope != 0) applies to the
 * processes in it, and everyone else gets the entry's unscoped rule
 * (else_action, else_rule_id) or, if there is none, no rule here.
 */
struct bw_rule {
	__u32 action;  /* enum bw_action; NONE: no rule */
	__u32 rule_id; /* index into the daemon's compiled rule table */
	__u32 flags;   /* BW_RULE_* */
	__u32 else_action;
	__u64 scope; /* key into bpfw_scopes; 0: everyone */
	__u32 else_rule_id;
	__u32 else_flags;
};

/* Who a scoped rule is for (bw_scope.kind). */
enum bw_scope_kind {
	BW_SCOPE_UID = 1, /* the task's real uid */
	BW_SCOPE_GID = 2, /* the task's real primary gid or a supplementary group */
	BW_SCOPE_UNIT =
	        3, /* a cgroup named `unit` directly in a cgroup named `slice`, at any depth */
	BW_SCOPE_CGROUP = 4, /* the cgroup `cgroup_id` or one beneath it */
	BW_SCOPE_EXE = 5,    /* the task's executable, by identity */
};
/* Unit and slice names, NUL included. */
#define BW_SCOPE_NAME_LEN 64
/* Supplementary groups of a task looked at for a gid scope, at most. */
#define BW_SCOPE_GROUPS 32
/* Cgroup levels looked at above a task's own cgroup, at most. */
#define BW_SCOPE_CGROUP_DEPTH 16

/* Value of bpfw_scopes, keyed by a hash of the scope's text (bw_rule.scope). */
struct bw_scope {
	__u32 kind; /* enum bw_scope_kind */
	__u32 id;   /* UID, GID */
	__u64 cgroup_id;
	struct bw_inode_key exe;
	char unit[BW_SCOPE_NAME_LEN];
	char slice[BW_SCOPE_NAME_LEN];
};

/* A rule on a name in a directory: the file that sits there, whatever its inode. */
struct bw_dirent_key {
	struct bw_inode_key dir;
	__u64 name_hash; /* bw_name_hash() of the name's bytes */
};

struct bw_name_rules {
	struct bw_rule file;
	struct bw_rule exec;
};

/* Directory flags (bw_dir_rules.flags). */
#define BW_DIR_HAS_ENTRIES (1u << 0) /* bpfw_dirents holds rules for names in it */
#define BW_DIR_SUBTREE                                                                             \
	(1u << 1) /* file/exec apply to everything beneath, to BW_MAX_SUBTREE_DEPTH */
#define BW_DIR_PROTECT                                                                             \
	(1u << 2) /* its entries change only by bpfwarden (file.flags exemptions apply) */

/* Value of bpfw_dir_rules: what a directory means for what is in it. */
struct bw_dir_rules {
	struct bw_rule file; /* subtree file rule, or the protection's exemptions */
	struct bw_rule exec; /* subtree exec rule */
	__u32 flags;         /* BW_DIR_* */
	__u32 pad;
};

/* Value of bpfw_bpf_allow: executables allowed to use restricted bpf() commands. */
#define BW_ALLOW_PID1_ONLY (1u << 0) /* only as PID 1 (systemd) */
struct bw_bpf_allow {
	__u32 rule_id;
	__u32 flags; /* BW_ALLOW_* */
	__u64 scope; /* bpfw_scopes key: only for the tasks in it; 0: everyone */
};

/* Single entry (key 0) of the bpf_policy array map. */
struct bw_bpf_policy {
	__u32 action; /* enum bw_action for restricted commands from others */
	__u32 pad;
	__u64 restricted_cmds; /* bit (1 << cmd) for each restricted enum bpf_cmd */
};

/* Exec options (bw_settings.exec_options). */
#define BW_EXEC_DENY_ANONYMOUS (1u << 0)  /* refuse running memfd / deleted files */
#define BW_EXEC_DENY_WRITE_EXEC (1u << 1) /* refuse W->X transitions of memory */

/*
 * Exec allowlists: in an allowlist's scope, only the executables it lists
 * may be executed or mapped executable. An entry lists a file by inode, by
 * its name in its directory, or everything beneath a directory
 * (bpfw_exec_allowed keys, by kind).
 */
#define BW_MAX_ALLOWLISTS 8
enum bw_allowed_kind {
	BW_ALLOWED_INODE = 0,   /* id: the file */
	BW_ALLOWED_NAME = 1,    /* id: its directory, name_hash: its name */
	BW_ALLOWED_SUBTREE = 2, /* id: a directory, everything beneath is listed */
};
struct bw_allowed_key {
	struct bw_inode_key id;
	__u64 name_hash;
	__u32 list; /* index into bw_settings.allowlist */
	__u32 kind; /* enum bw_allowed_kind */
};
struct bw_allowlist {
	__u64 scope;   /* bpfw_scopes key: who the allowlist is for */
	__u32 rule_id; /* for events */
	__u32 flags;   /* BW_RULE_AUDIT_MODE: report "would deny" only */
};

/* Single entry (key 0) of bpfw_settings. */
/*
 * Privacy: an executed path starting with one of these prefixes is reported
 * as BW_REDACTED_PATH; the path itself never leaves the kernel.
 */
#define BW_MAX_REDACT 4
#define BW_REDACT_LEN 64 /* a prefix is at most BW_REDACT_LEN - 1 bytes */
#define BW_REDACTED_PATH "[FILTERED]"
struct bw_redact_prefix {
	__u32 len;
	char prefix[BW_REDACT_LEN];
};

struct bw_settings {
	__u32 protect;       /* self-protection on */
	__u32 exec_options;  /* BW_EXEC_* */
	__u64 pin_sb_dev;    /* the bpffs holding our pins (kernel encoding): not to be unmounted */
	__u32 dir_rules;     /* directories with rules; 0: no directory lookup at all */
	__u32 subtree_depth; /* parents looked at for subtree rules (<= BW_MAX_SUBTREE_DEPTH) */
	__u32 audit_mode;    /* the policy's mode is audit: every deny only reports */
	__u32 allowlists;    /* entries of `allowlist` in use */
	struct bw_allowlist allowlist[BW_MAX_ALLOWLISTS];
	/* Where the trusted keys, the signed images and the state are: a
	 * restarted daemon or watchdog must be given the same ones while
	 * protection is on (read by user space only). */
	struct bw_inode_key keys_dir;
	struct bw_inode_key image_dir;
	struct bw_inode_key state_dir;
	__u32 audit_bpf_reads; /* bpf() audit reports read-only commands too */
	__u32 redact_count;    /* entries of `redact` in use */
	struct bw_redact_prefix redact[BW_MAX_REDACT];
};

/* Single entry (key 0) of bpfw_lift: break-glass. Self-protection is lifted
 * while bpf_ktime_get_ns() < until_ns (0: not lifted). Written by bpfwardend
 * after it verified a signed unlock token; not part of the policy. */
struct bw_lift {
	__u64 until_ns;
};

/* Task storage (bpfw_tasks). */
#define BW_TASK_LAUNCHED (1u << 0) /* forked by PID 1, no exec since but of a launcher */
/* bpfwarden's daemon or watchdog, admitted at exec (or the first loader) */
#define BW_TASK_SELF (1u << 1)
/* ptraced, or started with LD_PRELOAD & co: no bpf() allowance */
#define BW_TASK_TAINTED (1u << 2)
#define BW_TASK_IN_PROG_LOAD (1u << 3) /* inside BPF_PROG_LOAD */
struct bw_task {
	__u32 flags; /* BW_TASK_* */
	__u32 role;  /* enum bw_role */
};

/*
 * Executables that may become bpfwarden (bpfw_self_exes), keyed by their name
 * in their directory (bw_dirent_key), not by inode: a package upgrade
 * replaces the file, and the new one must be admitted at once. The file
 * guard keeps anyone but the package manager from changing what sits there.
 */
enum bw_role {
	BW_ROLE_NONE = 0,
	BW_ROLE_DAEMON = 1,
	BW_ROLE_WATCHDOG = 2,
	BW_ROLE_LAUNCHER = 3, /* what PID 1 runs to start a service (systemd-executor) */
	BW_ROLE_PACKAGER = 4, /* the package manager (dpkg), which may replace our images */
};
#define BW_UNIT_LEN 48
struct bw_self_exe {
	__u32 role; /* enum bw_role */
	__u32 pad;
	char unit[BW_UNIT_LEN]; /* the systemd unit whose cgroup it must run in
	                           ("bpfwardend.service") */
};

/* Per-object counters, kept in each object's .bss. */
struct bw_counters {
	__u64 events;       /* submitted to the ring buffer */
	__u64 dropped;      /* ring buffer full */
	__u64 rate_limited; /* suppressed by the per-process budget */
	__u64 denials;      /* EPERM returned (counted even when not reported) */
	__u64 audits;       /* audit matches (counted even when not reported) */
	__u64 tampers;      /* self-protection refusals (counted even when not reported) */
};

/* Per-process token bucket in the shared rate_limit LRU map, keyed by tgid. */
struct bw_rate_state {
	__u64 window_start_ns;
	__u32 used;
	__u32 pad;
};

/*
 * One event on the ring buffer. Fixed size so that user space can validate
 * the length before decoding; strings are NUL-terminated within their arrays
 * but user space must not rely on it.
 */
struct bw_event {
	__u32 kind;   /* enum bw_event_kind */
	__u32 action; /* enum bw_action taken (NONE for plain audit trail events) */
	__u64 ts_ns;  /* bpf_ktime_get_ns() */
	__u32 pid;    /* thread id */
	__u32 tgid;   /* process id */
	__u32 uid;
	__u32 gid;
	__u64 dev; /* file events: kernel device number */
	__u64 ino;
	__u32 rule_id;    /* matching rule, if any */
	__u32 bpf_cmd;    /* BPF_CALL / BPF_CHECK: enum bpf_cmd; TAMPER by signal: the signal */
	__u32 op;         /* enum bw_op */
	__u32 target_pid; /* TAMPER of a process: which one */
	char comm[BW_COMM_LEN];
	char path[BW_PATH_LEN]; /* exec: filename as passed; file: dentry name; bpf: executable name
	                         */
};

/*
 * The watchdog's own notification: a bpf() command that may have changed
 * bpfwarden's objects completed successfully in some other process.
 */
struct bw_tamper_event {
	__u32 tgid;
	__u32 cmd; /* enum bpf_cmd */
	char comm[BW_COMM_LEN];
};

/*
 * Computed the same on both sides (user space fills the maps, the programs
 * look up), so defined once here.
 */

/* FNV-1a, 64 bits, over a name's bytes (at most 255, as the kernel allows). */
static inline __u64 bw_name_hash(const unsigned char *name, __u32 len)
{
	__u64 hash = 0xcbf29ce484222325ULL;

	for (__u32 i = 0; i < len && i < 255; i++)
		hash = (hash ^ name[i]) * 0x100000001b3ULL;
	return hash;
}

/* The bit of bpfw_dir_bloom that stands for the directory (dev, ino). */
static inline __u32 bw_dir_bloom_bit(__u64 dev, __u64 ino)
{
	__u64 mixed = (ino ^ (dev << 32) ^ (dev >> 32)) * 0x9E3779B97F4A7C15ULL;

	return (__u32)(mixed >> 48) % (BW_DIR_BLOOM_WORDS * 64);
}

#endif /* BPFWARDEN_ABI_H */
