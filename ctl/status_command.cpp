// status: both services over D-Bus, in one summary.

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "status_client.h"
#include "support/command_line.h"
#include "support/event.h"
#include "trust/manifest.h"

namespace bpfwarden::ctl {
namespace {

using dbus::EnforcerSnapshot;

constexpr const char* kStatusDescription = R"(Reads org.bpfwarden.Enforcer1 (bpfwardend) and org.bpfwarden.Watchdog1
(bpfwarden-watchdog) from the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured)
and prints one summary: enforcement mode and why, kernel, images, policy,
programs, counters, and the watchdog's health and last heal. Needs no privileges.)";

constexpr const char* kStatusFooter = R"(Exit status: 0 enforcing and healthy; 1 degraded (audit-only, unhealthy, a
program not attached, the policy directory not in force, self-protection
asked for but not enforced) or a service unreachable; 2 invalid arguments.)";

std::string ago(uint64_t usec_since_epoch) {
    if (usec_since_epoch == 0)
        return "never";
    auto now =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    long long seconds = (static_cast<long long>(now) - static_cast<long long>(usec_since_epoch)) / 1000000;
    return std::to_string(seconds < 0 ? 0 : seconds) + " s ago";
}

std::string milliseconds(uint64_t usec) {
    char text[32];
    snprintf(text, sizeof(text), "%.1f ms", static_cast<double>(usec) / 1000.0);
    return text;
}

// What keeps the system from "enforcing and healthy", one line each.
std::vector<std::string> problems_of(const Result<EnforcerSnapshot>& enforcer, const Result<WatchdogStatus>& watchdog) {
    std::vector<std::string> problems;
    if (!enforcer) {
        problems.push_back("bpfwardend: " + enforcer.error().message());
    } else {
        if (enforcer->mode != "enforcing")
            problems.push_back("bpfwardend: " + enforcer->mode + " (" + enforcer->mode_reason + ")");
        for (const auto& program : enforcer->programs)
            if (!program.attached && !program.state.starts_with("skipped"))
                problems.push_back("bpfwardend: " + program.name + " on " + program.hook + " is not attached (" +
                                   program.state + ")");
        if (!enforcer->policy_problem.empty())
            problems.push_back("bpfwardend: enforcing the " + enforcer->policy_source + ": " +
                               enforcer->policy_problem);
        if (enforcer->protection.state == "lifted" || enforcer->protection.state == "unknown")
            problems.push_back("bpfwardend: self-protection " + enforcer->protection.state + " (" +
                               enforcer->protection.detail + ")");
    }
    if (!watchdog)
        problems.push_back("bpfwarden-watchdog: " + watchdog.error().message());
    else if (!watchdog->healthy)
        problems.push_back("bpfwarden-watchdog: unhealthy: " + join(watchdog->reasons, "; "));
    return problems;
}

std::string counters_text(const dbus::CounterValues& c) {
    auto u = [](uint64_t value) { return std::to_string(value); };
    return "events " + u(c.events) + ", denials " + u(c.denials) + ", audits " + u(c.audits) + ", drops " + u(c.drops) +
           ", rate-limited " + u(c.rate_limited);
}

void print_policy_text(const EnforcerSnapshot& e) {
    printf("  policy            generation %llu, %u rules from %s (runtime edits: %s)\n",
           static_cast<unsigned long long>(e.policy_generation), e.rule_count, e.policy_directory.c_str(),
           e.runtime_policy_file.c_str());
    printf("  policy source     %s%s%s\n", e.policy_source.c_str(), e.policy_problem.empty() ? "" : ": ",
           e.policy_problem.c_str());
    for (const auto& warning : e.policy_warnings)
        printf("  policy warning    %s\n", warning.c_str());
    for (const auto& drift : e.drifted_rules)
        printf("  rule drift        rule %u %s %s (re-resolving)\n", drift.id, drift.path.c_str(),
               drift.detail.c_str());
    std::string until;
    if (e.protection.lifted_until_usec)
        until = " until " + format_rfc3339_utc(static_cast<std::time_t>(e.protection.lifted_until_usec / 1000000));
    printf("  self-protection   %s (%s)%s; %llu tamper attempts\n", e.protection.state.c_str(),
           e.protection.detail.c_str(), until.c_str(), static_cast<unsigned long long>(e.tamper_attempts));
}

