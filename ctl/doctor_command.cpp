// doctor: the BPF hardening checklist, each finding with its fix.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.h"
#include "inspection/hardening_checks.h"
#include "support/command_line.h"
#include "support/text.h"

namespace bpfwarden::ctl {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDoctorDescription = R"(Checks this host against the BPF hardening checklist: BPF LSM active,
unprivileged bpf() off, the JIT on and hardened, kernel lockdown, BPF
statistics, bpffs, bpfwarden's pin directory, BTF, both services, the trusted
keys (and no build tree's development key among them), memory limits. One
line per check; each that is not ok is followed by its fix: the command, the
kernel command line parameter or the file to change. Changes nothing. Needs
no root: what it cannot read is reported as such.)";

// Widest severity word, "warning"/"failure", and a space.
constexpr int kSeverityWidth = 9;

// "Checks, in order: ..." wrapped as the rest of the help is.
std::string checks_paragraph() {
    std::string text = "Checks, in order:", line = text;
    for (size_t i = 0; i < hardening_check_ids().size(); ++i) {
        std::string word = " " + hardening_check_ids()[i] + (i + 1 < hardening_check_ids().size() ? "," : ".");
        if (line.size() + word.size() > 78) {
            text += "\n";
            line.clear();
            word.erase(0, 1);
        }
        text += word;
        line += word;
    }
    return text;
}

std::string doctor_footer() {
    return checks_paragraph() +
           "\n"
           "Exit status: 0 nothing worse than info; 1 the worst finding is a warning;\n"
           "3 the worst is a failure; 2 invalid arguments.";
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

size_t widest_id(const std::vector<HardeningFinding>& findings) {
    size_t widest = 0;
    for (const auto& finding : findings)
        widest = std::max(widest, finding.id.size());
    return widest;
}

void print_text(const std::vector<HardeningFinding>& findings) {
    const int id_width = static_cast<int>(widest_id(findings)) + 2;
    const std::string indent(static_cast<size_t>(kSeverityWidth), ' ');
    size_t counts[4] = {};
    for (const auto& finding : findings) {
        ++counts[static_cast<size_t>(finding.severity)];
        printf("%-*s%-*s%s\n", kSeverityWidth, std::string(to_string(finding.severity)).c_str(), id_width,
               finding.id.c_str(), finding.summary.c_str());
        const char* label = "fix: ";
        for (const auto& step : split_lines(finding.fix)) {
            printf("%s%s%s\n", indent.c_str(), label, step.c_str());
            label = "     ";
        }
    }
    auto counted = [](size_t n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); };
    printf("doctor: worst finding: %s (%s, %s, %zu info, %zu ok)\n",
           std::string(to_string(worst_severity(findings))).c_str(), counted(counts[3], "failure").c_str(),
           counted(counts[2], "warning").c_str(), counts[1], counts[0]);
}

void print_json(const std::vector<HardeningFinding>& findings) {
    std::string out = "{\"checks\":[";
    for (size_t i = 0; i < findings.size(); ++i) {
        const auto& finding = findings[i];
        out += std::string(i ? "," : "") + "{\"id\":" + json_quote(finding.id) +
               ",\"severity\":" + json_quote(to_string(finding.severity)) +
               ",\"summary\":" + json_quote(finding.summary) +
               ",\"fix\":" + (finding.fix.empty() ? "null" : json_quote(finding.fix)) + "}";
    }
    out += "],\"worst\":" + json_quote(to_string(worst_severity(findings))) + "}";
    puts(out.c_str());
}

bool is_running_system(const fs::path& root) {
    std::error_code ignored;
    return fs::weakly_canonical(root, ignored) == "/";
}

}  // namespace

int doctor(int argc, char** argv) {
    bool json = false;
    HardeningOptions options;
    CommandLine cli("bpfwardenctl doctor", "[--json] [--pin-root DIR] [--keys-dir DIR] [--root DIR]",
                    kDoctorDescription, doctor_footer());
    add_json(cli, json);
    add_pin_root(cli, options.pin_root);
    add_keys_dir(cli, options.keys_dir);
    cli.path("--root", options.root,
             "check the system under DIR (an offline image, a test tree) instead of this one; /proc, /sys, "
             "--pin-root and --keys-dir are read under it, systemd units are not checked")
        ->check(CLI::Validator(
            [](std::string& value) -> std::string {
                std::error_code ignored;
                if (fs::is_directory(value, ignored))
                    return {};
                return "'" + value + "' does not exist (or is not a directory)";
            },
            "", "existing directory"));
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;

    Systemctl systemctl;
    if (is_running_system(options.root)) {
        options.pin_root = fs::absolute(options.pin_root);
        options.keys_dir = fs::absolute(options.keys_dir);
        options.services = &systemctl;
    }
    auto findings = run_hardening_checks(options);
    if (json)
        print_json(findings);
    else
        print_text(findings);
    return doctor_exit_status(worst_severity(findings));
}

}  // namespace bpfwarden::ctl
