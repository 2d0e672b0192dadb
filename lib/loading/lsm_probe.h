// Can this kernel enforce with BPF LSM programs? Answered once at start by
// reading the active LSM list and by loading, attaching and triggering a
// trivial LSM program, because each check alone can be fooled: the list may
// be unreadable, and a program attaches fine on a kernel booted without `bpf`
// in lsm= yet is never called.
#pragma once

#include <string>
#include <vector>

#include "trust/bpf_image.h"

namespace bpfwarden {

struct LsmStatus {
    bool usable = false;
    std::string reason;                    // why not, in words a person can act on
    std::vector<std::string> active_lsms;  // from /sys/kernel/security/lsm, if readable
};

// The active LSMs, in order ("lockdown,capability,...,bpf"); empty when the
// list cannot be read.
std::vector<std::string> read_active_lsms(const std::string& path = "/sys/kernel/security/lsm");

// `probe_image` is the lsm_probe object image.
LsmStatus probe_bpf_lsm(const BpfImage& probe_image, const std::string& lsm_list_path = "/sys/kernel/security/lsm");

}  // namespace bpfwarden