void print_enforcer_text(const EnforcerSnapshot& e) {
    printf("bpfwardend %-8s %s (%s)\n", e.version.c_str(), e.mode.c_str(), e.mode_reason.c_str());
    printf("  kernel            %s; LSMs %s; BPF LSM %s\n", e.kernel.release.c_str(),
           e.kernel.active_lsms.empty() ? "unknown" : join(e.kernel.active_lsms, ",").c_str(),
           e.kernel.bpf_lsm_usable ? "usable" : "not usable");
    printf("  images            signed image-set version %llu\n", static_cast<unsigned long long>(e.image_set_version));
    print_policy_text(e);
    for (const auto& p : e.programs) {
        std::string where = p.attached ? "id " + std::to_string(p.prog_id) + " tag " +
                                             (p.tag.empty() ? std::string("?") : p.tag) + ", attached"
                            : p.pinned ? "pinned, not attached"
                                       : "not pinned";
        printf("  program           %-14s %-36s %s (%s)\n", p.name.c_str(), p.hook.c_str(), where.c_str(),
               p.state.c_str());
    }
    printf("  counters          %s\n", counters_text(e.counters).c_str());
}

void print_watchdog_text(const WatchdogStatus& s) {
    printf("bpfwarden-watchdog  %s, expecting %s; last check %s (%s), %llu checks, %llu heals\n",
           s.healthy ? "healthy" : "UNHEALTHY", s.mode.c_str(), ago(s.last_check_usec).c_str(), s.last_trigger.c_str(),
           static_cast<unsigned long long>(s.checks), static_cast<unsigned long long>(s.heal_count));
    for (const auto& reason : s.reasons)
        printf("  reason            %s\n", reason.c_str());
    if (s.heal_count) {
        printf("  last heal         %s: %s\n", milliseconds(s.last_heal_usec).c_str(), s.last_heal_reason.c_str());
        std::string kinds;
        for (const auto& [kind, heals] : s.heals_by_kind)
            kinds += (kinds.empty() ? "" : ", ") + kind + " " + std::to_string(heals);
        printf("  heals by kind     %s\n", kinds.c_str());
    }
    for (const auto& p : s.programs)
        printf("  program           %-14s %-36s %s\n", p.program.c_str(), p.hook.c_str(), p.status.c_str());
}

void print_text(const Result<EnforcerSnapshot>& enforcer, const Result<WatchdogStatus>& watchdog,
                const std::vector<std::string>& problems) {
    if (!enforcer)
        printf("bpfwardend          unreachable: %s\n", enforcer.error().message().c_str());
    else
        print_enforcer_text(*enforcer);
    if (!watchdog)
        printf("bpfwarden-watchdog  unreachable: %s\n", watchdog.error().message().c_str());
    else
        print_watchdog_text(*watchdog);
    if (problems.empty())
        printf("status: ok (enforcing, watchdog healthy)\n");
    else
        printf("status: degraded\n  - %s\n", join(problems, "\n  - ").c_str());
}

std::string json_strings(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i)
        out += (i ? "," : "") + json_quote(items[i]);
    return out + "]";
}

std::string drift_json(const EnforcerSnapshot& e) {
    std::string out = "[";
    for (size_t i = 0; i < e.drifted_rules.size(); ++i) {
        const auto& drift = e.drifted_rules[i];
        out += std::string(i ? "," : "") + "{\"rule\":" + std::to_string(drift.id) +
               ",\"path\":" + json_quote(drift.path) + ",\"detail\":" + json_quote(drift.detail) + "}";
    }
    return out + "]";
}

