// bpfwardend: loads bpfwarden's BPF programs, pins them, keeps the policy
// maps in line with /etc/bpfwarden/policy.d and logs what the programs report.
#include <bpf/libbpf.h>
#include <linux/capability.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <systemd/sd-daemon.h>

#include "bus_connection.h"
#include "enforcer_bus.h"
#include "enforcer_service.h"
#include "loading/ring_buffer_reader.h"
#include "names.h"
#include "support/capabilities.h"
#include "support/command_line.h"
#include "support/directory_watch.h"
#include "support/installed_paths.h"
#include "support/log.h"
#include "support/self_monitor.h"
#include "support/service_loop.h"
#include "unpin_command.h"

using namespace bpfwarden;

namespace {

// The policy warnings logged last (at start or by the last apply).
std::set<std::string> logged_policy_warnings;

constexpr const char* kDescription = R"(Loads bpfwarden's BPF programs (BPF LSM enforcement where the kernel allows it,
tracepoint audit everywhere), pins them under the pin root so they keep
enforcing when this process exits, applies the policy directory, and logs
every denial and audit event.)";

constexpr const char* kFooter = R"(D-Bus: serves org.bpfwarden.Enforcer1 on the system bus (DBUS_SYSTEM_BUS_ADDRESS
is honoured); see docs/DBUS.md. Without a system bus it logs one warning, keeps
enforcing and retries every 10 s.

Policy edits: a change to the policy directory is applied on its own once the
directory has been quiet for 0.2 s; SIGHUP (or ReloadPolicy) re-reads it at
once. An invalid policy is refused with file and line, and the running one stays.

Signals: SIGHUP re-reads the policy directory; SIGTERM/SIGINT exit and leave the
pinned programs enforcing.

--unpin is an alias of 'bpfwardenctl unpin': it removes bpfwarden's pins and
nothing else, refuses a target that is not bpfwarden's pin root, refuses while
bpfwarden-watchdog runs, and asks before removing anything unless --yes.

Exit status: 0 success, 1 runtime failure, 2 invalid arguments or policy.)";

struct CommandLineOptions {
    EnforcerOptions enforcer;
    bool unpin = false;
    bool yes = false;
    bool exit_after_setup = false;
    bool verbose = false;
    bool no_dbus = false;
    unsigned stats_interval = 60;
    unsigned monitor_interval = 10;
    SelfMonitorLimits self_limits;
    uint64_t warn_memory_mib = 64;
    LogTarget log_target = LogTarget::Auto;
};

std::optional<int> parse_args(int argc, char** argv, CommandLineOptions& cmd) {
    EnforcerOptions& e = cmd.enforcer;
    e.service.daemon_exe = installed::kDaemonExe;
    e.service.watchdog_exe = installed::kWatchdogExe;
    e.service.canary = installed::kCanary;
    CommandLine cli("bpfwardend", "[OPTIONS]", kDescription, kFooter);
    add_policy_dir(cli, e.policy_dir);
    add_image_dir(cli, e.trust.image_dir);
    add_keys_dir(cli, e.trust.keys_dir);
    add_state_dir(cli, e.trust.state_dir);
    add_require_signed_policy(cli, e.require_signed_policy);
    cli.path("--daemon-exe", e.service.daemon_exe,
             "bpfwardend as installed (admitted as bpfwarden when systemd starts it)", "FILE");
    cli.path("--watchdog-exe", e.service.watchdog_exe, "bpfwarden-watchdog as installed (likewise)", "FILE");
    cli.path("--canary", e.service.canary, "the watchdog's canary, always denied", "FILE");
    std::filesystem::path pin_root;
    add_pin_root(cli, pin_root);
    cli.flag("--audit-only", e.audit_only, "do not try BPF LSM; run the tracepoint audit only");
    cli.flag("--json", e.json_events,
             "log events to stderr as JSON objects instead of text (the journal always gets both: MESSAGE and "
             "BPFWARDEN_JSON)");
    cli.number<uint32_t>("--rate-limit", e.load.rate_limit_burst, 1, 1000000,
                         "rule-match events (deny, audit, tamper) per second each process may cause");
    cli.number<uint32_t>("--trail-rate-limit", e.load.trail_limit_burst, 1, 1000000,
                         "audit-trail events (exec, bpf() calls) per second each uid may cause");
    cli.number<unsigned>("--stats-interval", cmd.stats_interval, 0, 86400, "log counters every S seconds, 0: never",
                         "S");
    cli.number<unsigned>("--monitor-interval", cmd.monitor_interval, 0, 3600,
                         "check the event rate, dropped events and own memory every S seconds, 0: never", "S");
    cli.number<uint64_t>("--warn-event-rate", cmd.self_limits.max_events_per_second, 1, 100000000,
                         "warn (journal, SelfWarning signal) when events pass N a second");
    cli.number<uint64_t>("--warn-memory-mib", cmd.warn_memory_mib, 1, 1048576,
                         "warn (journal, SelfWarning signal) when bpfwardend's resident memory passes N MiB");
    auto* setup_only = cli.flag("--exit-after-setup", cmd.exit_after_setup,
                                "load, pin and apply the policy, then exit (pins keep enforcing)");
    auto* unpin = cli.flag("--unpin", cmd.unpin, "remove bpfwarden's pins (ends enforcement) and exit; see below");
    cli.flag("-y,--yes", cmd.yes, "with --unpin: do not ask for confirmation");
    cli.exclusive(setup_only, unpin);
    cli.flag("--no-dbus", cmd.no_dbus, "do not serve org.bpfwarden.Enforcer1 on the system bus");
    add_logging(cli, cmd.log_target, cmd.verbose);
    if (auto exit_status = cli.parse(argc, argv))
        return exit_status;
    e.pin_root = pin_root;
    cmd.self_limits.max_rss_bytes = cmd.warn_memory_mib << 20;
    return std::nullopt;
}

