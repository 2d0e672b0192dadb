// The shared event ring buffer, consumed from the Asio loop: the ring
// buffer's epoll fd becomes readable when records arrive, and each wake-up
// drains everything pending.
#pragma once

#include <bpf/libbpf.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>

#include "support/error.h"
#include "loading/pin_layout.h"
#include "support/unique_fd.h"

namespace bpfwarden {

class EventStream {
public:
    using Handler = std::function<void(std::span<const std::byte>)>;

    static Result<std::unique_ptr<EventStream>> open(boost::asio::io_context& io, const PinLayout& pins,
                                                     Handler handler);
    ~EventStream();

    void start();
    // Hands every pending record to the handler; returns how many.
    size_t drain();

private:
    EventStream(boost::asio::io_context& io, Handler handler) : descriptor_(io), handler_(std::move(handler)) {}
    static int on_record(void* ctx, void* data, size_t size);
    void wait();

    UniqueFd map_fd_;
    ring_buffer* ring_ = nullptr;
    boost::asio::posix::stream_descriptor descriptor_;
    Handler handler_;
    size_t handled_ = 0;
};

}  // namespace bpfwarden
