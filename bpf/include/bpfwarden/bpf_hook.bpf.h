/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the lsm/bpf hook's programs (the bpf() guard, the bpf() audit) share.
 */
#ifndef BPFWARDEN_BPF_HOOK_BPF_H
#define BPFWARDEN_BPF_HOOK_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/*
 * A bpf() call the kernel makes on its own behalf (e.g. loading preload
 * programs). security_bpf() gained a fourth argument, `bool kernel`, after
 * 6.1: programs declare the three leading arguments and read the fourth only
 * where it exists, so one object verifies on 6.1 and 6.12.
 */
static __always_inline bool bw_bpf_call_by_kernel(void *ctx)
{
	__u64 kernel = 0;

	if (bpf_get_func_arg_cnt(ctx) < 4)
		return false;
	bpf_get_func_arg(ctx, 3, &kernel);
	return kernel & 0xff;
}

#endif /* BPFWARDEN_BPF_HOOK_BPF_H */