void report_objects(const EnforcerService& service) {
    for (const auto& state : service.objects()) {
        std::string what = std::string(state.spec->name) + " (" + state.spec->what + "): ";
        switch (state.origin) {
        case ObjectState::Origin::Loaded: log_info(what + "loaded and pinned"); break;
        case ObjectState::Origin::Adopted: log_info(what + "adopted existing pins"); break;
        case ObjectState::Origin::Skipped: log_notice(what + "not loaded (" + state.detail + ")"); break;
        case ObjectState::Origin::Failed: log_error(what + "failed: " + state.detail); break;
        }
    }
}

void report_policy(const EnforcerService& service) {
    const auto& policy = service.policy();
    const RuleTables& tables = policy.tables;
    log_info("policy: " + std::to_string(policy.rules.size()) + " rules from the " +
             std::string(to_string(service.policy_source())) + ": " + std::to_string(tables.file_rules.size()) +
             " file, " + std::to_string(tables.exec_rules.size()) + " exec, " + std::to_string(tables.dirents.size()) +
             " name and " + std::to_string(tables.dir_rules.size()) + " directory entries; self-protection " +
             (tables.settings.protect ? "on" : "off"));
    if (const auto& problem = service.policy_problem())
        log_error("policy: NOT the policy directory's: " + problem->message() + "; enforcing the " +
                  std::string(to_string(service.policy_source())) + " until the directory is fixed");
    for (const auto& warning : policy.warnings)
        log_warning("policy: " + warning);
    logged_policy_warnings = {policy.warnings.begin(), policy.warnings.end()};
}

void report_setup(const EnforcerService& service) {
    if (service.image_set_version())
        log_info("images: signed image-set version " + std::to_string(service.image_set_version()) + " verified");
    log_notice(std::string("mode: ") + std::string(to_string(service.mode())) + " (" + service.mode_reason() + ")");
    report_objects(service);
    report_policy(service);
}

// Long enough for a save that writes several files (or an editor's
// write-and-rename) to land as one change.
constexpr auto kPolicyEditSettle = std::chrono::milliseconds(200);

// The one log line for every policy applied after start, and its warnings.
// A re-resolution repeats only new warnings: a file replaced every second
// must not repeat every inactive rule every second.
void log_policy_applied(const PolicyApplied& applied) {
    log_notice("policy: " + applied.what + " (" + std::to_string(applied.rules) + " rules, generation " +
               std::to_string(applied.generation) + (applied.detail.empty() ? "" : "; " + applied.detail) + ")");
    bool re_resolution = applied.what == EnforcerService::kReResolved;
    for (const auto& warning : applied.warnings)
        if (!re_resolution || !logged_policy_warnings.contains(warning))
            log_warning("policy: " + warning);
    logged_policy_warnings = {applied.warnings.begin(), applied.warnings.end()};
}

// Applies edits of the policy directory as they are saved, as the watchdog
// does, so the generation and ListRules always describe what the maps enforce.
std::unique_ptr<DirectoryWatch> follow_policy_directory(boost::asio::io_context& io, EnforcerService& service,
                                                        const std::filesystem::path& dir) {
    auto last_error = std::make_shared<std::string>();
    auto on_edit = [&service, last_error](const std::string& why) {
        auto applied =
            service.apply_policy({"applied the edited policy directory", why, "policy directory edited", true});
        if (applied) {
            last_error->clear();
        } else if (applied.error().message() != *last_error) {  // e.g. an editor's swap file: say it once
            log_error(why + ": " + applied.error().message() + "; keeping the running policy");
            *last_error = applied.error().message();
        }
    };
    auto watch = DirectoryWatch::open(io, {dir}, "policy directory", on_edit, kPolicyEditSettle);
    if (!watch) {
        log_warning("policy directory watch unavailable (" + watch.error().message() +
                    "); edits apply on SIGHUP or ReloadPolicy only");
        return nullptr;
    }
    return std::move(*watch);
}

