// bpfwarden-watchdog: keeps bpfwarden's pinned programs loaded, attached,
// unmodified and fed with the right policy, healing any drift from the signed
// images, whether or not bpfwardend is running.
#include <bpf/libbpf.h>
#include <getopt.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <fcntl.h>
#include <functional>
#include <optional>
#include <string>

#include "bus_connection.h"
#include "log.h"
#include "names.h"
#include "supervisor.h"
#include "triggers.h"
#include "unique_fd.h"
#include "watchdog_interface.h"

using namespace bpfwarden;

namespace {

constexpr const char* kUsage = R"(Usage: bpfwarden-watchdog [OPTIONS]

Verifies bpfwarden's pinned BPF programs every interval, and at once when
something touches the pin directory or a bpf() command could have changed
them: each program still pinned, attached and unmodified (its tag against one
derived from the signed images), each policy map holding exactly the desired
policy, and the canary file really denied. Drift is healed from the signed
images: the new program is attached and pinned before the old one is
dropped, so enforcement never lapses.

Options:
  --interval-ms N      verification interval [default: 1000]
  --policy-dir DIR     policy files [default: %s]
  --image-dir DIR      signed BPF images [default: %s]
  --keys-dir DIR       trusted public keys [default: %s]
  --state-dir DIR      anti-rollback state [default: %s]
  --pin-root DIR       bpffs pin root [default: /sys/fs/bpf/bpfwarden]
  --daemon-exe FILE    bpfwardend, allowlisted for bpf() [default: %s]
  --watchdog-exe FILE  this program as installed [default: %s]
  --canary FILE        always-denied canary file [default: %s]
  --status-file FILE   write the state as JSON after every check [default: none]
  --require-enforcement  expect BPF LSM enforcement even where the probe says it cannot work
  --once               one check (healing if needed), print the state as JSON, exit 0 if healthy
  --no-dbus            do not serve org.bpfwarden.Watchdog1 on the system bus
  --log-target T       auto, stderr or journal [default: auto]
  -v, --verbose        also log libbpf's messages
  -h, --help, --version

D-Bus: serves org.bpfwarden.Watchdog1 on the system bus (DBUS_SYSTEM_BUS_ADDRESS
is honoured); see docs/DBUS.md. Without a system bus it logs one warning, keeps
checking and retries every 10 s.

Under systemd (Type=notify) it reports readiness and sends WATCHDOG=1 after
every check, so a hung watchdog is restarted.
Exit status: 0 success, 1 runtime failure, 2 invalid arguments.
)";

struct CommandLine {
    WatchdogOptions options;
    unsigned interval_ms = 1000;
    std::string status_file;
    bool once = false;
    bool dbus = true;
    bool verbose = false;
    LogTarget log_target = LogTarget::Auto;
};

[[noreturn]] void usage_error(const std::string& message) {
    fprintf(stderr, "bpfwarden-watchdog: %s\nTry 'bpfwarden-watchdog --help'.\n", message.c_str());
    exit(2);
}

