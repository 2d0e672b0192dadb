#include "support/directory_watch.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace bpfwarden {

namespace {

constexpr uint32_t kDirectoryEvents =
    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
constexpr size_t kMaxReportedNames = 200;  // bytes: a log line, not an inventory
constexpr int kMaxSettleFactor = 10;
constexpr auto kReplacementPoll = std::chrono::milliseconds(100);
constexpr int kReplacementPolls = 50;  // then callers' interval checks take over

// (st_dev, st_ino) of the directory `path` names now, if any.
std::optional<std::pair<dev_t, ino_t>> identity_of(const std::filesystem::path& path) {
    struct stat st{};
    if (stat(path.c_str(), &st) != 0)
        return std::nullopt;
    return std::pair{st.st_dev, st.st_ino};
}

}  // namespace

Result<std::unique_ptr<DirectoryWatch>> DirectoryWatch::open(boost::asio::io_context& io,
                                                             const std::vector<std::filesystem::path>& dirs,
                                                             std::string what, Handler on_change,
                                                             std::chrono::milliseconds settle) {
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return fail_errno("inotify_init1");
    std::unique_ptr<DirectoryWatch> watch(new DirectoryWatch(io));
    watch->descriptor_.assign(fd);
    for (const auto& dir : dirs)
        watch->dirs_.push_back({dir});
    watch->what_ = std::move(what);
    watch->on_change_ = std::move(on_change);
    watch->settle_ = settle;
    watch->rewatch();
    watch->wait();
    return watch;
}

bool DirectoryWatch::rewatch() {
    bool newly_watched = false;
    for (auto& watched : dirs_) {
        auto now = identity_of(watched.dir);
        if (!now || (watched.wd >= 0 && *now == watched.identity))
            continue;
        int wd = inotify_add_watch(descriptor_.native_handle(), watched.dir.c_str(), kDirectoryEvents);
        if (wd < 0)
            continue;
        if (watched.wd >= 0 && watched.wd != wd)  // the replaced directory's events are no longer ours
            inotify_rm_watch(descriptor_.native_handle(), watched.wd);
        watched = {watched.dir, wd, *now};
        newly_watched = true;
    }
    return newly_watched;
}

void DirectoryWatch::wait() {
    descriptor_.async_wait(
        boost::asio::posix::stream_descriptor::wait_read, [this, alive = alive_](const boost::system::error_code& ec) {
            if (ec || !*alive)
                return;
            alignas(inotify_event) char buffer[4096];
            for (ssize_t n; (n = read(descriptor_.native_handle(), buffer, sizeof(buffer))) > 0;) {
                for (char* p = buffer; p < buffer + n;) {
                    auto* event = reinterpret_cast<inotify_event*>(p);
                    if (event->mask & IN_IGNORED)  // the directory is gone (its inode number may come back)
                        for (auto& watched : dirs_)
                            if (watched.wd == event->wd)
                                watched.wd = -1;
                    std::string name(event->len ? event->name : "");
                    if (!name.empty() && names_.size() < kMaxReportedNames &&
                        ("," + names_ + ",").find("," + name + ",") == std::string::npos)
                        names_ += (names_.empty() ? "" : ",") + name;
                    p += sizeof(inotify_event) + event->len;
                }
            }
            if (settle_.count() == 0) {
                report();
            } else {
                // Restarting cancels the pending report; a directory that never
                // goes quiet is still reported every kMaxSettleFactor settles.
                auto now = std::chrono::steady_clock::now();
                if (!pending_since_)
                    pending_since_ = now;
                settle_timer_.expires_at(std::min(now + settle_, *pending_since_ + settle_ * kMaxSettleFactor));
                settle_timer_.async_wait([this, alive = alive_](const boost::system::error_code& timer_ec) {
                    if (!timer_ec && *alive)
                        report();
                });
            }
            wait();
        });
}

bool DirectoryWatch::all_current() const {
    return std::all_of(dirs_.begin(), dirs_.end(), [](const Watched& watched) {
        return watched.wd >= 0 && identity_of(watched.dir) == watched.identity;
    });
}

void DirectoryWatch::look_for_replacement(int attempts_left) {
    replacement_timer_.expires_after(kReplacementPoll);
    replacement_timer_.async_wait([this, alive = alive_, attempts_left](const boost::system::error_code& ec) {
        if (ec || !*alive)
            return;
        if (rewatch())
            on_change_(what_ + " replaced");
        else if (!all_current() && attempts_left > 1)
            look_for_replacement(attempts_left - 1);
    });
}

void DirectoryWatch::report() {
    rewatch();  // a directory removed and made anew meanwhile is watched again
    if (!all_current())
        look_for_replacement(kReplacementPolls);
    std::string why = what_ + " changed" + (names_.empty() ? "" : " (" + names_ + ")");
    names_.clear();
    pending_since_.reset();
    on_change_(why);
}

}  // namespace bpfwarden
