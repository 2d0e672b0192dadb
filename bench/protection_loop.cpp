// The cost of syscalls that bpfwarden's self-protection programs see, in ns
// per call: the median of K timed batches of N calls each, batches of the
// cases interleaved as in open_loop, each paired with the same reference
// batch of user-space work (see open_loop.cpp's top comment: dividing by it
// cancels the emulated machine's drift in speed).
//
// Cases (any of them, in any order):
//   bpf-lookup    BPF_MAP_LOOKUP_ELEM on a 1-entry array map of our own:
//                 lsm/bpf and the sys_enter_bpf tracepoint run for each;
//   bpf-get-fd    BPF_MAP_GET_FD_BY_ID (read-write) of that map, then close():
//                 lsm/bpf and the tracepoint, plus lsm/bpf_map;
//   kill-0        kill(child, 0): lsm/task_kill for a probe, no signal;
//   kill-usr1     kill(child, SIGUSR1), which the child ignores: lsm/task_kill
//                 for a signal that stops or kills by default (the case the
//                 program looks further at), dropped by the kernel after it;
//   getppid       a syscall no LSM hook sees: the floor.
//
// Output, one line per case, then the reference:
//   <median ns> <median of ns / reference ns> <case>
//   <median ns of a reference batch> 1 reference
//
// Used by selftests/guest/bench_protection.sh; prints figures, asserts
// nothing. Needs CAP_BPF (or root) for the map. Exit status 1 when a call
// fails: the figure would be the cost of a failing call.
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: protection_loop [--batches K] [--iterations N] CASE...\n"
    "CASE: bpf-lookup bpf-get-fd kill-0 kill-usr1 getppid\n"
    "prints '<median ns> <median ns / reference ns> <CASE>' per CASE (see the source's top comment)\n";

// Identical to open_loop's reference, so that the two benchmarks' relative
// figures are in the same unit.
constexpr unsigned kReferenceSteps = 200000;

enum class Case { BpfLookup, BpfGetFd, Kill0, KillUsr1, Getppid };

struct CaseName {
    Case kind;
    const char* name;
};
constexpr std::array<CaseName, 5> kCases{{{Case::BpfLookup, "bpf-lookup"},
                                          {Case::BpfGetFd, "bpf-get-fd"},
                                          {Case::Kill0, "kill-0"},
                                          {Case::KillUsr1, "kill-usr1"},
                                          {Case::Getppid, "getppid"}}};

struct Options {
    unsigned batches = 41;
    unsigned iterations = 500;
    std::vector<CaseName> cases;
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
            continue;
        }
        auto known = std::find_if(kCases.begin(), kCases.end(), [&](const CaseName& c) { return arg == c.name; });
        if (known == kCases.end())
            return false;
        options.cases.push_back(*known);
    }
    return !options.cases.empty();
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

// The attr size libbpf passes for a command: up to the last field it uses
// (the kernel checks that the bytes past what it knows are zero).
#define ATTR_SIZE(field) (offsetof(union bpf_attr, field) + sizeof(((union bpf_attr*)nullptr)->field))

long sys_bpf(int cmd, union bpf_attr& attr, size_t size) { return syscall(SYS_bpf, cmd, &attr, size); }

struct Targets {
    int map_fd = -1;
    uint32_t map_id = 0;
    pid_t child = -1;
    int child_pipe = -1;  // write end: the child exits when it is closed
};

bool create_map(Targets& targets) {
    union bpf_attr attr{};
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = sizeof(uint32_t);
    attr.value_size = sizeof(uint64_t);
    attr.max_entries = 1;
    // Not "bpfw_": self-protection tells its own maps by that prefix.
    std::strncpy(attr.map_name, "bench_loop", sizeof(attr.map_name) - 1);
    targets.map_fd = static_cast<int>(sys_bpf(BPF_MAP_CREATE, attr, ATTR_SIZE(map_name)));
    if (targets.map_fd < 0)
        return false;
    bpf_map_info info{};
    union bpf_attr get{};
    get.info.bpf_fd = static_cast<uint32_t>(targets.map_fd);
    get.info.info_len = sizeof(info);
    get.info.info = reinterpret_cast<uintptr_t>(&info);
    if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, get, ATTR_SIZE(info)) != 0)
        return false;
    targets.map_id = info.id;
    return true;
}

