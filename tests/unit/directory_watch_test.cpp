#include "directory_watch.h"

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

TEST(DirectoryWatch, ReportsEachChangeAtOnceWithoutSettling) {
    TempDir dir;
    boost::asio::io_context io;
    std::vector<std::string> reports;
    auto watch = DirectoryWatch::open(io, {dir.path()}, "policy directory",
                                      [&](const std::string& why) { reports.push_back(why); });
    ASSERT_TRUE(watch.has_value()) << watch.error().message();
    run_actions(io, {[&] { dir.write("10-a.toml", "x"); }}, 10ms, 100ms);
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.front(), "policy directory changed (10-a.toml)");
}

TEST(DirectoryWatch, SettlingMergesABurstIntoOneReport) {
    TempDir dir;
    boost::asio::io_context io;
    std::vector<std::string> reports;
    auto watch = DirectoryWatch::open(
        io, {dir.path()}, "policy directory", [&](const std::string& why) { reports.push_back(why); }, 300ms);
    ASSERT_TRUE(watch.has_value()) << watch.error().message();
    run_actions(io,
                {[&] { dir.write("10-a.toml", "x"); }, [&] { dir.write("20-b.toml", "y"); },
                 [&] { dir.write("10-a.toml", "z"); }},
                5ms, 700ms);
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0], "policy directory changed (10-a.toml,20-b.toml)");
}

TEST(DirectoryWatch, ADirectoryThatNeverGoesQuietIsStillReported) {
    TempDir dir;
    boost::asio::io_context io;
    std::vector<std::string> reports;
    auto watch = DirectoryWatch::open(
        io, {dir.path()}, "policy directory", [&](const std::string& why) { reports.push_back(why); }, 20ms);
    ASSERT_TRUE(watch.has_value()) << watch.error().message();
    // A write every 10 ms for 1 s never leaves 20 ms of quiet; reports still
    // come at most ten settle periods (200 ms) after the first unreported event.
    std::vector<std::function<void()>> writes(100, [&] { dir.write("busy.toml", "x"); });
    size_t during = 0;
    writes.back() = [&] {
        dir.write("busy.toml", "x");
        during = reports.size();
    };
    run_actions(io, writes, 10ms, 100ms);
    EXPECT_GE(during, 3u);
}

TEST(DirectoryWatch, ADirectoryMadeAnewIsWatchedAgain) {
    TempDir parent;
    std::filesystem::path dir = parent / "policy.d";
    std::filesystem::create_directory(dir);
    boost::asio::io_context io;
    std::vector<std::string> reports;
    auto watch = DirectoryWatch::open(
        io, {dir}, "policy directory", [&](const std::string& why) { reports.push_back(why); }, 50ms);
    ASSERT_TRUE(watch.has_value()) << watch.error().message();
    run_actions(io,
                {[&] {
                     std::filesystem::remove_all(dir);
                     std::filesystem::create_directory(dir);
                 },
                 [] {}, [] {}, [] {}, [&] { std::ofstream(dir / "10-new.toml") << "x"; }},
                50ms, 200ms);
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.back(), "policy directory changed (10-new.toml)") << testing::PrintToString(reports);
}

TEST(DirectoryWatch, ADirectoryRenamedIntoPlaceReplacesTheOldOne) {
    TempDir parent;
    std::filesystem::path dir = parent / "policy.d", next = parent / "policy.d.new", old = parent / "policy.d.old";
    std::filesystem::create_directory(dir);
    boost::asio::io_context io;
    std::vector<std::string> reports;
    auto watch = DirectoryWatch::open(
        io, {dir}, "policy directory", [&](const std::string& why) { reports.push_back(why); }, 50ms);
    ASSERT_TRUE(watch.has_value()) << watch.error().message();
    run_actions(io,
                {[&] {
                     std::filesystem::create_directory(next);
                     std::filesystem::rename(dir, old);
                     std::filesystem::rename(next, dir);
                 },
                 [] {}, [] {}, [] {}, [&] { std::ofstream(old / "stale.toml") << "x"; },
                 [&] { std::ofstream(dir / "10-new.toml") << "x"; }},
                50ms, 200ms);
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.back(), "policy directory changed (10-new.toml)") << testing::PrintToString(reports);
    for (const auto& report : reports)
        EXPECT_EQ(report.find("stale.toml"), std::string::npos) << "the renamed-away directory is still watched";
}

TEST(DirectoryWatch, ADirectoryRemovedIsFollowedToItsLateReplacement) {
    TempDir parent;
    std::filesystem::path dir = parent / "policy.d";
    std::filesystem::create_directory(dir);
    boost::asio::io_context io;
    std::vector<std::string> reports;
    auto watch = DirectoryWatch::open(io, {dir}, "policy directory",
                                      [&](const std::string& why) { reports.push_back(why); });
    ASSERT_TRUE(watch.has_value()) << watch.error().message();
    // Reported at once, while the path is missing; the new directory comes 300 ms later.
    run_actions(io,
                {[&] { std::filesystem::remove_all(dir); }, [] {}, [] {},
                 [&] { std::filesystem::create_directory(dir); }, [] {}, [] {},
                 [&] { std::ofstream(dir / "10-new.toml") << "x"; }},
                100ms, 200ms);
    ASSERT_GE(reports.size(), 3u) << testing::PrintToString(reports);
    EXPECT_EQ(reports[reports.size() - 2], "policy directory replaced");
    EXPECT_EQ(reports.back(), "policy directory changed (10-new.toml)");
}

TEST(DirectoryWatch, RewatchSaysWhenADirectoryWasReplacedUnseen) {
    TempDir parent;
    std::filesystem::path dir = parent / "policy.d", next = parent / "policy.d.new";
    std::filesystem::create_directory(dir);
    boost::asio::io_context io;  // never run: no event is read
    auto watch = DirectoryWatch::open(io, {dir}, "policy directory", [](const std::string&) {});
    ASSERT_TRUE(watch.has_value()) << watch.error().message();
    EXPECT_FALSE((*watch)->rewatch());
    std::filesystem::create_directory(next);
    std::filesystem::rename(next, dir.string() + ".tmp");  // a different inode, then swapped in
    std::filesystem::rename(dir, parent / "policy.d.old");
    std::filesystem::rename(dir.string() + ".tmp", dir);
    EXPECT_TRUE((*watch)->rewatch());
    EXPECT_FALSE((*watch)->rewatch());
}

TEST(DirectoryWatch, MissingDirectoryIsNotAnError) {
    TempDir dir;
    boost::asio::io_context io;
    auto watch = DirectoryWatch::open(io, {dir / "absent"}, "pin directory", [](const std::string&) {});
    EXPECT_TRUE(watch.has_value());
}

}  // namespace
}  // namespace bpfwarden
