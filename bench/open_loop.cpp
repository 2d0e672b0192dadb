// The cost of open() + close() of one or more paths, in ns per pair: the
// median of K timed batches of N pairs each. The batches of the paths are
// interleaved (batch 1 of every path, then batch 2, ...) so that a slow
// moment of the machine lands on all of them alike rather than on one.
//
// Each batch is paired with a reference batch run just before it: a fixed
// amount of user-space arithmetic and memory traffic that no kernel hook can
// touch. Under emulation on a shared host the machine's speed drifts by tens
// of percent over seconds (other guests, the hypervisor's neighbours); the
// batch's time divided by its reference's is a figure that drift cancels out
// of, so states measured seconds apart can be compared.
//
// --floor adds a row for getppid(), a syscall no LSM hook sees: what is
// added to it is added to every syscall (a syscall tracepoint in use puts
// every task on the traced syscall path), not by the file hooks.
//
// Output, one line per path (then getppid, then the reference):
//   <median ns> <median of ns / reference ns> <path>
// the reference line is "<median ns of a reference batch> 1 reference".
//
// Used by selftests/guest/bench_hooks.sh; prints figures, asserts nothing.
// Exit status 1 only when a path cannot be opened (the figure would be the
// cost of a failing open).
#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: open_loop [--batches K] [--iterations N] [--floor] PATH...\n"
    "prints '<median ns> <median ns / reference ns> <PATH>' per PATH (see the source's top comment)\n";

// About a millisecond under qemu TCG, a fifth of that natively: long enough
// to gauge the speed, short next to the batch it is paired with.
constexpr unsigned kReferenceSteps = 200000;

struct Options {
    unsigned batches = 41;
    unsigned iterations = 500;
    bool floor = false;
    std::vector<std::string> paths;
};

long long now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

bool parse_count(const char* text, unsigned& out) {
    char* end = nullptr;
    errno = 0;
    unsigned long value = std::strtoul(text, &end, 10);
    if (errno || end == text || *end != '\0' || value == 0 || value > 100000000UL)
        return false;
    out = static_cast<unsigned>(value);
    return true;
}

bool parse_args(int argc, char** argv, Options& options) {
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if ((arg == "--batches" || arg == "--iterations") && i + 1 < argc) {
            if (!parse_count(argv[++i], arg == "--batches" ? options.batches : options.iterations))
                return false;
        } else if (arg == "--floor") {
            options.floor = true;
        } else if (!arg.empty() && arg[0] != '-') {
            options.paths.push_back(arg);
        } else {
            return false;
        }
    }
    return !options.paths.empty() || options.floor;
}

volatile uint64_t g_reference_sink;  // keeps the reference's work from being optimised away

// ns of one reference batch: xorshift steps, each reading and writing a
// table slot (16 KiB, as much as a cache-friendly kernel path touches).
double time_reference() {
    static std::array<uint32_t, 4096> table{};
    uint64_t x = 88172645463325252ULL, sum = 0;
    long long start = now_ns();
    for (unsigned i = 0; i < kReferenceSteps; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += table[x & (table.size() - 1)]++;
    }
    g_reference_sink = sum;
    return double(now_ns() - start);
}

// ns per open+close of `path` over `iterations` pairs; -1 when open fails.
double time_opens(const std::string& path, unsigned iterations) {
    long long start = now_ns();
    for (unsigned i = 0; i < iterations; ++i) {
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        close(fd);
    }
    return double(now_ns() - start) / iterations;
}

double time_getppid(unsigned iterations) {
    long long start = now_ns();
    for (unsigned i = 0; i < iterations; ++i)
        syscall(SYS_getppid);  // not glibc's getppid(): never answered without a syscall
    return double(now_ns() - start) / iterations;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

struct Row {
    std::string name;
    std::vector<double> ns;
    std::vector<double> relative;  // ns / the paired reference batch's ns
};

}  // namespace

int main(int argc, char** argv) {
    Options options;
    if (!parse_args(argc, argv, options)) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    std::vector<Row> rows;
    for (const std::string& path : options.paths)
        rows.push_back({path, {}, {}});
    if (options.floor)
        rows.push_back({"getppid", {}, {}});
    std::vector<double> references;
    // Batch 0 is not recorded: dentries, page tables and caches warm up.
    for (unsigned batch = 0; batch <= options.batches; ++batch) {
        for (size_t r = 0; r < rows.size(); ++r) {
            double reference = time_reference();
            bool is_path = r < options.paths.size();
            double ns = is_path ? time_opens(rows[r].name, options.iterations) : time_getppid(options.iterations);
            if (ns < 0) {
                std::fprintf(stderr, "open_loop: cannot open '%s': %s\n", rows[r].name.c_str(), std::strerror(errno));
                return 1;
            }
            if (batch == 0)
                continue;
            rows[r].ns.push_back(ns);
            rows[r].relative.push_back(ns / reference);
            references.push_back(reference);
        }
    }
    for (const Row& row : rows)
        std::printf("%.0f %.8f %s\n", median(row.ns), median(row.relative), row.name.c_str());
    std::printf("%.0f 1 reference\n", median(references));
    return 0;
}