// A rule keeps covering whatever file sits at its path (the kernel checks
// the directory entry); re-resolving when a rule's directory changes keeps
// the inode keys (other hard links) and ListRules' identities current too.
// The watched directories follow the policy: rebuilt after every apply.
class RuleDirectoryFollower {
public:
    RuleDirectoryFollower(boost::asio::io_context& io, EnforcerService& service) : io_(io), service_(service) {
        rewatch();
        service_.add_policy_listener([this](const PolicyApplied&) {
            // Not from inside the watch's own handler: it would destroy itself.
            boost::asio::post(io_, [this] { rewatch(); });
        });
    }

private:
    void rewatch() {
        auto dirs = service_.rule_directories();
        if (dirs == dirs_ && watch_)
            return;
        dirs_ = dirs;
        auto on_change = [this](const std::string& why) {
            if (auto applied = service_.re_resolve(why); !applied)
                log_error("policy: re-resolving rule paths failed (" + why + "): " + applied.error().message() +
                          "; the kernel keeps checking the rules' directory entries");
        };
        auto watch = DirectoryWatch::open(io_, dirs_, "rule directory", on_change, kPolicyEditSettle);
        if (watch) {
            watch_ = std::move(*watch);
        } else {
            watch_.reset();
            log_warning("rule directories not watched (" + watch.error().message() +
                        "): replaced files are re-resolved on SIGHUP only; the kernel still checks their "
                        "directory entries");
        }
    }

    boost::asio::io_context& io_;
    EnforcerService& service_;
    std::vector<std::filesystem::path> dirs_;
    std::unique_ptr<DirectoryWatch> watch_;
};

// The ring buffers events come from: rule matches (bpfw_alerts) and the
// audit trail (bpfw_events), each with its own room (emit.bpf.h), so a flood
// of execs or bpf() calls never pushes a denial out.
class EventStreams {
public:
    EventStreams(boost::asio::io_context& io, EnforcerService& service) : io_(io), service_(service) {}

    // The trail's ring is required; objects pinned by a release without the
    // alerts ring still report rule matches in the trail's.
    Result<void> open() {
        for (const char* map : {kEventsMap, kAlertsMap}) {
            auto reader = open_ring(map);
            if (reader)
                readers_[map] = std::move(*reader);
            else if (map == kEventsMap)
                return fail(reader.error());
            else
                log_warning("events: " + reader.error().message() + "; rule matches come with the audit trail");
        }
        return {};
    }
    void start() {
        for (auto& [map, reader] : readers_)
            reader->start();
    }
    void drain() {
        for (auto& [map, reader] : readers_)
            reader->drain();
    }
    // After the watchdog pinned a ring buffer anew: read the new one.
    void follow(const std::vector<std::string>& changed) {
        for (const char* map : {kEventsMap, kAlertsMap}) {
            if (std::find(changed.begin(), changed.end(), map) == changed.end())
                continue;
            auto reopened = open_ring(map);
            if (!reopened) {
                log_error("events: " + reopened.error().message() + "; still reading the previous ring buffer");
                continue;
            }
            if (auto& previous = readers_[map])
                previous->drain();
            readers_[map] = std::move(*reopened);
            readers_[map]->start();
            log_notice(std::string("events: reading the ring buffer the watchdog pinned anew (") + map + ")");
        }
    }

private:
    Result<std::unique_ptr<RingBufferReader>> open_ring(const char* map) {
        auto pin = PinLayout::open_pin(service_.pins().map_pin(map));
        if (!pin)
            return fail(pin.error().wrap(std::string("event ring buffer ") + map));
        return RingBufferReader::open(io_, std::move(*pin), [&service = service_](std::span<const std::byte> record) {
            service.handle_event(record);
        });
    }

    boost::asio::io_context& io_;
    EnforcerService& service_;
    std::map<std::string, std::unique_ptr<RingBufferReader>> readers_;
};

// When the watchdog replaces our objects (a reload after tampering), the
// daemon moves to them: policy writes go to the new maps, events come from
// the new ring buffers. Checked on every change of the pin directories.
std::unique_ptr<DirectoryWatch> follow_pins(boost::asio::io_context& io, EnforcerService& service,
                                            EventStreams& events) {
    service.set_store_listener([&events](const std::vector<std::string>& changed) { events.follow(changed); });
    auto on_change = [&service](const std::string&) {
        for (const auto& pin : service.follow_pins())
            log_notice("pins: following the object pinned anew as " + pin);
    };
    auto watch = DirectoryWatch::open(io, {service.pins().maps_dir(), service.pins().links_dir()}, "pin directory",
                                      on_change, kPolicyEditSettle);
    if (!watch) {
        log_warning("pin directories not watched (" + watch.error().message() +
                    "): objects the watchdog replaces are followed only after a restart");
        return nullptr;
    }
    return std::move(*watch);
}

