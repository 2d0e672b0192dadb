// The BPF objects bpfwarden ships, and how each is loaded, attached and pinned.
//
// Loading is generic over bpftool skeletons: maps that are already pinned
// (the shared event ring buffer, the rate-limit map, policy maps of an earlier
// run) are reused rather than created, so every program feeds one event stream
// and a reloaded program keeps its policy.
#pragma once

#include <cstdint>
#include <filesystem>
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

struct ObjectSpec {
    const char* name;     // image and skeleton name: <name>.bpf.o
    const char* program;  // the one program in the object, also its link pin name; nullptr for Store
    const char* hook;     // what it attaches to, for people: "lsm/file_open"
    ObjectRole role;
    ObjectLoader load;  // the skeleton-typed loader behind load_attach_pin()
};

// Every object the daemon manages, in load order: the policy store, then
// audit (it reports what happens while enforcement is set up), then LSM.
std::span<const ObjectSpec> managed_objects();

// The managed object called `name` ("bpf_audit"), or nullptr.
const ObjectSpec* find_object(std::string_view name);

// Maps every object declares and all of them share once loaded.
inline constexpr const char* kEventsMap = "events";
inline constexpr const char* kRateLimitMap = "rate_limit";
// Policy maps, by the object that owns them.
inline constexpr const char* kFileRulesMap = "file_rules";
inline constexpr const char* kExecRulesMap = "exec_rules";
inline constexpr const char* kBpfAllowMap = "bpf_allow_exe";
inline constexpr const char* kBpfPolicyMap = "bpf_policy";

// Every name bpfwarden pins, by directory: what `bpfwardenctl unpin` may
// remove (and nothing else).
struct OwnPinNames {
    std::vector<std::string> links;  // under links/
    std::vector<std::string> maps;   // under maps/
};
OwnPinNames own_pin_names();

struct LoadConfig {
    uint32_t rate_limit_burst = 64;
    uint64_t rate_limit_window_ns = 1'000'000'000;
};

// Opens the image through the object's skeleton, reuses pinned maps, loads,
// pins the maps it created and its counters, attaches, and pins the link
// (replacing an older pin atomically). Returns once the pins hold everything:
// enforcement no longer depends on this process.
Result<void> load_attach_pin(const ObjectSpec& spec, const BpfImage& image, const PinLayout& pins,
                             const LoadConfig& config);

// True when the object's link pin exists (an earlier run left it enforcing),
// or, for the store, when its maps are pinned.
bool is_pinned(const ObjectSpec& spec, const PinLayout& pins);

}  // namespace bpfwarden
