// bpfwardenctl: the admin's command-line tool.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "commands.h"
#include "support/command_line.h"
#include "support/installed_paths.h"

namespace {

constexpr const char* kUsage = R"(Usage: bpfwardenctl COMMAND [OPTIONS]

Status:
  status            bpfwardend and the watchdog over D-Bus, in one summary
  metrics           counters and state for Prometheus (node_exporter's textfile collector)
  doctor            the BPF hardening checklist, each finding with its fix (exit 1 warning, 3 failure)

Events:
  events            denials, audits and tamper attempts from the journal, filtered; --follow

Policy:
  policy check      validate a policy directory or file (no root, no daemon needed)
  policy show       the rules bpfwardend enforces now, each with its state
  policy diff       what applying a policy directory would change (exit 1: it differs)
  policy apply      check bpfwardend's policy directory, then have bpfwardend reload it

Incident response:
  inventory         every BPF program, link and map on the host, and whose each is (--unknown: exit 1 if any)
  contain           detach and unpin one foreign BPF program, then say what still holds it

Ending enforcement:
  unpin             remove bpfwarden's pins (and nothing else), after checking the target

Self-protection:
  unlock            make a signed, expiring, single-use token, or lift protection with one

Signed images:
  keygen            create an Ed25519 signing key pair
  sign              write and sign the manifest of a directory of BPF images
  verify            check a manifest, its signature and its images
  allow-downgrade   let an older signed image set be accepted (anti-rollback)

Run 'bpfwardenctl COMMAND --help' for a command's options.
Exit status: 0 success, 1 failure (status: degraded or unreachable), 2 invalid arguments.
)";

struct Command {
    const char* name;
    int (*run)(int, char**);
};

constexpr Command kCommands[] = {
    {"status", bpfwarden::ctl::status},   {"unpin", bpfwarden::ctl::unpin},
    {"keygen", bpfwarden::ctl::keygen},   {"sign", bpfwarden::ctl::sign},
    {"verify", bpfwarden::ctl::verify},   {"allow-downgrade", bpfwarden::ctl::allow_downgrade},
    {"unlock", bpfwarden::ctl::unlock},   {"policy", bpfwarden::ctl::policy},
    {"metrics", bpfwarden::ctl::metrics}, {"events", bpfwarden::ctl::events},
    {"doctor", bpfwarden::ctl::doctor},   {"inventory", bpfwarden::ctl::inventory},
    {"contain", bpfwarden::ctl::contain},
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        fputs(kUsage, stderr);
        return 2;
    }
    std::string_view name = argv[1];
    if (name == "-h" || name == "--help" || name == "help") {
        fputs(kUsage, stdout);
        return 0;
    }
    if (name == "--version") {
        printf("bpfwardenctl %s\n", bpfwarden::installed::kVersion);
        return 0;
    }
    for (const auto& command : kCommands)
        if (name == command.name)
            return command.run(argc - 1, argv + 1);
    std::string suggestion;
    for (const auto& command : kCommands)
        if (std::string_view(command.name).starts_with(name.substr(0, 3)))
            suggestion = std::string(" (did you mean '") + command.name + "'?)";
    fprintf(stderr, "bpfwardenctl: unknown command '%s'%s\nTry 'bpfwardenctl --help'.\n", argv[1], suggestion.c_str());
    return 2;
}