std::string enforcer_json(const EnforcerSnapshot& e) {
    auto u = [](uint64_t value) { return std::to_string(value); };
    std::string out =
        "{\"version\":" + json_quote(e.version) + ",\"mode\":" + json_quote(e.mode) +
        ",\"mode_reason\":" + json_quote(e.mode_reason) + ",\"kernel\":{\"release\":" + json_quote(e.kernel.release) +
        ",\"active_lsms\":" + json_strings(e.kernel.active_lsms) +
        ",\"bpf_lsm_usable\":" + (e.kernel.bpf_lsm_usable ? "true" : "false") +
        ",\"bpf_lsm_status\":" + json_quote(e.kernel.bpf_lsm_status) +
        "},\"image_set_version\":" + u(e.image_set_version) + ",\"policy\":{\"generation\":" + u(e.policy_generation) +
        ",\"directory\":" + json_quote(e.policy_directory) + ",\"runtime_file\":" + json_quote(e.runtime_policy_file) +
        ",\"rules\":" + u(e.rule_count) + ",\"warnings\":" + json_strings(e.policy_warnings) +
        ",\"source\":" + json_quote(e.policy_source) +
        ",\"problem\":" + (e.policy_problem.empty() ? "null" : json_quote(e.policy_problem)) +
        ",\"drift\":" + drift_json(e) + "},\"protection\":{\"state\":" + json_quote(e.protection.state) +
        ",\"detail\":" + json_quote(e.protection.detail) +
        ",\"lifted_until_usec\":" + u(e.protection.lifted_until_usec) + ",\"tamper_attempts\":" + u(e.tamper_attempts) +
        "},\"programs\":[";
    for (size_t i = 0; i < e.programs.size(); ++i) {
        const auto& p = e.programs[i];
        out += std::string(i ? "," : "") + "{\"name\":" + json_quote(p.name) + ",\"hook\":" + json_quote(p.hook) +
               ",\"prog_id\":" + u(p.prog_id) + ",\"tag\":" + json_quote(p.tag) +
               ",\"pinned\":" + (p.pinned ? "true" : "false") + ",\"attached\":" + (p.attached ? "true" : "false") +
               ",\"state\":" + json_quote(p.state) + "}";
    }
    out += "],\"counters\":{\"events\":" + u(e.counters.events) + ",\"denials\":" + u(e.counters.denials) +
           ",\"audits\":" + u(e.counters.audits) + ",\"drops\":" + u(e.counters.drops) +
           ",\"rate_limited\":" + u(e.counters.rate_limited) +
           "},\"denied_signals_suppressed\":" + u(e.denied_signals_suppressed) + "}";
    return out;
}

void print_json(const Result<EnforcerSnapshot>& enforcer, const Result<WatchdogStatus>& watchdog,
                const std::vector<std::string>& problems) {
    std::string out = "{\"status\":" + std::string(problems.empty() ? "\"ok\"" : "\"degraded\"") +
                      ",\"problems\":" + json_strings(problems) +
                      ",\"enforcer\":" + (enforcer ? enforcer_json(*enforcer) : "null") +
                      ",\"enforcer_error\":" + (enforcer ? "null" : json_quote(enforcer.error().message())) +
                      ",\"watchdog\":" + (watchdog ? to_json(*watchdog) : "null") +
                      ",\"watchdog_error\":" + (watchdog ? "null" : json_quote(watchdog.error().message())) + "}";
    puts(out.c_str());
}

}  // namespace

int status(int argc, char** argv) {
    bool json = false;
    CommandLine cli("bpfwardenctl status", "[--json]", kStatusDescription, kStatusFooter);
    add_json(cli, json);
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;

    Result<EnforcerSnapshot> enforcer = fail(ENOTCONN, "not read");
    Result<WatchdogStatus> watchdog = fail(ENOTCONN, "not read");
    if (auto client = dbus::StatusClient::connect(); !client) {
        enforcer = std::unexpected(client.error());
        watchdog = std::unexpected(client.error());
    } else {
        enforcer = client->enforcer();
        watchdog = client->watchdog();
    }
    auto problems = problems_of(enforcer, watchdog);
    if (json)
        print_json(enforcer, watchdog, problems);
    else
        print_text(enforcer, watchdog, problems);
    return problems.empty() ? 0 : 1;
}

}  // namespace bpfwarden::ctl
