// `bpfwardenctl metrics`' exposition (ctl/metrics_exposition.h): escaping,
// one HELP and TYPE per family, and what a service that did not answer leaves
// out. The host test (tests/host/metrics_test.sh) has node_exporter parse it.
#include "metrics_exposition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace bpfwarden::ctl {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

// Sample lines ("name{labels} value") by name.
std::multimap<std::string, std::string> samples_of(const std::string& text) {
    std::multimap<std::string, std::string> samples;
    for (const auto& line : lines_of(text))
        if (!line.starts_with("#"))
            samples.emplace(line.substr(0, line.find_first_of("{ ")), line);
    return samples;
}

bool has_sample(const std::string& text, const std::string& line) {
    for (const auto& candidate : lines_of(text))
        if (candidate == line)
            return true;
    return false;
}

dbus::EnforcerSnapshot enforcer_snapshot() {
    dbus::EnforcerSnapshot e;
    e.version = "0.9.0";
    e.mode = "audit-only";
    e.kernel.bpf_lsm_usable = false;
    e.image_set_version = 3;
    e.policy_generation = 7;
    e.rule_count = 12;
    e.policy_warnings = {"a", "b"};
    e.programs = {{"bw_tp_bpf", "tracepoint/syscalls/sys_enter_bpf", 31, "f742182a4a6bb808", true, true, "loaded"},
                  {"bw_file_open", "lsm/file_open", 0, "", false, false, "skipped: needs BPF LSM"}};
    e.counters = {.events = 120, .denials = 4, .audits = 9, .drops = 1, .rate_limited = 2};
    e.denied_signals_suppressed = 5;
    e.policy_source = "policy directory";
    e.policy_bundle_version = 12;
    e.protection.state = "not enforceable";
    e.tamper_attempts = 6;
    return e;
}

WatchdogStatus watchdog_status() {
    WatchdogStatus w;
    w.version = "0.9.0";
    w.healthy = true;
    w.check_interval_usec = 5000000;
    w.checks = 41;
    w.last_check_usec = 1764664312250000;
    w.last_check_duration_usec = 750;
    w.heal_count = 2;
    w.heals_by_kind = {{"link-broken", 2}, {"policy-map-drifted", 1}};
    w.last_heal_usec = 12500;
    return w;
}

TEST(MetricsExposition, EscapesLabelValuesAndHelp) {
    EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    EXPECT_EQ(escape_label_value("/srv/plain path"), "/srv/plain path");
    EXPECT_EQ(escape_help("x\\y \"q\"\nz"), "x\\\\y \"q\"\\nz");

    MetricsExposition out;
    out.add("bpfwarden_test", MetricType::Gauge, "help with a \\ and\na newline", {{"path", "/a\"b\\c\nd"}},
            uint64_t{1});
    std::string text = out.text();
    EXPECT_TRUE(has_sample(text, "# HELP bpfwarden_test help with a \\\\ and\\na newline")) << text;
    EXPECT_TRUE(has_sample(text, "bpfwarden_test{path=\"/a\\\"b\\\\c\\nd\"} 1")) << text;
}

TEST(MetricsExposition, OneHelpAndTypePerFamilyWithItsSamplesTogether) {
    MetricsExposition out;
    out.add("bpfwarden_a_total", MetricType::Counter, "a", {{"k", "1"}}, uint64_t{1});
    out.add("bpfwarden_b", MetricType::Gauge, "b", {}, 0.25);
    out.add("bpfwarden_a_total", MetricType::Counter, "a", {{"k", "2"}}, uint64_t{2});
    EXPECT_EQ(out.text(), std::string(kMetricsHeader) +
                              "# HELP bpfwarden_a_total a\n"
                              "# TYPE bpfwarden_a_total counter\n"
                              "bpfwarden_a_total{k=\"1\"} 1\n"
                              "bpfwarden_a_total{k=\"2\"} 2\n"
                              "# HELP bpfwarden_b b\n"
                              "# TYPE bpfwarden_b gauge\n"
                              "bpfwarden_b 0.25\n");
}

