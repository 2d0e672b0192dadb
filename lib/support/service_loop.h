// Pieces of a service's event loop that bpfwardend and bpfwarden-watchdog
// share: the same signals meaning the same things, repeating timers, and
// process logging set up the same way.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "support/log.h"

namespace bpfwarden {

// SIGHUP reloads; SIGTERM and SIGINT stop (on_stop gets the signal number).
class ServiceSignals {
public:
    ServiceSignals(boost::asio::io_context& io, std::function<void()> on_reload, std::function<void(int)> on_stop);

private:
    void wait();

    boost::asio::signal_set signals_;
    std::function<void()> on_reload_;
    std::function<void(int)> on_stop_;
};

// Gives the memory freed so far back to the kernel (malloc_trim). After a
// policy is replaced: a large policy's compiled form, and the buffers that
// read its maps, are freed in blocks all over the heap, which glibc would
// otherwise keep, so a process would stay as large as its largest policy
// ever was. _soon: once the handler running now (and the temporaries it
// frees on return) is done.
void return_freed_memory();
void return_freed_memory_soon(boost::asio::io_context& io);

// Calls `tick` every `interval` (never when the interval is zero).
class RepeatingTimer {
public:
    RepeatingTimer(boost::asio::io_context& io, std::chrono::steady_clock::duration interval,
                   std::function<void()> tick);

private:
    void arm();

    boost::asio::steady_timer timer_;
    std::chrono::steady_clock::duration interval_;
    std::function<void()> tick_;
};

// log_init() and libbpf's messages routed to the log, as every program does.
void init_process_logging(const std::string& identifier, LogTarget target, bool verbose);

}  // namespace bpfwarden
