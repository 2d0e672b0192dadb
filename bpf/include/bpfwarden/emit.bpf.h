/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Event emission shared by every bpfwarden BPF object.
 *
 * Each object declares the same `events` ring buffer and `rate_limit` LRU
 * map; the loader makes them one kernel map (bpf_map__reuse_fd) so that all
 * programs share one event stream and one per-process budget.
 */
#ifndef BPFWARDEN_EMIT_BPF_H
#define BPFWARDEN_EMIT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfwarden/abi.h"

#define EPERM 1

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct bw_rate_state);
} rate_limit SEC(".maps");

/* Set by the loader before load. */
const volatile __u32 rate_limit_burst = 64; /* events per window per process */
const volatile __u64 rate_limit_window_ns = 1000000000ULL;

struct bw_counters counters = {};

static __always_inline void bw_count(__u64 *counter)
{
	__sync_fetch_and_add(counter, 1);
}

/* True when the calling process still has budget in the current window. */
static __always_inline bool bw_rate_allow(__u32 tgid)
{
	__u64 now = bpf_ktime_get_ns();
	struct bw_rate_state *state = bpf_map_lookup_elem(&rate_limit, &tgid);

	if (!state) {
		struct bw_rate_state fresh = {.window_start_ns = now, .used = 1};

		bpf_map_update_elem(&rate_limit, &tgid, &fresh, BPF_ANY);
		return true;
	}
	if (now - state->window_start_ns >= rate_limit_window_ns) {
		state->window_start_ns = now;
		state->used = 1;
		return true;
	}
	if (state->used >= rate_limit_burst)
		return false;
	__sync_fetch_and_add(&state->used, 1);
	return true;
}

/*
 * Reserve an event with the common header filled in, or NULL when the
 * process is over budget or the ring buffer is full (both are counted).
 */
static __always_inline struct bw_event *bw_event_reserve(__u32 kind, __u32 action)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct bw_event *event;

	if (!bw_rate_allow(pid_tgid >> 32)) {
		bw_count(&counters.rate_limited);
		return NULL;
	}
	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		bw_count(&counters.dropped);
		return NULL;
	}
	/* Reserved memory is not zeroed: clear it so no stale kernel bytes leak. */
	__builtin_memset(event, 0, sizeof(*event));
	event->kind = kind;
	event->action = action;
	event->ts_ns = bpf_ktime_get_ns();
	event->pid = (__u32)pid_tgid;
	event->tgid = pid_tgid >> 32;
	event->uid = (__u32)uid_gid;
	event->gid = uid_gid >> 32;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	return event;
}

static __always_inline void bw_event_submit(struct bw_event *event)
{
	bw_count(&counters.events);
	bpf_ringbuf_submit(event, 0);
}

/* Count a rule match and report it; returns the LSM verdict to give. */
static __always_inline int bw_rule_verdict(const struct bw_rule *rule)
{
	if (rule->action == BW_ACTION_DENY) {
		bw_count(&counters.denials);
		return -EPERM;
	}
	bw_count(&counters.audits);
	return 0;
}

/* Kernel identity of an inode, in the same encoding user space computes. */
static __always_inline struct bw_inode_key bw_inode_key_of(struct inode *inode)
{
	struct bw_inode_key key = {
	        .dev = BPF_CORE_READ(inode, i_sb, s_dev),
	        .ino = BPF_CORE_READ(inode, i_ino),
	};
	return key;
}

#endif /* BPFWARDEN_EMIT_BPF_H */