TEST(MetricsExposition, ValuesReadBackExactly) {
    EXPECT_EQ(metric_value(42.0), "42");
    EXPECT_EQ(metric_value(0.0125), "0.0125");
    EXPECT_EQ(metric_value(1764664312.25), "1764664312.25");
    EXPECT_EQ(metric_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
    EXPECT_EQ(metric_value(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(MetricsExposition, EveryLineIsWellFormedAndEveryFamilyDeclaredOnce) {
    MetricsReadings readings{enforcer_snapshot(), watchdog_status(), {}};
    std::string text = bpfwarden_metrics(readings).text();
    ASSERT_TRUE(text.starts_with(kMetricsHeader));
    const std::regex sample(R"(([a-z_]+)(\{[a-z_]+="([^"\\\n]|\\.)*"(,[a-z_]+="([^"\\\n]|\\.)*")*\})? [0-9.e+-]+)");
    const std::regex type(R"(# TYPE ([a-z_]+) (counter|gauge))");
    std::map<std::string, int> help_lines, type_lines;
    std::string declared;
    for (const auto& line : lines_of(text)) {
        std::smatch match;
        if (line.starts_with("# HELP ")) {
            help_lines[line.substr(7, line.find(' ', 7) - 7)]++;
        } else if (std::regex_match(line, match, type)) {
            declared = match[1];
            type_lines[declared]++;
            if (match[2] == "counter") {
                EXPECT_TRUE(declared.ends_with("_total")) << line;
            }
        } else if (!line.starts_with("#")) {
            ASSERT_TRUE(std::regex_match(line, match, sample)) << line;
            EXPECT_EQ(match[1], declared) << "sample outside its family: " << line;
        }
    }
    EXPECT_GT(type_lines.size(), 25U) << text;
    EXPECT_EQ(help_lines.size(), type_lines.size());
    for (const auto& [name, count] : type_lines) {
        EXPECT_EQ(count, 1) << name;
        EXPECT_EQ(help_lines[name], 1) << name;
    }
}

TEST(MetricsExposition, BothServicesUpGiveTheirValues) {
    MetricsReadings readings{enforcer_snapshot(), watchdog_status(), {}};
    std::string text = bpfwarden_metrics(readings).text();
    for (const char* line : {"bpfwarden_up{service=\"bpfwardend\"} 1",
                             "bpfwarden_up{service=\"bpfwarden-watchdog\"} 1",
                             "bpfwarden_version_info{service=\"bpfwardend\",version=\"0.9.0\"} 1",
                             "bpfwarden_enforcing 0",
                             "bpfwarden_mode{mode=\"enforcing\"} 0",
                             "bpfwarden_mode{mode=\"degraded\"} 0",
                             "bpfwarden_mode{mode=\"audit-only\"} 1",
                             "bpfwarden_events_total 120",
                             "bpfwarden_denials_total 4",
                             "bpfwarden_audits_total 9",
                             "bpfwarden_events_dropped_total 1",
                             "bpfwarden_events_rate_limited_total 2",
                             "bpfwarden_denied_signals_suppressed_total 5",
                             "bpfwarden_tamper_attempts_total 6",
                             "bpfwarden_policy_generation 7",
                             "bpfwarden_policy_rules 12",
                             "bpfwarden_policy_warnings 2",
                             "bpfwarden_policy_bundle_version 12",
                             "bpfwarden_policy_source{source=\"policy directory\"} 1",
                             "bpfwarden_policy_source{source=\"last good policy\"} 0",
                             "bpfwarden_self_protection{state=\"not enforceable\"} 1",
                             "bpfwarden_programs 2",
                             "bpfwarden_programs_attached 1",
                             "bpfwarden_program_attached{program=\"bw_file_open\",hook=\"lsm/file_open\"} 0",
                             "bpfwarden_image_set_version 3",
                             "bpfwarden_watchdog_healthy 1",
                             "bpfwarden_checks_total 41",
                             "bpfwarden_heals_total 2",
                             "bpfwarden_heals_by_kind_total{kind=\"link-broken\"} 2",
                             "bpfwarden_heals_by_kind_total{kind=\"policy-map-drifted\"} 1",
                             "bpfwarden_watchdog_last_check_duration_seconds 0.00075",
                             "bpfwarden_watchdog_check_interval_seconds 5",
                             "bpfwarden_watchdog_last_check_timestamp_seconds 1764664312.25",
                             "bpfwarden_last_heal_duration_seconds 0.0125"})
        EXPECT_TRUE(has_sample(text, line)) << line << " missing from\n" << text;
}

TEST(MetricsExposition, AnUnknownModeIsAddedToTheStateSet) {
    auto e = enforcer_snapshot();
    e.mode = "something new";
    std::string text = bpfwarden_metrics({e, watchdog_status(), {}}).text();
    EXPECT_TRUE(has_sample(text, "bpfwarden_mode{mode=\"something new\"} 1")) << text;
    EXPECT_TRUE(has_sample(text, "bpfwarden_mode{mode=\"audit-only\"} 0")) << text;
}

TEST(MetricsExposition, AnUnreachableServiceIsUpZeroWithoutItsOtherMetrics) {
    MetricsReadings readings{
        std::unexpected(Error(0, "org.bpfwarden.Enforcer1 is not on the system bus")), watchdog_status(), {}};
    auto samples = samples_of(bpfwarden_metrics(readings).text());
    EXPECT_TRUE(has_sample(bpfwarden_metrics(readings).text(), "bpfwarden_up{service=\"bpfwardend\"} 0"));
    for (const char* name : {"bpfwarden_enforcing", "bpfwarden_mode", "bpfwarden_events_total",
                             "bpfwarden_denials_total", "bpfwarden_tamper_attempts_total",
                             "bpfwarden_policy_generation", "bpfwarden_programs", "bpfwarden_rule_hits_omitted"})
        EXPECT_EQ(samples.count(name), 0U) << name;
    EXPECT_EQ(samples.count("bpfwarden_checks_total"), 1U);
    EXPECT_EQ(samples.count("bpfwarden_version_info"), 1U);

    readings = {enforcer_snapshot(), std::unexpected(Error(0, "org.bpfwarden.Watchdog1 is not on the system bus")), {}};
    std::string text = bpfwarden_metrics(readings).text();
    samples = samples_of(text);
    EXPECT_TRUE(has_sample(text, "bpfwarden_up{service=\"bpfwarden-watchdog\"} 0"));
    EXPECT_TRUE(has_sample(text, "bpfwarden_up{service=\"bpfwardend\"} 1"));
    for (const char* name : {"bpfwarden_watchdog_healthy", "bpfwarden_checks_total", "bpfwarden_heals_total",
                             "bpfwarden_watchdog_last_check_timestamp_seconds"})
        EXPECT_EQ(samples.count(name), 0U) << name;
    EXPECT_EQ(samples.count("bpfwarden_events_total"), 1U);
}

TEST(MetricsExposition, NeitherServiceLeavesOnlyUp) {
    Error no_bus(ENOENT, "connect to the system bus");
    std::string text = bpfwarden_metrics({std::unexpected(no_bus), std::unexpected(no_bus), {}}).text();
    EXPECT_EQ(text, std::string(kMetricsHeader) +
                        "# HELP bpfwarden_up 1 when the service answered over D-Bus, 0 when it did not (its other "
                        "metrics are then left out)\n"
                        "# TYPE bpfwarden_up gauge\n"
                        "bpfwarden_up{service=\"bpfwardend\"} 0\n"
                        "bpfwarden_up{service=\"bpfwarden-watchdog\"} 0\n");
}

TEST(MetricsExposition, NoWatchdogTimesBeforeTheFirstCheckOrHeal) {
    auto w = watchdog_status();
    w.last_check_usec = 0;
    w.heal_count = 0;
    auto samples = samples_of(bpfwarden_metrics({enforcer_snapshot(), w, {}}).text());
    EXPECT_EQ(samples.count("bpfwarden_watchdog_last_check_timestamp_seconds"), 0U);
    EXPECT_EQ(samples.count("bpfwarden_last_heal_duration_seconds"), 0U);
    EXPECT_EQ(samples.count("bpfwarden_heals_total"), 1U);
}

TEST(MetricsExposition, RuleHitsAreNamedByListRulesWithTheirPathEscaped) {
    auto e = enforcer_snapshot();
    e.rule_hits = {{0, 12}, {3, 1}, {9, 4}};
    std::vector<dbus::RuleEntry> rules = {
        {0, "file", "/etc/shadow", "audit", "00-default.toml:56", true},
        {3, "exec", "/srv/odd \"name\"\\x", "deny", "50-local.toml:2", true},
        {4, "file", "/never/hit", "deny", "50-local.toml:6", true},
    };
    std::string text = bpfwarden_metrics({e, watchdog_status(), rules}).text();
    EXPECT_TRUE(has_sample(
        text, "bpfwarden_rule_hits_total{rule=\"0\",kind=\"file\",path=\"/etc/shadow\",action=\"audit\"} 12"))
        << text;
    EXPECT_TRUE(has_sample(
        text,
        "bpfwarden_rule_hits_total{rule=\"3\",kind=\"exec\",path=\"/srv/odd \\\"name\\\"\\\\x\",action=\"deny\"} 1"))
        << text;
    // Rule 9 is not in the list (the read raced an apply): left out and counted.
    EXPECT_EQ(samples_of(text).count("bpfwarden_rule_hits_total"), 2U);
    EXPECT_TRUE(has_sample(text, "bpfwarden_rule_hits_omitted 1")) << text;
}

TEST(MetricsExposition, WithoutListRulesNoRuleHitSeries) {
    auto e = enforcer_snapshot();
    e.rule_hits = {{0, 12}, {3, 1}};
    std::string text = bpfwarden_metrics({e, watchdog_status(), {}}).text();
    EXPECT_EQ(samples_of(text).count("bpfwarden_rule_hits_total"), 0U);
    EXPECT_TRUE(has_sample(text, "bpfwarden_rule_hits_omitted 2")) << text;
}

TEST(MetricsExposition, RuleHitSeriesAreCappedToTheMostHit) {
    auto e = enforcer_snapshot();
    std::vector<dbus::RuleEntry> rules;
    const uint32_t total = kMaxRuleHitSeries + 250;
    for (uint32_t id = 0; id < total; ++id) {
        rules.push_back({id, "file", "/srv/f" + std::to_string(id), "audit", "x.toml:1", true});
        e.rule_hits[id] = (id * 7919U) % total + 1;  // distinct, in no order
    }
    std::string text = bpfwarden_metrics({e, watchdog_status(), rules}).text();
    uint64_t smallest_kept = UINT64_MAX;
    size_t kept = 0;
    for (const auto& [name, line] : samples_of(text)) {
        if (name != "bpfwarden_rule_hits_total")
            continue;
        ++kept;
        smallest_kept = std::min<uint64_t>(smallest_kept, std::stoull(line.substr(line.rfind(' ') + 1)));
    }
    EXPECT_EQ(kept, kMaxRuleHitSeries);
    // Hits are a permutation of 1..total: the kept ones are the top kMaxRuleHitSeries.
    EXPECT_EQ(smallest_kept, total - kMaxRuleHitSeries + 1);
    EXPECT_TRUE(has_sample(text, "bpfwarden_rule_hits_omitted 250")) << text.substr(0, 400);
}

}  // namespace
}  // namespace bpfwarden::ctl
