/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Privacy: paths under the policy's redact_paths prefixes are replaced by
 * BW_REDACTED_PATH in the event before it is submitted, so the path never
 * reaches the ring buffer (bw_event_reserve() zeroed the record, and the
 * whole path field is cleared again here).
 */
#ifndef BPFWARDEN_REDACT_BPF_H
#define BPFWARDEN_REDACT_BPF_H

#include "bpfwarden/policy_maps.bpf.h"

static __always_inline bool bw_has_prefix(const char *path, const struct bw_redact_prefix *prefix)
{
	__u32 len = prefix->len;

	if (len == 0 || len >= BW_REDACT_LEN)
		return false;
	for (__u32 i = 0; i < BW_REDACT_LEN; i++) {
		if (i >= len)
			return true;
		if (path[i] != prefix->prefix[i])
			return false;
	}
	return false;
}

/* BW_REDACTED_PATH over the whole of `path` (BW_PATH_LEN bytes). */
static __always_inline void bw_write_redacted(char *path)
{
	__builtin_memset(path, 0, BW_PATH_LEN);
	/* Byte by byte: a string constant would be a .rodata variable, which
	 * some kernels' BTF checks refuse at this size. */
	path[0] = '[';
	path[1] = 'F';
	path[2] = 'I';
	path[3] = 'L';
	path[4] = 'T';
	path[5] = 'E';
	path[6] = 'R';
	path[7] = 'E';
	path[8] = 'D';
	path[9] = ']';
}

/* Replaces `path` (BW_PATH_LEN bytes) when a redact prefix covers it. */
static __always_inline void bw_redact_path(char *path)
{
	const struct bw_settings *settings;
	__u32 zero = 0;

	settings = bpf_map_lookup_elem(&bpfw_settings, &zero);
	if (!settings || settings->redact_count == 0)
		return;
	for (__u32 i = 0; i < BW_MAX_REDACT; i++) {
		if (i >= settings->redact_count)
			return;
		if (!bw_has_prefix(path, &settings->redact[i]))
			continue;
		bw_write_redacted(path);
		return;
	}
}

#endif
