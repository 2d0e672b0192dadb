#include "unpin_command.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <systemd/sd-bus.h>
#include <thread>
#include <vector>

#include "commands.h"
#include "loading/pin_removal.h"
#include "support/command_line.h"
#include "support/event.h"

namespace bpfwarden::ctl {
namespace {

constexpr const char* kWatchdogUnit = "bpfwarden-watchdog.service";

const char* const kExplanationText = R"(Removes bpfwarden's pins under the pin root, and only those: the root must be on
bpffs and hold bpfwarden's layout (links/, maps/ with pins of the names
bpfwarden creates). Anything else there is left in place and listed; a
directory is removed only when that leaves it empty. A running
bpfwarden-watchdog would restore the pins at once: unpin refuses while it runs,
unless --stop-watchdog stops bpfwarden-watchdog.service first. Asks before
removing anything unless --yes. Afterwards it reports what still enforces: a
program whose pin is gone stays attached while a process (bpfwardend) holds it.)";

struct WatchdogProcess {
    BpfHolder holder;
    bool under_systemd = false;  // in bpfwarden-watchdog.service's cgroup
};

// The watchdog holds every link it verified: find it among the holders.
std::optional<WatchdogProcess> running_watchdog(const PinInventory& inventory) {
    for (const auto& program : attached_programs(inventory))
        for (const auto& holder : program.held_by) {
            if (std::filesystem::path(holder.exe).filename() != "bpfwarden-watchdog")
                continue;
            std::ifstream cgroup("/proc/" + std::to_string(holder.pid) + "/cgroup");
            std::string line;
            bool systemd = false;
            while (std::getline(cgroup, line))
                systemd |= line.ends_with(std::string("/") + kWatchdogUnit);
            return WatchdogProcess{holder, systemd};
        }
    return std::nullopt;
}

// systemctl stop, over the system bus; waits until the process is gone.
Result<void> stop_watchdog_unit(pid_t pid) {
    sd_bus* raw = nullptr;
    int r = sd_bus_open_system(&raw);
    if (r < 0)
        return fail_system(-r, "connect to the system bus to stop " + std::string(kWatchdogUnit));
    std::unique_ptr<sd_bus, decltype(&sd_bus_flush_close_unref)> bus(raw, sd_bus_flush_close_unref);
    sd_bus_error error = SD_BUS_ERROR_NULL;
    r = sd_bus_call_method(bus.get(), "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                           "org.freedesktop.systemd1.Manager", "StopUnit", &error, nullptr, "ss", kWatchdogUnit,
                           "replace");
    std::string detail = error.message ? error.message : "";
    sd_bus_error_free(&error);
    if (r < 0)
        return fail(EIO, "stop " + std::string(kWatchdogUnit) + ": " + detail);
    for (int waited = 0; waited < 200 && kill(pid, 0) == 0; ++waited)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (kill(pid, 0) == 0)
        return fail(ETIMEDOUT, std::string(kWatchdogUnit) + " was asked to stop, but pid " + std::to_string(pid) +
                                   " still runs after 10 s");
    return {};
}

// Refuses while a watchdog runs that unpin may not stop; otherwise returns
// the one to stop (if any).
Result<std::optional<WatchdogProcess>> check_watchdog(const PinInventory& inventory, const UnpinOptions& options) {
    auto watchdog = running_watchdog(inventory);
    if (!watchdog)
        return std::optional<WatchdogProcess>();
    const std::string who = "bpfwarden-watchdog (" + watchdog->holder.describe() + ")";
    if (!options.stop_watchdog)
        return fail(EBUSY, who + " is running and would restore the pins at once: stop it first ('systemctl stop " +
                               kWatchdogUnit + "'), or run again with --stop-watchdog");
    if (!watchdog->under_systemd)
        return fail(EBUSY, who + " is not run by systemd as " + kWatchdogUnit + ", so --stop-watchdog cannot stop " +
                               "it: stop that process yourself, then run unpin again");
    return watchdog;
}

bool confirmed(const PinInventory& inventory, const UnpinOptions& options, const std::string& program) {
    if (options.yes)
        return true;
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "%s: refusing to remove pins without confirmation: run again with --yes\n", program.c_str());
        return false;
    }
    printf("This removes %zu bpfwarden pins under %s and ends enforcement by them.\nContinue? [y/N] ",
           inventory.own.size(), inventory.pins.root().c_str());
    fflush(stdout);
    std::string answer;
    std::getline(std::cin, answer);
    return answer == "y" || answer == "Y" || answer == "yes";
}

