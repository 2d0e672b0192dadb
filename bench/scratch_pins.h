// A benchmark's own pin root, /sys/fs/bpf/bpfwarden-bench-<what>-<pid>:
// made at start, removed at exit (also on die() and signals that end the
// process through exit()), and only when it is on bpffs, as made.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "loading/pin_layout.h"

namespace bpfwarden::bench {

class ScratchPins {
public:
    explicit ScratchPins(const std::string& what)
        : pins_("/sys/fs/bpf/bpfwarden-bench-" + what + "-" + std::to_string(getpid())) {
        if (!is_bpffs("/sys/fs/bpf"))
            fail("/sys/fs/bpf is not bpffs (mount -t bpf bpf /sys/fs/bpf)");
        instance_ = this;
        std::atexit([] {
            if (instance_)
                instance_->remove();
        });
        if (auto made = pins_.create(); !made)
            fail(made.error().message());
    }
    ~ScratchPins() {
        remove();
        instance_ = nullptr;
    }
    ScratchPins(const ScratchPins&) = delete;
    ScratchPins& operator=(const ScratchPins&) = delete;

    const PinLayout& pins() const { return pins_; }

private:
    void remove() {
        std::error_code ec;
        if (is_bpffs(pins_.root().parent_path()))
            std::filesystem::remove_all(pins_.root(), ec);
    }
    [[noreturn]] static void fail(const std::string& why) {
        std::fprintf(stderr, "bench: %s\n", why.c_str());
        std::exit(1);
    }

    static inline ScratchPins* instance_ = nullptr;
    PinLayout pins_;
};

}  // namespace bpfwarden::bench
