// metrics: both services' D-Bus properties as a Prometheus text exposition,
// on stdout or into node_exporter's textfile collector directory.

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "commands.h"
#include "metrics_exposition.h"
#include "status_client.h"
#include "support/atomic_file.h"
#include "support/command_line.h"

namespace bpfwarden::ctl {
namespace {

constexpr const char* kMetricsDescription =
    R"(Reads org.bpfwarden.Enforcer1 (bpfwardend) and org.bpfwarden.Watchdog1
(bpfwarden-watchdog) from the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured)
and prints their counters and state as a Prometheus text exposition: names
start with bpfwarden_, counters end in _total, every family has HELP and TYPE.
bpfwarden_up{service="..."} is 1 for a service that answered and 0 for one
that did not, whose other metrics are then left out. Needs no privileges.

For a fleet, node_exporter serves the file: its textfile collector exports
every *.prom file of one directory (Debian's prometheus-node-exporter:
/var/lib/prometheus/node-exporter) with the host's other metrics. The
bpfwarden-metrics.timer runs
  bpfwardenctl metrics --textfile /var/lib/prometheus/node-exporter/bpfwarden.prom
every 30 s (systemctl enable --now bpfwarden-metrics.timer; docs/FLEET.md).
--textfile replaces the file atomically (a temporary file in the same
directory, renamed over it), mode 0644, so that node_exporter never reads half
a file, and replaces only a file this command wrote.

--json is not available: the exposition is the machine-readable format
('bpfwardenctl status --json' has the same state as one JSON object).)";

constexpr const char* kMetricsFooter =
    R"(Exit status: 0 the exposition was printed or written, also when a service is
unreachable (that is bpfwarden_up 0); 1 it could not be written; 2 invalid
arguments.)";

// Both services' properties. RuleHits are named with ListRules only when both
// were read in one policy generation: rule ids name other rules after an apply.
MetricsReadings read_bus() {
    MetricsReadings readings;
    auto client = dbus::StatusClient::connect();
    if (!client) {
        readings.enforcer = std::unexpected(client.error());
        readings.watchdog = std::unexpected(client.error());
        return readings;
    }
    readings.enforcer = client->enforcer();
    if (readings.enforcer && !readings.enforcer->rule_hits.empty()) {
        auto rules = client->list_rules();
        auto after = rules ? client->enforcer() : Result<dbus::EnforcerSnapshot>(std::unexpected(rules.error()));
        if (after && after->policy_generation == readings.enforcer->policy_generation) {
            readings.enforcer = std::move(after);
            readings.rules = std::move(*rules);
        }
    }
    readings.watchdog = client->watchdog();
    return readings;
}

// What a --textfile may replace: a file this command wrote.
bool written_by_metrics(std::string_view existing) { return existing.starts_with(kMetricsHeader); }

// Why the directory of `textfile` cannot take it, or nullopt. Checked before
// the bus is read: a wrong path is a mistake of the caller's, not a metric.
std::optional<std::string> textfile_directory_problem(const std::filesystem::path& textfile) {
    auto dir = textfile.parent_path().empty() ? std::filesystem::path(".") : textfile.parent_path();
    struct stat st{};
    std::string problem;
    if (stat(dir.c_str(), &st) != 0)
        problem = errno == ENOENT ? "does not exist" : std::string("cannot be read: ") + strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        problem = "is not a directory";
    if (problem.empty())
        return std::nullopt;
    return "'" + dir.string() + "' " + problem +
           " (it must be node_exporter's textfile collector directory; Debian's prometheus-node-exporter creates "
           "/var/lib/prometheus/node-exporter)";
}

int write_textfile(const std::filesystem::path& textfile, const std::string& text) {
    if (auto written = write_file_atomically(textfile, text, 0644, written_by_metrics); !written) {
        fprintf(stderr, "bpfwardenctl metrics: %s\n", written.error().message().c_str());
        return 1;
    }
    return 0;
}

int write_stdout(const std::string& text) {
    if (fwrite(text.data(), 1, text.size(), stdout) != text.size() || fflush(stdout) != 0) {
        perror("bpfwardenctl metrics: write to standard output");
        return 1;
    }
    return 0;
}

}  // namespace

int metrics(int argc, char** argv) {
    std::filesystem::path textfile;
    bool json = false;
    CommandLine cli("bpfwardenctl metrics", "[--textfile PATH]", kMetricsDescription, kMetricsFooter);
    cli.path("--textfile", textfile, "write to PATH, a *.prom file in node_exporter's textfile directory", "PATH");
    cli.flag("--json", json, "not available: the exposition is the machine-readable format");
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    if (json)
        return cli.usage_error(
            "--json: not available for metrics: the Prometheus exposition is the machine-readable "
            "format ('bpfwardenctl status --json' gives the state as JSON)");
    if (!textfile.empty() && textfile.extension() != ".prom")
        return cli.usage_error("--textfile: '" + textfile.string() +
                               "' does not end in .prom: node_exporter's textfile collector reads only *.prom files");
    if (!textfile.empty())
        if (auto problem = textfile_directory_problem(textfile)) {
            fprintf(stderr, "bpfwardenctl metrics: --textfile: %s\n", problem->c_str());
            return 1;
        }

    MetricsReadings readings = read_bus();
    // The exposition says it with bpfwarden_up 0; the log says why.
    if (!readings.enforcer)
        fprintf(stderr, "bpfwardenctl metrics: bpfwardend unreachable: %s\n",
                readings.enforcer.error().message().c_str());
    if (!readings.watchdog)
        fprintf(stderr, "bpfwardenctl metrics: bpfwarden-watchdog unreachable: %s\n",
                readings.watchdog.error().message().c_str());
    std::string text = bpfwarden_metrics(readings).text();
    return textfile.empty() ? write_stdout(text) : write_textfile(textfile, text);
}

}  // namespace bpfwarden::ctl