CommandLine parse_args(int argc, char** argv) {
    enum { kInterval = 256, kPolicyDir, kImageDir, kKeysDir, kStateDir, kPinRoot, kDaemonExe, kWatchdogExe, kCanary,
           kStatusFile, kRequire, kOnce, kNoDbus, kLogTarget, kVersion };
    static const option options[] = {
        {"interval-ms", required_argument, nullptr, kInterval}, {"policy-dir", required_argument, nullptr, kPolicyDir},
        {"image-dir", required_argument, nullptr, kImageDir},   {"keys-dir", required_argument, nullptr, kKeysDir},
        {"state-dir", required_argument, nullptr, kStateDir},   {"pin-root", required_argument, nullptr, kPinRoot},
        {"daemon-exe", required_argument, nullptr, kDaemonExe}, {"watchdog-exe", required_argument, nullptr, kWatchdogExe},
        {"canary", required_argument, nullptr, kCanary},        {"status-file", required_argument, nullptr, kStatusFile},
        {"require-enforcement", no_argument, nullptr, kRequire}, {"once", no_argument, nullptr, kOnce},
        {"no-dbus", no_argument, nullptr, kNoDbus},
        {"log-target", required_argument, nullptr, kLogTarget}, {"verbose", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},                    {"version", no_argument, nullptr, kVersion},
        {nullptr, 0, nullptr, 0},
    };
    CommandLine cmd;
    cmd.options.policy_dir = BPFWARDEN_DEFAULT_POLICY_DIR;
    cmd.options.service = {BPFWARDEN_DEFAULT_DAEMON_EXE, BPFWARDEN_DEFAULT_WATCHDOG_EXE, BPFWARDEN_DEFAULT_CANARY};
    cmd.options.trust.image_dir = BPFWARDEN_DEFAULT_IMAGE_DIR;
    cmd.options.trust.keys_dir = BPFWARDEN_DEFAULT_KEYS_DIR;
    cmd.options.trust.state_dir = BPFWARDEN_DEFAULT_STATE_DIR;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "hv", options, nullptr)) != -1;) {
        switch (c) {
        case kInterval: {
            char* end = nullptr;
            unsigned long value = strtoul(optarg, &end, 10);
            if (!end || *end || optarg[0] == '-' || value < 10 || value > 3600000)
                usage_error(std::string("invalid value '") + optarg + "' for --interval-ms (expected 10..3600000)");
            cmd.interval_ms = static_cast<unsigned>(value);
            break;
        }
        case kPolicyDir: cmd.options.policy_dir = optarg; break;
        case kImageDir: cmd.options.trust.image_dir = optarg; break;
        case kKeysDir: cmd.options.trust.keys_dir = optarg; break;
        case kStateDir: cmd.options.trust.state_dir = optarg; break;
        case kPinRoot: cmd.options.pins = PinLayout(optarg); break;
        case kDaemonExe: cmd.options.service.daemon_exe = optarg; break;
        case kWatchdogExe: cmd.options.service.watchdog_exe = optarg; break;
        case kCanary: cmd.options.service.canary = optarg; break;
        case kStatusFile: cmd.status_file = optarg; break;
        case kRequire: cmd.options.require_enforcement = true; break;
        case kOnce: cmd.once = true; break;
        case kNoDbus: cmd.dbus = false; break;
        case kLogTarget:
            if (auto target = parse_log_target(optarg))
                cmd.log_target = *target;
            else
                usage_error(std::string("invalid --log-target '") + optarg + "' (expected auto, stderr or journal)");
            break;
        case 'v': cmd.verbose = true; break;
        case 'h':
            printf(kUsage, BPFWARDEN_DEFAULT_POLICY_DIR, BPFWARDEN_DEFAULT_IMAGE_DIR, BPFWARDEN_DEFAULT_KEYS_DIR,
                   BPFWARDEN_DEFAULT_STATE_DIR, BPFWARDEN_DEFAULT_DAEMON_EXE, BPFWARDEN_DEFAULT_WATCHDOG_EXE,
                   BPFWARDEN_DEFAULT_CANARY);
            exit(0);
        case kVersion: printf("bpfwarden-watchdog %s\n", BPFWARDEN_VERSION); exit(0);
        case ':': usage_error(std::string("option '") + argv[optind - 1] + "' needs a value");
        default: usage_error(std::string("unknown option '") + argv[optind - 1] + "'");
        }
    }
    if (optind < argc)
        usage_error(std::string("unexpected argument '") + argv[optind] + "'");
    return cmd;
}

