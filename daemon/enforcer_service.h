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

#include "loading/bpf_objects.h"
#include "loading/lsm_probe.h"
#include "loading/pin_layout.h"
#include "policy/policy_compiler.h"
#include "policy/policy_maps.h"
#include "support/error.h"
#include "support/event.h"
#include "support/rate_limiter.h"
#include "trust/image_set.h"

namespace bpfwarden {

struct EnforcerOptions {
    std::filesystem::path policy_dir;
    ImageTrust trust;         // where the signed images, trusted keys and rollback state are
    ServiceIdentity service;  // bpfwarden's executables and canary: implicit policy entries
    std::filesystem::path pin_root = PinLayout::kDefaultRoot;
    bool audit_only = false;  // never try BPF LSM
    bool json_events = false;
    LoadConfig load;
};

enum class EnforcementMode { Enforcing, AuditOnly };

struct ObjectState {
    const ObjectSpec* spec;
    enum class Origin { Loaded, Adopted, Skipped, Failed } origin;
    std::string detail;  // why skipped or failed
};

// A program as its pin shows it now (live; cheap enough for every D-Bus Get).
struct ProgramStatus {
    const ObjectSpec* spec = nullptr;
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

class EnforcerService {
public:
    // Sees every decoded event, before the log rate limit.
    using EventObserver = std::function<void(const Event& event, const std::string& rule_path)>;
    using PolicyListener = std::function<void(const PolicyApplied&)>;

    explicit EnforcerService(EnforcerOptions options);

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
    std::string counters_summary() const;
    uint64_t image_set_version() const { return image_set_version_; }
    uint64_t policy_generation() const { return policy_generation_; }
    const EnforcerOptions& options() const { return options_; }
    // The BPF LSM probe's answer (not probed with --audit-only: the active
    // LSM list is still read).
    const LsmStatus& lsm_status() const { return lsm_; }
    std::vector<ProgramStatus> program_status() const;

private:
    Result<CompiledPolicy> load_policy(const PolicyFileOverride* override = nullptr) const;
    void decide_mode(const VerifiedImageSet& images);
    void set_up_objects(const VerifiedImageSet& images);
    Result<void> apply(const CompiledPolicy& policy);
    ImplicitRules current_implicit_rules() const;

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
    ImplicitAllow self_allow_{};
    RateLimiter log_limiter_{200, std::chrono::seconds(1)};
};

std::string_view to_string(EnforcementMode mode);

}  // namespace bpfwarden
