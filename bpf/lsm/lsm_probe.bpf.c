// SPDX-License-Identifier: GPL-2.0
/*
 * Loaded and attached once at start to learn whether this kernel runs BPF LSM
 * programs at all; it changes no decision. `hits` proves the hook really runs
 * (attaching succeeds even when `bpf` is missing from the active LSM list).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 probe_tgid = 0;
__u64 hits = 0;

SEC("lsm/file_open")
int BPF_PROG(bw_lsm_probe, struct file *file, int ret)
{
	if ((bpf_get_current_pid_tgid() >> 32) == probe_tgid)
		__sync_fetch_and_add(&hits, 1);
	return ret;
}
