// Writes a compiled policy into the pinned policy maps, and says what their
// exact contents must be (the watchdog compares digests against that).
//
// Each hash map is brought to exactly the desired contents: entries that
// stay are overwritten in place (never deleted and re-added), new ones are
// added, stale ones removed last, so a rule present before and after an
// update never stops applying.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "bpfwarden/abi.h"
#include "loading/pin_layout.h"
#include "policy/policy_compiler.h"
#include "support/error.h"
#include "support/unique_fd.h"

namespace bpfwarden {

// Rule ids of the entries bpfwarden adds on its own (kSelfRuleId: the daemon).
inline constexpr uint32_t kWatchdogRuleId = 0xFFFFFFFE;
inline constexpr uint32_t kCanaryRuleId = 0xFFFFFFFD;

// bpfwarden's own executables may always use bpf(); the watchdog's canary
// file is always denied. Both processes derive the same entries from the
// same paths, so they agree on what the maps must hold.
struct ServiceIdentity {
    std::filesystem::path daemon_exe;
    std::filesystem::path watchdog_exe;
    std::filesystem::path canary;
};

struct ImplicitAllow {
    bw_inode_key exe;
    uint32_t rule_id;
};

struct ImplicitRules {
    std::vector<ImplicitAllow> allow;
    std::vector<CompiledEntry> file_deny;
};

// Paths that do not exist are left out (an uninstalled watchdog, say).
ImplicitRules implicit_rules(const ServiceIdentity& service);

// Creates the canary file (0600, and its directories) if missing.
Result<void> ensure_canary(const std::filesystem::path& canary);

struct InodeKeyLess {
    bool operator()(const bw_inode_key& a, const bw_inode_key& b) const {
        return std::tie(a.dev, a.ino) < std::tie(b.dev, b.ino);
    }
};

// The exact contents every policy map must have.
struct DesiredMaps {
    std::map<bw_inode_key, bw_rule, InodeKeyLess> file_rules, exec_rules;
    std::map<bw_inode_key, bw_bpf_allow, InodeKeyLess> bpf_allow;
    bw_bpf_policy bpf_policy{};
};

DesiredMaps desired_maps(const CompiledPolicy& policy, const ImplicitRules& implicit);

class PolicyMaps {
public:
    static Result<PolicyMaps> open(const PinLayout& pins);

    // Allowlist entries go in before the bpf() policy that relies on them.
    Result<void> apply(const DesiredMaps& desired) const;

    int file_rules_fd() const { return file_rules_.get(); }
    int exec_rules_fd() const { return exec_rules_.get(); }
    int bpf_allow_fd() const { return bpf_allow_.get(); }
    int bpf_policy_fd() const { return bpf_policy_.get(); }

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
