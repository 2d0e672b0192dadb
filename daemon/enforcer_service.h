// bpfwardend's steady state: set up (adopt or load the BPF objects, apply
// the policy), then turn events into log lines and apply policy reloads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "held_pins.h"
#include "loading/bpf_objects.h"
#include "loading/lsm_probe.h"
#include "loading/pin_layout.h"
#include "loading/self_state.h"
#include "policy/last_good_policy.h"
#include "policy/policy_bundle.h"
#include "policy/policy_compiler.h"
#include "policy/policy_maps.h"
#include "support/error.h"
#include "support/event.h"
#include "support/rate_limiter.h"
#include "trust/image_set.h"

namespace bpfwarden {

struct EnforcerOptions {
    std::filesystem::path policy_dir;
    ImageTrust trust;  // where the signed images, trusted keys and rollback state are
    // bpfwarden's executables, canary and directories: implicit policy entries
    // (the directories and pin root are filled in from trust and pin_root).
    ServiceIdentity service;
    std::filesystem::path pin_root = PinLayout::kDefaultRoot;
    bool audit_only = false;             // never try BPF LSM
    bool require_signed_policy = false;  // the policy directory only as a verified signed bundle
    bool json_events = false;
    LoadConfig load;
};

// Degraded: BPF LSM works but an enforcement object failed to load.
enum class EnforcementMode { Enforcing, Degraded, AuditOnly };

struct ObjectState {
    const ObjectSpec* spec;
    enum class Origin { Loaded, Adopted, Skipped, Failed } origin;
    std::string detail;  // why skipped or failed
};

// A program as its pin shows it now (live; cheap enough for every D-Bus Get).
struct ProgramStatus {
    const ObjectSpec* spec = nullptr;
    const ProgramSpec* program = nullptr;
    uint32_t prog_id = 0;   // 0: no program behind the pin
    std::string tag;        // hex, from the link's fdinfo; empty when unknown
    bool pinned = false;    // a BPF link is pinned at the link pin
    bool attached = false;  // that link has a program
    std::string state;      // "loaded", "adopted", "skipped: <why>", "failed: <why>"
};

// A policy that was just applied, and what made it happen. Every apply after
// start produces exactly one, for the log line and the PolicyChanged signal.
struct PolicyApplied {
    std::string what;    // "reloaded", "applied the edited policy directory", "AddRule file '/x' deny by uid 0"
    std::string detail;  // why, or where it was saved ("policy directory changed (a.toml)"); may be empty
    std::string reason;  // what the PolicyChanged signal says ("SIGHUP", "policy directory edited")
    uint64_t generation = 0;
    size_t rules = 0;
    std::vector<std::string> warnings;
};

// How an apply was asked for.
struct ApplyRequest {
    std::string what;
    std::string detail;
    std::string reason;
    bool only_if_changed = false;                  // an edit that changes nothing observable applies nothing
    const PolicyFileOverride* override = nullptr;  // not applied from disk: the directory as it will be
};

// A rule whose path names another file (or directory) now than when the
// policy was applied: the maps still key the old one until re-resolved.
struct RuleDrift {
    uint32_t rule_id;
    std::string path;
    std::string detail;  // "now names inode 1234 on 8:1, applied to inode 99"
};

class EnforcerService {
public:
    // Sees every decoded event, before the log rate limit.
    using EventObserver = std::function<void(const Event& event, const std::string& rule_path)>;
    using PolicyListener = std::function<void(const PolicyApplied&)>;

    explicit EnforcerService(EnforcerOptions options);

    // PolicyApplied::what of a re-resolution.
    static constexpr const char* kReResolved = "re-resolved rule paths";

    // Loads the policy and verifies the signed image set first: an invalid
    // policy or a refused image stops start-up before any kernel object is
    // touched, so whatever earlier pins enforce stays.
    Result<void> start();

    // Compiles the policy directory and applies it: the one way a policy
    // changes after start. True when applied (every apply, start included,
    // increments policy_generation() and, after start, tells the policy
    // listeners); false when `only_if_changed` found nothing to change (e.g.
    // a file the policy loader ignores, or a save without changes). On error
    // (PolicyInvalid for a policy that does not compile) the running policy
    // stays.
    Result<bool> apply_policy(const ApplyRequest& request);

