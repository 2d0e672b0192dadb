// bpfwardend's side of org.bpfwarden.Enforcer1: the EnforcerBackend over
// EnforcerService, runtime rule edits persisted through RuntimeRules, and
// the Denied / PolicyChanged signals. Logs every state change it makes, with
// the caller.
#pragma once

#include <string>

#include "bus_connection.h"
#include "enforcer_interface.h"
#include "enforcer_service.h"
#include "runtime_rules.h"
#include "support/self_monitor.h"

namespace bpfwarden {

class EnforcerBus final : public dbus::EnforcerBackend {
public:
    // Registers the object on `bus` (before bus.start()) and observes the
    // service's events for the Denied signal.
    EnforcerBus(dbus::BusConnection& bus, EnforcerService& service);
    ~EnforcerBus() override {
        service_.set_event_observer(nullptr);
        service_.remove_policy_listener(policy_listener_);
    }
    EnforcerBus(const EnforcerBus&) = delete;
    EnforcerBus& operator=(const EnforcerBus&) = delete;

    std::string version() const override;
    std::string mode() const override;
    std::string mode_reason() const override;
    dbus::KernelFacts kernel() const override;
    uint64_t image_set_version() const override;
    uint64_t policy_generation() const override;
    std::string policy_directory() const override;
    std::string runtime_policy_file() const override;
    std::vector<std::string> policy_warnings() const override;
    uint32_t rule_count() const override;
    std::vector<dbus::ProgramState> programs() const override;
    Result<dbus::CounterValues> counters() const override;
    std::string policy_source() const override;
    std::string policy_problem() const override;
    uint64_t policy_bundle_version() const override;
    std::string policy_bundle_signer() const override;
    std::vector<dbus::DriftEntry> drift() const override;
    std::map<uint32_t, uint64_t> rule_hits() const override;
    dbus::ProtectionState protection() const override;
    uint64_t tamper_attempts() const override { return tamper_attempts_; }

    Result<uint64_t> reload_policy(const dbus::Caller& caller) override;
    Result<dbus::RuleChange> add_rule(const dbus::Caller& caller, std::string_view kind, std::string_view path,
                                      std::string_view action) override;
    Result<dbus::RuleChange> remove_rule(const dbus::Caller& caller, std::string_view kind,
                                         std::string_view path) override;
    std::vector<dbus::RuleEntry> list_rules() const override;
    std::vector<dbus::RuleScope> rule_scopes() const override;
    Result<uint64_t> unlock(const dbus::Caller& caller, std::string_view token) override;

    void self_warning(const SelfWarning& warning) {
        object_.self_warning(warning.what, warning.message, warning.value, warning.limit);
    }

private:
    void on_event(const Event& event, const std::string& rule_path);
    void on_tamper(const Event& event);
    void report_unlock(const dbus::Caller& caller, const std::string& outcome);
    // Writes the plan, applies it, and restores the old file if that fails.
    Result<uint64_t> commit(const RuntimeRules::Plan& plan, const std::string& what, const dbus::Caller& caller);
    bool rule_active(std::string_view kind, std::string_view path) const;

    EnforcerService& service_;
    RuntimeRules runtime_;
    dbus::EnforcerObject object_;
    std::string kernel_release_;
    size_t policy_listener_ = 0;
    uint64_t tamper_attempts_ = 0;  // since start, as the kernel reported them
};

}  // namespace bpfwarden
