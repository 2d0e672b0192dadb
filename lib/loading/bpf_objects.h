// The BPF objects bpfwarden ships, and how each is loaded, attached and pinned.
//
// Loading is generic over bpftool skeletons: maps that are already pinned
// (the shared event ring buffer, the rate-limit map, policy maps of an earlier
// run) are reused rather than created, so every program feeds one event stream
// and a reloaded program keeps its policy.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "loading/pin_layout.h"
#include "support/error.h"
#include "trust/bpf_image.h"

namespace bpfwarden {

enum class ObjectRole {
    Store,        // maps only (the policy store): loaded on every kernel, first
    Enforcement,  // BPF LSM: needs a kernel that runs LSM programs
    Audit,        // tracepoints: usable everywhere
};

struct LoadConfig;
struct ObjectSpec;
using ObjectLoader = Result<void> (*)(const ObjectSpec&, const BpfImage&, const class PinLayout&, const LoadConfig&);

// Whether a program is for the running kernel: a hook that only newer kernels
// have, or a hook whose arguments changed (one variant per signature).
enum class Availability {
    Always,
    IfHookExists,  // the kernel has the LSM hook at all
    IfHookArgs,    // the kernel's hook takes exactly `hook_args` arguments
};

// Whether a program runs with a usable BPF LSM, without, or either way: a
// syscall tracepoint puts every syscall of every process on the kernel's
// traced slow path, so it is only the fallback for an LSM hook that serves
// as well where BPF LSM works.
enum class BpfLsmUse {
    Either,
    OnlyWith,     // the LSM-hook form of a tracepoint fallback
    OnlyWithout,  // the fallback
};

struct ProgramSpec {
    const char* name;  // the program in the object, also its link pin name (<= 15 characters)
    const char* hook;  // what it attaches to: "lsm/file_open", "tracepoint/sched/sched_process_exec"
    Availability availability = Availability::Always;
    int hook_args = 0;
    BpfLsmUse bpf_lsm = BpfLsmUse::Either;
};

struct ObjectSpec {
    const char* name;  // image name: <name>.bpf.o (skeleton bpfw_<name>)
    const char* what;  // for people: "file rules"
    ObjectRole role;
    std::span<const ProgramSpec> programs;  // empty for the store
    ObjectLoader load;                      // the skeleton-typed loader behind load_attach_pin()
};

// The programs of `spec` this kernel runs, in attach order, with BPF LSM
// usable or not. An LSM hook this kernel lacks (or has with other arguments)
// leaves its program out, and so does the other mode's form of a program.
std::vector<const ProgramSpec*> available_programs(const ObjectSpec& spec, bool bpf_lsm);
bool is_available(const ProgramSpec& program, bool bpf_lsm);

// Whether `spec` has anything to load here: the store always, an object of
// programs only when one of them is available (rule_audit is only for a
// kernel without BPF LSM).
bool is_needed(const ObjectSpec& spec, bool bpf_lsm);

// Every object the daemon manages, in load order: the policy store, then
// audit (it reports what happens while enforcement is set up), then LSM.
std::span<const ObjectSpec> managed_objects();

// The managed object called `name` ("bpf_audit"), or nullptr.
const ObjectSpec* find_object(std::string_view name);

// Maps every object declares and all of them share once loaded. Every map
// name starts with "bpfw_" (BW_MAP_PREFIX): self-protection goes by it.
inline constexpr const char* kEventsMap = "bpfw_events";
inline constexpr const char* kRateLimitMap = "bpfw_rate_limit";
// Rule matches (deny, audit, tamper) have a ring buffer of their own, and the
// audit trail (bpfw_events) a per-uid budget: emit.bpf.h.
inline constexpr const char* kAlertsMap = "bpfw_alerts";
inline constexpr const char* kTrailLimitMap = "bpfw_trail_limit";
// The store's maps whose contents are the policy (desired_maps(); the
// watchdog digests each).
inline constexpr const char* kFileRulesMap = "bpfw_file_rules";
inline constexpr const char* kExecRulesMap = "bpfw_exec_rules";
inline constexpr const char* kDirentsMap = "bpfw_dirents";
inline constexpr const char* kDirRulesMap = "bpfw_dir_rules";
inline constexpr const char* kDirBloomMap = "bpfw_dir_bloom";
inline constexpr const char* kBpfAllowMap = "bpfw_bpf_allow";
inline constexpr const char* kBpfPolicyMap = "bpfw_bpf_policy";
inline constexpr const char* kSettingsMap = "bpfw_settings";
inline constexpr const char* kSelfExesMap = "bpfw_self_exes";
inline constexpr const char* kScopesMap = "bpfw_scopes";
inline constexpr const char* kExecAllowedMap = "bpfw_exec_allowed";
inline constexpr std::array<const char*, 11> kPolicyMaps = {kFileRulesMap, kExecRulesMap, kDirentsMap,    kDirRulesMap,
                                                            kDirBloomMap,  kBpfAllowMap,  kBpfPolicyMap,  kSettingsMap,
                                                            kSelfExesMap,  kScopesMap,    kExecAllowedMap};
// The store's state that is not policy: who each task is, break-glass, and
// how often each rule matched.
inline constexpr const char* kTasksMap = "bpfw_tasks";
inline constexpr const char* kLiftMap = "bpfw_lift";
inline constexpr const char* kRuleHitsMap = "bpfw_rule_hits";
// The self guard's link that refuses others writable fds to our maps: while
// it is pinned, the kernel enforces self-protection.
inline constexpr const char* kSelfGuardLink = "bw_bpf_map";
// Scratch of the self guard.
inline constexpr const char* kEnvScratchMap = "bpfw_env_scratch";

// Every name bpfwarden pins, by directory: what `bpfwardenctl unpin` may
// remove (and nothing else).
struct OwnPinNames {
    std::vector<std::string> links;  // under links/
    std::vector<std::string> maps;   // under maps/
};
OwnPinNames own_pin_names();

struct LoadConfig {
    bool bpf_lsm = false;               // BPF LSM is usable: load the LSM forms (BpfLsmUse)
    uint32_t rate_limit_burst = 64;     // rule-match events per window and process
    uint32_t trail_limit_burst = 1024;  // audit-trail events (exec, bpf()) per window and uid
    uint64_t rate_limit_window_ns = 1'000'000'000;
    // Runs after an object is loaded and its maps pinned, before any of its
    // programs is attached: the first loader marks itself as bpfwarden there
    // before the self-protection programs start deciding.
    std::function<Result<void>(const ObjectSpec&)> before_attach;
};

// Opens the image through the object's skeleton, reuses pinned maps, loads,
// pins the maps it created and its counters, attaches, and pins the link
// (replacing an older pin atomically). Returns once the pins hold everything:
// enforcement no longer depends on this process.
Result<void> load_attach_pin(const ObjectSpec& spec, const BpfImage& image, const PinLayout& pins,
                             const LoadConfig& config);

// True when every available program's link pin exists (an earlier run left
// it enforcing), or, for the store, when its maps are pinned.
bool is_pinned(const ObjectSpec& spec, const PinLayout& pins, bool bpf_lsm);

}  // namespace bpfwarden
