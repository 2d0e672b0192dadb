// SPDX-License-Identifier: GPL-2.0
/* Maps only: the policy store every LSM program reads (see policy_maps.bpf.h). */
#include "bpfwarden/policy_maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";
