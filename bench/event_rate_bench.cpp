// How many audit-trail events a second reach user space with none lost, on
// this machine's kernel: bpf_audit's tracepoint form (or lsm/bpf where BPF
// LSM works) under a private pin root, fed by bpf() calls made at a paced
// rate, read by a second thread that decodes every record as bpfwardend
// does. The trail's per-uid budget is lifted, so that only the ring buffer
// and its reader decide. Figures, no assertions.
//   event_rate_bench [--seconds N]   (root; bpffs at /sys/fs/bpf)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "loading/bpf_objects.h"
#include "loading/lsm_probe.h"
#include "policy/policy_maps.h"
#include "scratch_pins.h"
#include "support/event.h"
#include "trust/bpf_image.h"

namespace bpfwarden {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "event_rate_bench: %s\n", why.c_str());
    std::exit(1);
}

// The records of this process's marker calls (a failing BPF_MAP_FREEZE: a
// state-changing command, so reported, that fails at once).
struct Reader {
    std::atomic<uint64_t> ours{0};
    std::atomic<uint64_t> records{0};
    std::atomic<bool> stop{false};
    uint32_t tgid = static_cast<uint32_t>(getpid());
};

int on_record(void* ctx, void* data, size_t size) {
    auto* reader = static_cast<Reader*>(ctx);
    reader->records.fetch_add(1, std::memory_order_relaxed);
    auto event = decode_event({static_cast<const std::byte*>(data), size});
    if (event && event->tgid == reader->tgid && event->bpf_cmd == BPF_MAP_FREEZE)
        reader->ours.fetch_add(1, std::memory_order_relaxed);
    return 0;
}

void read_ring(ring_buffer* ring, Reader* reader) {
    while (!reader->stop.load())
        ring_buffer__poll(ring, 10);
    while (ring_buffer__consume(ring) > 0) {
    }
}

// `rate` calls a second for `seconds` (0: as fast as one thread can);
// returns how many were made.
uint64_t make_calls(uint64_t rate, double seconds) {
    auto start = Clock::now();
    auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    uint64_t made = 0;
    for (auto now = start; now < end; now = Clock::now()) {
        if (rate != 0) {
            double due = std::chrono::duration<double>(now - start).count() * static_cast<double>(rate);
            if (static_cast<double>(made) >= due)
                continue;  // ahead of the pace
        }
        bpf_map_freeze(-1);
        ++made;
    }
    return made;
}

// Waits until the reader has seen `made` of our records, or nothing new for 200 ms.
uint64_t settled_count(const Reader& reader, uint64_t before, uint64_t made) {
    uint64_t last = reader.ours.load();
    auto quiet_since = Clock::now();
    while (last - before < made && Clock::now() - quiet_since < std::chrono::milliseconds(200)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (uint64_t now = reader.ours.load(); now != last) {
            last = now;
            quiet_since = Clock::now();
        }
    }
    return last - before;
}

uint64_t kernel_dropped(const PinLayout& pins) {
    auto counters = read_counters(pins);
    return counters ? counters->dropped : 0;
}

// --seconds N (per step), or exit: 0 after --help, 2 for a bad argument.
double parse_seconds(int argc, char** argv) {
    double seconds = 1.0;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--seconds" && i + 1 < argc) {
            seconds = std::atof(argv[++i]);
        } else if (arg == "--help") {
            std::printf("usage: event_rate_bench [--seconds N]   (root; N: seconds per rate, default 1)\n");
            std::exit(0);
        } else {
            std::fprintf(stderr, "event_rate_bench: unknown argument '%s' (see --help)\n", argv[i]);
            std::exit(2);
        }
    }
    if (seconds <= 0 || seconds > 60)
        die("--seconds must be in (0, 60]");
    return seconds;
}

// bpf_audit in the form this kernel runs, with no per-uid budget; returns
// whether it is the lsm/bpf form.
bool load_audit(const PinLayout& pins) {
    auto image = read_image(BPFWARDEN_BENCH_IMAGE_DIR, "bpf_audit");
    if (!image)
        die(image.error().message());
    auto probe = read_image(BPFWARDEN_BENCH_IMAGE_DIR, "lsm_probe");
    LoadConfig config;
    auto quiet = libbpf_set_print(nullptr);  // a refused probe is an answer, not an error
    config.bpf_lsm = probe && probe_bpf_lsm(*probe).usable;
    libbpf_set_print(quiet);
    config.trail_limit_burst = std::numeric_limits<uint32_t>::max();  // only the ring decides
    if (auto loaded = load_attach_pin(*find_object("bpf_audit"), *image, pins, config); !loaded)
        die(loaded.error().message());
    return config.bpf_lsm;
}

// One row per rate, then the highest rate with no loss and where loss begins.
void run_steps(const PinLayout& pins, const Reader& reader, double seconds) {
    std::printf("  %10s %10s %10s %10s %8s %12s\n", "asked/s", "made/s", "made", "delivered", "lost", "ring full");
    uint64_t zero_loss_rate = 0, loss_begins = 0;
    for (uint64_t rate : {10'000ULL, 25'000ULL, 50'000ULL, 100'000ULL, 200'000ULL, 400'000ULL, 0ULL}) {
        uint64_t before = reader.ours.load(), dropped_before = kernel_dropped(pins);
        auto start = Clock::now();
        uint64_t made = make_calls(rate, seconds);
        double took = std::chrono::duration<double>(Clock::now() - start).count();
        uint64_t delivered = settled_count(reader, before, made);
        uint64_t lost = made - std::min(made, delivered);
        auto made_rate = static_cast<uint64_t>(static_cast<double>(made) / took);
        std::printf("  %10s %10llu %10llu %10llu %8llu %12llu\n", rate ? std::to_string(rate).c_str() : "max",
                    static_cast<unsigned long long>(made_rate), static_cast<unsigned long long>(made),
                    static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(lost),
                    static_cast<unsigned long long>(kernel_dropped(pins) - dropped_before));
        if (loss_begins == 0 && lost == 0)
            zero_loss_rate = made_rate;
        else if (loss_begins == 0)
            loss_begins = made_rate;
    }
    std::printf("event_rate_bench: no loss up to %llu events/s; ", static_cast<unsigned long long>(zero_loss_rate));
    if (loss_begins)
        std::printf("loss begins at %llu events/s\n", static_cast<unsigned long long>(loss_begins));
    else
        std::printf("no loss at any rate one thread could make\n");
}

}  // namespace
}  // namespace bpfwarden

int main(int argc, char** argv) {
    using namespace bpfwarden;
    double seconds = parse_seconds(argc, argv);
    if (geteuid() != 0)
        die("needs root (loads bpf_audit)");
    bench::ScratchPins scratch("events");
    bool lsm_form = load_audit(scratch.pins());
    auto ring_map = PinLayout::open_pin(scratch.pins().map_pin(kEventsMap));
    if (!ring_map)
        die(ring_map.error().message());
    Reader reader;
    ring_buffer* ring = ring_buffer__new(ring_map->get(), on_record, &reader, nullptr);
    if (!ring)
        die("ring_buffer__new failed");
    std::thread reading(read_ring, ring, &reader);
    std::printf("event_rate_bench: bpf() audit (%s form), 256 KiB ring of %zu-byte records, one reader thread\n",
                lsm_form ? "lsm/bpf" : "tracepoint", sizeof(bw_event));
    run_steps(scratch.pins(), reader, seconds);
    reader.stop = true;
    reading.join();
    ring_buffer__free(ring);
    return 0;
}
