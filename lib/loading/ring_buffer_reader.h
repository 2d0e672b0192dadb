// A BPF ring buffer consumed from a Boost.Asio loop: the ring buffer's epoll
// fd becomes readable when records arrive, and each wake-up hands every
// pending record to the handler. Owns everything it uses (the map fd, the
// libbpf consumer, the descriptor), so that destroying it stops reading.
#pragma once

#include <bpf/libbpf.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>

#include "support/error.h"
#include "support/unique_fd.h"

namespace bpfwarden {

class RingBufferReader {
public:
    using Handler = std::function<void(std::span<const std::byte>)>;

    // `map_fd` is the ring buffer map; the reader keeps it open.
    static Result<std::unique_ptr<RingBufferReader>> open(boost::asio::io_context& io, UniqueFd map_fd,
                                                          Handler handler);

    // Drains what is already there, then reads as records arrive.
    void start();
    // Hands every pending record to the handler; returns how many.
    size_t drain();

    ~RingBufferReader() { *alive_ = false; }
    RingBufferReader(const RingBufferReader&) = delete;
    RingBufferReader& operator=(const RingBufferReader&) = delete;

private:
    struct RingBufferFree {
        void operator()(ring_buffer* ring) const { ring_buffer__free(ring); }
    };
    RingBufferReader(boost::asio::io_context& io, Handler handler) : descriptor_(io), handler_(std::move(handler)) {}
    static int on_record(void* ctx, void* data, size_t size);
    void wait();

    UniqueFd map_fd_;
    std::unique_ptr<ring_buffer, RingBufferFree> ring_;
    boost::asio::posix::stream_descriptor descriptor_;  // a dup of the consumer's epoll fd
    Handler handler_;
    size_t handled_ = 0;
    // A completed wait's handler may still be queued when a reader is
    // replaced (the daemon moving to a re-made ring buffer): it holds this
    // flag and does nothing once the reader is gone.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bpfwarden
