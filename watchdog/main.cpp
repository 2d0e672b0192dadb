// bpfwarden-watchdog: keeps bpfwarden's pinned programs loaded, attached,
// unmodified and fed with the right policy, healing any drift from the signed
// images, whether or not bpfwardend is running.
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <systemd/sd-daemon.h>

#include "bus_connection.h"
#include "check_scheduler.h"
#include "inventory_watch.h"
#include "loading/pin_removal.h"
#include "names.h"
#include "supervisor.h"
#include "support/atomic_file.h"
#include "support/command_line.h"
#include "support/installed_paths.h"
#include "support/log.h"
#include "support/service_loop.h"
#include "support/text.h"
#include "support/unique_fd.h"
#include "triggers.h"
#include "watchdog_bus.h"

using namespace bpfwarden;

namespace {

constexpr const char* kDescription = R"(Verifies bpfwarden's pinned BPF programs every interval, and at once when
something touches the pin directory or a bpf() command could have changed
them: each program still pinned, attached and unmodified (its tag against one
derived from the signed images), each policy map holding exactly the desired
policy, and the canary file really denied. Drift is healed from the signed
images: the new program is attached and pinned before the old one is
dropped, so enforcement never lapses.)";

constexpr const char* kFooter = R"(--check verifies once and prints the state as JSON, changing nothing: it
attaches, pins and writes nothing and heals nothing (to know the expected
program tags it loads the signed images into the kernel without attaching
them; they are gone when it exits). --once does the same check but heals what
it finds, like the service.

D-Bus: serves org.bpfwarden.Watchdog1 on the system bus (DBUS_SYSTEM_BUS_ADDRESS
is honoured); see docs/DBUS.md. Without a system bus it logs one warning, keeps
checking and retries every 10 s.

Under systemd (Type=notify) it reports readiness and sends WATCHDOG=1 after
every check, so a hung watchdog is restarted.

Exit status: 0 success (--check, --once: healthy); 1 runtime failure
(--check, --once: unhealthy); 2 invalid arguments; 3 (--check) nothing to
check: no bpfwarden pins under the pin root.)";

struct CommandLineOptions {
    WatchdogOptions options;
    unsigned interval_ms = 1000;
    std::filesystem::path status_file;
    bool once = false;
    bool check = false;
    bool no_dbus = false;
    bool verbose = false;
    unsigned inventory_interval = 60;
    std::filesystem::path inventory_allowlist;
    LogTarget log_target = LogTarget::Auto;
};

std::optional<int> parse_args(int argc, char** argv, CommandLineOptions& cmd) {
    WatchdogOptions& o = cmd.options;
    o.service.daemon_exe = installed::kDaemonExe;
    o.service.watchdog_exe = installed::kWatchdogExe;
    o.service.canary = installed::kCanary;
    CommandLine cli("bpfwarden-watchdog", "[OPTIONS]", kDescription, kFooter);
    cli.number<unsigned>("--interval-ms", cmd.interval_ms, 10, 3600000, "verification interval in milliseconds");
    add_policy_dir(cli, o.policy_dir);
    add_image_dir(cli, o.trust.image_dir);
    add_keys_dir(cli, o.trust.keys_dir);
    add_state_dir(cli, o.trust.state_dir);
    add_require_signed_policy(cli, o.require_signed_policy);
    std::filesystem::path pin_root;
    add_pin_root(cli, pin_root);
    cli.path("--daemon-exe", o.service.daemon_exe, "bpfwardend as installed", "FILE");
    cli.path("--watchdog-exe", o.service.watchdog_exe, "this program as installed", "FILE");
    cli.path("--canary", o.service.canary, "always-denied canary file", "FILE");
    cli.path("--status-file", cmd.status_file, "write the state as JSON after every check", "FILE");
    cli.flag("--require-enforcement", o.require_enforcement,
             "expect BPF LSM enforcement even where the probe says it cannot work");
    auto* once = cli.flag("--once", cmd.once, "one check that heals what it finds; print the state as JSON");
    auto* check = cli.flag("--check", cmd.check, "one read-only check (changes nothing); print the state as JSON");
    cli.exclusive(once, check);
    cli.flag("--no-dbus", cmd.no_dbus, "do not serve org.bpfwarden.Watchdog1 on the system bus");
    cli.number<unsigned>("--inventory-interval", cmd.inventory_interval, 0, 86400,
                         "look for unknown BPF programs every S seconds, and soon after every program load; 0: only "
                         "after loads",
                         "S");
    cmd.inventory_allowlist = std::filesystem::path(installed::kPolicyDir).parent_path() / "inventory.toml";
    cli.path("--inventory-allowlist", cmd.inventory_allowlist,
             "programs the admin expects (bpfwardenctl inventory --help); a missing file allows none", "FILE");
    add_logging(cli, cmd.log_target, cmd.verbose);
    if (auto exit_status = cli.parse(argc, argv))
        return exit_status;
    o.pins = PinLayout(pin_root);
    o.read_only = cmd.check;
    return std::nullopt;
}

