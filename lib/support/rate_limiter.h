// User-space token bucket in front of the journal.
//
// The BPF side already limits each process (bw_rate_allow); this limits the
// sum, so that many processes flooding at once cannot flood the journal. The
// bucket holds up to `burst` tokens and refills continuously at `burst`
// tokens per `interval` (so one token every interval / burst); it starts full.
//
// Time is passed in rather than read, so callers decide the clock and tests
// are deterministic. Not thread-safe: the daemon uses it from its event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace bpfwarden {

class RateLimiter {
public:
    // burst == 0 allows nothing; interval <= 0 means no rate limit at all
    // (every call is allowed).
    RateLimiter(uint32_t burst, std::chrono::nanoseconds interval);

    // Consumes a token if one is available; otherwise counts a suppressed
    // event and returns false. A `now` earlier than a previous call's adds
    // no tokens (and is not an error).
    bool allow(std::chrono::steady_clock::time_point now);

    // Every event suppressed since construction.
    uint64_t suppressed() const { return suppressed_total_; }

    // Events suppressed since the previous call (or construction), and resets
    // that count: for periodic "N events suppressed" lines.
    uint64_t take_suppressed_since_report();

private:
    void refill(std::chrono::steady_clock::time_point now);

    uint32_t burst_;
    std::chrono::nanoseconds interval_;
    // Bucket level in units of 1 / interval_ns of a token: elapsed
    // nanoseconds times burst_ add exactly, with no rounding drift.
    unsigned __int128 level_;
    std::optional<std::chrono::steady_clock::time_point> last_;
    uint64_t suppressed_total_ = 0;
    uint64_t suppressed_unreported_ = 0;
};

}  // namespace bpfwarden
