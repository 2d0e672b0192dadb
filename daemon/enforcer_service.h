// bpfwardend's steady state: set up (adopt or load the BPF objects, apply
// the policy), then turn events into log lines and apply policy reloads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bpf_objects.h"
#include "error.h"
#include "image_set.h"
#include "lsm_probe.h"
#include "pin_layout.h"
#include "policy_compiler.h"
#include "policy_maps.h"
#include "rate_limiter.h"

namespace bpfwarden {

struct EnforcerOptions {
    std::filesystem::path policy_dir;
    ImageTrust trust;  // where the signed images, trusted keys and rollback state are
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

class EnforcerService {
public:
    explicit EnforcerService(EnforcerOptions options);

    // Loads the policy and verifies the signed image set first: an invalid
    // policy or a refused image stops start-up before any kernel object is
    // touched, so whatever earlier pins enforce stays.
    Result<void> start();

    // Re-reads the policy directory; on error the running policy stays.
    Result<void> reload_policy();

    // One ring-buffer record to one log line.
    void handle_event(std::span<const std::byte> record);

    EnforcementMode mode() const { return mode_; }
    const std::string& mode_reason() const { return mode_reason_; }
    const std::vector<ObjectState>& objects() const { return objects_; }
    const PinLayout& pins() const { return pins_; }
    const CompiledPolicy& policy() const { return policy_; }
    std::string counters_summary() const;
    uint64_t image_set_version() const { return image_set_version_; }

private:
    Result<CompiledPolicy> load_policy() const;
    void decide_mode(const VerifiedImageSet& images);
    void set_up_objects(const VerifiedImageSet& images);
    Result<void> apply(const CompiledPolicy& policy);
    ImplicitRules current_implicit_rules() const;

    EnforcerOptions options_;
    PinLayout pins_;
    EnforcementMode mode_ = EnforcementMode::AuditOnly;
    std::string mode_reason_;
    uint64_t image_set_version_ = 0;
    std::vector<ObjectState> objects_;
    std::optional<PolicyMaps> policy_maps_;
    CompiledPolicy policy_;
    ImplicitAllow self_allow_{};
    RateLimiter log_limiter_{200, std::chrono::seconds(1)};
};

std::string_view to_string(EnforcementMode mode);

}  // namespace bpfwarden
