// DirectoryWatch: inotify on a few directories, driven by a Boost.Asio loop.
// The watchdog checks at once when its pin directories change, and both the
// daemon and the watchdog follow edits of the policy directory with it.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/error.h"

namespace bpfwarden {

// Calls `on_change("<what> changed (name,...)")` when anything directly under
// the watched directories is created, removed, renamed, written or has its
// attributes changed. With a non-zero `settle`, the call waits until the
// directories have been quiet that long and reports every name seen since,
// so a save that writes several files is handled once, complete; a directory
// that never goes quiet is still reported every ten settle periods. A watched
// directory that is removed or renamed away is followed to its replacement
// at the same path ("<what> replaced").
class DirectoryWatch {
public:
    using Handler = std::function<void(const std::string&)>;
    static Result<std::unique_ptr<DirectoryWatch>> open(boost::asio::io_context& io,
                                                        const std::vector<std::filesystem::path>& dirs,
                                                        std::string what, Handler on_change,
                                                        std::chrono::milliseconds settle = {});
    // Watches each directory as its path names it now: a directory made anew
    // (or renamed into place) since it was last watched is watched instead,
    // one that is missing is skipped. True if any directory is newly watched
    // since the last call, so changes in it may have gone unreported. Done before each report too;
    // callers with an interval also call it there (one stat() per directory).
    bool rewatch();

    ~DirectoryWatch() { *alive_ = false; }
    DirectoryWatch(const DirectoryWatch&) = delete;
    DirectoryWatch& operator=(const DirectoryWatch&) = delete;

private:
    DirectoryWatch(boost::asio::io_context& io) : descriptor_(io), settle_timer_(io), replacement_timer_(io) {}
    void wait();
    void report();
    // Whether every directory is watched as its path names it now.
    bool all_current() const;
    // A directory removed or renamed away is usually replaced a moment later
    // (rm -rf + mkdir, mv new into place): look for it for a few seconds.
    void look_for_replacement(int attempts_left);

    boost::asio::posix::stream_descriptor descriptor_;
    boost::asio::steady_timer settle_timer_, replacement_timer_;
    // A wait that has completed but whose handler has not run yet cannot be
    // cancelled: destroying the watch then (a follower replacing it from
    // another handler) would run that handler on a freed object. Every
    // handler holds this flag and does nothing once the watch is gone.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::chrono::milliseconds settle_{};
    struct Watched {
        std::filesystem::path dir;
        int wd = -1;                         // inotify watch descriptor, -1: not watched
        std::pair<dev_t, ino_t> identity{};  // (st_dev, st_ino) of the directory watched under that path
    };
    std::vector<Watched> dirs_;
    std::string what_;
    std::string names_;  // seen since the last report, comma-separated, bounded
    std::optional<std::chrono::steady_clock::time_point> pending_since_;  // first event not yet reported
    Handler on_change_;
};

}  // namespace bpfwarden
