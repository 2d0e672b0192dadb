// Writes a compiled policy into the pinned policy maps.
//
// Each hash map is brought to exactly the desired contents: entries that
// stay are overwritten in place (never deleted and re-added), new ones are
// added, stale ones removed last, so a rule present before and after an
// update never stops applying.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "bpfwarden/abi.h"
#include "error.h"
#include "pin_layout.h"
#include "policy_compiler.h"
#include "unique_fd.h"

namespace bpfwarden {

// What the daemon allowlists besides the policy: itself (and, later, the watchdog).
struct ImplicitAllow {
    bw_inode_key exe;
    uint32_t rule_id;
};

class PolicyMaps {
public:
    // Opens the pinned policy maps; those of objects not loaded (audit-only
    // mode) are absent and skipped when applying.
    static Result<PolicyMaps> open(const PinLayout& pins);

    bool has_enforcement_maps() const { return bool(file_rules_); }

    // Allowlist entries go in before the bpf() policy that relies on them.
    Result<void> apply(const CompiledPolicy& policy, const std::vector<ImplicitAllow>& implicit) const;

private:
    UniqueFd file_rules_, exec_rules_, bpf_allow_, bpf_policy_;
};

// Adds `implicit` to an already pinned bpf_allow_exe map, if there is one,
// before anything else happens: a new binary adopting an earlier run's guard
// must be allowed to load what is missing.
Result<void> allow_implicit_in_pinned_guard(const PinLayout& pins, const std::vector<ImplicitAllow>& implicit);

// Identity of a running executable, in kernel encoding (for ImplicitAllow).
Result<bw_inode_key> executable_identity(const char* path = "/proc/self/exe");

// Sum of the counters of every pinned object.
Result<bw_counters> read_counters(const PinLayout& pins);

}  // namespace bpfwarden
