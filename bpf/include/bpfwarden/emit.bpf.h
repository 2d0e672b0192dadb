/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Event emission shared by every bpfwarden BPF object.
 *
 * Each object declares the same maps; the loader makes each one kernel map
 * (bpf_map__reuse_fd) so that all programs share them. Two classes of event,
 * each with a ring buffer and a budget of its own, so that a flood of one
 * never pushes the other out:
 *   - rule matches (deny, would-deny, audit, tamper): `bpfw_alerts`, at most
 *     rate_limit_burst a window per process (`bpfw_rate_limit`, by tgid);
 *   - the audit trail (every exec, every bpf() call): `bpfw_events`, at most
 *     trail_limit_burst a window per uid (`bpfw_trail_limit`): every child
 *     of a fork+exec flood is a new process, so a per-process budget would
 *     never apply to it; the budget is larger, as one uid (root) runs most
 *     of a host's execs.
 * What a budget refuses is counted (rate_limited), and so is what a full
 * ring refuses (dropped).
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
} bpfw_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} bpfw_alerts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct bw_rate_state);
} bpfw_trail_limit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct bw_rate_state);
} bpfw_rate_limit SEC(".maps");

/* Set by the loader before load. */
const volatile __u32 rate_limit_burst = 64;    /* rule-match events per window per process */
const volatile __u32 trail_limit_burst = 1024; /* audit-trail events per window per uid */
const volatile __u64 rate_limit_window_ns = 1000000000ULL;

struct bw_counters counters = {};

static __always_inline void bw_count(__u64 *counter)
{
	__sync_fetch_and_add(counter, 1);
}

/* True when `key` (in `limits`) has not used `burst` events in the current window. */
static __always_inline bool bw_rate_allow(void *limits, __u32 key, __u32 burst)
{
	__u64 now = bpf_ktime_get_ns();
	struct bw_rate_state *state = bpf_map_lookup_elem(limits, &key);

	if (!state) {
		struct bw_rate_state fresh = {.window_start_ns = now, .used = 1};

		bpf_map_update_elem(limits, &key, &fresh, BPF_ANY);
		return true;
	}
	if (now - state->window_start_ns >= rate_limit_window_ns) {
		state->window_start_ns = now;
		state->used = 1;
		return true;
	}
	if (state->used >= burst)
		return false;
	__sync_fetch_and_add(&state->used, 1);
	return true;
}

/*
 * Reserve an event in `ring` with the common header filled in, or NULL when
 * `key` spent its `burst` in `limits` or the ring is full (both are counted).
 */
static __always_inline struct bw_event *bw_reserve_in(void *ring, void *limits, __u32 key,
                                                      __u32 burst, __u32 kind, __u32 action)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct bw_event *event;

	if (!bw_rate_allow(limits, key, burst)) {
		bw_count(&counters.rate_limited);
		return NULL;
	}
	event = bpf_ringbuf_reserve(ring, sizeof(*event), 0);
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

/* A rule match (deny, would-deny, audit, tamper): bpfw_alerts, per process. */
static __always_inline struct bw_event *bw_event_reserve(__u32 kind, __u32 action)
{
	return bw_reserve_in(&bpfw_alerts, &bpfw_rate_limit, bpf_get_current_pid_tgid() >> 32,
	                     rate_limit_burst, kind, action);
}

/* An audit-trail record (exec, bpf() call): bpfw_events, per uid. */
static __always_inline struct bw_event *bw_trail_reserve(__u32 kind)
{
	return bw_reserve_in(&bpfw_events, &bpfw_trail_limit, (__u32)bpf_get_current_uid_gid(),
	                     trail_limit_burst, kind, BW_ACTION_NONE);
}

static __always_inline void bw_event_submit(struct bw_event *event)
{
	bw_count(&counters.events);
	bpf_ringbuf_submit(event, 0);
}

/* Filesystems that hand a deleted file's inode number to the next new file:
 * there the inode's generation is part of its identity. */
static __always_inline bool bw_fs_reuses_inode_numbers(unsigned long magic)
{
	return magic == 0xEF53 /* ext2/3/4 */ || magic == 0x58465342 /* xfs */ ||
	       magic == 0x9123683E /* btrfs */ || magic == 0xF2F52010 /* f2fs */;
}

#ifndef S_IFMT
#define S_IFMT 00170000
#define S_IFDIR 0040000
#endif

