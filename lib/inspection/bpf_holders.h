// Which processes hold a BPF object open: what keeps a link attached (or a
// map alive) once its pin is gone. Read from /proc/<pid>/fdinfo, the way
// `bpftool ... show` finds "pids"; seeing other processes' fds needs root.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bpfwarden {

enum class BpfObjectType { Program, Map, Link };

struct BpfHolder {
    pid_t pid = 0;
    std::string comm;  // /proc/<pid>/comm
    std::string exe;   // /proc/<pid>/exe, "" when unreadable

    // "pid 812 (bpfwardend)"
    std::string describe() const;
};

// For each id of `type` in `ids`: the processes holding an fd to it (a
// process holding several is listed once). Processes that vanish or cannot
// be read while being scanned are skipped.
std::map<uint32_t, std::vector<BpfHolder>> find_bpf_holders(BpfObjectType type, const std::vector<uint32_t>& ids);

}  // namespace bpfwarden