    // Resolves every rule path again and applies the result if any names
    // another file now (a file replaced by rename, created, removed): the
    // same resolution the watchdog does before it judges the maps.
    Result<bool> re_resolve(const std::string& why);
    // Rules whose paths name other files now than when applied.
    std::vector<RuleDrift> drift() const;
    // The directories holding the files the rules name: where a change can
    // make a rule name another file.
    std::vector<std::filesystem::path> rule_directories() const;

    // Takes references to whatever is pinned now; when the watchdog replaced
    // an object, moves the policy writes to its maps and tells the store
    // listener (the event stream moves too). Returns the pins that changed.
    std::vector<std::string> follow_pins();
    void set_store_listener(std::function<void(const std::vector<std::string>&)> listener) {
        store_listener_ = std::move(listener);
    }
    const HeldPins& held() const { return held_; }

    // Returns a token for remove_policy_listener().
    size_t add_policy_listener(PolicyListener listener);
    void remove_policy_listener(size_t token) { policy_listeners_.erase(token); }

    void set_event_observer(EventObserver observer) { observer_ = std::move(observer); }

    // One ring-buffer record to one log line.
    void handle_event(std::span<const std::byte> record);

    EnforcementMode mode() const { return mode_; }
    const std::string& mode_reason() const { return mode_reason_; }
    const std::vector<ObjectState>& objects() const { return objects_; }
    const PinLayout& pins() const { return pins_; }
    const CompiledPolicy& policy() const { return policy_; }
    // Where the policy in force came from, and why not from the directory.
    PolicySource policy_source() const { return policy_source_; }
    const std::optional<Error>& policy_problem() const { return policy_problem_; }
    // Self-protection as pinned, and this process's standing.
    Result<SelfState> self_state() const { return read_self_state(pins_); }
    std::string counters_summary() const;
    uint64_t image_set_version() const { return image_set_version_; }
    uint64_t policy_generation() const { return policy_generation_; }
    const EnforcerOptions& options() const { return options_; }
    // What the policy directory must verify against; nullptr when any policy file is read.
    const PolicyTrust* required_policy_trust() const {
        return options_.require_signed_policy ? &policy_trust_ : nullptr;
    }
    // The BPF LSM probe's answer (not probed with --audit-only: the active
    // LSM list is still read).
    const LsmStatus& lsm_status() const { return lsm_; }
    std::vector<ProgramStatus> program_status() const;

private:
    bool is_own_bpf_call(const Event& event) const;
    PolicyTrust policy_trust_;  // from options_.trust
    Result<CompiledPolicy> load_policy(const PolicyFileOverride* override = nullptr) const;
    Result<void> check_protection(const SelfState& state);
    void decide_mode(const VerifiedImageSet& images);
    void set_up_objects(const VerifiedImageSet& images);
    void note_failed_enforcement();
    Result<void> mark_self_once();
    // Writes the maps; `from_directory`: the policy is the directory's (save it as the last good one).
    Result<void> apply(const CompiledPolicy& policy, bool from_directory);
    void commit_bundle_version(const CompiledPolicy& policy) const;
    void notify(const PolicyApplied& event);

    EnforcerOptions options_;
    PinLayout pins_;
    EnforcementMode mode_ = EnforcementMode::AuditOnly;
    std::string mode_reason_;
    LsmStatus lsm_;
    uint64_t image_set_version_ = 0;
    uint64_t policy_generation_ = 0;
    EventObserver observer_;
    std::map<size_t, PolicyListener> policy_listeners_;
    size_t next_listener_ = 0;
    std::vector<ObjectState> objects_;
    std::optional<PolicyMaps> policy_maps_;
    CompiledPolicy policy_;
    PolicySource policy_source_ = PolicySource::PolicyDirectory;
    std::optional<Error> policy_problem_;
    bool marked_self_ = false;
    HeldPins held_;
    std::function<void(const std::vector<std::string>&)> store_listener_;
    // Log lines per second, one budget per class of event (as the kernel
    // has one ring buffer each): a flood of execs never silences a denial.
    RateLimiter trail_log_limiter_{200, std::chrono::seconds(1)};
    RateLimiter match_log_limiter_{200, std::chrono::seconds(1)};
    // bpfwardend and bpfwarden-watchdog: their own bpf() calls (a heal, an
    // apply, the watchdog's checks) are not reported as bpf() audit.
    std::vector<FileIdentity> own_executables_;
};

std::string_view to_string(EnforcementMode mode);

}  // namespace bpfwarden
