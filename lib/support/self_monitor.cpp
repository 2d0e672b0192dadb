#include "support/self_monitor.h"

#include <unistd.h>

#include <fstream>

namespace bpfwarden {
namespace {

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 19)) >> 20) + " MiB"; }

}  // namespace

std::vector<SelfWarning> SelfMonitor::observe(const SelfSample& sample) {
    std::vector<SelfWarning> warnings;
    bool memory_over = sample.rss_bytes > limits_.max_rss_bytes;
    if (memory_over && !memory_over_)
        warnings.push_back({"memory",
                            "resident memory " + mib(sample.rss_bytes) + " is over the limit of " +
                                mib(limits_.max_rss_bytes) + " (--warn-memory-mib)",
                            sample.rss_bytes, limits_.max_rss_bytes});
    memory_over_ = memory_over;

    if (previous_ && sample.at > previous_->at && sample.events >= previous_->events) {
        auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(sample.at - previous_->at).count();
        uint64_t rate =
            (sample.events - previous_->events) * 1000 / static_cast<uint64_t>(elapsed_ms > 0 ? elapsed_ms : 1);
        bool rate_over = rate > limits_.max_events_per_second;
        if (rate_over && !rate_over_)
            warnings.push_back({"event-rate",
                                std::to_string(rate) + " events a second, over the limit of " +
                                    std::to_string(limits_.max_events_per_second) +
                                    " (--warn-event-rate): something is flooding exec or bpf() audit",
                                rate, limits_.max_events_per_second});
        rate_over_ = rate_over;
        if (sample.dropped > previous_->dropped)
            warnings.push_back({"dropped-events",
                                std::to_string(sample.dropped - previous_->dropped) +
                                    " events lost since the last check: the ring buffer was full (" +
                                    std::to_string(sample.dropped) + " in all)",
                                sample.dropped - previous_->dropped, 0});
    }
    previous_ = sample;
    return warnings;
}

uint64_t own_rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    uint64_t size = 0, resident = 0;
    if (!(statm >> size >> resident))
        return 0;
    return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace bpfwarden
