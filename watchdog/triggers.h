// What makes the watchdog check at once rather than at the next interval:
// changes in the pin directories (inotify), successful bpf() commands from
// other processes that can detach links or change maps (the tamper_watch
// tracepoint programs), and edits of the policy directory.
#pragma once

#include <bpf/libbpf.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trust/bpf_image.h"
#include "support/directory_watch.h"
#include "support/error.h"

struct tamper_watch;

namespace bpfwarden {

// The tamper_watch BPF object, owned by this process (never pinned).
class TamperWatch {
public:
    using Handler = std::function<void(const std::string&)>;
    static Result<std::unique_ptr<TamperWatch>> open(boost::asio::io_context& io, const BpfImage& image,
                                                     Handler on_tamper);
    ~TamperWatch();

    // Watched bpf() commands other processes have entered so far (a plain
    // read of the object's mmapped .bss: no syscall).
    uint64_t watched_calls() const;

private:
    TamperWatch(boost::asio::io_context& io) : descriptor_(io) {}
    static int on_record(void* ctx, void* data, size_t size);
    void wait();

    tamper_watch* skeleton_ = nullptr;
    ring_buffer* ring_ = nullptr;
    boost::asio::posix::stream_descriptor descriptor_;
    Handler on_tamper_;
    BpfImage image_;  // the verified bytes stay alive as long as the skeleton
};

}  // namespace bpfwarden
