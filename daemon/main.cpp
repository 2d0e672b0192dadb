// bpfwardend: loads bpfwarden's BPF programs, pins them, keeps the policy
// maps in line with /etc/bpfwarden/policy.d and logs what the programs report.
#include <bpf/libbpf.h>
#include <getopt.h>
#include <linux/capability.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "bus_connection.h"
#include "capabilities.h"
#include "directory_watch.h"
#include "enforcer_bus.h"
#include "enforcer_service.h"
#include "event_stream.h"
#include "log.h"
#include "names.h"

using namespace bpfwarden;

namespace {

constexpr const char* kUsage = R"(Usage: bpfwardend [OPTIONS]

Loads bpfwarden's BPF programs (BPF LSM enforcement where the kernel allows it,
tracepoint audit everywhere), pins them under the pin root so they keep
enforcing when this process exits, applies the policy directory, and logs
every denial and audit event.

Options:
  --policy-dir DIR     policy files (*.toml) [default: %s]
  --image-dir DIR      signed BPF images (*.bpf.o, manifest, manifest.sig) [default: %s]
  --keys-dir DIR       trusted public keys [default: %s]
  --state-dir DIR      anti-rollback state [default: %s]
  --daemon-exe FILE    bpfwardend as installed (allowlisted for bpf()) [default: %s]
  --watchdog-exe FILE  bpfwarden-watchdog (allowlisted for bpf()) [default: %s]
  --canary FILE        the watchdog's canary, always denied [default: %s]
  --pin-root DIR       bpffs directory for pins [default: /sys/fs/bpf/bpfwarden]
  --audit-only         do not try BPF LSM; run the tracepoint audit only
  --json               log events as JSON objects instead of text
  --rate-limit N       events per second each process may cause (default 64)
  --stats-interval S   log counters every S seconds (0: never; default 60)
  --exit-after-setup   load, pin and apply the policy, then exit (pins keep enforcing)
  --unpin              remove every pin (ends enforcement) and exit
  --no-dbus            do not serve org.bpfwarden.Enforcer1 on the system bus
  --log-target T       auto, stderr or journal [default: auto]
  -v, --verbose        also log libbpf's messages (verifier output on load failures)
  -h, --help           show this help
  --version            show the version

D-Bus: serves org.bpfwarden.Enforcer1 on the system bus (DBUS_SYSTEM_BUS_ADDRESS
is honoured); see docs/DBUS.md. Without a system bus it logs one warning, keeps
enforcing and retries every 10 s.

Policy edits: a change to the policy directory is applied on its own once the
directory has been quiet for 0.2 s; SIGHUP (or ReloadPolicy) re-reads it at
once. An invalid policy is refused with file and line, and the running one stays.

Signals: SIGHUP re-reads the policy directory; SIGTERM/SIGINT exit and leave the
pinned programs enforcing.

Exit status: 0 success, 1 runtime failure, 2 invalid arguments or policy.
)";

struct CommandLine {
    EnforcerOptions enforcer;
    bool unpin = false;
    bool exit_after_setup = false;
    bool verbose = false;
    bool dbus = true;
    unsigned stats_interval = 60;
    LogTarget log_target = LogTarget::Auto;
};

[[noreturn]] void usage_error(const std::string& message) {
    fprintf(stderr, "bpfwardend: %s\nTry 'bpfwardend --help'.\n", message.c_str());
    exit(2);
}

unsigned parse_number(const char* option, const char* text, unsigned max) {
    char* end = nullptr;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno || !end || *end || text[0] == '-' || value > max)
        usage_error(std::string("invalid value '") + text + "' for " + option + " (expected 0.." +
                    std::to_string(max) + ")");
    return static_cast<unsigned>(value);
}