// Steady state needs no new kernel objects: keep bpf() for map updates and
// DAC_READ_SEARCH to resolve policy paths on reload.
void drop_setup_privileges() {
    if (auto dropped = drop_capabilities_except({CAP_BPF, CAP_DAC_READ_SEARCH}); !dropped)
        log_warning("capabilities: " + dropped.error().message());
    else
        log_info("capabilities: kept only " + effective_capabilities());
}

// After setup: events, policy edits, D-Bus, signals and counters, until stopped.
SelfSample sample_self(const EnforcerService& service) {
    SelfSample sample{std::chrono::steady_clock::now(), 0, 0, own_rss_bytes()};
    if (auto counters = read_counters(service.pins())) {
        sample.events = counters->events;
        sample.dropped = counters->dropped;
    }
    return sample;
}

// Said in the journal (BPFWARDEN_SELF_WARNING=what) and as the D-Bus SelfWarning signal.
void report_self_warning(const SelfWarning& warning, EnforcerBus* bus) {
    log(LogLevel::Warning, "self-monitoring: " + warning.message, {{"BPFWARDEN_SELF_WARNING", warning.what}});
    if (bus)
        bus->self_warning(warning);
}

int serve(const CommandLineOptions& cmd, EnforcerService& service) {
    boost::asio::io_context io;
    EventStreams events(io, service);
    if (auto opened = events.open(); !opened) {
        log_error(opened.error().message());
        return 1;
    }
    drop_setup_privileges();

    // D-Bus last: enforcement is fully set up without it, and never waits for it.
    std::optional<dbus::BusConnection> bus;
    std::optional<EnforcerBus> enforcer_bus;
    if (!cmd.no_dbus) {
        bus.emplace(io, dbus::kEnforcerBusName, dbus::BusConnection::logger("enforcement"));
        enforcer_bus.emplace(*bus, service);
        bus->start();
    }
    service.add_policy_listener(log_policy_applied);
    service.add_policy_listener([&io](const PolicyApplied&) { return_freed_memory_soon(io); });
    return_freed_memory_soon(io);  // what start-up parsed, compiled and verified
    auto policy_watch = follow_policy_directory(io, service, cmd.enforcer.policy_dir);
    RuleDirectoryFollower rule_directories(io, service);
    auto pin_watch = follow_pins(io, service, events);

    ServiceSignals signals(
        io,
        [&service] {
            if (auto reloaded = service.apply_policy({"reloaded", "", "SIGHUP"}); !reloaded)
                log_error(reloaded.error().message() + "; keeping the running policy");
        },
        [&](int signo) {
            events.drain();
            log_notice("stopping on signal " + std::to_string(signo) + "; pinned programs keep enforcing (" +
                       service.counters_summary() + ")");
            io.stop();
        });
    RepeatingTimer stats(io, std::chrono::seconds(cmd.stats_interval),
                         [&service] { log_info("counters: " + service.counters_summary()); });
    SelfMonitor self_monitor(cmd.self_limits);
    RepeatingTimer monitor(io, std::chrono::seconds(cmd.monitor_interval), [&] {
        for (const auto& warning : self_monitor.observe(sample_self(service)))
            report_self_warning(warning, enforcer_bus ? &*enforcer_bus : nullptr);
    });

    events.start();
    sd_notify(0, "READY=1");
    log_notice("ready: logging events");
    io.run();
    return 0;
}

int run(const CommandLineOptions& cmd) {
    EnforcerService service(cmd.enforcer);
    auto started = service.start();
    if (!started && started.error().kind() == ErrorKind::PolicyInvalid) {
        log_error(started.error().message() + "; nothing was changed");
        return 2;
    }
    if (!service.objects().empty())
        report_setup(service);
    if (!started) {
        log_error(started.error().message() + "; nothing new was loaded, pinned programs keep enforcing");
        return 1;
    }
    if (cmd.exit_after_setup) {
        log_notice("setup done; pinned programs keep enforcing after exit");
        return 0;
    }
    return serve(cmd, service);
}

}  // namespace

int main(int argc, char** argv) {
    CommandLineOptions cmd;
    if (auto exit_status = parse_args(argc, argv, cmd))
        return *exit_status;
    if (cmd.unpin)
        return ctl::run_unpin({cmd.enforcer.pin_root, cmd.yes, false, false}, "bpfwardend --unpin");
    init_process_logging("bpfwardend", cmd.log_target, cmd.verbose);
    return run(cmd);
}
