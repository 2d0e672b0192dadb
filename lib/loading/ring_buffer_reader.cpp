#include "loading/ring_buffer_reader.h"

#include <unistd.h>

namespace bpfwarden {

Result<std::unique_ptr<RingBufferReader>> RingBufferReader::open(boost::asio::io_context& io, UniqueFd map_fd,
                                                                 Handler handler) {
    std::unique_ptr<RingBufferReader> reader(new RingBufferReader(io, std::move(handler)));
    reader->map_fd_ = std::move(map_fd);
    reader->ring_.reset(ring_buffer__new(reader->map_fd_.get(), &RingBufferReader::on_record, reader.get(), nullptr));
    if (!reader->ring_)
        return fail_errno("set up a ring buffer consumer");
    UniqueFd epoll_fd(dup(ring_buffer__epoll_fd(reader->ring_.get())));
    if (!epoll_fd)
        return fail_errno("dup the ring buffer's epoll fd");
    reader->descriptor_.assign(epoll_fd.release());
    return reader;
}

int RingBufferReader::on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingBufferReader*>(ctx);
    self->handler_(std::span<const std::byte>(static_cast<const std::byte*>(data), size));
    ++self->handled_;
    return 0;
}

size_t RingBufferReader::drain() {
    handled_ = 0;
    ring_buffer__consume(ring_.get());
    return handled_;
}

void RingBufferReader::start() {
    drain();  // records written while nobody was listening
    wait();
}

void RingBufferReader::wait() {
    descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           [this, alive = alive_](const boost::system::error_code& ec) {
                               if (ec || !*alive)
                                   return;
                               drain();
                               wait();
                           });
}

}  // namespace bpfwarden