/* Identity of an inode, in the same encoding user space computes. */
static __always_inline struct bw_inode_key bw_inode_key_of(struct inode *inode)
{
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);
	struct bw_inode_key key = {
	        .dev = BPF_CORE_READ(sb, s_dev),
	        .ino = BPF_CORE_READ(inode, i_ino),
	        .is_dir = (BPF_CORE_READ(inode, i_mode) & S_IFMT) == S_IFDIR,
	};

	if (bw_fs_reuses_inode_numbers(BPF_CORE_READ(sb, s_magic)))
		key.gen = BPF_CORE_READ(inode, i_generation);
	return key;
}

/* bw_name_hash() of the dentry's name (at `dentry_addr`) into `hash`; 0 if
 * the name cannot be read. Read 32 bytes at a time to keep the stack small:
 * hooks that call subprograms share 512 bytes among them. A string read
 * stops at the name's NUL, so no read goes past the name. Global, so the
 * verifier walks its loops once per program instead of at every caller; a
 * global function takes no kernel pointer, so the dentry comes as an address
 * read with probe reads only. */
__noinline int bw_dentry_name_hash_at(__u64 dentry_addr, __u64 *hash)
{
	struct dentry *dentry = (struct dentry *)dentry_addr;
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	__u32 len = BPF_CORE_READ(dentry, d_name.len);
	__u64 h = 0xcbf29ce484222325ULL;
	unsigned char chunk[33];

	if (!hash || len > 255)
		return 0;
	for (__u32 offset = 0; offset < 256; offset += 32) {
		__u32 size;

		if (offset >= len)
			break;
		size = len - offset;
		if (bpf_probe_read_kernel_str(chunk, sizeof(chunk), name + offset) < 0)
			return 0;
		for (__u32 i = 0; i < 32 && i < size; i++)
			h = (h ^ chunk[i]) * 0x100000001b3ULL;
	}
	*hash = h;
	return 1;
}

/* A kernel object's address as a plain number, which is how a global
 * function takes it: the verifier refuses a pointer it tracks there (a hook's
 * argument is one), and reading the address back from the stack drops the
 * tracking. */
static __always_inline __u64 bw_address_of(const void *object)
{
	__u64 address = 0;

	bpf_probe_read_kernel(&address, sizeof(address), &object);
	return address;
}

static __always_inline bool bw_dentry_name_hash(struct dentry *dentry, __u64 *hash)
{
	return bw_dentry_name_hash_at(bw_address_of(dentry), hash);
}

/*
 * A kernel string equal to `wanted`: `len` bytes (a multiple of 8, at most
 * BW_SCOPE_NAME_LEN) holding at most len - 1 characters, NUL-padded. The
 * name is read into a zeroed buffer longer than `wanted`, so a longer name
 * differs from it at `wanted`'s last byte, a NUL. Compared a word at a time
 * with no early exit: the verifier walks one path through it, not one per
 * character.
 */
static __always_inline bool bw_kernel_name_is(const char *kernel_name, const char *wanted,
                                              __u32 len)
{
	__u64 name[BW_SCOPE_NAME_LEN / 8 + 1] = {};
	const __u64 *wanted_words = (const __u64 *)wanted;
	__u64 difference = 0;

	if (!kernel_name || bpf_probe_read_kernel_str(name, sizeof(name), kernel_name) < 0)
		return false;
	for (__u32 i = 0; i < BW_SCOPE_NAME_LEN / 8; i++)
		if (i < len / 8)
			difference |= name[i] ^ wanted_words[i];
	return difference == 0;
}

/* The identity of `dentry`'s name: its directory's inode and the name's hash
 * (false: the name is unreadable, or it is the root). */
static __always_inline bool bw_dirent_key_of(struct dentry *dentry, struct bw_dirent_key *key)
{
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	struct inode *dir = parent ? BPF_CORE_READ(parent, d_inode) : NULL;

	if (!dir || parent == dentry || !bw_dentry_name_hash(dentry, &key->name_hash))
		return false;
	key->dir = bw_inode_key_of(dir);
	return true;
}

/* The dentry's name into an event's path field. */
static __always_inline void bw_event_name(struct bw_event *event, struct dentry *dentry)
{
	bpf_probe_read_kernel_str(event->path, sizeof(event->path),
	                          BPF_CORE_READ(dentry, d_name.name));
}

#endif /* BPFWARDEN_EMIT_BPF_H */
