#include "support/rate_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

namespace bpfwarden {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

const TimePoint t0 = TimePoint{} + 1000h;

int allowed_count(RateLimiter& limiter, TimePoint now, int attempts) {
    int allowed = 0;
    for (int i = 0; i < attempts; ++i)
        allowed += limiter.allow(now) ? 1 : 0;
    return allowed;
}

TEST(RateLimiter, AllowsTheBurstThenSuppresses) {
    RateLimiter limiter(3, 1s);
    EXPECT_TRUE(limiter.allow(t0));
    EXPECT_TRUE(limiter.allow(t0));
    EXPECT_TRUE(limiter.allow(t0));
    EXPECT_FALSE(limiter.allow(t0));
    EXPECT_FALSE(limiter.allow(t0 + 1ms));
    EXPECT_EQ(limiter.suppressed(), 2u);
}

TEST(RateLimiter, RefillsTheWholeBurstAfterOneInterval) {
    RateLimiter limiter(3, 1s);
    EXPECT_EQ(allowed_count(limiter, t0, 10), 3);
    EXPECT_EQ(allowed_count(limiter, t0 + 999ms, 10), 2);  // 2.997 tokens back: 2 whole
    EXPECT_EQ(allowed_count(limiter, t0 + 1999ms, 10), 3);
}

TEST(RateLimiter, RefillsGraduallyOneTokenPerIntervalOverBurst) {
    RateLimiter limiter(4, 1s);  // a token every 250 ms
    EXPECT_EQ(allowed_count(limiter, t0, 4), 4);
    EXPECT_FALSE(limiter.allow(t0 + 249ms));
    EXPECT_TRUE(limiter.allow(t0 + 250ms));
    EXPECT_FALSE(limiter.allow(t0 + 250ms));
    EXPECT_FALSE(limiter.allow(t0 + 499ms));
    EXPECT_TRUE(limiter.allow(t0 + 500ms));
}

TEST(RateLimiter, NeverHoldsMoreThanTheBurst) {
    RateLimiter limiter(5, 1s);
    EXPECT_EQ(allowed_count(limiter, t0, 1), 1);
    EXPECT_EQ(allowed_count(limiter, t0 + 24h, 100), 5);
}

TEST(RateLimiter, SustainedRateIsExactWithoutRoundingDrift) {
    // 3 per second is 333.33... ms per token: with integer rounding per call,
    // a limiter polled every millisecond would drift.
    RateLimiter limiter(3, 1s);
    int allowed = 0;
    for (auto t = t0; t <= t0 + 3s; t += 1ms)
        allowed += limiter.allow(t) ? 1 : 0;
    EXPECT_EQ(allowed, 3 + 9);
    EXPECT_EQ(limiter.suppressed(), 3001u - 12u);
}

TEST(RateLimiter, CountsSuppressedTotalAndSinceLastReport) {
    RateLimiter limiter(1, 1s);
    EXPECT_EQ(limiter.take_suppressed_since_report(), 0u);
    EXPECT_EQ(allowed_count(limiter, t0, 5), 1);
    EXPECT_EQ(limiter.suppressed(), 4u);
    EXPECT_EQ(limiter.take_suppressed_since_report(), 4u);
    EXPECT_EQ(limiter.take_suppressed_since_report(), 0u);
    EXPECT_EQ(allowed_count(limiter, t0 + 500ms, 2), 0);
    EXPECT_EQ(limiter.suppressed(), 6u);
    EXPECT_EQ(limiter.take_suppressed_since_report(), 2u);
    EXPECT_EQ(allowed_count(limiter, t0 + 1s, 1), 1);
    EXPECT_EQ(limiter.take_suppressed_since_report(), 0u);
    EXPECT_EQ(limiter.suppressed(), 6u);
}

TEST(RateLimiter, TimeGoingBackwardsAddsNoTokens) {
    RateLimiter limiter(2, 1s);
    EXPECT_EQ(allowed_count(limiter, t0 + 10s, 2), 2);
    EXPECT_FALSE(limiter.allow(t0));
    EXPECT_FALSE(limiter.allow(t0 + 10s));
    EXPECT_TRUE(limiter.allow(t0 + 10s + 500ms));
}

TEST(RateLimiter, ZeroBurstAllowsNothing) {
    RateLimiter limiter(0, 1s);
    EXPECT_EQ(allowed_count(limiter, t0, 3), 0);
    EXPECT_EQ(allowed_count(limiter, t0 + 1h, 3), 0);
    EXPECT_EQ(limiter.suppressed(), 6u);
}

TEST(RateLimiter, NonPositiveIntervalMeansUnlimited) {
    RateLimiter zero(1, 0ns);
    EXPECT_EQ(allowed_count(zero, t0, 1000), 1000);
    RateLimiter negative(1, -1s);
    EXPECT_EQ(allowed_count(negative, t0, 10), 10);
    EXPECT_EQ(zero.suppressed(), 0u);
}

TEST(RateLimiter, ExtremeValuesDoNotOverflow) {
    // UBSan checks the arithmetic: a 32-bit burst over a huge interval, and
    // time points at both ends of steady_clock's range.
    RateLimiter limiter(UINT32_MAX, std::chrono::nanoseconds(INT64_MAX));
    EXPECT_TRUE(limiter.allow(TimePoint::min()));
    EXPECT_TRUE(limiter.allow(TimePoint::max()));
    RateLimiter small(1, 1ns);
    EXPECT_TRUE(small.allow(TimePoint::min()));
    EXPECT_FALSE(small.allow(TimePoint::min()));
    EXPECT_TRUE(small.allow(TimePoint::max()));
    EXPECT_FALSE(small.allow(TimePoint::max()));
}

}  // namespace
}  // namespace bpfwarden
