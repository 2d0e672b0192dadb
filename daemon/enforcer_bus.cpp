#include "enforcer_bus.h"

#include <sys/utsname.h>

#include <fstream>

#include "break_glass.h"
#include "inspection/rule_hits.h"
#include "policy/policy_maps.h"
#include "support/bpf_commands.h"
#include "support/installed_paths.h"
#include "support/log.h"
#include "trust/manifest.h"

namespace bpfwarden {

namespace {

// The first 8 hex digits name a token in the log without repeating it whole.
std::string short_nonce(const std::string& nonce) { return nonce.substr(0, 8); }

}  // namespace

EnforcerBus::EnforcerBus(dbus::BusConnection& bus, EnforcerService& service)
    : service_(service), runtime_(service.options().policy_dir, service.required_policy_trust()), object_(bus, *this) {
    utsname name{};
    if (uname(&name) == 0)
        kernel_release_ = name.release;
    service_.set_event_observer(
        [this](const Event& event, const std::string& rule_path) { on_event(event, rule_path); });
    policy_listener_ =
        service_.add_policy_listener([this](const PolicyApplied& applied) { object_.policy_changed(applied.reason); });
}

void EnforcerBus::on_event(const Event& event, const std::string& rule_path) {
    if (event.kind == EventKind::Tamper)
        on_tamper(event);
    if (event.action != EventAction::Deny)
        return;
    dbus::Denial denial;
    denial.kind = std::string(event_kind_name(event.kind));
    denial.path = rule_path.empty() ? event.path : rule_path;
    denial.pid = event.tgid;
    denial.uid = event.uid;
    denial.comm = event.comm;
    if (event.kind == EventKind::BpfCheck)
        denial.detail = "cmd=" + bpf_command_name(event.bpf_cmd);
    object_.denied(denial, std::chrono::steady_clock::now());
}

void EnforcerBus::on_tamper(const Event& event) {
    ++tamper_attempts_;
    dbus::TamperAttempt attempt;
    attempt.what = op_name(event.op);
    attempt.target = event.path;
    attempt.pid = event.tgid;
    attempt.uid = event.uid;
    attempt.comm = event.comm;
    attempt.outcome = event.action == EventAction::Deny ? "refused" : std::string(action_name(event.action));
    object_.tamper(attempt, std::chrono::steady_clock::now());
}

std::string EnforcerBus::version() const { return installed::kVersion; }
std::string EnforcerBus::mode() const { return std::string(to_string(service_.mode())); }
std::string EnforcerBus::mode_reason() const { return service_.mode_reason(); }

dbus::KernelFacts EnforcerBus::kernel() const {
    const LsmStatus& lsm = service_.lsm_status();
    return {kernel_release_, lsm.active_lsms, lsm.usable, lsm.usable ? "usable" : lsm.reason};
}

uint64_t EnforcerBus::image_set_version() const { return service_.image_set_version(); }
uint64_t EnforcerBus::policy_generation() const { return service_.policy_generation(); }
std::string EnforcerBus::policy_directory() const { return service_.options().policy_dir.string(); }
std::string EnforcerBus::runtime_policy_file() const { return runtime_.file().string(); }
std::vector<std::string> EnforcerBus::policy_warnings() const { return service_.policy().warnings; }
uint32_t EnforcerBus::rule_count() const { return static_cast<uint32_t>(service_.policy().rules.size()); }

std::vector<dbus::ProgramState> EnforcerBus::programs() const {
    std::vector<dbus::ProgramState> out;
    for (const auto& program : service_.program_status())
        out.push_back({program.program->name, program.program->hook, program.prog_id, program.tag, program.pinned,
                       program.attached, program.state});
    return out;
}

Result<dbus::CounterValues> EnforcerBus::counters() const {
    auto counters = read_counters(service_.pins());
    if (!counters)
        return fail(counters.error().wrap("read counters"));
    return dbus::CounterValues{counters->events, counters->denials, counters->audits, counters->dropped,
                               counters->rate_limited};
}

std::string EnforcerBus::policy_source() const { return std::string(to_string(service_.policy_source())); }

uint64_t EnforcerBus::policy_bundle_version() const {
    const auto& bundle = service_.policy().bundle;
    return bundle ? bundle->version : 0;
}

std::string EnforcerBus::policy_bundle_signer() const {
    const auto& bundle = service_.policy().bundle;
    return bundle ? bundle->signer : std::string();
}

std::string EnforcerBus::policy_problem() const {
    const auto& problem = service_.policy_problem();
    return problem ? problem->message() : std::string();
}

std::vector<dbus::DriftEntry> EnforcerBus::drift() const {
    std::vector<dbus::DriftEntry> out;
    for (auto& drift : service_.drift())
        out.push_back({drift.rule_id, std::move(drift.path), std::move(drift.detail)});
    return out;
}

std::map<uint32_t, uint64_t> EnforcerBus::rule_hits() const {
    auto hits = read_rule_hits(service_.pins());
    return hits ? std::move(*hits) : std::map<uint32_t, uint64_t>();
}

dbus::ProtectionState EnforcerBus::protection() const {
    auto state = service_.self_state();
    if (!state)
        return {"unknown", state.error().message(), 0};
    if (!state->store || !state->protect)
        return {"off", "protect = false in the policy", 0};
    if (!state->guarded)
        return {"not enforceable", "the self guard is not attached (no BPF LSM on this kernel)", 0};
    if (state->lifted)
        return {"lifted", "lifted with an unlock token; the watchdog does not heal until it ends",
                lifted_until_usec(state->lifted_until_ns)};
    return {"enforced", "only bpfwarden's own units may change its programs, maps, pins and processes", 0};
}

// A break-glass attempt, lifted or refused, as a Tamper signal: whoever
// watches for attempts on bpfwarden sees these too.
void EnforcerBus::report_unlock(const dbus::Caller& caller, const std::string& outcome) {
    dbus::TamperAttempt attempt{"unlock", "self-protection", caller.pid.value_or(0), caller.uid.value_or(0), {},
                                outcome};
    if (caller.pid) {
        std::ifstream comm("/proc/" + std::to_string(*caller.pid) + "/comm");
        std::getline(comm, attempt.comm);
    }
    object_.tamper(attempt, std::chrono::steady_clock::now());
}

Result<uint64_t> EnforcerBus::unlock(const dbus::Caller& caller, std::string_view token) {
    auto lift = lift_protection(token, service_.options().trust, service_.pins(), std::chrono::system_clock::now());
    if (!lift) {
        ++tamper_attempts_;
        log_warning("protection: Unlock by " + caller.describe() + " refused: " + lift.error().message());
        report_unlock(caller, "refused: " + lift.error().message());
        return fail(lift.error().note("protection stays in force"));
    }
    std::string until = format_rfc3339_utc(static_cast<std::time_t>(lift->until_usec / 1000000));
    log_warning("protection: LIFTED until " + until + " by " + caller.describe() + " with the unlock token " +
                short_nonce(lift->nonce) + "... signed by " + lift->signer);
    report_unlock(caller, "lifted until " + until);
    return lift->until_usec;
}

Result<uint64_t> EnforcerBus::reload_policy(const dbus::Caller& caller) {
    std::string reason = "ReloadPolicy by " + caller.describe();
    if (auto reloaded = service_.apply_policy({"reloaded", reason, reason}); !reloaded) {
        log_error(reloaded.error().message() + "; keeping the running policy (" + reason + ")");
        return fail(reloaded.error().note("the running policy stays"));
    }
    return service_.policy_generation();
}

Result<uint64_t> EnforcerBus::commit(const RuntimeRules::Plan& plan, const std::string& what,
                                     const dbus::Caller& caller) {
    std::string reason = what + " by " + caller.describe();
    if (auto written = runtime_.write(plan.new_text); !written) {
        log_error("policy: " + reason + " not saved: " + written.error().message());
        return fail(written.error().wrap("save " + what));
    }
    auto applied = service_.apply_policy({reason, "saved in " + runtime_.file().string(), reason});
    if (!applied) {
        // Validated a moment ago, so something changed the directory (or the
        // maps refused the update) in between: put the old file back.
        auto restored = runtime_.write(plan.old_text);
        log_error("policy: " + reason + " could not be applied (" + applied.error().message() + "); " +
                  (restored ? "the runtime policy file was restored"
                            : "restoring the runtime policy file failed: " + restored.error().message()));
        return fail(applied.error().note("the running policy stays and " + runtime_.file().string() + " was restored"));
    }
    return service_.policy_generation();
}

bool EnforcerBus::rule_active(std::string_view kind, std::string_view path) const {
    RuleKind wanted = kind == "file" ? RuleKind::FileOpen : RuleKind::Exec;
    for (const auto& rule : service_.policy().rules)
        if (!rule.bpf_allow && rule.kind == wanted && rule.path == path)
            return rule.active();
    return false;
}

Result<dbus::RuleChange> EnforcerBus::add_rule(const dbus::Caller& caller, std::string_view kind, std::string_view path,
                                               std::string_view action) {
    auto plan = runtime_.plan_add(kind, path, action);
    if (!plan) {
        log_warning("policy: AddRule by " + caller.describe() + " refused: " + plan.error().message());
        return std::unexpected(plan.error());
    }
    if (plan->changed) {
        std::string what = "AddRule " + std::string(kind) + " " + quote_for_message(path) + " " + std::string(action);
        auto generation = commit(*plan, what, caller);
        if (!generation)
            return std::unexpected(generation.error());
    }
    return dbus::RuleChange{service_.policy_generation(), rule_active(kind, path)};
}

Result<dbus::RuleChange> EnforcerBus::remove_rule(const dbus::Caller& caller, std::string_view kind,
                                                  std::string_view path) {
    auto plan = runtime_.plan_remove(kind, path, service_.policy());
    if (!plan) {
        log_warning("policy: RemoveRule by " + caller.describe() + " refused: " + plan.error().message());
        return std::unexpected(plan.error());
    }
    std::string what = "RemoveRule " + std::string(kind) + " " + quote_for_message(path);
    auto generation = commit(*plan, what, caller);
    if (!generation)
        return std::unexpected(generation.error());
    return dbus::RuleChange{*generation, false};
}

std::vector<dbus::RuleEntry> EnforcerBus::list_rules() const {
    std::vector<dbus::RuleEntry> out;
    for (const auto& rule : service_.policy().rules) {
        dbus::RuleEntry entry;
        entry.id = rule.id;
        entry.kind = rule_kind_name(rule);
        entry.path = written_path(rule);
        entry.action = rule.bpf_allow ? "allow" : std::string(to_string(rule.action));
        entry.source = to_string(rule.where);
        entry.active = rule.active();
        out.push_back(std::move(entry));
    }
    return out;
}

std::vector<dbus::RuleScope> EnforcerBus::rule_scopes() const {
    std::vector<dbus::RuleScope> out;
    for (const auto& rule : service_.policy().rules)
        if (rule.scope)
            out.push_back({rule.id, rule.scope->selector(),
                           std::string(to_string(rule.audit_mode ? PolicyMode::Audit : PolicyMode::Enforce))});
    return out;
}

}  // namespace bpfwarden