CommandLine parse_args(int argc, char** argv) {
    enum { kPolicyDir = 256, kImageDir, kKeysDir, kStateDir, kDaemonExe, kWatchdogExe, kCanary, kPinRoot, kAuditOnly, kJson, kRateLimit, kStats, kExitAfter, kUnpin,
           kNoDbus, kLogTarget, kVersion };
    static const option options[] = {
        {"policy-dir", required_argument, nullptr, kPolicyDir},
        {"image-dir", required_argument, nullptr, kImageDir},
        {"keys-dir", required_argument, nullptr, kKeysDir},
        {"state-dir", required_argument, nullptr, kStateDir},
        {"daemon-exe", required_argument, nullptr, kDaemonExe},
        {"watchdog-exe", required_argument, nullptr, kWatchdogExe},
        {"canary", required_argument, nullptr, kCanary},
        {"pin-root", required_argument, nullptr, kPinRoot},
        {"audit-only", no_argument, nullptr, kAuditOnly},
        {"json", no_argument, nullptr, kJson},
        {"rate-limit", required_argument, nullptr, kRateLimit},
        {"stats-interval", required_argument, nullptr, kStats},
        {"exit-after-setup", no_argument, nullptr, kExitAfter},
        {"unpin", no_argument, nullptr, kUnpin},
        {"no-dbus", no_argument, nullptr, kNoDbus},
        {"log-target", required_argument, nullptr, kLogTarget},
        {"verbose", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, kVersion},
        {nullptr, 0, nullptr, 0},
    };
    CommandLine cmd;
    cmd.enforcer.policy_dir = BPFWARDEN_DEFAULT_POLICY_DIR;
    cmd.enforcer.trust.image_dir = BPFWARDEN_DEFAULT_IMAGE_DIR;
    cmd.enforcer.trust.keys_dir = BPFWARDEN_DEFAULT_KEYS_DIR;
    cmd.enforcer.trust.state_dir = BPFWARDEN_DEFAULT_STATE_DIR;
    cmd.enforcer.service = {BPFWARDEN_DEFAULT_DAEMON_EXE, BPFWARDEN_DEFAULT_WATCHDOG_EXE, BPFWARDEN_DEFAULT_CANARY};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "hv", options, nullptr)) != -1;) {
        switch (c) {
        case kPolicyDir: cmd.enforcer.policy_dir = optarg; break;
        case kImageDir: cmd.enforcer.trust.image_dir = optarg; break;
        case kKeysDir: cmd.enforcer.trust.keys_dir = optarg; break;
        case kStateDir: cmd.enforcer.trust.state_dir = optarg; break;
        case kDaemonExe: cmd.enforcer.service.daemon_exe = optarg; break;
        case kWatchdogExe: cmd.enforcer.service.watchdog_exe = optarg; break;
        case kCanary: cmd.enforcer.service.canary = optarg; break;
        case kPinRoot: cmd.enforcer.pin_root = optarg; break;
        case kAuditOnly: cmd.enforcer.audit_only = true; break;
        case kJson: cmd.enforcer.json_events = true; break;
        case kRateLimit: cmd.enforcer.load.rate_limit_burst = parse_number("--rate-limit", optarg, 1000000); break;
        case kStats: cmd.stats_interval = parse_number("--stats-interval", optarg, 86400); break;
        case kExitAfter: cmd.exit_after_setup = true; break;
        case kUnpin: cmd.unpin = true; break;
        case kNoDbus: cmd.dbus = false; break;
        case kLogTarget:
            if (auto target = parse_log_target(optarg))
                cmd.log_target = *target;
            else
                usage_error(std::string("invalid --log-target '") + optarg + "' (expected auto, stderr or journal)");
            break;
        case 'v': cmd.verbose = true; break;
        case 'h': printf(kUsage, BPFWARDEN_DEFAULT_POLICY_DIR, BPFWARDEN_DEFAULT_IMAGE_DIR, BPFWARDEN_DEFAULT_KEYS_DIR,
                          BPFWARDEN_DEFAULT_STATE_DIR, BPFWARDEN_DEFAULT_DAEMON_EXE, BPFWARDEN_DEFAULT_WATCHDOG_EXE,
                          BPFWARDEN_DEFAULT_CANARY); exit(0);
        case kVersion: printf("bpfwardend %s\n", BPFWARDEN_VERSION); exit(0);
        case ':': usage_error(std::string("option '") + argv[optind - 1] + "' needs a value");
        default: usage_error(std::string("unknown option '") + argv[optind - 1] + "'");
        }
    }
    if (optind < argc)
        usage_error(std::string("unexpected argument '") + argv[optind] + "'");
    if (cmd.enforcer.load.rate_limit_burst == 0)
        usage_error("--rate-limit must be at least 1");
    return cmd;
}

void report_setup(const EnforcerService& service) {
    if (service.image_set_version())
        log_info("images: signed image-set version " + std::to_string(service.image_set_version()) + " verified");
    log_notice(std::string("mode: ") + std::string(to_string(service.mode())) + " (" + service.mode_reason() + ")");
    for (const auto& state : service.objects()) {
        std::string what = state.spec->program ? std::string(state.spec->program) + " on " + state.spec->hook + ": "
                                               : std::string(state.spec->hook) + ": ";
        switch (state.origin) {
        case ObjectState::Origin::Loaded: log_info(what + "loaded and pinned"); break;
        case ObjectState::Origin::Adopted: log_info(what + "adopted existing pin"); break;
        case ObjectState::Origin::Skipped: log_notice(what + "not loaded (" + state.detail + ")"); break;
        case ObjectState::Origin::Failed: log_error(what + "failed: " + state.detail); break;
        }
    }
    const auto& policy = service.policy();
    log_info("policy: " + std::to_string(policy.rules.size()) + " rules, " +
             std::to_string(policy.file_rules.size()) + " file and " + std::to_string(policy.exec_rules.size()) +
             " exec entries in force");
    for (const auto& warning : policy.warnings)
        log_warning("policy: " + warning);
}

// Long enough for a save that writes several files (or an editor's
// write-and-rename) to land as one change.
constexpr auto kPolicyEditSettle = std::chrono::milliseconds(200);

