// When the watchdog checks: on the interval, and soon after any trigger
// (bursts merged into one check a millisecond later). After every check it
// writes the status file, tells systemd it is alive, and runs the hooks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

#include "supervisor.h"

namespace bpfwarden {

class CheckScheduler {
public:
    CheckScheduler(boost::asio::io_context& io, Supervisor& supervisor, std::chrono::milliseconds interval,
                   std::filesystem::path status_file);

    void start() { arm_interval(); }

    // Runs before every check.
    void before_check(std::function<void()> hook) { before_ = std::move(hook); }
    // Runs after every check (D-Bus publishes the new state).
    void on_checked(std::function<void()> hook) { checked_ = std::move(hook); }
    // Runs after a check that healed something.
    void on_healed(std::function<void()> hook) { healed_ = std::move(hook); }

    // A trigger: check within a millisecond, merging bursts into one check.
    void check_soon(const std::string& why);
    // A check now.
    void check(const std::string& why);

private:
    void arm_interval();

    boost::asio::steady_timer interval_timer_, soon_;
    Supervisor& supervisor_;
    std::chrono::milliseconds interval_;
    std::filesystem::path status_file_;  // cleared if it names a file that is not ours
    std::string pending_;
    std::function<void()> before_, checked_, healed_;
};

// Writes the state to `path` as JSON, replacing only an earlier status file:
// a path naming somebody else's file is refused once, loudly, and cleared.
void write_status_file(std::filesystem::path& path, const WatchdogStatus& state);

}  // namespace bpfwarden
