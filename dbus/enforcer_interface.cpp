#include "enforcer_interface.h"

#include "names.h"
#include "support/event.h"
#include "utf8.h"

namespace bpfwarden::dbus {

namespace {

EnforcerObject& object_of(void* userdata) { return *static_cast<EnforcerObject*>(userdata); }
EnforcerBackend& backend_of(void* userdata) { return object_of(userdata).backend(); }

int append_string(sd_bus_message* reply, std::string_view text) {
    std::string safe = to_bus_string(text);
    return sd_bus_message_append_basic(reply, 's', safe.c_str());
}

int append_strings(sd_bus_message* reply, const std::vector<std::string>& items) {
    int r = sd_bus_message_open_container(reply, 'a', "s");
    for (size_t i = 0; r >= 0 && i < items.size(); ++i)
        r = append_string(reply, items[i]);
    return r < 0 ? r : sd_bus_message_close_container(reply);
}

// Property getters: (bus, path, interface, property, reply, userdata, error).
#define BW_GETTER(name, ...)                                                                                         \
    int name(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata, sd_bus_error*) { \
        const EnforcerBackend& backend = backend_of(userdata);                                                       \
        __VA_ARGS__                                                                                                  \
    }

BW_GETTER(get_version, { return append_string(reply, backend.version()); })
BW_GETTER(get_mode, { return append_string(reply, backend.mode()); })
BW_GETTER(get_mode_reason, { return append_string(reply, backend.mode_reason()); })
BW_GETTER(get_kernel_release, { return append_string(reply, backend.kernel().release); })
BW_GETTER(get_active_lsms, { return append_strings(reply, backend.kernel().active_lsms); })
BW_GETTER(get_bpf_lsm_usable, {
    int usable = backend.kernel().bpf_lsm_usable;
    return sd_bus_message_append_basic(reply, 'b', &usable);
})
BW_GETTER(get_bpf_lsm_status, { return append_string(reply, backend.kernel().bpf_lsm_status); })
BW_GETTER(get_image_set_version, {
    uint64_t version = backend.image_set_version();
    return sd_bus_message_append_basic(reply, 't', &version);
})
BW_GETTER(get_policy_generation, {
    uint64_t generation = backend.policy_generation();
    return sd_bus_message_append_basic(reply, 't', &generation);
})
BW_GETTER(get_policy_directory, { return append_string(reply, backend.policy_directory()); })
BW_GETTER(get_runtime_policy_file, { return append_string(reply, backend.runtime_policy_file()); })
BW_GETTER(get_policy_warnings, { return append_strings(reply, backend.policy_warnings()); })
BW_GETTER(get_rule_count, {
    uint32_t count = backend.rule_count();
    return sd_bus_message_append_basic(reply, 'u', &count);
})
BW_GETTER(get_policy_source, { return append_string(reply, backend.policy_source()); })
BW_GETTER(get_policy_problem, { return append_string(reply, backend.policy_problem()); })
BW_GETTER(get_policy_bundle_version, {
    uint64_t version = backend.policy_bundle_version();
    return sd_bus_message_append_basic(reply, 't', &version);
})
BW_GETTER(get_policy_bundle_signer, { return append_string(reply, backend.policy_bundle_signer()); })
BW_GETTER(get_protection, {
    ProtectionState protection = backend.protection();
    std::string state = to_bus_string(protection.state), detail = to_bus_string(protection.detail);
    return sd_bus_message_append(reply, "(ss)", state.c_str(), detail.c_str());
})
BW_GETTER(get_lifted_until, {
    uint64_t until = backend.protection().lifted_until_usec;
    return sd_bus_message_append_basic(reply, 't', &until);
})
BW_GETTER(get_tamper_attempts, {
    uint64_t attempts = backend.tamper_attempts();
    return sd_bus_message_append_basic(reply, 't', &attempts);
})
BW_GETTER(get_drifted_rules, {
    int r = sd_bus_message_open_container(reply, 'a', "(uss)");
    for (const auto& drift : backend.drift()) {
        if (r < 0)
            break;
        std::string path = to_bus_string(drift.path), detail = to_bus_string(drift.detail);
        r = sd_bus_message_append(reply, "(uss)", drift.id, path.c_str(), detail.c_str());
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
})
BW_GETTER(get_rule_hits, {
    int r = sd_bus_message_open_container(reply, 'a', "(ut)");
    for (const auto& [id, hits] : backend.rule_hits()) {
        if (r < 0)
            break;
        r = sd_bus_message_append(reply, "(ut)", id, hits);
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
})
BW_GETTER(get_rule_scopes, {
    int r = sd_bus_message_open_container(reply, 'a', "(uss)");
    for (const auto& scoped : backend.rule_scopes()) {
        if (r < 0)
            break;
        std::string scope = to_bus_string(scoped.scope), mode = to_bus_string(scoped.mode);
        r = sd_bus_message_append(reply, "(uss)", scoped.id, scope.c_str(), mode.c_str());
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
})
BW_GETTER(get_programs, {
    int r = sd_bus_message_open_container(reply, 'a', "(ssusbbs)");
    for (const auto& program : backend.programs()) {
        if (r < 0)
            break;
        std::string name = to_bus_string(program.name), hook = to_bus_string(program.hook),
                    tag = to_bus_string(program.tag), state = to_bus_string(program.state);
        r = sd_bus_message_append(reply, "(ssusbbs)", name.c_str(), hook.c_str(), program.prog_id, tag.c_str(),
                                  static_cast<int>(program.pinned), static_cast<int>(program.attached), state.c_str());
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
})

#undef BW_GETTER

// The counters, one property each: read from the pinned counter maps on
// every Get, never cached, so they never emit PropertiesChanged.
int get_counter(sd_bus*, const char*, const char*, const char* property, sd_bus_message* reply, void* userdata,
                sd_bus_error* error) {
    auto counters = backend_of(userdata).counters();
    if (!counters)
        return set_bus_error(error, counters.error());
    std::string_view name = property;
    uint64_t value = name == "Events"        ? counters->events
                     : name == "Denials"     ? counters->denials
                     : name == "Audits"      ? counters->audits
                     : name == "Drops"       ? counters->drops
                     : name == "RateLimited" ? counters->rate_limited
                                             : 0;
    return sd_bus_message_append_basic(reply, 't', &value);
}

int get_denied_suppressed(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                          sd_bus_error*) {
    uint64_t value = object_of(userdata).denied_suppressed();
    return sd_bus_message_append_basic(reply, 't', &value);
}

int method_reload_policy(sd_bus_message* message, void* userdata, sd_bus_error* error) {
    auto caller = require_authorized(message, "ReloadPolicy", kManagePolicyAction);
    if (!caller)
        return set_bus_error(error, caller.error());
    auto generation = backend_of(userdata).reload_policy(*caller);
    if (!generation)
        return set_bus_error(error, generation.error());
    return sd_bus_reply_method_return(message, "t", *generation);
}

int method_add_rule(sd_bus_message* message, void* userdata, sd_bus_error* error) {
    const char *kind = nullptr, *path = nullptr, *action = nullptr;
    int r = sd_bus_message_read(message, "sss", &kind, &path, &action);
    if (r < 0)
        return r;
    auto caller = require_authorized(message, "AddRule", kManagePolicyAction);
    if (!caller)
        return set_bus_error(error, caller.error());
    auto change = backend_of(userdata).add_rule(*caller, kind, path, action);
    if (!change)
        return set_bus_error(error, change.error());
    return sd_bus_reply_method_return(message, "tb", change->generation, static_cast<int>(change->active));
}

int method_remove_rule(sd_bus_message* message, void* userdata, sd_bus_error* error) {
    const char *kind = nullptr, *path = nullptr;
    int r = sd_bus_message_read(message, "ss", &kind, &path);
    if (r < 0)
        return r;
    auto caller = require_authorized(message, "RemoveRule", kManagePolicyAction);
    if (!caller)
        return set_bus_error(error, caller.error());
    auto change = backend_of(userdata).remove_rule(*caller, kind, path);
    if (!change)
        return set_bus_error(error, change.error());
    return sd_bus_reply_method_return(message, "t", change->generation);
}

int method_unlock(sd_bus_message* message, void* userdata, sd_bus_error* error) {
    const char* token = nullptr;
    int r = sd_bus_message_read(message, "s", &token);
    if (r < 0)
        return r;
    auto caller = require_authorized(message, "Unlock", kUnlockAction);
    if (!caller)
        return set_bus_error(error, caller.error());
    auto until = backend_of(userdata).unlock(*caller, token);
    if (!until)
        return set_bus_error(error, until.error());
    return sd_bus_reply_method_return(message, "t", *until);
}

int method_list_rules(sd_bus_message* message, void* userdata, sd_bus_error*) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(message, &raw);
    if (r < 0)
        return r;
    BusMessage reply(raw);
    r = sd_bus_message_open_container(raw, 'a', "(ussssb)");
    for (const auto& rule : backend_of(userdata).list_rules()) {
        if (r < 0)
            break;
        std::string kind = to_bus_string(rule.kind), path = to_bus_string(rule.path),
                    action = to_bus_string(rule.action), source = to_bus_string(rule.source);
        r = sd_bus_message_append(raw, "(ussssb)", rule.id, kind.c_str(), path.c_str(), action.c_str(), source.c_str(),
                                  static_cast<int>(rule.active));
    }
    if (r >= 0)
        r = sd_bus_message_close_container(raw);
    if (r < 0)
        return r;
    return sd_bus_send(nullptr, raw, nullptr);
}

constexpr uint64_t kConst = SD_BUS_VTABLE_PROPERTY_CONST;
constexpr uint64_t kEmitsChange = SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE;
// Neither flag: introspection says EmitsChangedSignal=false (read them live).
constexpr uint64_t kLive = 0;
// Every method does its own credential check (authorization.h), so that a
// refusal is org.bpfwarden.Error.AccessDenied with a reason; without this
// flag sd-bus would refuse non-CAP_SYS_ADMIN callers itself.
constexpr uint64_t kMethod = SD_BUS_VTABLE_UNPRIVILEGED;

const sd_bus_vtable kEnforcerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", get_version, 0, kConst),
    SD_BUS_PROPERTY("Mode", "s", get_mode, 0, kConst),
    SD_BUS_PROPERTY("ModeReason", "s", get_mode_reason, 0, kConst),
    SD_BUS_PROPERTY("KernelRelease", "s", get_kernel_release, 0, kConst),
    SD_BUS_PROPERTY("ActiveLSMs", "as", get_active_lsms, 0, kConst),
    SD_BUS_PROPERTY("BpfLsmUsable", "b", get_bpf_lsm_usable, 0, kConst),
    SD_BUS_PROPERTY("BpfLsmStatus", "s", get_bpf_lsm_status, 0, kConst),
    SD_BUS_PROPERTY("ImageSetVersion", "t", get_image_set_version, 0, kConst),
    SD_BUS_PROPERTY("PolicyDirectory", "s", get_policy_directory, 0, kConst),
    SD_BUS_PROPERTY("RuntimePolicyFile", "s", get_runtime_policy_file, 0, kConst),
    SD_BUS_PROPERTY("PolicyGeneration", "t", get_policy_generation, 0, kEmitsChange),
    SD_BUS_PROPERTY("RuleCount", "u", get_rule_count, 0, kEmitsChange),
    SD_BUS_PROPERTY("PolicyWarnings", "as", get_policy_warnings, 0, kEmitsChange),
    SD_BUS_PROPERTY("RuleScopes", "a(uss)", get_rule_scopes, 0, kEmitsChange),
    SD_BUS_PROPERTY("PolicySource", "s", get_policy_source, 0, kEmitsChange),
    SD_BUS_PROPERTY("PolicyProblem", "s", get_policy_problem, 0, kEmitsChange),
    SD_BUS_PROPERTY("PolicyBundleVersion", "t", get_policy_bundle_version, 0, kEmitsChange),
    SD_BUS_PROPERTY("PolicyBundleSigner", "s", get_policy_bundle_signer, 0, kEmitsChange),
    SD_BUS_PROPERTY("DriftedRules", "a(uss)", get_drifted_rules, 0, kLive),
    SD_BUS_PROPERTY("RuleHits", "a(ut)", get_rule_hits, 0, kLive),
    SD_BUS_PROPERTY("Protection", "(ss)", get_protection, 0, kLive),
    SD_BUS_PROPERTY("LiftedUntil", "t", get_lifted_until, 0, kLive),
    SD_BUS_PROPERTY("TamperAttempts", "t", get_tamper_attempts, 0, kLive),
    SD_BUS_PROPERTY("Programs", "a(ssusbbs)", get_programs, 0, kLive),
    SD_BUS_PROPERTY("Events", "t", get_counter, 0, kLive),
    SD_BUS_PROPERTY("Denials", "t", get_counter, 0, kLive),
    SD_BUS_PROPERTY("Audits", "t", get_counter, 0, kLive),
    SD_BUS_PROPERTY("Drops", "t", get_counter, 0, kLive),
    SD_BUS_PROPERTY("RateLimited", "t", get_counter, 0, kLive),
    SD_BUS_PROPERTY("DeniedSignalsSuppressed", "t", get_denied_suppressed, 0, kLive),
    SD_BUS_METHOD_WITH_ARGS("ReloadPolicy", SD_BUS_NO_ARGS, SD_BUS_RESULT("t", generation), method_reload_policy,
                            kMethod),
    SD_BUS_METHOD_WITH_ARGS("AddRule", SD_BUS_ARGS("s", kind, "s", path, "s", action),
                            SD_BUS_RESULT("t", generation, "b", active), method_add_rule, kMethod),
    SD_BUS_METHOD_WITH_ARGS("RemoveRule", SD_BUS_ARGS("s", kind, "s", path), SD_BUS_RESULT("t", generation),
                            method_remove_rule, kMethod),
    SD_BUS_METHOD_WITH_ARGS("ListRules", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ussssb)", rules), method_list_rules, kMethod),
    SD_BUS_METHOD_WITH_ARGS("Unlock", SD_BUS_ARGS("s", token), SD_BUS_RESULT("t", lifted_until_usec), method_unlock,
                            kMethod),
    SD_BUS_SIGNAL_WITH_ARGS("Tamper", SD_BUS_ARGS("s", what, "s", target, "u", pid, "u", uid, "s", comm, "s", outcome),
                            0),
    SD_BUS_SIGNAL_WITH_ARGS("Denied", SD_BUS_ARGS("s", kind, "s", path, "u", pid, "u", uid, "s", comm, "s", detail), 0),
    SD_BUS_SIGNAL_WITH_ARGS("PolicyChanged", SD_BUS_ARGS("t", generation, "s", reason), 0),
    SD_BUS_SIGNAL_WITH_ARGS("SelfWarning", SD_BUS_ARGS("s", what, "s", message, "t", value, "t", limit), 0),
    SD_BUS_VTABLE_END,
};

}  // namespace

EnforcerObject::EnforcerObject(BusConnection& bus, EnforcerBackend& backend, uint32_t denied_burst,
                               std::chrono::nanoseconds denied_interval)
    : bus_(bus), backend_(backend), denied_limiter_(denied_burst, denied_interval) {
    bus_.add_object({kEnforcerPath, kEnforcerInterface, kEnforcerVtable, this});
}

void EnforcerObject::denied(const Denial& denial, std::chrono::steady_clock::time_point now) {
    if (!bus_.connected() || !denied_limiter_.allow(now))
        return;
    auto signal = bus_.new_signal(kEnforcerPath, kEnforcerInterface, "Denied");
    if (!signal)
        return;
    // Kernel-supplied strings: escaped and bounded like the log lines.
    std::string kind = to_bus_string(denial.kind), path = sanitize_field(denial.path, 1024),
                comm = sanitize_field(denial.comm, 64), detail = to_bus_string(denial.detail);
    if (sd_bus_message_append(signal->get(), "ssuuss", kind.c_str(), path.c_str(), denial.pid, denial.uid, comm.c_str(),
                              detail.c_str()) < 0)
        return;
    (void)bus_.send(signal->get());
}

void EnforcerObject::policy_changed(const std::string& reason) {
    if (!bus_.connected())
        return;
    (void)bus_.emit_properties_changed(kEnforcerPath, kEnforcerInterface,
                                       {"PolicyGeneration", "RuleCount", "PolicyWarnings", "RuleScopes", "PolicySource",
                                        "PolicyProblem", "PolicyBundleVersion", "PolicyBundleSigner"});
    auto signal = bus_.new_signal(kEnforcerPath, kEnforcerInterface, "PolicyChanged");
    if (!signal)
        return;
    std::string safe_reason = to_bus_string(reason);
    if (sd_bus_message_append(signal->get(), "ts", backend_.policy_generation(), safe_reason.c_str()) < 0)
        return;
    (void)bus_.send(signal->get());
}

void EnforcerObject::tamper(const TamperAttempt& attempt, std::chrono::steady_clock::time_point now) {
    if (!bus_.connected() || !denied_limiter_.allow(now))
        return;
    auto signal = bus_.new_signal(kEnforcerPath, kEnforcerInterface, "Tamper");
    if (!signal)
        return;
    std::string what = to_bus_string(attempt.what), target = sanitize_field(attempt.target, 1024),
                comm = sanitize_field(attempt.comm, 64), outcome = to_bus_string(attempt.outcome);
    if (sd_bus_message_append(signal->get(), "ssuuss", what.c_str(), target.c_str(), attempt.pid, attempt.uid,
                              comm.c_str(), outcome.c_str()) < 0)
        return;
    (void)bus_.send(signal->get());
}

void EnforcerObject::self_warning(const std::string& what, const std::string& message, uint64_t value, uint64_t limit) {
    if (!bus_.connected())
        return;
    auto signal = bus_.new_signal(kEnforcerPath, kEnforcerInterface, "SelfWarning");
    if (!signal)
        return;
    std::string safe_what = to_bus_string(what), safe_message = to_bus_string(message);
    if (sd_bus_message_append(signal->get(), "sstt", safe_what.c_str(), safe_message.c_str(), value, limit) < 0)
        return;
    (void)bus_.send(signal->get());
}

}  // namespace bpfwarden::dbus