// A child that ignores SIGUSR1 and waits for EOF on a pipe: the kernel drops
// an ignored signal after the permission checks, so the child never wakes.
bool start_child(Targets& targets) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    signal(SIGUSR1, SIG_IGN);  // inherited, so ignored from the child's first instruction
    targets.child = fork();
    if (targets.child < 0)
        return false;
    if (targets.child == 0) {
        close(fds[1]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char byte;
        while (read(fds[0], &byte, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
    }
    close(fds[0]);
    targets.child_pipe = fds[1];
    return true;
}

void stop_child(Targets& targets) {
    if (targets.child <= 0)
        return;
    close(targets.child_pipe);
    waitpid(targets.child, nullptr, 0);
}

// ns per call of `kind` over `iterations` calls; -1 when a call fails.
double time_case(Case kind, const Targets& targets, unsigned iterations) {
    uint32_t key = 0;
    uint64_t value = 0;
    union bpf_attr lookup{};
    lookup.map_fd = static_cast<uint32_t>(targets.map_fd);
    lookup.key = reinterpret_cast<uintptr_t>(&key);
    lookup.value = reinterpret_cast<uintptr_t>(&value);
    union bpf_attr by_id{};
    by_id.map_id = targets.map_id;

    long long start = now_ns();
    for (unsigned i = 0; i < iterations; ++i) {
        switch (kind) {
        case Case::BpfLookup:
            if (sys_bpf(BPF_MAP_LOOKUP_ELEM, lookup, ATTR_SIZE(flags)) != 0)
                return -1;
            break;
        case Case::BpfGetFd: {
            int fd = static_cast<int>(sys_bpf(BPF_MAP_GET_FD_BY_ID, by_id, ATTR_SIZE(open_flags)));
            if (fd < 0)
                return -1;
            close(fd);
            break;
        }
        case Case::Kill0:
        case Case::KillUsr1:
            if (kill(targets.child, kind == Case::Kill0 ? 0 : SIGUSR1) != 0)
                return -1;
            break;
        case Case::Getppid:
            syscall(SYS_getppid);  // not glibc's getppid(): never answered without a syscall
            break;
        }
    }
    return double(now_ns() - start) / iterations;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

struct Row {
    CaseName which;
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
    Targets targets;
    if (!create_map(targets)) {
        std::fprintf(stderr, "protection_loop: cannot create a BPF map: %s\n", std::strerror(errno));
        return 1;
    }
    if (!start_child(targets)) {
        std::fprintf(stderr, "protection_loop: cannot start the child to signal: %s\n", std::strerror(errno));
        return 1;
    }
    std::vector<Row> rows;
    for (const CaseName& c : options.cases)
        rows.push_back({c, {}, {}});
    std::vector<double> references;
    int status = 0;
    // Batch 0 is not recorded: caches and the rate limiter's state warm up.
    for (unsigned batch = 0; batch <= options.batches && status == 0; ++batch) {
        for (Row& row : rows) {
            double reference = time_reference();
            double ns = time_case(row.which.kind, targets, options.iterations);
            if (ns < 0) {
                std::fprintf(stderr, "protection_loop: %s failed: %s\n", row.which.name, std::strerror(errno));
                status = 1;
                break;
            }
            if (batch == 0)
                continue;
            row.ns.push_back(ns);
            row.relative.push_back(ns / reference);
            references.push_back(reference);
        }
    }
    stop_child(targets);
    close(targets.map_fd);
    if (status)
        return status;
    for (const Row& row : rows)
        std::printf("%.0f %.8f %s\n", median(row.ns), median(row.relative), row.which.name);
    std::printf("%.0f 1 reference\n", median(references));
    return 0;
}