// --check and --once: one cycle, the state as JSON on stdout.
int check_once(const CommandLineOptions& cmd, Supervisor& supervisor) {
    if (cmd.check) {
        if (!has_own_pins(cmd.options.pins)) {
            log_error("nothing to check: no bpfwarden pins under '" + cmd.options.pins.root().string() + "'");
            return 3;
        }
        supervisor.check_only("--check");
    } else {
        supervisor.run_cycle("--once");
        std::filesystem::path status_file = cmd.status_file;
        write_status_file(status_file, supervisor.state());
    }
    puts(to_json(supervisor.state()).c_str());
    return supervisor.state().healthy ? 0 : 1;
}

// The watchdog's triggers beside the interval: changes under the pin root and
// in the policy directory, and the bpf() tripwire.
class Triggers {
public:
    Triggers(boost::asio::io_context& io, const CommandLineOptions& cmd, Supervisor& supervisor,
             CheckScheduler& scheduler, InventoryWatch& inventory)
        : supervisor_(supervisor) {
        watch_pins(io, cmd.options.pins, scheduler);
        follow_policy(io, cmd.options.policy_dir, scheduler);
        arm_tripwire(io, cmd.options.trust, scheduler, inventory);
    }

    // Recompiles the desired policy; true when it changed.
    bool recompile_policy(const std::string& why) {
        auto reloaded = supervisor_.reload_policy();
        if (!reloaded)
            log_error(reloaded.error().message() + "; keeping the previous desired policy");
        else if (*reloaded)
            log_notice("policy: " + why + ", desired policy recompiled");
        return reloaded && *reloaded;
    }

private:
    void watch_pins(boost::asio::io_context& io, const PinLayout& pins, CheckScheduler& scheduler) {
        auto watch = DirectoryWatch::open(io, {pins.root(), pins.links_dir(), pins.maps_dir()}, "pin directory",
                                          [&scheduler](const std::string& why) { scheduler.check_soon(why); });
        if (!watch) {
            log_warning("pin directory watch unavailable (" + watch.error().message() + "); checking on the interval");
            return;
        }
        pin_watch_ = std::move(*watch);
        scheduler.on_healed([this] { pin_watch_->rewatch(); });  // a heal may have made the directories anew
    }

    void follow_policy(boost::asio::io_context& io, const std::filesystem::path& dir, CheckScheduler& scheduler) {
        auto watch = DirectoryWatch::open(io, {dir}, "policy directory", [this, &scheduler](const std::string& why) {
            if (recompile_policy(why))
                scheduler.check_soon(why);
        });
        if (!watch) {
            log_warning("policy directory watch unavailable: " + watch.error().message());
            return;
        }
        policy_watch_ = std::move(*watch);
        // A directory replaced while unwatched: catch up before checking the maps against it.
        scheduler.before_check([this] {
            if (policy_watch_->rewatch())
                recompile_policy("policy directory replaced");
        });
    }

    void arm_tripwire(boost::asio::io_context& io, const ImageTrust& trust, CheckScheduler& scheduler,
                      InventoryWatch& inventory) {
        auto images = VerifiedImageSet::open(trust);
        auto image = images ? images->image("tamper_watch") : Result<const BpfImage*>(std::unexpected(images.error()));
        auto watch = image ? TamperWatch::open(
                                 io, **image, [&scheduler](const std::string& why) { scheduler.check_soon(why); },
                                 [&inventory](const std::string& why) { inventory.scan_soon(why); })
                           : Result<std::unique_ptr<TamperWatch>>(std::unexpected(image.error()));
        if (!watch) {
            log_warning("tamper tripwire unavailable (" + watch.error().message() + "); checking on the interval");
            return;
        }
        tamper_ = std::move(*watch);
        log_info(std::string("tamper tripwire: ") + tamper_->form_name());
        supervisor_.set_map_change_counter([watch = tamper_.get()] { return watch->watched_calls(); });
    }

