// DirectoryWatch: inotify on a few directories, driven by a Boost.Asio loop.
// The watchdog checks at once when its pin directories change, and both the
// daemon and the watchdog follow edits of the policy directory with it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "error.h"

namespace bpfwarden {

// Calls `on_change("<what> changed (name,...)")` when anything directly under
// the watched directories is created, removed, renamed, written or has its
// attributes changed. With a non-zero `settle`, the call waits until the
// directories have been quiet that long and reports every name seen since,
// so a save that writes several files is handled once, complete; a directory
// that never goes quiet is still reported every ten settle periods.
class DirectoryWatch {
public:
    using Handler = std::function<void(const std::string&)>;
    static Result<std::unique_ptr<DirectoryWatch>> open(boost::asio::io_context& io,
                                                        const std::vector<std::filesystem::path>& dirs,
                                                        std::string what, Handler on_change,
                                                        std::chrono::milliseconds settle = {});
    // Re-adds watches (directories may have been recreated); done before each
    // report too. A directory that is missing is skipped: callers also check
    // on an interval.
    void rewatch();

private:
    DirectoryWatch(boost::asio::io_context& io) : descriptor_(io), settle_timer_(io) {}
    void wait();
    void report();

    boost::asio::posix::stream_descriptor descriptor_;
    boost::asio::steady_timer settle_timer_;
    std::chrono::milliseconds settle_{};
    std::vector<std::filesystem::path> dirs_;
    std::string what_;
    std::string names_;  // seen since the last report, comma-separated, bounded
    std::optional<std::chrono::steady_clock::time_point> pending_since_;  // first event not yet reported
    Handler on_change_;
};

}  // namespace bpfwarden
