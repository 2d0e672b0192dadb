// The watchdog's state, in the one shape every reader gets: the status file,
// --check and --once output, org.bpfwarden.Watchdog1's properties and
// `bpfwardenctl status`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bpfwarden {

struct WatchdogProgram {
    std::string program;  // "bw_file_open"
    std::string hook;     // "lsm/file_open"
    uint32_t prog_id = 0;
    std::string tag;
    std::string status;  // "ok" or what is wrong
};

struct WatchdogStatus {
    std::string version;
    bool healthy = false;
    std::vector<std::string> reasons;  // why not healthy (empty when healthy)
    // Other programs on our LSM hooks: reported, not a reason.
    std::vector<std::string> foreign_programs;
    std::string mode;  // what the watchdog expects: "enforcing" | "audit-only"
    std::string mode_reason;
    std::string policy_source = "policy directory";  // or "last good policy", "shipped default policy"
    std::string policy_problem;                      // why not the policy directory ("": it is)
    uint64_t image_set_version = 0;
    uint64_t check_interval_usec = 0;
    uint64_t checks = 0;
    uint64_t last_check_usec = 0;           // CLOCK_REALTIME, microseconds since the epoch; 0: never
    uint64_t last_check_duration_usec = 0;  // how long the last check took, heals included
    std::string last_trigger;
    uint64_t heal_count = 0;
    std::string last_heal_reason;
    uint64_t last_heal_usec = 0;  // how long the last heal took
    // Heals by what they repaired: finding kind ("link-broken") -> heals that
    // found it (a heal of several kinds counts for each).
    std::map<std::string, uint64_t> heals_by_kind;
    std::vector<WatchdogProgram> programs;
};

// One JSON object, no trailing newline:
// {"version":..,"healthy":..,"reasons":[..],"foreign_programs":[..],"mode":..,"mode_reason":..,
//  "policy_source":..,"policy_problem":..,"image_set_version":..,"check_interval_usec":..,"checks":..,
//  "last_check_usec":..,"last_check_duration_usec":..,"last_trigger":..,"heal_count":..,
//  "heals_by_kind":{"link-broken":..,..},"last_heal":{"reason":..,"duration_usec":..},
//  "programs":[{"name":..,"hook":..,"prog_id":..,"tag":..,"status":..}]}
std::string to_json(const WatchdogStatus& status);

// Whether `text` begins like to_json()'s output (a status file of ours).
bool looks_like_status_json(std::string_view text);

}  // namespace bpfwarden
