// The watchdog's core: what must be true of bpfwarden's kernel objects, the
// check that compares it with what is, and the heal that restores it.
//
// Expected state comes only from sources the watchdog trusts: the signed
// image set (re-verified before every heal), program tags it derives itself
// by loading those images, and the policy directory compiled the same way the
// daemon compiles it. Nothing is read back from the objects being checked to
// decide what they should be.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "loading/bpf_objects.h"
#include "support/error.h"
#include "inspection/held_maps.h"
#include "trust/image_set.h"
#include "inspection/map_digest.h"
#include "inspection/pin_inspector.h"
#include "loading/pin_layout.h"
#include "policy/policy_maps.h"
#include "support/unique_fd.h"

namespace bpfwarden {

struct WatchdogOptions {
    PinLayout pins;
    ImageTrust trust;
    std::filesystem::path policy_dir;
    ServiceIdentity service;
    LoadConfig load;
    bool require_enforcement = false;  // expect BPF LSM programs even where the probe says they cannot run
    bool read_only = false;            // check only: create, pin, write and heal nothing
};

struct ProgramHealth {
    std::string program;
    std::string hook;
    std::string status;  // "ok" or what is wrong
    uint32_t prog_id = 0;
    std::string tag;
};

struct WatchdogState {
    bool healthy = false;
    std::vector<std::string> reasons;  // why not healthy (empty when healthy)
    std::string mode;                  // "enforcing" or "audit-only"
    std::string mode_reason;
    uint64_t image_set_version = 0;
    uint64_t checks = 0;
    std::chrono::system_clock::time_point last_check{};
    std::string last_trigger;
    uint64_t heal_count = 0;
    std::string last_heal_reason;
    double last_heal_ms = 0;
    std::vector<ProgramHealth> programs;
};

class Supervisor {
public:
    explicit Supervisor(WatchdogOptions options) : options_(std::move(options)) {}

    // Verifies the signed images, derives expected program identities, probes
    // BPF LSM, and compiles the desired policy. Fails only when the expected
    // state cannot be known (e.g. the images are refused).
    Result<void> start();

    // One verification cycle, healing whatever drifted. `trigger` says why it
    // runs; it is logged with any heal.
    void run_cycle(const std::string& trigger);

    // One verification that changes nothing: what is wrong ends up in the
    // state's reasons, nothing is healed or held.
    void check_only(const std::string& trigger);

    // Recompiles the desired policy (the policy directory changed): true if
    // it differs from the current one. On error the previous one stays.
    Result<bool> reload_policy();

    // The tripwire's count of map-changing bpf() commands by other processes.
    // While it stands still, the policy maps are digested only every
    // kFullDigestEvery (a program loaded earlier could still write them):
    // digesting two 65536-bucket hash maps is most of a cycle's cost.
    void set_map_change_counter(std::function<uint64_t()> counter) { map_change_counter_ = std::move(counter); }
    static constexpr std::chrono::seconds kFullDigestEvery{5};

    const WatchdogState& state() const { return state_; }
    bool enforcement_expected() const { return enforcement_expected_; }
    const std::vector<std::string>& lsm_hooks() const { return lsm_hooks_; }

private:
    struct ExpectedObject {
        const ObjectSpec* spec;
        std::optional<ExpectedProgram> program;  // none for the map-only store
    };
    struct MapCheck {
        const char* name;
        Digest desired;

        friend bool operator==(const MapCheck&, const MapCheck&) = default;
    };

    Result<void> derive_expected(const VerifiedImageSet& images);
    struct Findings {
        std::vector<std::string> problems;
        std::set<const ObjectSpec*> broken;  // objects to reload
        bool rewrite_maps = false;
    };
    Findings find_problems();
    std::set<const ObjectSpec*> check_programs(std::vector<std::string>& problems);
    // What the policy-map check found.
    struct PolicyMapState {
        bool intact = true;            // every map holds exactly the desired policy
        bool needs_new_store = false;  // a map is gone (and not held) or frozen: only fresh maps will do
    };
    PolicyMapState check_policy_maps(std::vector<std::string>& problems);
    PolicyMapState check_policy_maps_unless_unchanged(std::vector<std::string>& problems);
    void unpin_policy_maps() const;
    int policy_map_fd(const char* name, Result<UniqueFd>& pinned) const;
    void apply_edited_policy();
    bool check_canary(std::vector<std::string>& problems);
    void check_foreign(std::vector<std::string>& problems);
    void heal(std::set<const ObjectSpec*> broken, bool rewrite_maps, const std::string& reason);
    Result<void> rewrite_policy_maps();
    static std::vector<MapCheck> map_checks_of(const DesiredMaps& desired);
    void check_pin_tree(std::vector<std::string>& problems) const;
    bool restore_pin_tree(std::vector<std::string>& done);
    void hold_verified(bool all_verified);
    std::vector<uint32_t> expected_map_ids(const ExpectedObject& object) const;
    std::vector<std::string> map_pin_names() const;
    bool repin_held_link(const ObjectSpec& spec);

    WatchdogOptions options_;
    WatchdogState state_;
    bool enforcement_expected_ = false;
    std::vector<ExpectedObject> expected_;
    std::vector<std::string> lsm_hooks_;  // "file_open", ... for foreign-program detection
    DesiredMaps desired_;
    std::vector<MapCheck> map_checks_;
    // The desired digests from before the latest policy-directory edit, until
    // the next check has looked at the maps (apply_edited_policy).
    std::vector<MapCheck> superseded_checks_;
    std::function<uint64_t()> map_change_counter_;
    // When the policy maps were last found intact, and the counter then; unset
    // after a heal or a policy change.
    std::optional<std::pair<std::chrono::steady_clock::time_point, uint64_t>> maps_intact_at_;
    // A reference to every verified link, so that removing or renaming a pin
    // does not detach it: the watchdog re-pins the very same link, and
    // enforcement never lapses.
    std::map<std::string, UniqueFd> held_links_;
    HeldMaps held_maps_;
    PinInspector inspector_;
};

// The state as one JSON object (the status file; D-Bus exposes the same).
std::string watchdog_state_json(const WatchdogState& state);

}  // namespace bpfwarden
