#include "triggers.h"

#include <linux/bpf.h>
#include <unistd.h>

#include <cstring>

#include "bpfwarden/abi.h"
#include "loading/skeleton.h"
#include "support/bpf_commands.h"
#include "support/event.h"

#include "tamper_watch.skel.h"

namespace bpfwarden {

BPFWARDEN_SKELETON_TRAITS(bpfw_tamper_watch);

namespace {

// Commands after which our links, pins or maps may no longer be what they
// were, and program loads (for the inventory).
uint64_t watched_commands() {
    uint64_t mask = 0;
    for (uint32_t cmd : {BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_LOOKUP_AND_DELETE_ELEM, BPF_MAP_UPDATE_BATCH,
                         BPF_MAP_DELETE_BATCH, BPF_MAP_LOOKUP_AND_DELETE_BATCH, BPF_MAP_FREEZE, BPF_OBJ_PIN,
                         BPF_PROG_DETACH, BPF_LINK_UPDATE, BPF_LINK_DETACH, BPF_PROG_LOAD})
        mask |= uint64_t{1} << cmd;
    return mask;
}

// The tripwire in one of its forms, loaded and attached.
Result<Skeleton<bpfw_tamper_watch>> load_form(const BpfImage& image, TamperWatch::Form form) {
    auto skel = Skeleton<bpfw_tamper_watch>::open(image);
    if (!skel)
        return std::unexpected(skel.error());
    (*skel)->rodata->watched_cmds = watched_commands();
    (*skel)->rodata->watchdog_tgid = static_cast<__u32>(getpid());
    const bool trampolines = form == TamperWatch::Form::Trampolines;
    bpf_program__set_autoload((*skel)->progs.bw_tw_fentry, trampolines);
    bpf_program__set_autoload((*skel)->progs.bw_tw_fexit, trampolines);
    bpf_program__set_autoload((*skel)->progs.bw_tw_enter, !trampolines);
    bpf_program__set_autoload((*skel)->progs.bw_tw_exit, !trampolines);
    const char* what = trampolines ? "tamper_watch (fentry/fexit)" : "tamper_watch (tracepoints)";
    if (auto loaded = skel->load(what); !loaded)
        return std::unexpected(loaded.error());
    if (int err = bpfw_tamper_watch__attach(skel->get()); err)
        return std::unexpected(Error::from_libbpf(err, std::string("attach ") + what));
    return skel;
}

}  // namespace

const char* TamperWatch::form_name() const {
    return form_ == Form::Trampolines ? "fentry/fexit on the bpf() syscall"
                                      : "the sys_enter_bpf/sys_exit_bpf tracepoints (every syscall takes the traced "
                                        "path while they are attached; this kernel runs no trampolines)";
}

Result<std::unique_ptr<TamperWatch>> TamperWatch::open(boost::asio::io_context& io, const BpfImage& image,
                                                       Handler on_tamper, Handler on_load) {
    std::unique_ptr<TamperWatch> watch(new TamperWatch());
    watch->image_ = image;
    watch->on_tamper_ = std::move(on_tamper);
    watch->on_load_ = std::move(on_load);
    const Skeleton<bpfw_tamper_watch>* loaded = nullptr;
    if (auto trampolines = load_form(watch->image_, TamperWatch::Form::Trampolines)) {
        loaded = &watch->skeleton_.emplace(std::move(*trampolines));
    } else {
        auto tracepoints = load_form(watch->image_, TamperWatch::Form::Tracepoints);
        if (!tracepoints)
            return fail(
                tracepoints.error().note("the fentry/fexit form failed first: " + trampolines.error().message()));
        loaded = &watch->skeleton_.emplace(std::move(*tracepoints));
        watch->form_ = TamperWatch::Form::Tracepoints;
    }
    UniqueFd events(dup(bpf_map__fd((*loaded)->maps.tamper_events)));
    if (!events)
        return fail_errno("dup tamper_watch ring buffer fd");
    auto reader = RingBufferReader::open(
        io, std::move(events), [raw = watch.get()](std::span<const std::byte> record) { raw->on_record(record); });
    if (!reader)
        return std::unexpected(reader.error().wrap("tamper_watch ring buffer"));
    watch->reader_ = std::move(*reader);
    watch->reader_->start();
    return watch;
}

TamperWatch::~TamperWatch() = default;

uint64_t TamperWatch::watched_calls() const {
    return skeleton_ ? __atomic_load_n(&(*skeleton_)->bss->watched_calls, __ATOMIC_RELAXED) : 0;
}

void TamperWatch::on_record(std::span<const std::byte> record) const {
    if (record.size() < sizeof(bw_tamper_event))
        return;
    bw_tamper_event event;
    std::memcpy(&event, record.data(), sizeof(event));
    std::string comm(event.comm, strnlen(event.comm, BW_COMM_LEN));
    std::string why = "bpf(" + bpf_command_name(event.cmd) + ") by pid " + std::to_string(event.tgid) + " (" +
                      sanitize_field(comm, 64) + ")";
    if (event.cmd == BPF_PROG_LOAD) {
        if (on_load_)
            on_load_(why);
        return;
    }
    on_tamper_(why);
}

}  // namespace bpfwarden
