// The client side of both interfaces, for `bpfwardenctl status` and
// `bpfwardenctl policy show|diff|apply`: every property of
// org.bpfwarden.Enforcer1 and org.bpfwarden.Watchdog1 in one GetAll call
// each, and the Enforcer1 methods those commands call.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <systemd/sd-bus.h>
#include <vector>

#include "enforcer_interface.h"
#include "support/error.h"
#include "watchdog_interface.h"

namespace bpfwarden::dbus {

struct EnforcerSnapshot {
    std::string version;
    std::string mode;
    std::string mode_reason;
    KernelFacts kernel;
    uint64_t image_set_version = 0;
    uint64_t policy_generation = 0;
    std::string policy_directory;
    std::string runtime_policy_file;
    uint32_t rule_count = 0;
    std::vector<std::string> policy_warnings;
    std::vector<ProgramState> programs;
    CounterValues counters;
    uint64_t denied_signals_suppressed = 0;
    std::string policy_source;
    std::string policy_problem;
    uint64_t policy_bundle_version = 0;  // 0: not a signed bundle
    std::string policy_bundle_signer;
    std::vector<DriftEntry> drifted_rules;
    std::vector<RuleScope> rule_scopes;
    std::map<uint32_t, uint64_t> rule_hits;  // RuleHits: rule id → matches since applied
    ProtectionState protection;
    uint64_t tamper_attempts = 0;
};

class StatusClient {
public:
    // The system bus (DBUS_SYSTEM_BUS_ADDRESS honoured); each call waits at
    // most `timeout` for a reply.
    static Result<StatusClient> connect(std::chrono::milliseconds timeout = std::chrono::seconds(5));

    // Error (errno 0) "... is not on the system bus (is bpfwardend running?)"
    // when the service does not own its name.
    Result<EnforcerSnapshot> enforcer() const;
    Result<WatchdogStatus> watchdog() const;

    // ListRules: every rule in force, as (id, kind, path, action, source, active).
    Result<std::vector<RuleEntry>> list_rules() const;
    // ReloadPolicy: bpfwardend re-reads its policy directory; the new
    // generation. Needs root or polkit (the daemon decides). A refusal's
    // message starts with the service's error name, so that it can be told
    // apart and looked up: "org.bpfwarden.Error.PolicyInvalid: ...".
    Result<uint64_t> reload_policy() const;

private:
    struct BusUnref {
        void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
    };
    explicit StatusClient(sd_bus* bus) : bus_(bus) {}
    std::unique_ptr<sd_bus, BusUnref> bus_;
};

}  // namespace bpfwarden::dbus