// Applies edits of the policy directory as they are saved, as the watchdog
// does, so the generation and ListRules always describe what the maps enforce.
std::unique_ptr<DirectoryWatch> follow_policy_directory(boost::asio::io_context& io, EnforcerService& service,
                                                        const std::filesystem::path& dir,
                                                        std::function<void(const std::string&)> on_applied) {
    auto last_error = std::make_shared<std::string>();
    auto on_edit = [&service, on_applied, last_error](const std::string& why) {
        auto applied = service.apply_edited_policy();
        if (!applied) {
            if (applied.error().message() != *last_error)  // e.g. an editor's swap file: say it once
                log_error(why + ": " + applied.error().message() + "; keeping the running policy");
            *last_error = applied.error().message();
            return;
        }
        last_error->clear();
        if (!*applied)
            return;
        log_notice("policy: applied the edited policy directory (" + std::to_string(service.policy().rules.size()) +
                   " rules, generation " + std::to_string(service.policy_generation()) + "; " + why + ")");
        for (const auto& warning : service.policy().warnings)
            log_warning("policy: " + warning);
        on_applied("policy directory edited");
    };
    auto watch = DirectoryWatch::open(io, {dir}, "policy directory", on_edit, kPolicyEditSettle);
    if (!watch) {
        log_warning("policy directory watch unavailable (" + watch.error().message() +
                    "); edits apply on SIGHUP or ReloadPolicy only");
        return nullptr;
    }
    return std::move(*watch);
}

int run(const CommandLine& cmd) {
    EnforcerService service(cmd.enforcer);
    auto started = service.start();
    if (!started && started.error().context().starts_with("policy:")) {
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

    boost::asio::io_context io;
    auto events = EventStream::open(io, service.pins(),
                                    [&service](std::span<const std::byte> record) { service.handle_event(record); });
    if (!events) {
        log_error(events.error().message());
        return 1;
    }
    // Steady state needs no new kernel objects: keep bpf() for map updates
    // and DAC_READ_SEARCH to resolve policy paths on reload.
    if (auto dropped = drop_capabilities_except({CAP_BPF, CAP_DAC_READ_SEARCH}); !dropped)
        log_warning("capabilities: " + dropped.error().message());
    else
        log_info("capabilities: kept only " + effective_capabilities());

    // D-Bus last: enforcement is fully set up without it, and never waits for it.
    std::optional<dbus::BusConnection> bus;
    std::optional<EnforcerBus> enforcer_bus;
    if (cmd.dbus) {
        bus.emplace(io, dbus::kEnforcerBusName, [](dbus::BusConnection::Status status, const std::string& detail) {
            log(status == dbus::BusConnection::Status::Connected ? LogLevel::Notice : LogLevel::Warning,
                dbus::BusConnection::describe(status, detail, "enforcement"));
        });
        enforcer_bus.emplace(*bus, service);
        bus->start();
    }

    auto policy_watch = follow_policy_directory(io, service, cmd.enforcer.policy_dir, [&](const std::string& reason) {
        if (enforcer_bus)
            enforcer_bus->policy_applied(reason);
    });

    boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
    std::function<void()> wait_signal = [&] {
        signals.async_wait([&](const boost::system::error_code& ec, int signo) {
            if (ec)
                return;
            if (signo == SIGHUP) {
                if (auto reloaded = service.reload_policy(); !reloaded)
                    log_error(reloaded.error().message() + "; keeping the running policy");
                else {
                    log_notice("policy: reloaded (" + std::to_string(service.policy().rules.size()) +
                               " rules, generation " + std::to_string(service.policy_generation()) + ")");
                    if (enforcer_bus)
                        enforcer_bus->policy_applied("SIGHUP");
                }
                for (const auto& warning : service.policy().warnings)
                    log_warning("policy: " + warning);
                wait_signal();
                return;
            }
            (*events)->drain();
            log_notice("stopping on signal " + std::to_string(signo) + "; pinned programs keep enforcing (" +
                       service.counters_summary() + ")");
            io.stop();
        });
    };
    wait_signal();

    boost::asio::steady_timer stats(io);
    std::function<void()> arm_stats = [&] {
        if (cmd.stats_interval == 0)
            return;
        stats.expires_after(std::chrono::seconds(cmd.stats_interval));
        stats.async_wait([&](const boost::system::error_code& ec) {
            if (ec)
                return;
            log_info("counters: " + service.counters_summary());
            arm_stats();
        });
    };
    arm_stats();

    (*events)->start();
    sd_notify(0, "READY=1");
    log_notice("ready: logging events");
    io.run();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CommandLine cmd = parse_args(argc, argv);
    log_init("bpfwardend", cmd.log_target, cmd.verbose ? LogLevel::Debug : LogLevel::Info);
    route_libbpf_messages_to_log();
    if (cmd.unpin) {
        PinLayout pins(cmd.enforcer.pin_root);
        if (auto removed = pins.remove_all(); !removed) {
            log_error(removed.error().message());
            return 1;
        }
        log_notice("removed all pins under " + pins.root().string() + "; enforcement has ended");
        return 0;
    }
    return run(cmd);
}