    Supervisor& supervisor_;
    std::unique_ptr<DirectoryWatch> pin_watch_, policy_watch_;
    std::unique_ptr<TamperWatch> tamper_;
};

// Said in the journal (BPFWARDEN_UNKNOWN_PROGRAM=id) and as the D-Bus UnknownProgram signal.
void report_unknown_program(const ProgramRecord& program, const std::string& why, WatchdogBus* bus) {
    std::string holders;
    for (const auto& holder : program.holders)
        holders += (holders.empty() ? "" : ", ") + holder.describe();
    std::string detail = program.pins.empty() ? "" : "pinned at " + program.pins.front();
    if (!holders.empty())
        detail += (detail.empty() ? "held by " : "; held by ") + holders;
    log(LogLevel::Warning,
        "inventory: unknown BPF program " + std::to_string(program.id) + " '" + sanitize_field(program.name, 64) +
            "' (" + program_type_name(program.type) + ", tag " + program.tag + ")" +
            (detail.empty() ? "" : ", " + detail) + " [" + why + "]; bpfwardenctl inventory --unknown, contain " +
            std::to_string(program.id),
        {{"BPFWARDEN_UNKNOWN_PROGRAM", std::to_string(program.id)}});
    if (bus)
        bus->object().unknown_program(program.id, program.name, program_type_name(program.type), program.tag, detail);
}

int serve(const CommandLineOptions& cmd, Supervisor& supervisor) {
    boost::asio::io_context io;
    supervisor.set_check_interval(std::chrono::milliseconds(cmd.interval_ms));
    CheckScheduler scheduler(io, supervisor, std::chrono::milliseconds(cmd.interval_ms), cmd.status_file);
    std::optional<dbus::BusConnection> bus;
    std::optional<WatchdogBus> watchdog_bus;
    if (!cmd.no_dbus) {
        bus.emplace(io, dbus::kWatchdogBusName, dbus::BusConnection::logger("checking"));
        watchdog_bus.emplace(*bus, supervisor, scheduler);
    }
    InventoryWatch inventory(
        io,
        OwnSide{cmd.options.pins.root(),
                {"/proc/self/exe", cmd.options.service.daemon_exe, cmd.options.service.watchdog_exe}},
        cmd.inventory_allowlist, std::chrono::seconds(cmd.inventory_interval),
        [&watchdog_bus](const ProgramRecord& program, const std::string& why) {
            report_unknown_program(program, why, watchdog_bus ? &*watchdog_bus : nullptr);
        });
    Triggers triggers(io, cmd, supervisor, scheduler, inventory);
    ServiceSignals signals(
        io,
        [&] {
            triggers.recompile_policy("SIGHUP");
            scheduler.check_soon("SIGHUP");
        },
        [&](int signo) {
            log_notice("stopping on signal " + std::to_string(signo) + " after " +
                       std::to_string(supervisor.state().checks) + " checks and " +
                       std::to_string(supervisor.state().heal_count) + " heals");
            io.stop();
        });

    scheduler.check("start");
    if (bus)
        bus->start();  // after the first check, so that the first reader sees a real state
    sd_notify(0, "READY=1");
    log_notice("ready: checking every " + std::to_string(cmd.interval_ms) + " ms");
    scheduler.start();
    io.run();
    return 0;
}

int run(const CommandLineOptions& cmd) {
    Supervisor supervisor(cmd.options);
    if (auto started = supervisor.start(); !started) {
        log_error(started.error().message() + "; cannot know the expected state, nothing was changed");
        return 1;
    }
    log_notice("expecting " + supervisor.state().mode + " (" + supervisor.state().mode_reason +
               "), image-set version " + std::to_string(supervisor.state().image_set_version));
    if (cmd.check || cmd.once)
        return check_once(cmd, supervisor);
    return serve(cmd, supervisor);
}

}  // namespace

int main(int argc, char** argv) {
    CommandLineOptions cmd;
    if (auto exit_status = parse_args(argc, argv, cmd))
        return *exit_status;
    init_process_logging("bpfwarden-watchdog", cmd.log_target, cmd.verbose);
    return run(cmd);
}
