// What makes the watchdog check at once rather than at the next interval:
// changes in the pin directories (inotify), successful bpf() commands from
// other processes that can detach links or change maps (the tamper_watch
// programs), and edits of the policy directory. Program loads
// reach the inventory watch instead (inventory_watch.h).
#pragma once

#include <bpf/libbpf.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "loading/ring_buffer_reader.h"
#include "loading/skeleton.h"
#include "support/directory_watch.h"
#include "support/error.h"
#include "trust/bpf_image.h"

#include "tamper_watch.skel.h"

namespace bpfwarden {

// The tamper_watch BPF object, owned by this process (never pinned).
class TamperWatch {
public:
    using Handler = std::function<void(const std::string&)>;
    // fentry/fexit where the kernel runs trampolines; the syscall
    // tracepoints (which tax every syscall) only where it does not.
    enum class Form { Trampolines, Tracepoints };
    // on_tamper: a watched command changed something; on_load: a program
    // was loaded (may be empty).
    static Result<std::unique_ptr<TamperWatch>> open(boost::asio::io_context& io, const BpfImage& image,
                                                     Handler on_tamper, Handler on_load);

    ~TamperWatch();  // where the skeleton's traits are known

    // Watched bpf() commands other processes have entered so far (a plain
    // read of the object's mmapped .bss: no syscall).
    uint64_t watched_calls() const;
    Form form() const { return form_; }
    const char* form_name() const;

private:
    TamperWatch() = default;
    void on_record(std::span<const std::byte> record) const;

    Form form_ = Form::Trampolines;
    BpfImage image_;                                       // the verified bytes stay alive as long as the skeleton
    std::optional<Skeleton<bpfw_tamper_watch>> skeleton_;  // owns the programs, maps and links
    std::unique_ptr<RingBufferReader> reader_;             // destroyed first: it reads the skeleton's map
    Handler on_tamper_;
    Handler on_load_;
};

}  // namespace bpfwarden
