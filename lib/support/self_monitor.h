// bpfwardend watching itself: the event rate, events the kernel dropped,
// and its own memory, against limits the admin set. A warning is given when
// a limit is first passed, and again only after it was back within it, so a
// steady overload is said once, not every interval; new drops are said in
// every interval that has them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bpfwarden {

struct SelfMonitorLimits {
    uint64_t max_events_per_second = 2000;
    uint64_t max_rss_bytes = 64ULL << 20;
};

struct SelfSample {
    std::chrono::steady_clock::time_point at;
    uint64_t events = 0;   // the kernel objects' event counter (monotonic)
    uint64_t dropped = 0;  // events lost to a full ring buffer (monotonic)
    uint64_t rss_bytes = 0;
};

struct SelfWarning {
    std::string what;  // "event-rate", "dropped-events", "memory"
    std::string message;
    uint64_t value = 0;
    uint64_t limit = 0;
};

class SelfMonitor {
public:
    explicit SelfMonitor(SelfMonitorLimits limits) : limits_(limits) {}

    // The warnings this sample gives, compared with the previous one (the
    // first sample only sets the baseline for rates and drops).
    std::vector<SelfWarning> observe(const SelfSample& sample);

private:
    SelfMonitorLimits limits_;
    std::optional<SelfSample> previous_;
    bool rate_over_ = false;
    bool memory_over_ = false;
};

// This process's resident memory from /proc/self/statm; 0 when unreadable.
uint64_t own_rss_bytes();

}  // namespace bpfwarden
