#include "check_scheduler.h"

#include <systemd/sd-daemon.h>

#include "support/atomic_file.h"
#include "support/log.h"

namespace bpfwarden {

void write_status_file(std::filesystem::path& path, const WatchdogStatus& state) {
    if (path.empty())
        return;
    auto is_status = [](std::string_view existing) { return looks_like_status_json(existing); };
    if (auto written = write_file_atomically(path, to_json(state) + "\n", 0644, is_status); !written) {
        log_error("status: " + written.error().message() + "; not writing a status file");
        path.clear();
    }
}

CheckScheduler::CheckScheduler(boost::asio::io_context& io, Supervisor& supervisor, std::chrono::milliseconds interval,
                               std::filesystem::path status_file)
    : interval_timer_(io),
      soon_(io),
      supervisor_(supervisor),
      interval_(interval),
      status_file_(std::move(status_file)) {}

void CheckScheduler::check_soon(const std::string& why) {
    if (!pending_.empty())
        return;
    pending_ = why;
    soon_.expires_after(std::chrono::milliseconds(1));
    soon_.async_wait([this](const boost::system::error_code& ec) {
        if (ec)
            return;
        check(std::exchange(pending_, {}));
    });
}

void CheckScheduler::check(const std::string& why) {
    bool was_healthy = supervisor_.state().healthy;
    uint64_t heals = supervisor_.state().heal_count;
    if (before_)
        before_();
    supervisor_.run_cycle(why);
    const auto& state = supervisor_.state();
    if (state.healthy != was_healthy || state.checks == 1)
        log(state.healthy ? LogLevel::Notice : LogLevel::Warning,
            state.healthy ? "healthy" : "unhealthy: " + state.reasons.front());
    write_status_file(status_file_, state);
    sd_notify(0, "WATCHDOG=1");
    if (state.heal_count != heals && healed_)
        healed_();
    if (checked_)
        checked_();
}

void CheckScheduler::arm_interval() {
    interval_timer_.expires_after(interval_);
    interval_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec)
            return;
        check("interval");
        arm_interval();
    });
}

}  // namespace bpfwarden
