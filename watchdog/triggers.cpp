#include "triggers.h"

#include <linux/bpf.h>
#include <unistd.h>

#include <cstring>

#include "support/bpf_commands.h"
#include "bpfwarden/abi.h"
#include "support/event.h"
#include "loading/skeleton.h"
#include "tamper_watch.skel.h"

namespace bpfwarden {

BPFWARDEN_SKELETON_TRAITS(tamper_watch);

namespace {

// Commands after which our links, pins or maps may no longer be what they were.
uint64_t watched_commands() {
    uint64_t mask = 0;
    for (uint32_t cmd : {BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_LOOKUP_AND_DELETE_ELEM, BPF_MAP_UPDATE_BATCH,
                         BPF_MAP_DELETE_BATCH, BPF_MAP_LOOKUP_AND_DELETE_BATCH, BPF_MAP_FREEZE, BPF_OBJ_PIN,
                         BPF_PROG_DETACH, BPF_LINK_UPDATE, BPF_LINK_DETACH})
        mask |= uint64_t{1} << cmd;
    return mask;
}

}  // namespace

Result<std::unique_ptr<TamperWatch>> TamperWatch::open(boost::asio::io_context& io, const BpfImage& image,
                                                       Handler on_tamper) {
    std::unique_ptr<TamperWatch> watch(new TamperWatch(io));
    watch->image_ = image;
    watch->on_tamper_ = std::move(on_tamper);
    auto skel = Skeleton<tamper_watch>::open(watch->image_);
    if (!skel)
        return std::unexpected(skel.error());
    (*skel)->rodata->watched_cmds = watched_commands();
    (*skel)->rodata->watchdog_tgid = static_cast<__u32>(getpid());
    if (auto loaded = skel->load("tamper_watch"); !loaded)
        return std::unexpected(loaded.error());
    if (int err = tamper_watch__attach(skel->get()); err)
        return std::unexpected(Error::from_libbpf(err, "attach tamper_watch"));
    watch->ring_ = ring_buffer__new(bpf_map__fd((*skel)->maps.tamper_events), &TamperWatch::on_record, watch.get(),
                                    nullptr);
    if (!watch->ring_)
        return fail_errno("tamper_watch ring buffer");
    int epoll_fd = dup(ring_buffer__epoll_fd(watch->ring_));
    if (epoll_fd < 0)
        return fail_errno("dup tamper_watch epoll fd");
    watch->descriptor_.assign(epoll_fd);
    watch->skeleton_ = skel->release();
    watch->wait();
    return watch;
}

uint64_t TamperWatch::watched_calls() const {
    return __atomic_load_n(&skeleton_->bss->watched_calls, __ATOMIC_RELAXED);
}

TamperWatch::~TamperWatch() {
    descriptor_.close();
    ring_buffer__free(ring_);
    tamper_watch__destroy(skeleton_);
}

int TamperWatch::on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<TamperWatch*>(ctx);
    if (size < sizeof(bw_tamper_event))
        return 0;
    bw_tamper_event event;
    std::memcpy(&event, data, sizeof(event));
    std::string comm(event.comm, strnlen(event.comm, BW_COMM_LEN));
    self->on_tamper_("bpf(" + bpf_command_name(event.cmd) + ") by pid " + std::to_string(event.tgid) + " (" +
                     sanitize_field(comm, 64) + ")");
    return 0;
}

void TamperWatch::wait() {
    descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
        if (ec)
            return;
        ring_buffer__consume(ring_);
        wait();
    });
}

}  // namespace bpfwarden
