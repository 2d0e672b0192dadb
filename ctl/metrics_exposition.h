// What `bpfwardenctl metrics` writes: bpfwarden's D-Bus properties as a
// Prometheus text exposition (format 0.0.4), the format node_exporter's
// textfile collector reads. Pure functions of what was read, so that they are
// tested without a bus (tests/unit/metrics_exposition_test.cpp).
//
// Not OpenMetrics proper: the textfile collector parses the Prometheus text
// format, where a counter's TYPE line names the sample ("x_total"), and it
// refuses samples with timestamps, so there are none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "status_client.h"
#include "support/error.h"

namespace bpfwarden::ctl {

// The first line of every exposition: a comment Prometheus ignores, by which
// `metrics --textfile` recognises a file it may replace.
inline constexpr std::string_view kMetricsHeader = "# bpfwarden metrics, written by bpfwardenctl metrics\n";

// At most this many bpfwarden_rule_hits_total series: the rules with the most
// hits. A policy may hold 100 000 rules; a series per rule would swamp
// Prometheus.
inline constexpr size_t kMaxRuleHitSeries = 1000;

enum class MetricType { Counter, Gauge };

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Families in the order they were first added; each sample line follows its
// family's one HELP and one TYPE line. A family without samples is left out.
class MetricsExposition {
public:
    // Declares the family `name` on first use (with `type` and `help`) and adds a sample.
    void add(const std::string& name, MetricType type, const std::string& help, const MetricLabels& labels,
             uint64_t value);
    void add(const std::string& name, MetricType type, const std::string& help, const MetricLabels& labels,
             double value);

    // kMetricsHeader, then every family.
    std::string text() const;

private:
    struct Family {
        std::string name;
        MetricType type;
        std::string help;
        std::vector<std::string> samples;  // "{labels} value", or " value"
    };
    void add_sample(const std::string& name, MetricType type, const std::string& help, const MetricLabels& labels,
                    const std::string& value);

    std::vector<Family> families_;
    std::map<std::string, size_t, std::less<>> index_;
};

// A label value as the text format writes it: \ " and newline escaped.
std::string escape_label_value(std::string_view value);
// HELP text: \ and newline escaped.
std::string escape_help(std::string_view text);
// A sample value: integers exactly, other numbers in the shortest form that reads back the same.
std::string metric_value(double value);

// What `metrics` read from the bus. A service that did not answer is an
// error: its bpfwarden_up is 0 and none of its other metrics is written.
struct MetricsReadings {
    Result<dbus::EnforcerSnapshot> enforcer;
    Result<WatchdogStatus> watchdog;
    // ListRules, read in the same policy generation as enforcer's RuleHits,
    // to name the rules in bpfwarden_rule_hits_total; empty: no rule hit series.
    std::vector<dbus::RuleEntry> rules;
};

// Every bpfwarden metric of `readings`.
MetricsExposition bpfwarden_metrics(const MetricsReadings& readings);

}  // namespace bpfwarden::ctl
