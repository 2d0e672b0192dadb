#include "support/rate_limiter.h"

#include <algorithm>
#include <utility>

namespace bpfwarden {
namespace {

using u128 = unsigned __int128;

uint64_t nanoseconds_since_epoch(std::chrono::steady_clock::time_point t) {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

}  // namespace

RateLimiter::RateLimiter(uint32_t burst, std::chrono::nanoseconds interval)
    : burst_(burst),
      interval_(interval),
      level_(interval.count() > 0 ? u128{burst} * static_cast<uint64_t>(interval.count()) : 0) {}

void RateLimiter::refill(std::chrono::steady_clock::time_point now) {
    if (!last_) {
        last_ = now;
        return;
    }
    if (now <= *last_)
        return;
    // Unsigned subtraction: exact for any now > last, where a signed one
    // could overflow. 64-bit elapsed times 32-bit burst fits in 128 bits.
    const uint64_t elapsed = nanoseconds_since_epoch(now) - nanoseconds_since_epoch(*last_);
    const u128 capacity = u128{burst_} * static_cast<uint64_t>(interval_.count());
    level_ = std::min(capacity, level_ + u128{elapsed} * burst_);
    last_ = now;
}

bool RateLimiter::allow(std::chrono::steady_clock::time_point now) {
    if (interval_.count() <= 0)
        return true;
    refill(now);
    const auto token = static_cast<uint64_t>(interval_.count());
    if (level_ >= token) {
        level_ -= token;
        return true;
    }
    ++suppressed_total_;
    ++suppressed_unreported_;
    return false;
}

uint64_t RateLimiter::take_suppressed_since_report() { return std::exchange(suppressed_unreported_, 0); }

}  // namespace bpfwarden
