#include "support/service_loop.h"

#include <malloc.h>

#include <boost/asio/post.hpp>
#include <csignal>

namespace bpfwarden {

void return_freed_memory() { malloc_trim(0); }

void return_freed_memory_soon(boost::asio::io_context& io) { boost::asio::post(io, return_freed_memory); }

ServiceSignals::ServiceSignals(boost::asio::io_context& io, std::function<void()> on_reload,
                               std::function<void(int)> on_stop)
    : signals_(io, SIGTERM, SIGINT, SIGHUP), on_reload_(std::move(on_reload)), on_stop_(std::move(on_stop)) {
    wait();
}

void ServiceSignals::wait() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
        if (ec)
            return;
        if (signo != SIGHUP) {
            on_stop_(signo);
            return;
        }
        on_reload_();
        wait();
    });
}

RepeatingTimer::RepeatingTimer(boost::asio::io_context& io, std::chrono::steady_clock::duration interval,
                               std::function<void()> tick)
    : timer_(io), interval_(interval), tick_(std::move(tick)) {
    arm();
}

void RepeatingTimer::arm() {
    if (interval_ == std::chrono::steady_clock::duration::zero())
        return;
    timer_.expires_after(interval_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec)
            return;
        tick_();
        arm();
    });
}

void init_process_logging(const std::string& identifier, LogTarget target, bool verbose) {
    log_init(identifier, target, verbose ? LogLevel::Debug : LogLevel::Info);
    route_libbpf_messages_to_log();
}

}  // namespace bpfwarden
