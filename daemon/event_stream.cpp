#include "event_stream.h"

#include <unistd.h>

#include "loading/bpf_objects.h"

namespace bpfwarden {

Result<std::unique_ptr<EventStream>> EventStream::open(boost::asio::io_context& io, const PinLayout& pins,
                                                       Handler handler) {
    auto map_fd = PinLayout::open_pin(pins.map_pin(kEventsMap));
    if (!map_fd)
        return std::unexpected(map_fd.error().wrap("event ring buffer"));
    std::unique_ptr<EventStream> stream(new EventStream(io, std::move(handler)));
    stream->map_fd_ = std::move(*map_fd);
    stream->ring_ = ring_buffer__new(stream->map_fd_.get(), &EventStream::on_record, stream.get(), nullptr);
    if (!stream->ring_)
        return fail_errno("event ring buffer: set up consumer");
    int epoll_fd = dup(ring_buffer__epoll_fd(stream->ring_));
    if (epoll_fd < 0)
        return fail_errno("event ring buffer: dup epoll fd");
    stream->descriptor_.assign(epoll_fd);
    return stream;
}

EventStream::~EventStream() {
    descriptor_.close();
    ring_buffer__free(ring_);
}

int EventStream::on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<EventStream*>(ctx);
    self->handler_(std::span<const std::byte>(static_cast<const std::byte*>(data), size));
    ++self->handled_;
    return 0;
}

size_t EventStream::drain() {
    handled_ = 0;
    ring_buffer__consume(ring_);
    return handled_;
}

void EventStream::start() {
    drain();  // records written while nobody was listening
    wait();
}

void EventStream::wait() {
    descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           [this](const boost::system::error_code& ec) {
                               if (ec)
                                   return;
                               drain();
                               wait();
                           });
}

}  // namespace bpfwarden
