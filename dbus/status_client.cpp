#include "status_client.h"

#include <cstring>
#include <functional>
#include <optional>
#include <string_view>

#include "bus_error.h"
#include "names.h"

namespace bpfwarden::dbus {

namespace {

struct ErrorFree {
    void operator()(sd_bus_error* error) const { sd_bus_error_free(error); }
};

int read_string(sd_bus_message* m, std::string& out) {
    const char* text = nullptr;
    int r = sd_bus_message_read_basic(m, 's', static_cast<void*>(&text));
    if (r > 0)
        out = text;
    return r;
}

int read_strings(sd_bus_message* m, std::vector<std::string>& out) {
    int r = sd_bus_message_enter_container(m, 'a', "s");
    if (r <= 0)
        return r;
    out.clear();
    std::string item;
    while ((r = read_string(m, item)) > 0)
        out.push_back(item);
    return r < 0 ? r : sd_bus_message_exit_container(m);
}

int read_u64(sd_bus_message* m, uint64_t& out) { return sd_bus_message_read_basic(m, 't', &out); }

int read_heals_by_kind(sd_bus_message* m, std::map<std::string, uint64_t>& out) {
    int r = sd_bus_message_enter_container(m, 'a', "{st}");
    if (r <= 0)
        return r;
    out.clear();
    const char* kind = nullptr;
    uint64_t heals = 0;
    while ((r = sd_bus_message_read(m, "{st}", &kind, &heals)) > 0)
        out[kind] = heals;
    return r < 0 ? r : sd_bus_message_exit_container(m);
}

int read_bool(sd_bus_message* m, bool& out) {
    int value = 0;
    int r = sd_bus_message_read_basic(m, 'b', &value);
    out = value;
    return r;
}

// The error for a call the service did not answer, or nullopt when the
// service itself replied with an error.
std::optional<Error> unreachable(const sd_bus_error& error, const char* service, const char* daemon) {
    if (sd_bus_error_has_names(&error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
        return Error(0, std::string(service) + " is not on the system bus (is " + daemon + " running?)");
    return std::nullopt;
}

// A property handler reads the value if it knows `name` with `signature`
// and returns > 0; 0 means "not mine": the value is skipped.
using PropertyReader = std::function<int(std::string_view name, std::string_view signature, sd_bus_message* m)>;

Result<void> get_all(sd_bus* bus, const char* service, const char* path, const char* interface, const char* daemon,
                     const PropertyReader& read) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    std::unique_ptr<sd_bus_error, ErrorFree> error_guard(&error);
    sd_bus_message* raw = nullptr;
    int r = sd_bus_call_method(bus, service, path, "org.freedesktop.DBus.Properties", "GetAll", &error, &raw, "s",
                               interface);
    if (r < 0) {
        if (auto absent = unreachable(error, service, daemon))
            return fail(*absent);
        return fail_system(-r, std::string("read ") + interface + " properties" +
                                   (error.message ? std::string(": ") + error.message : std::string()));
    }
    BusMessage reply(raw);
    auto malformed = [&](int code) {
        return fail_system(-code, std::string("malformed ") + interface + " properties");
    };
    if ((r = sd_bus_message_enter_container(raw, 'a', "{sv}")) < 0)
        return malformed(r);
    while ((r = sd_bus_message_enter_container(raw, 'e', "sv")) > 0) {
        const char* name = nullptr;
        const char* signature = nullptr;
        if ((r = sd_bus_message_read_basic(raw, 's', static_cast<void*>(&name))) < 0 ||
            (r = sd_bus_message_peek_type(raw, nullptr, &signature)) < 0 ||
            (r = sd_bus_message_enter_container(raw, 'v', signature)) < 0)
            return malformed(r);
        std::string sig = signature;
        r = read(name, sig, raw);
        if (r == 0)
            r = sd_bus_message_skip(raw, sig.c_str());
        if (r < 0 || (r = sd_bus_message_exit_container(raw)) < 0 || (r = sd_bus_message_exit_container(raw)) < 0)
            return malformed(r);
    }
    if (r < 0 || (r = sd_bus_message_exit_container(raw)) < 0)
        return malformed(r);
    return {};
}

int read_protection(sd_bus_message* m, ProtectionState& protection) {
    const char *state = nullptr, *detail = nullptr;
    int r = sd_bus_message_read(m, "(ss)", &state, &detail);
    if (r > 0) {
        protection.state = state;
        protection.detail = detail;
    }
    return r;
}

int read_rule_scopes(sd_bus_message* m, std::vector<RuleScope>& out) {
    int r = sd_bus_message_enter_container(m, 'a', "(uss)");
    if (r < 0)
        return r;
    for (;;) {
        uint32_t id = 0;
        const char *scope = nullptr, *mode = nullptr;
        r = sd_bus_message_read(m, "(uss)", &id, &scope, &mode);
        if (r <= 0)
            break;
        out.push_back({id, scope, mode});
    }
    return r < 0 ? r : sd_bus_message_exit_container(m) < 0 ? -EBADMSG : 1;
}

int read_rule_hits(sd_bus_message* m, std::map<uint32_t, uint64_t>& out) {
    int r = sd_bus_message_enter_container(m, 'a', "(ut)");
    if (r < 0)
        return r;
    for (;;) {
        uint32_t id = 0;
        uint64_t hits = 0;
        r = sd_bus_message_read(m, "(ut)", &id, &hits);
        if (r <= 0)
            break;
        out[id] = hits;
    }
    return r < 0 ? r : sd_bus_message_exit_container(m) < 0 ? -EBADMSG : 1;
}

int read_drift(sd_bus_message* m, std::vector<DriftEntry>& out) {
    int r = sd_bus_message_enter_container(m, 'a', "(uss)");
    if (r < 0)
        return r;
    for (;;) {
        uint32_t id = 0;
        const char *path = nullptr, *detail = nullptr;
        r = sd_bus_message_read(m, "(uss)", &id, &path, &detail);
        if (r <= 0)
            break;
        out.push_back({id, path, detail});
    }
    return r < 0 ? r : sd_bus_message_exit_container(m) < 0 ? -EBADMSG : 1;
}

}  // namespace

Result<StatusClient> StatusClient::connect(std::chrono::milliseconds timeout) {
    sd_bus* bus = nullptr;
    int r = sd_bus_open_system(&bus);
    if (r < 0)
        return fail_system(-r, "connect to the system bus");
    sd_bus_set_method_call_timeout(bus, static_cast<uint64_t>(timeout.count()) * 1000);
    return StatusClient(bus);
}

namespace {

std::string* enforcer_string(EnforcerSnapshot& s, std::string_view name) {
    return name == "Version"              ? &s.version
           : name == "Mode"               ? &s.mode
           : name == "ModeReason"         ? &s.mode_reason
           : name == "KernelRelease"      ? &s.kernel.release
           : name == "BpfLsmStatus"       ? &s.kernel.bpf_lsm_status
           : name == "PolicyDirectory"    ? &s.policy_directory
           : name == "RuntimePolicyFile"  ? &s.runtime_policy_file
           : name == "PolicySource"       ? &s.policy_source
           : name == "PolicyProblem"      ? &s.policy_problem
           : name == "PolicyBundleSigner" ? &s.policy_bundle_signer
                                          : nullptr;
}

uint64_t* enforcer_number(EnforcerSnapshot& s, std::string_view name) {
    return name == "ImageSetVersion"           ? &s.image_set_version
           : name == "PolicyGeneration"        ? &s.policy_generation
           : name == "Events"                  ? &s.counters.events
           : name == "Denials"                 ? &s.counters.denials
           : name == "Audits"                  ? &s.counters.audits
           : name == "Drops"                   ? &s.counters.drops
           : name == "RateLimited"             ? &s.counters.rate_limited
           : name == "DeniedSignalsSuppressed" ? &s.denied_signals_suppressed
           : name == "LiftedUntil"             ? &s.protection.lifted_until_usec
           : name == "TamperAttempts"          ? &s.tamper_attempts
           : name == "PolicyBundleVersion"     ? &s.policy_bundle_version
                                               : nullptr;
}

int read_programs(sd_bus_message* m, std::vector<ProgramState>& out) {
    int r = sd_bus_message_enter_container(m, 'a', "(ssusbbs)");
    if (r < 0)
        return r;
    for (;;) {
        const char *prog, *hook, *tag, *state;
        uint32_t id = 0;
        int pinned = 0, attached = 0;
        r = sd_bus_message_read(m, "(ssusbbs)", &prog, &hook, &id, &tag, &pinned, &attached, &state);
        if (r <= 0)
            break;
        out.push_back({prog, hook, id, tag, pinned != 0, attached != 0, state});
    }
    return r < 0 ? r : sd_bus_message_exit_container(m) < 0 ? -EBADMSG : 1;
}

// One Enforcer1 property into the snapshot; 0 for a property it does not know.
int read_enforcer_property(EnforcerSnapshot& s, std::string_view name, std::string_view sig, sd_bus_message* m) {
    if (sig == "s") {
        std::string* field = enforcer_string(s, name);
        return field ? read_string(m, *field) : 0;
    }
    if (sig == "t") {
        uint64_t* field = enforcer_number(s, name);
        return field ? read_u64(m, *field) : 0;
    }
    if (sig == "as" && name == "ActiveLSMs")
        return read_strings(m, s.kernel.active_lsms);
    if (sig == "as" && name == "PolicyWarnings")
        return read_strings(m, s.policy_warnings);
    if (sig == "b" && name == "BpfLsmUsable")
        return read_bool(m, s.kernel.bpf_lsm_usable);
    if (sig == "u" && name == "RuleCount")
        return sd_bus_message_read_basic(m, 'u', &s.rule_count);
    if (sig == "(ss)" && name == "Protection")
        return read_protection(m, s.protection);
    if (sig == "a(uss)" && name == "DriftedRules")
        return read_drift(m, s.drifted_rules);
    if (sig == "a(uss)" && name == "RuleScopes")
        return read_rule_scopes(m, s.rule_scopes);
    if (sig == "a(ut)" && name == "RuleHits")
        return read_rule_hits(m, s.rule_hits);
    if (sig == "a(ssusbbs)" && name == "Programs")
        return read_programs(m, s.programs);
    return 0;
}

}  // namespace

Result<EnforcerSnapshot> StatusClient::enforcer() const {
    EnforcerSnapshot s;
    auto read = [&s](std::string_view name, std::string_view sig, sd_bus_message* m) {
        return read_enforcer_property(s, name, sig, m);
    };
    if (auto done = get_all(bus_.get(), kEnforcerBusName, kEnforcerPath, kEnforcerInterface, "bpfwardend", read); !done)
        return std::unexpected(done.error());
    return s;
}

Result<WatchdogStatus> StatusClient::watchdog() const {
    WatchdogStatus s;
    auto read = [&](std::string_view name, std::string_view sig, sd_bus_message* m) -> int {
        if (sig == "s") {
            std::string* field = name == "Version"       ? &s.version
                                 : name == "Mode"        ? &s.mode
                                 : name == "ModeReason"  ? &s.mode_reason
                                 : name == "LastTrigger" ? &s.last_trigger
                                                         : nullptr;
            return field ? read_string(m, *field) : 0;
        }
        if (sig == "t") {
            uint64_t* field = name == "ImageSetVersion"     ? &s.image_set_version
                              : name == "CheckInterval"     ? &s.check_interval_usec
                              : name == "Checks"            ? &s.checks
                              : name == "LastCheck"         ? &s.last_check_usec
                              : name == "LastCheckDuration" ? &s.last_check_duration_usec
                              : name == "HealCount"         ? &s.heal_count
                                                            : nullptr;
            return field ? read_u64(m, *field) : 0;
        }
        if (sig == "b" && name == "Healthy")
            return read_bool(m, s.healthy);
        if (sig == "as" && name == "Reasons")
            return read_strings(m, s.reasons);
        if (sig == "a{st}" && name == "HealsByKind")
            return read_heals_by_kind(m, s.heals_by_kind);
        if (sig == "(st)" && name == "LastHeal") {
            const char* reason = nullptr;
            int r = sd_bus_message_read(m, "(st)", &reason, &s.last_heal_usec);
            if (r > 0)
                s.last_heal_reason = reason;
            return r;
        }
        if (sig == "a(ssuss)" && name == "Programs") {
            int r = sd_bus_message_enter_container(m, 'a', "(ssuss)");
            if (r < 0)
                return r;
            for (;;) {
                const char *prog, *hook, *tag, *status;
                uint32_t id = 0;
                r = sd_bus_message_read(m, "(ssuss)", &prog, &hook, &id, &tag, &status);
                if (r <= 0)
                    break;
                s.programs.push_back({prog, hook, id, tag, status});
            }
            return r < 0 ? r : sd_bus_message_exit_container(m) < 0 ? -EBADMSG : 1;
        }
        return 0;
    };
    if (auto done =
            get_all(bus_.get(), kWatchdogBusName, kWatchdogPath, kWatchdogInterface, "bpfwarden-watchdog", read);
        !done)
        return std::unexpected(done.error());
    return s;
}

namespace {

// The kind whose bpfwarden error name the service replied with (Failed for
// any other name), so that callers steer on kind() as elsewhere.
ErrorKind kind_of_reply(const sd_bus_error& error) {
    for (ErrorKind kind : {ErrorKind::InvalidArgument, ErrorKind::PolicyInvalid, ErrorKind::LimitExceeded,
                           ErrorKind::NotFound, ErrorKind::PermissionDenied})
        if (sd_bus_error_has_name(&error, error_name(kind)))
            return kind;
    return ErrorKind::Failed;
}

// Calls an Enforcer1 method without arguments. A refusal keeps the error's
// name in front of its message: the name says what kind of refusal it is
// (docs/DBUS.md, "Errors"), the message what to fix.
Result<BusMessage> call_enforcer(sd_bus* bus, const char* method) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    std::unique_ptr<sd_bus_error, ErrorFree> error_guard(&error);
    sd_bus_message* raw = nullptr;
    int r = sd_bus_call_method(bus, kEnforcerBusName, kEnforcerPath, kEnforcerInterface, method, &error, &raw, nullptr);
    BusMessage reply(raw);
    if (r >= 0)
        return reply;
    if (auto absent = unreachable(error, kEnforcerBusName, "bpfwardend"))
        return fail(*absent);
    if (!sd_bus_error_is_set(&error))
        return fail_system(-r, std::string("call ") + method);
    return fail(kind_of_reply(error), 0,
                std::string(error.name) + ": " + (error.message ? error.message : std::strerror(-r)));
}

int read_rules(sd_bus_message* m, std::vector<RuleEntry>& out) {
    int r = sd_bus_message_enter_container(m, 'a', "(ussssb)");
    if (r < 0)
        return r;
    for (;;) {
        RuleEntry rule;
        const char *kind = nullptr, *path = nullptr, *action = nullptr, *source = nullptr;
        int active = 0;
        r = sd_bus_message_read(m, "(ussssb)", &rule.id, &kind, &path, &action, &source, &active);
        if (r <= 0)
            break;
        rule.kind = kind;
        rule.path = path;
        rule.action = action;
        rule.source = source;
        rule.active = active != 0;
        out.push_back(std::move(rule));
    }
    return r < 0 ? r : sd_bus_message_exit_container(m) < 0 ? -EBADMSG : 1;
}

}  // namespace

Result<std::vector<RuleEntry>> StatusClient::list_rules() const {
    auto reply = call_enforcer(bus_.get(), "ListRules");
    if (!reply)
        return std::unexpected(reply.error());
    std::vector<RuleEntry> rules;
    if (int r = read_rules(reply->get(), rules); r < 0)
        return fail_system(-r, "malformed reply to ListRules (expected a(ussssb))");
    return rules;
}

Result<uint64_t> StatusClient::reload_policy() const {
    auto reply = call_enforcer(bus_.get(), "ReloadPolicy");
    if (!reply)
        return std::unexpected(reply.error());
    uint64_t generation = 0;
    if (int r = sd_bus_message_read(reply->get(), "t", &generation); r <= 0)
        return fail_system(r < 0 ? -r : EBADMSG, "malformed reply to ReloadPolicy (expected t)");
    return generation;
}

}  // namespace bpfwarden::dbus
