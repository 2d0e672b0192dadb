// The watchdog's core: the cycle that checks bpfwarden's kernel objects
// against the expected state and heals what drifted, and the state it
// reports.
//
// What is expected (expected_state.h), how it is checked (checker.h), how a
// heal is decided and done (healer.h) and the kernel access
// (watchdog_kernel.h) are units of their own; this class decides when: a
// cycle checks, heals, and checks again, because pins are inspected one after
// another and a tamper landing mid-check is seen only in part.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checker.h"
#include "expected_state.h"
#include "healer.h"
#include "inspection/watchdog_status.h"
#include "loading/pin_layout.h"
#include "policy/last_good_policy.h"
#include "policy/policy_bundle.h"
#include "policy/policy_maps.h"
#include "support/error.h"
#include "trust/image_set.h"
#include "watchdog_kernel.h"

namespace bpfwarden {

struct WatchdogOptions {
    PinLayout pins;
    ImageTrust trust;
    std::filesystem::path policy_dir;
    // bpfwarden's executables and canary; the directories and pin root are
    // filled in from trust and pins.
    ServiceIdentity service;
    LoadConfig load;
    bool require_enforcement = false;    // expect BPF LSM programs even where the probe says they cannot run
    bool read_only = false;              // check only: create, pin, write and heal nothing
    bool require_signed_policy = false;  // the policy directory only as a verified signed bundle
};

class Supervisor {
public:
    // `kernel` defaults to the real one (LiveKernel); tests pass a fake.
    explicit Supervisor(WatchdogOptions options, std::unique_ptr<WatchdogKernel> kernel = nullptr);

    // Verifies the signed images, probes BPF LSM, derives the expected
    // program identities and compiles the desired policy. Fails only when the
    // expected state cannot be known (e.g. the images are refused).
    Result<void> start();
    // The same, from a given expected state (tests).
    void start_with(ExpectedState expected, bool enforcement_expected, std::string mode_reason);

    // One cycle: check, heal what drifted, check again (at most kMaxHeals
    // heals, and never the same findings twice). `trigger` says why it runs.
    void run_cycle(const std::string& trigger);
    static constexpr int kMaxHeals = 3;

    // One check that changes nothing: what is wrong ends up in the reasons.
    void check_only(const std::string& trigger);

    // Recompiles the desired policy from the policy directory (resolving
    // every rule path again): true if it differs from the current one. On
    // error the previous one stays.
    Result<bool> reload_policy();
    // Where the desired policy came from, and why not the directory.
    PolicySource policy_source() const { return policy_source_; }
    // Sets the desired policy maps directly (true: they changed).
    bool set_desired(DesiredMaps desired);

    // The tripwire's count of map-changing bpf() commands by other processes.
    // While it stands still the policy maps are digested only every
    // kFullDigestEvery (a program loaded earlier could still write them):
    // digesting the policy hash maps is most of a cycle's cost.
    void set_map_change_counter(std::function<uint64_t()> counter) { map_change_counter_ = std::move(counter); }
    static constexpr std::chrono::seconds kFullDigestEvery{5};

    const WatchdogStatus& state() const { return state_; }
    void set_check_interval(std::chrono::microseconds interval) { state_.check_interval_usec = interval.count(); }
    bool enforcement_expected() const { return enforcement_expected_; }
    const ExpectedState& expected() const { return expected_; }

private:
    const PolicyTrust* required_policy_trust() const {
        return options_.require_signed_policy ? &policy_trust_ : nullptr;
    }
    PolicyTrust policy_trust_;  // from options_.trust
    CheckResult check();
    bool should_digest_maps(uint64_t& change_count) const;
    void note_maps(const CheckResult& result, uint64_t change_count);
    void apply_edited_policy();
    // A policy map differs: resolve the rule paths again first, so that a
    // file replaced since (which the daemon may have applied already) is
    // never healed back to the old identity.
    bool re_resolve_before_heal(const std::vector<Finding>& findings);
    // Protection lifted (break-glass): what changes now is the admin's; heal after.
    bool healing_paused();
    void set_policy(ChosenPolicy chosen);
    HealOutcome heal_findings(const std::vector<Finding>& findings, const std::string& reason);
    // A heal of these findings, by kind (state_.heals_by_kind).
    void count_heal_kinds(const std::vector<Finding>& findings);
    void begin_cycle(const std::string& trigger);
    // Healthy or not, and how long the cycle took.
    void end_cycle();
    // Other programs on our LSM hooks into the status (log_changes: say so
    // when the set changed).
    void note_foreign_programs(bool log_changes);

    WatchdogOptions options_;
    std::unique_ptr<WatchdogKernel> kernel_;
    WatchdogStatus state_;
    bool enforcement_expected_ = false;
    ExpectedState expected_;
    std::function<uint64_t()> map_change_counter_;
    std::shared_ptr<const VerifiedImageSet> images_;
    PolicySource policy_source_ = PolicySource::PolicyDirectory;
    // When the policy maps were last found intact, and the counter then; unset
    // after a heal or a policy change.
    std::optional<std::pair<std::chrono::steady_clock::time_point, uint64_t>> maps_intact_at_;
    std::chrono::steady_clock::time_point cycle_started_;
    bool return_memory_ = true;  // at the end of the next cycle (return_freed_memory())
};

}  // namespace bpfwarden
