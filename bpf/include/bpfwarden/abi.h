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

/* What a policy rule asks for when it matches. */
enum bw_action {
	BW_ACTION_NONE = 0,
	BW_ACTION_AUDIT = 1, /* allow and report */
	BW_ACTION_DENY = 2,  /* refuse with EPERM and report */
};

/* Where an event comes from. */
enum bw_event_kind {
	BW_EVENT_FILE_OPEN = 1,  /* lsm/file_open rule match */
	BW_EVENT_EXEC_CHECK = 2, /* lsm/bprm_check_security rule match */
	BW_EVENT_BPF_CHECK = 3,  /* lsm/bpf restricted command outside the allowlist */
	BW_EVENT_BPF_CALL = 4,   /* tracepoint syscalls/sys_enter_bpf: every bpf() call */
	BW_EVENT_EXEC = 5,       /* tracepoint sched/sched_process_exec: every exec */
};

/* The kernel's view of a file: s_dev is (major << 20) | minor. */
struct bw_inode_key {
	__u64 dev;
	__u64 ino;
};

/* Value of the file_rules and exec_rules maps. */
struct bw_rule {
	__u32 action;  /* enum bw_action */
	__u32 rule_id; /* index into the daemon's compiled rule table */
};

/* Value of bpf_allow_exe: executables allowed to use restricted bpf() commands. */
struct bw_bpf_allow {
	__u32 rule_id;
	__u32 pad;
};

/* Single entry (key 0) of the bpf_policy array map. */
struct bw_bpf_policy {
	__u32 action; /* enum bw_action for restricted commands from others */
	__u32 pad;
	__u64 restricted_cmds; /* bit (1 << cmd) for each restricted enum bpf_cmd */
};

/* Per-object counters, kept in each object's .bss. */
struct bw_counters {
	__u64 events;       /* submitted to the ring buffer */
	__u64 dropped;      /* ring buffer full */
	__u64 rate_limited; /* suppressed by the per-process budget */
	__u64 denials;      /* EPERM returned (counted even when not reported) */
	__u64 audits;       /* audit matches (counted even when not reported) */
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
	__u32 rule_id; /* matching rule, if any */
	__u32 bpf_cmd; /* BPF_CALL / BPF_CHECK: enum bpf_cmd */
	char comm[BW_COMM_LEN];
	char path[BW_PATH_LEN]; /* exec: filename as passed; file open: dentry name */
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

#endif /* BPFWARDEN_ABI_H */