void write_status(const std::string& path, const WatchdogState& state) {
    if (path.empty())
        return;
    std::string staging = path + ".new";
    UniqueFd fd(open(staging.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    std::string json = watchdog_state_json(state) + "\n";
    if (!fd || write(fd.get(), json.data(), json.size()) != static_cast<ssize_t>(json.size()) ||
        rename(staging.c_str(), path.c_str()) != 0)
        log_warning("status: cannot write '" + path + "': " + Error::from_errno("write").message());
}

// Runs checks on the interval and, coalesced, soon after any trigger.
class CheckScheduler {
public:
    CheckScheduler(boost::asio::io_context& io, Supervisor& supervisor, const CommandLine& cmd)
        : interval_(io), soon_(io), supervisor_(supervisor), cmd_(cmd) {}

    void start() { arm_interval(); }

    // Runs before every check.
    void before_check(std::function<void()> hook) { before_ = std::move(hook); }
    // Runs after every check (D-Bus publishes the new state).
    void on_checked(std::function<void()> hook) { checked_ = std::move(hook); }
    // Runs after a check that healed something.
    void on_healed(std::function<void()> hook) { healed_ = std::move(hook); }

    // A trigger: check within a millisecond, merging bursts into one check.
    void check_soon(const std::string& why) {
        if (!pending_.empty())
            return;
        pending_ = why;
        soon_.expires_after(std::chrono::milliseconds(1));
        soon_.async_wait([this](const boost::system::error_code& ec) {
            if (ec)
                return;
            std::string why = std::move(pending_);
            pending_.clear();
            check(why);
        });
    }

    void check(const std::string& why) {
        bool was_healthy = supervisor_.state().healthy;
        uint64_t heals = supervisor_.state().heal_count;
        if (before_)
            before_();
        supervisor_.run_cycle(why);
        const auto& state = supervisor_.state();
        if (state.healthy != was_healthy || state.checks == 1)
            log(state.healthy ? LogLevel::Notice : LogLevel::Warning,
                state.healthy ? "healthy" : "unhealthy: " + state.reasons.front());
        write_status(cmd_.status_file, state);
        sd_notify(0, "WATCHDOG=1");
        if (state.heal_count != heals && healed_)
            healed_();
        if (checked_)
            checked_();
    }

private:
    void arm_interval() {
        interval_.expires_after(std::chrono::milliseconds(cmd_.interval_ms));
        interval_.async_wait([this](const boost::system::error_code& ec) {
            if (ec)
                return;
            check("interval");
            arm_interval();
        });
    }

    boost::asio::steady_timer interval_, soon_;
    Supervisor& supervisor_;
    const CommandLine& cmd_;
    std::string pending_;
    std::function<void()> before_, checked_, healed_;
};

// org.bpfwarden.Watchdog1 over the supervisor's state.
class WatchdogBus final : public dbus::WatchdogBackend {
public:
    WatchdogBus(dbus::BusConnection& bus, Supervisor& supervisor, CheckScheduler& scheduler, unsigned interval_ms)
        : supervisor_(supervisor), scheduler_(scheduler), interval_ms_(interval_ms), object_(bus, *this) {
        scheduler_.on_checked([this] { object_.publish(); });
    }
    ~WatchdogBus() override { scheduler_.on_checked(nullptr); }
    WatchdogBus(const WatchdogBus&) = delete;
    WatchdogBus& operator=(const WatchdogBus&) = delete;

    std::string version() const override { return BPFWARDEN_VERSION; }

    dbus::WatchdogStatus status() const override {
        const WatchdogState& state = supervisor_.state();
        dbus::WatchdogStatus status;
        status.healthy = state.healthy;
        status.reasons = state.reasons;
        status.mode = state.mode;
        status.mode_reason = state.mode_reason;
        status.image_set_version = state.image_set_version;
        status.check_interval_usec = uint64_t{interval_ms_} * 1000;
        status.checks = state.checks;
        if (state.last_check != std::chrono::system_clock::time_point{})
            status.last_check_usec = static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(state.last_check.time_since_epoch()).count());
        status.last_trigger = state.last_trigger;
        status.heal_count = state.heal_count;
        status.last_heal_reason = state.last_heal_reason;
        status.last_heal_usec = static_cast<uint64_t>(state.last_heal_ms * 1000.0);
        for (const auto& program : state.programs)
            status.programs.push_back({program.program, program.hook, program.prog_id, program.tag, program.status});
        return status;
    }

    dbus::BusResult<dbus::WatchdogStatus> check_now(const dbus::Caller& caller) override {
        std::string why = "CheckNow by " + caller.describe();
        log_info("check: " + why);
        scheduler_.check(why);
        return status();
    }

private:
    Supervisor& supervisor_;
    CheckScheduler& scheduler_;
    unsigned interval_ms_;
    dbus::WatchdogObject object_;
};

int run(const CommandLine& cmd) {
    Supervisor supervisor(cmd.options);
    if (auto started = supervisor.start(); !started) {
        log_error(started.error().message() + "; cannot know the expected state, nothing was changed");
        return 1;
    }
    log_notice("expecting " + supervisor.state().mode + " (" + supervisor.state().mode_reason + "), image-set version " +
               std::to_string(supervisor.state().image_set_version));
    if (cmd.once) {
        supervisor.run_cycle("--once");
        puts(watchdog_state_json(supervisor.state()).c_str());
        return supervisor.state().healthy ? 0 : 1;
    }

    boost::asio::io_context io;
    CheckScheduler scheduler(io, supervisor, cmd);
    std::optional<dbus::BusConnection> bus;
    std::optional<WatchdogBus> watchdog_bus;
    if (cmd.dbus) {
        bus.emplace(io, dbus::kWatchdogBusName, [](dbus::BusConnection::Status status, const std::string& detail) {
            log(status == dbus::BusConnection::Status::Connected ? LogLevel::Notice : LogLevel::Warning,
                dbus::BusConnection::describe(status, detail, "checking"));
        });
        watchdog_bus.emplace(*bus, supervisor, scheduler, cmd.interval_ms);
    }
    const PinLayout& pins = cmd.options.pins;
    auto pin_watch = DirectoryWatch::open(io, {pins.root(), pins.links_dir(), pins.maps_dir()}, "pin directory",
                                          [&](const std::string& why) { scheduler.check_soon(why); });
    if (!pin_watch)
        log_warning("pin directory watch unavailable (" + pin_watch.error().message() + "); checking on the interval");
    else  // a heal may have made the directories anew: watch those
        scheduler.on_healed([&] { (*pin_watch)->rewatch(); });
    auto recompile_policy = [&](const std::string& why) {
        auto reloaded = supervisor.reload_policy();
        if (!reloaded)
            log_error(reloaded.error().message() + "; keeping the previous desired policy");
        else if (*reloaded)
            log_notice("policy: " + why + ", desired policy recompiled");
        return reloaded && *reloaded;
    };
    auto policy_watch = DirectoryWatch::open(io, {cmd.options.policy_dir}, "policy directory", [&](const std::string& why) {
        if (recompile_policy(why))
            scheduler.check_soon(why);
    });
    if (!policy_watch)
        log_warning("policy directory watch unavailable: " + policy_watch.error().message());
    else  // a directory replaced while unwatched: catch up before checking the maps against it
        scheduler.before_check([&] {
            if ((*policy_watch)->rewatch())
                recompile_policy("policy directory replaced");
        });

    std::unique_ptr<TamperWatch> tamper;
    if (auto images = VerifiedImageSet::open(cmd.options.trust); !images) {
        log_warning("tamper tripwire unavailable: " + images.error().message());
    } else if (auto image = images->image("tamper_watch"); !image) {
        log_warning("tamper tripwire unavailable: " + image.error().message());
    } else if (auto watch = TamperWatch::open(io, **image, [&](const std::string& why) { scheduler.check_soon(why); });
               !watch) {
        log_warning("tamper tripwire unavailable (" + watch.error().message() + "); checking on the interval");
    } else {
        tamper = std::move(*watch);
        supervisor.set_map_change_counter([watch = tamper.get()] { return watch->watched_calls(); });
    }

    boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
    std::function<void()> wait_signal = [&] {
        signals.async_wait([&](const boost::system::error_code& ec, int signo) {
            if (ec)
                return;
            if (signo == SIGHUP) {
                if (auto reloaded = supervisor.reload_policy(); !reloaded)
                    log_error(reloaded.error().message() + "; keeping the previous desired policy");
                scheduler.check_soon("SIGHUP");
                wait_signal();
                return;
            }
            log_notice("stopping on signal " + std::to_string(signo) + " after " +
                       std::to_string(supervisor.state().checks) + " checks and " +
                       std::to_string(supervisor.state().heal_count) + " heals");
            io.stop();
        });
    };
    wait_signal();

    scheduler.check("start");
    // After the first check, so that the first reader sees a real state.
    if (bus)
        bus->start();
    sd_notify(0, "READY=1");
    log_notice("ready: checking every " + std::to_string(cmd.interval_ms) + " ms");
    scheduler.start();
    io.run();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CommandLine cmd = parse_args(argc, argv);
    log_init("bpfwarden-watchdog", cmd.log_target, cmd.verbose ? LogLevel::Debug : LogLevel::Info);
    route_libbpf_messages_to_log();
    return run(cmd);
}
