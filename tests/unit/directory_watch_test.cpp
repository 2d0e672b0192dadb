#include "support/directory_watch.h"

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace bpfwarden {
namespace {

using namespace std::chrono_literals;

// Runs `io` with `actions` spaced `step` apart, then lets it run `tail` more.
void run_actions(boost::asio::io_context& io, std::vector<std::function<void()>> actions,
                 std::chrono::milliseconds step, std::chrono::milliseconds tail) {
    boost::asio::steady_timer timer(io);
    size_t next = 0;
    std::function<void()> arm = [&] {
        timer.expires_after(next < actions.size() ? step : tail);
        timer.async_wait([&](const boost::system::error_code& ec) {
            if (ec)
                return;
            if (next == actions.size()) {
                io.stop();
                return;
            }
            actions[next++]();
            arm();
        });
    };
    arm();
    io.run();
}

// A watched policy.d in a fresh directory; every report is recorded.
class DirectoryWatchTest : public testing::Test {
protected:
    DirectoryWatchTest() { std::filesystem::create_directory(dir); }

    std::unique_ptr<DirectoryWatch> watch(std::chrono::milliseconds settle = {}) {
        auto watch = DirectoryWatch::open(
            io, {dir}, "policy directory", [this](const std::string& why) { reports.push_back(why); }, settle);
        EXPECT_TRUE(watch.has_value()) << watch.error().message();
        return watch ? std::move(*watch) : nullptr;
    }
    void write(const std::filesystem::path& file) { std::ofstream(file) << "x"; }

    TempDir parent;
    std::filesystem::path dir = parent / "policy.d";
    boost::asio::io_context io;
    std::vector<std::string> reports;
};

TEST_F(DirectoryWatchTest, ReportsEachChangeAtOnceWithoutSettling) {
    auto watched = watch();
    ASSERT_TRUE(watched);
    run_actions(io, {[&] { write(dir / "10-a.toml"); }}, 10ms, 100ms);
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.front(), "policy directory changed (10-a.toml)");
}

TEST_F(DirectoryWatchTest, SettlingMergesABurstIntoOneReport) {
    auto watched = watch(300ms);
    ASSERT_TRUE(watched);
    run_actions(
        io, {[&] { write(dir / "10-a.toml"); }, [&] { write(dir / "20-b.toml"); }, [&] { write(dir / "10-a.toml"); }},
        5ms, 700ms);
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0], "policy directory changed (10-a.toml,20-b.toml)");
}

TEST_F(DirectoryWatchTest, ADirectoryThatNeverGoesQuietIsStillReported) {
    auto watched = watch(20ms);
    ASSERT_TRUE(watched);
    // A write every 10 ms for 1 s never leaves 20 ms of quiet; reports still
    // come at most ten settle periods (200 ms) after the first unreported event.
    std::vector<std::function<void()>> writes(100, [&] { write(dir / "busy.toml"); });
    size_t during = 0;
    writes.back() = [&] {
        write(dir / "busy.toml");
        during = reports.size();
    };
    run_actions(io, writes, 10ms, 100ms);
    EXPECT_GE(during, 3u);
}

TEST_F(DirectoryWatchTest, ADirectoryMadeAnewIsWatchedAgain) {
    auto watched = watch(50ms);
    ASSERT_TRUE(watched);
    run_actions(io,
                {[&] {
                     std::filesystem::remove_all(dir);
                     std::filesystem::create_directory(dir);
                 },
                 [] {}, [] {}, [] {}, [&] { write(dir / "10-new.toml"); }},
                50ms, 200ms);
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.back(), "policy directory changed (10-new.toml)") << testing::PrintToString(reports);
}

TEST_F(DirectoryWatchTest, ADirectoryRenamedIntoPlaceReplacesTheOldOne) {
    std::filesystem::path next = parent / "policy.d.new", old = parent / "policy.d.old";
    auto watched = watch(50ms);
    ASSERT_TRUE(watched);
    run_actions(io,
                {[&] {
                     std::filesystem::create_directory(next);
                     std::filesystem::rename(dir, old);
                     std::filesystem::rename(next, dir);
                 },
                 [] {}, [] {}, [] {}, [&] { write(old / "stale.toml"); }, [&] { write(dir / "10-new.toml"); }},
                50ms, 200ms);
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.back(), "policy directory changed (10-new.toml)") << testing::PrintToString(reports);
    for (const auto& report : reports)
        EXPECT_EQ(report.find("stale.toml"), std::string::npos) << "the renamed-away directory is still watched";
}

TEST_F(DirectoryWatchTest, ADirectoryRemovedIsFollowedToItsLateReplacement) {
    auto watched = watch();
    ASSERT_TRUE(watched);
    // Reported at once, while the path is missing; the new directory comes 300 ms later.
    run_actions(io,
                {[&] { std::filesystem::remove_all(dir); }, [] {}, [] {},
                 [&] { std::filesystem::create_directory(dir); }, [] {}, [] {}, [&] { write(dir / "10-new.toml"); }},
                100ms, 200ms);
    ASSERT_GE(reports.size(), 3u) << testing::PrintToString(reports);
    EXPECT_EQ(reports[reports.size() - 2], "policy directory replaced");
    EXPECT_EQ(reports.back(), "policy directory changed (10-new.toml)");
}

TEST_F(DirectoryWatchTest, RewatchSaysWhenADirectoryWasReplacedUnseen) {
    auto watched = watch();  // io never runs: no event is read
    ASSERT_TRUE(watched);
    EXPECT_FALSE(watched->rewatch());
    std::filesystem::path next = parent / "policy.d.new";
    std::filesystem::create_directory(next);  // exists beside the old one: a different inode
    std::filesystem::rename(dir, parent / "policy.d.old");
    std::filesystem::rename(next, dir);
    EXPECT_TRUE(watched->rewatch());
    EXPECT_FALSE(watched->rewatch());
}

TEST(DirectoryWatch, MissingDirectoryIsNotAnError) {
    TempDir dir;
    boost::asio::io_context io;
    auto watch = DirectoryWatch::open(io, {dir / "absent"}, "pin directory", [](const std::string&) {});
    EXPECT_TRUE(watch.has_value());
}

}  // namespace
}  // namespace bpfwarden
