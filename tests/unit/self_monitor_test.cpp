#include "support/self_monitor.h"

#include <gtest/gtest.h>

namespace bpfwarden {
namespace {

using std::chrono::seconds;

SelfSample sample(int second, uint64_t events, uint64_t dropped = 0, uint64_t rss = 10ULL << 20) {
    return {std::chrono::steady_clock::time_point(seconds(second)), events, dropped, rss};
}

TEST(SelfMonitor, FirstSampleOnlySetsTheBaseline) {
    SelfMonitor monitor({100, 64ULL << 20});
    EXPECT_TRUE(monitor.observe(sample(0, 1000000, 50)).empty());
}

TEST(SelfMonitor, EventRateOverTheLimitIsSaidOnceUntilItRecovers) {
    SelfMonitor monitor({100, 64ULL << 20});
    monitor.observe(sample(0, 0));
    auto over = monitor.observe(sample(10, 2000));  // 200 a second
    ASSERT_EQ(over.size(), 1u);
    EXPECT_EQ(over[0].what, "event-rate");
    EXPECT_EQ(over[0].value, 200u);
    EXPECT_EQ(over[0].limit, 100u);
    EXPECT_NE(over[0].message.find("200 events a second, over the limit of 100"), std::string::npos);
    EXPECT_TRUE(monitor.observe(sample(20, 4000)).empty());   // still over: said already
    EXPECT_TRUE(monitor.observe(sample(30, 4100)).empty());   // 10 a second: back within
    EXPECT_EQ(monitor.observe(sample(40, 6100)).size(), 1u);  // over again: said again
}

TEST(SelfMonitor, RateAtTheLimitIsWithinIt) {
    SelfMonitor monitor({100, 64ULL << 20});
    monitor.observe(sample(0, 0));
    EXPECT_TRUE(monitor.observe(sample(10, 1000)).empty());
}

TEST(SelfMonitor, NewDropsAreSaidInEveryIntervalThatHasThem) {
    SelfMonitor monitor({1000000, 64ULL << 20});
    monitor.observe(sample(0, 0, 5));
    auto first = monitor.observe(sample(10, 10, 8));
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].what, "dropped-events");
    EXPECT_EQ(first[0].value, 3u);
    EXPECT_NE(first[0].message.find("3 events lost since the last check"), std::string::npos);
    EXPECT_TRUE(monitor.observe(sample(20, 20, 8)).empty());
    EXPECT_EQ(monitor.observe(sample(30, 30, 9)).size(), 1u);
}

TEST(SelfMonitor, MemoryOverTheLimitIsSaidOnceUntilItRecovers) {
    SelfMonitor monitor({1000000, 32ULL << 20});
    auto over = monitor.observe(sample(0, 0, 0, 40ULL << 20));
    ASSERT_EQ(over.size(), 1u);
    EXPECT_EQ(over[0].what, "memory");
    EXPECT_NE(over[0].message.find("resident memory 40 MiB is over the limit of 32 MiB"), std::string::npos);
    EXPECT_TRUE(monitor.observe(sample(10, 0, 0, 41ULL << 20)).empty());
    EXPECT_TRUE(monitor.observe(sample(20, 0, 0, 20ULL << 20)).empty());
    EXPECT_EQ(monitor.observe(sample(30, 0, 0, 40ULL << 20)).size(), 1u);
}

TEST(SelfMonitor, OwnMemoryIsReadable) { EXPECT_GT(own_rss_bytes(), 1ULL << 20); }

}  // namespace
}  // namespace bpfwarden
