// org.bpfwarden.Enforcer1 at /org/bpfwarden/Enforcer1, served by bpfwardend.
// The API itself is documented in docs/DBUS.md; `busctl introspect` shows
// the same members with their argument names.
//
// The vtable (enforcer_interface.cpp) knows nothing of the daemon: it talks
// to an EnforcerBackend, checks privileges (authorization.h) before any
// method that changes state, and turns BusErrors into named error replies.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "authorization.h"
#include "bus_connection.h"
#include "bus_error.h"
#include "support/rate_limiter.h"

namespace bpfwarden::dbus {

struct KernelFacts {
    std::string release;                   // uname -r
    std::vector<std::string> active_lsms;  // /sys/kernel/security/lsm
    bool bpf_lsm_usable = false;
    std::string bpf_lsm_status;  // "usable", or why not, or "not probed (--audit-only)"
};

struct ProgramState {
    std::string name;       // "bw_file_open"
    std::string hook;       // "lsm/file_open"
    uint32_t prog_id = 0;   // 0: none behind the pin
    std::string tag;        // kernel program tag, hex; empty when unknown
    bool pinned = false;    // a link pin exists
    bool attached = false;  // the pinned link has a program attached
    std::string state;      // "loaded", "adopted", "skipped: ...", "failed: ..."
};

struct CounterValues {
    uint64_t events = 0, denials = 0, audits = 0, drops = 0, rate_limited = 0;
};

// Who a scoped rule or an exec allowlist is for (RuleScopes).
struct RuleScope {
    uint32_t id = 0;    // as in ListRules
    std::string scope;  // "unit=nginx.service slice=system.slice", "uid=33", ...
    std::string mode;   // "enforce" | "audit"
};

struct RuleEntry {
    uint32_t id = 0;   // the rule= of events
    std::string kind;  // "file", "exec", "bpf-allow"
    std::string path;
    std::string action;   // "deny", "audit", "allow" (bpf-allow)
    std::string source;   // "file:line"
    bool active = false;  // the path resolved to a file: the rule is in the maps
};

struct RuleChange {
    uint64_t generation = 0;  // the policy generation after the change
    bool active = false;      // AddRule: the new rule's path resolved
};

// A rule whose path names another file now than when the policy was applied
// (until bpfwardend re-resolves it).
struct DriftEntry {
    uint32_t id = 0;
    std::string path;
    std::string detail;
};

// Self-protection, as the pinned maps say.
struct ProtectionState {
    std::string state;               // "enforced", "lifted", "off", "not enforceable", "unknown"
    std::string detail;              // why, in words
    uint64_t lifted_until_usec = 0;  // CLOCK_REALTIME; 0: not lifted
};

// An attempt on bpfwarden itself the kernel reported, for the Tamper signal.
struct TamperAttempt {
    std::string what;    // "map_write_access", "link_change", "signal", "ptrace", ...
    std::string target;  // the object or file the attempt aimed at
    uint32_t pid = 0;
    uint32_t uid = 0;
    std::string comm;
    std::string outcome;  // "refused", or "let through (protection lifted)"
};

// A denial reported by the kernel, for the Denied signal.
struct Denial {
    std::string kind;  // "file_open", "exec_check", "bpf_check"
    std::string path;  // the rule's path, or the file / executable name the kernel saw
    uint32_t pid = 0;  // process id (tgid)
    uint32_t uid = 0;
    std::string comm;
    std::string detail;  // bpf_check: "cmd=prog_load"; otherwise empty
};

class EnforcerBackend {
public:
    virtual ~EnforcerBackend() = default;

    // Properties. Strings may hold any bytes: the vtable makes them valid UTF-8.
    virtual std::string version() const = 0;
    virtual std::string mode() const = 0;  // "enforcing" | "degraded" | "audit-only"
    virtual std::string mode_reason() const = 0;
    virtual KernelFacts kernel() const = 0;
    virtual uint64_t image_set_version() const = 0;
    virtual uint64_t policy_generation() const = 0;
    virtual std::string policy_directory() const = 0;
    virtual std::string runtime_policy_file() const = 0;
    virtual std::vector<std::string> policy_warnings() const = 0;
    virtual uint32_t rule_count() const = 0;
    virtual std::vector<ProgramState> programs() const = 0;
    virtual Result<CounterValues> counters() const = 0;
    virtual std::string policy_source() const = 0;   // "policy directory", "last good policy", ...
    virtual std::string policy_problem() const = 0;  // why not the directory's; empty when it is
    // The signed policy bundle in force: its version (0: none) and signer ("" when none).
    virtual uint64_t policy_bundle_version() const = 0;
    virtual std::string policy_bundle_signer() const = 0;
    virtual std::vector<DriftEntry> drift() const = 0;
    // Rule id → matches since the policy was applied; rules never matched are left out.
    virtual std::map<uint32_t, uint64_t> rule_hits() const = 0;
    virtual ProtectionState protection() const = 0;
    virtual uint64_t tamper_attempts() const = 0;

    // Methods. The ones that change state are called only for an authorized
    // caller; a backend that applies a policy calls EnforcerObject::policy_changed().
    virtual Result<uint64_t> reload_policy(const Caller& caller) = 0;
    virtual Result<RuleChange> add_rule(const Caller& caller, std::string_view kind, std::string_view path,
                                        std::string_view action) = 0;
    virtual Result<RuleChange> remove_rule(const Caller& caller, std::string_view kind, std::string_view path) = 0;
    virtual std::vector<RuleEntry> list_rules() const = 0;
    virtual std::vector<RuleScope> rule_scopes() const = 0;
    // Lifts self-protection with a signed unlock token; the lift's end (CLOCK_REALTIME usec).
    virtual Result<uint64_t> unlock(const Caller& caller, std::string_view token) = 0;
};

// The object, registered on `bus` at construction (call before
// BusConnection::start()). Signals go out only while connected.
class EnforcerObject {
public:
    // Denied signals: at most `denied_burst` per `denied_interval` (the rest
    // are counted in DeniedSignalsSuppressed; the journal has every event).
    EnforcerObject(BusConnection& bus, EnforcerBackend& backend, uint32_t denied_burst = 20,
                   std::chrono::nanoseconds denied_interval = std::chrono::seconds(1));

    // Denied(...), rate-limited.
    void denied(const Denial& denial, std::chrono::steady_clock::time_point now);
    // PolicyChanged(generation, reason) and PropertiesChanged for the policy properties.
    void policy_changed(const std::string& reason);
    // Tamper(...), rate-limited with the Denied signals' budget.
    void tamper(const TamperAttempt& attempt, std::chrono::steady_clock::time_point now);
    // SelfWarning: bpfwardend passed one of its own limits (self_monitor.h);
    // what: "event-rate", "dropped-events" or "memory".
    void self_warning(const std::string& what, const std::string& message, uint64_t value, uint64_t limit);

    uint64_t denied_suppressed() const { return denied_limiter_.suppressed(); }

    // For the vtable's handlers.
    EnforcerBackend& backend() { return backend_; }
    BusConnection& bus() { return bus_; }

private:
    BusConnection& bus_;
    EnforcerBackend& backend_;
    RateLimiter denied_limiter_;
};

}  // namespace bpfwarden::dbus