std::string holders_text(const std::vector<BpfHolder>& holders) {
    if (holders.empty())
        return "no process holds it (pinned elsewhere?)";
    std::string out = "held by ";
    for (size_t i = 0; i < holders.size(); ++i)
        out += (i ? ", " : "") + holders[i].describe();
    return out;
}

void print_text(const PinRemovalReport& report, const PinInventory& inventory, bool watchdog_stopped) {
    if (watchdog_stopped)
        printf("stopped %s\n", kWatchdogUnit);
    printf("removed %zu bpfwarden pins under %s%s\n", report.removed.size(), inventory.pins.root().c_str(),
           report.root_removed ? ", and the pin directories" : "");
    for (const auto& left : report.left)
        printf("left: %s\n", left.c_str());
    if (report.still_attached.empty()) {
        printf("enforcement: ended (no bpfwarden program is attached any more)\n");
        return;
    }
    printf("enforcement: continues while these stay attached:\n");
    for (const auto& program : report.still_attached)
        printf("  %s (link %u): %s\n", program.program.c_str(), program.link_id,
               program.detaching ? "its link is gone; the kernel has not finished detaching it"
                                 : holders_text(program.held_by).c_str());
}

void print_json(const PinRemovalReport& report, const PinInventory& inventory, bool watchdog_stopped) {
    std::string out = "{\"pin_root\":" + json_quote(inventory.pins.root().string()) +
                      ",\"watchdog_stopped\":" + (watchdog_stopped ? "true" : "false") + ",\"removed\":[";
    for (size_t i = 0; i < report.removed.size(); ++i)
        out += (i ? "," : "") + json_quote(report.removed[i].string());
    out += "],\"left\":[";
    for (size_t i = 0; i < report.left.size(); ++i)
        out += (i ? "," : "") + json_quote(report.left[i]);
    out += "],\"root_removed\":" + std::string(report.root_removed ? "true" : "false") + ",\"still_attached\":[";
    for (size_t i = 0; i < report.still_attached.size(); ++i) {
        const auto& program = report.still_attached[i];
        out += std::string(i ? "," : "") + "{\"program\":" + json_quote(program.program) +
               ",\"link_id\":" + std::to_string(program.link_id) + ",\"held_by\":[";
        for (size_t h = 0; h < program.held_by.size(); ++h)
            out += std::string(h ? "," : "") + "{\"pid\":" + std::to_string(program.held_by[h].pid) +
                   ",\"comm\":" + json_quote(program.held_by[h].comm) + "}";
        out += "]}";
    }
    out += "],\"enforcement_ended\":" + std::string(report.still_attached.empty() ? "true" : "false") + "}";
    puts(out.c_str());
}

}  // namespace

const char* const kUnpinExplanation = kExplanationText;

int run_unpin(const UnpinOptions& options, const std::string& program) {
    auto refuse = [&](const Error& error) {
        fprintf(stderr, "%s: %s; nothing was removed\n", program.c_str(), error.message().c_str());
        return 1;
    };
    auto inventory = take_pin_inventory(PinLayout(options.pin_root));
    if (!inventory)
        return refuse(inventory.error());
    auto watchdog = check_watchdog(*inventory, options);
    if (!watchdog)
        return refuse(watchdog.error());
    if (!confirmed(*inventory, options, program))
        return 1;
    const std::optional<WatchdogProcess>& running = *watchdog;
    if (running)
        if (auto stopped = stop_watchdog_unit(running->holder.pid); !stopped)
            return refuse(stopped.error());
    PinRemovalReport report = remove_own_pins(*inventory);
    if (options.json)
        print_json(report, *inventory, running.has_value());
    else
        print_text(report, *inventory, running.has_value());
    bool all_removed = report.removed.size() == inventory->own.size();
    return all_removed ? 0 : 1;
}

int unpin(int argc, char** argv) {
    UnpinOptions options;
    CommandLine cli("bpfwardenctl unpin", "[--pin-root DIR] [--yes] [--stop-watchdog] [--json]", kUnpinExplanation,
                    "Exit status: 0 the pins were removed (the report says whether anything still\n"
                    "enforces), 1 refused or failed (nothing that is not bpfwarden's was touched),\n"
                    "2 invalid arguments.");
    add_pin_root(cli, options.pin_root);
    cli.flag("-y,--yes", options.yes, "do not ask for confirmation");
    cli.flag("--stop-watchdog", options.stop_watchdog, "stop bpfwarden-watchdog.service first (systemctl stop)");
    add_json(cli, options.json);
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    return run_unpin(options, "bpfwardenctl unpin");
}

}  // namespace bpfwarden::ctl
