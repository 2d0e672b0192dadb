// Who this process is to the self-protection programs, and whether
// protection is on: read from the store's maps (bpfw_settings, bpfw_lift,
// bpfw_tasks), which anyone may read.
//
// A process is bpfwarden when the kernel marked it so (BW_TASK_SELF in
// bpfw_tasks): at exec, for our executables started by PID 1 in their own
// unit (bpf/include/bpfwarden/self.bpf.h), or by the first loader for itself,
// before any self-protection program was attached (mark_self()).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bpfwarden/abi.h"
#include "loading/pin_layout.h"
#include "support/error.h"

namespace bpfwarden {

struct SelfState {
    bool store = false;            // the policy store is pinned
    bool protect = false;          // its settings ask for self-protection
    uint64_t lifted_until_ns = 0;  // CLOCK_MONOTONIC end of a break-glass lift, 0: none
    bool lifted = false;           // ... and it has not ended yet
    bool guarded = false;          // the self guard's link is pinned: the kernel enforces protection
    bool self = false;             // this process carries BW_TASK_SELF
    uint32_t role = BW_ROLE_NONE;
    bw_settings settings{};  // as pinned (zero without a store)

    // Protection is in force: asked for, enforced by an attached self guard
    // (without BPF LSM nothing can enforce it, and refusing would only be
    // theatre: root could write the maps), and not lifted.
    bool enforced() const { return store && protect && guarded && !lifted; }
    // Protection decides for this process: in force and not ours.
    bool refused() const { return enforced() && !self; }
};

Result<SelfState> read_self_state(const PinLayout& pins);

// Marks this process as bpfwarden (role BW_ROLE_DAEMON or WATCHDOG) in the
// pinned task storage. Only possible while nothing protects the store yet
// (the first load) or for bpfwarden itself: the self guard refuses anybody
// else a writable fd to our maps.
Result<void> mark_self(const PinLayout& pins, uint32_t role);

// CLOCK_MONOTONIC now, in the kernel's bpf_ktime_get_ns() terms.
uint64_t monotonic_ns();

// Why a refused process cannot manage bpfwarden, for the log: what to do instead.
std::string refusal_message(const std::string& who);

}  // namespace bpfwarden
