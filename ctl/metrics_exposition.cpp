#include "metrics_exposition.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

namespace bpfwarden::ctl {

void MetricsExposition::add(const std::string& name, MetricType type, const std::string& help,
                            const MetricLabels& labels, uint64_t value) {
    add_sample(name, type, help, labels, std::to_string(value));
}

void MetricsExposition::add(const std::string& name, MetricType type, const std::string& help,
                            const MetricLabels& labels, double value) {
    add_sample(name, type, help, labels, metric_value(value));
}

void MetricsExposition::add_sample(const std::string& name, MetricType type, const std::string& help,
                                   const MetricLabels& labels, const std::string& value) {
    auto found = index_.find(name);
    if (found == index_.end()) {
        found = index_.emplace(name, families_.size()).first;
        families_.push_back(Family{name, type, help, {}});
    }
    std::string sample;
    for (const auto& [label, label_value] : labels)
        sample += (sample.empty() ? "{" : ",") + label + "=\"" + escape_label_value(label_value) + "\"";
    if (!sample.empty())
        sample += "}";
    families_[found->second].samples.push_back(sample + " " + value);
}

std::string MetricsExposition::text() const {
    std::string out(kMetricsHeader);
    for (const auto& family : families_) {
        if (family.samples.empty())
            continue;
        out += "# HELP " + family.name + " " + escape_help(family.help) + "\n";
        out += "# TYPE " + family.name + (family.type == MetricType::Counter ? " counter\n" : " gauge\n");
        for (const auto& sample : family.samples)
            out += family.name + sample + "\n";
    }
    return out;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string escape_help(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string metric_value(double value) {
    if (std::isnan(value))
        return "NaN";
    if (std::isinf(value))
        return value > 0 ? "+Inf" : "-Inf";
    std::array<char, 32> text{};
    auto [end, error] = std::to_chars(text.data(), text.data() + text.size(), value);
    return std::string(text.data(), end);
}

namespace {

using dbus::EnforcerSnapshot;

constexpr MetricType kCounter = MetricType::Counter;
constexpr MetricType kGauge = MetricType::Gauge;

double seconds_of_usec(uint64_t usec) { return static_cast<double>(usec) / 1e6; }

// One sample per known state, 1 for the current one (the usual Prometheus
// idiom for an enumeration, so that alerts can compare with 0). A state this
// version does not know is added rather than lost.
void add_state_set(MetricsExposition& out, const std::string& name, const std::string& label, const std::string& help,
                   std::vector<std::string> known, const std::string& current) {
    if (std::ranges::find(known, current) == known.end())
        known.push_back(current);
    for (const auto& state : known)
        out.add(name, kGauge, help, {{label, state}}, uint64_t{state == current});
}

void add_up(MetricsExposition& out, const char* service, bool up) {
    out.add("bpfwarden_up", kGauge,
            "1 when the service answered over D-Bus, 0 when it did not (its other metrics are then left out)",
            {{"service", service}}, uint64_t{up});
}

void add_version(MetricsExposition& out, const char* service, const std::string& version) {
    out.add("bpfwarden_version_info", kGauge, "the running version of each bpfwarden service",
            {{"service", service}, {"version", version}}, uint64_t{1});
}

void add_enforcer_counters(MetricsExposition& out, const EnforcerSnapshot& e) {
    out.add("bpfwarden_events_total", kCounter, "events the BPF programs submitted to the ring buffer (Events)", {},
            e.counters.events);
    out.add("bpfwarden_denials_total", kCounter, "EPERMs the BPF LSM programs returned (Denials)", {},
            e.counters.denials);
    out.add("bpfwarden_audits_total", kCounter, "audit rule matches (Audits)", {}, e.counters.audits);
    out.add("bpfwarden_events_dropped_total", kCounter, "events lost to a full ring buffer (Drops)", {},
            e.counters.drops);
    out.add("bpfwarden_events_rate_limited_total", kCounter,
            "events not reported because of the per-process rate limit (RateLimited)", {}, e.counters.rate_limited);
    out.add("bpfwarden_denied_signals_suppressed_total", kCounter,
            "Denied and Tamper D-Bus signals not sent because of their rate limit, since bpfwardend started", {},
            e.denied_signals_suppressed);
    out.add("bpfwarden_tamper_attempts_total", kCounter,
            "attempts on bpfwarden itself the kernel reported, since bpfwardend started (TamperAttempts)", {},
            e.tamper_attempts);
}

void add_policy(MetricsExposition& out, const EnforcerSnapshot& e) {
    out.add("bpfwarden_policy_generation", kGauge, "policy generation: 1 after start, +1 for every policy applied", {},
            e.policy_generation);
    out.add("bpfwarden_policy_rules", kGauge, "rules in force, including inactive ones and bpf.allow entries", {},
            uint64_t{e.rule_count});
    out.add("bpfwarden_policy_warnings", kGauge, "policy warnings, e.g. rules whose directory does not exist yet", {},
            uint64_t{e.policy_warnings.size()});
    out.add("bpfwarden_policy_drifted_rules", kGauge, "rules whose path names another file now than when applied", {},
            uint64_t{e.drifted_rules.size()});
    out.add("bpfwarden_policy_bundle_version", kGauge,
            "version of the signed policy bundle in force; 0 when the policy was not read through one", {},
            e.policy_bundle_version);
    add_state_set(out, "bpfwarden_policy_source", "source",
                  "where the policy in force came from (1 for the current source)",
                  {"policy directory", "last good policy", "shipped default"}, e.policy_source);
}

void add_programs(MetricsExposition& out, const EnforcerSnapshot& e) {
    uint64_t attached = 0;
    for (const auto& program : e.programs) {
        attached += program.attached ? 1 : 0;
        out.add("bpfwarden_program_attached", kGauge, "1 when the program's pinned link has it attached",
                {{"program", program.name}, {"hook", program.hook}}, uint64_t{program.attached});
    }
    out.add("bpfwarden_programs", kGauge, "BPF programs bpfwardend manages, attached or not", {},
            uint64_t{e.programs.size()});
    out.add("bpfwarden_programs_attached", kGauge, "BPF programs attached through their pinned links", {}, attached);
}

// bpfwarden_rule_hits_total for the kMaxRuleHitSeries rules with the most
// hits that `rules` names, and how many rules with hits were left out.
void add_rule_hits(MetricsExposition& out, const EnforcerSnapshot& e, const std::vector<dbus::RuleEntry>& rules) {
    std::map<uint32_t, const dbus::RuleEntry*> by_id;
    for (const auto& rule : rules)
        by_id.emplace(rule.id, &rule);
    std::vector<std::pair<uint32_t, uint64_t>> named;
    for (const auto& [id, hits] : e.rule_hits)
        if (by_id.contains(id))
            named.emplace_back(id, hits);
    if (named.size() > kMaxRuleHitSeries) {
        std::ranges::nth_element(named, named.begin() + kMaxRuleHitSeries,
                                 [](const auto& a, const auto& b) { return a.second > b.second; });
        named.resize(kMaxRuleHitSeries);
        std::ranges::sort(named);
    }
    for (const auto& [id, hits] : named) {
        const auto& rule = *by_id.at(id);
        out.add("bpfwarden_rule_hits_total", kCounter,
                "matches of each rule since the policy was applied (RuleHits; rule ids change with every apply); "
                "at most " +
                    std::to_string(kMaxRuleHitSeries) + " rules, those with the most hits",
                {{"rule", std::to_string(id)}, {"kind", rule.kind}, {"path", rule.path}, {"action", rule.action}},
                hits);
    }
    out.add("bpfwarden_rule_hits_omitted", kGauge,
            "rules with hits not in bpfwarden_rule_hits_total (over the series limit, or the policy changed while "
            "reading)",
            {}, uint64_t{e.rule_hits.size() - named.size()});
}

void add_enforcer(MetricsExposition& out, const EnforcerSnapshot& e, const std::vector<dbus::RuleEntry>& rules) {
    add_version(out, "bpfwardend", e.version);
    out.add("bpfwarden_enforcing", kGauge, "1 when bpfwardend's mode is enforcing (BPF LSM programs attached)", {},
            uint64_t{e.mode == "enforcing"});
    add_state_set(out, "bpfwarden_mode", "mode", "bpfwardend's mode (1 for the current mode)",
                  {"enforcing", "degraded", "audit-only"}, e.mode);
    out.add("bpfwarden_bpf_lsm_usable", kGauge, "1 when the BPF LSM probe loaded, attached and ran", {},
            uint64_t{e.kernel.bpf_lsm_usable});
    out.add("bpfwarden_image_set_version", kGauge, "version of the verified signed image set in use", {},
            e.image_set_version);
    add_state_set(out, "bpfwarden_self_protection", "state", "self-protection state (1 for the current state)",
                  {"enforced", "lifted", "off", "not enforceable", "unknown"}, e.protection.state);
    add_policy(out, e);
    add_programs(out, e);
    add_enforcer_counters(out, e);
    add_rule_hits(out, e, rules);
}

void add_watchdog(MetricsExposition& out, const WatchdogStatus& w) {
    add_version(out, "bpfwarden-watchdog", w.version);
    out.add("bpfwarden_watchdog_healthy", kGauge, "1 when the watchdog's last check found everything as expected", {},
            uint64_t{w.healthy});
    out.add("bpfwarden_checks_total", kCounter, "checks the watchdog ran since it started", {}, w.checks);
    out.add("bpfwarden_heals_total", kCounter, "heals the watchdog made since it started (HealCount)", {},
            w.heal_count);
    for (const auto& [kind, heals] : w.heals_by_kind)
        out.add("bpfwarden_heals_by_kind_total", kCounter,
                "heals by what they repaired (HealsByKind; a heal of several kinds counts for each)", {{"kind", kind}},
                heals);
    out.add("bpfwarden_watchdog_check_interval_seconds", kGauge, "time between the watchdog's interval checks", {},
            seconds_of_usec(w.check_interval_usec));
    if (w.last_check_usec != 0)
        out.add("bpfwarden_watchdog_last_check_timestamp_seconds", kGauge,
                "when the watchdog's last check ran, seconds since the epoch", {}, seconds_of_usec(w.last_check_usec));
    if (w.checks != 0)
        out.add("bpfwarden_watchdog_last_check_duration_seconds", kGauge,
                "how long the watchdog's last check took, heals included (LastCheckDuration)", {},
                seconds_of_usec(w.last_check_duration_usec));
    if (w.heal_count != 0)
        out.add("bpfwarden_last_heal_duration_seconds", kGauge, "how long the watchdog's last heal took", {},
                seconds_of_usec(w.last_heal_usec));
}

}  // namespace

MetricsExposition bpfwarden_metrics(const MetricsReadings& readings) {
    MetricsExposition out;
    add_up(out, "bpfwardend", readings.enforcer.has_value());
    add_up(out, "bpfwarden-watchdog", readings.watchdog.has_value());
    if (readings.enforcer)
        add_enforcer(out, *readings.enforcer, readings.rules);
    if (readings.watchdog)
        add_watchdog(out, *readings.watchdog);
    return out;
}

}  // namespace bpfwarden::ctl
