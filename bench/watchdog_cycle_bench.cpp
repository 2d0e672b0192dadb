// What one watchdog verification cycle costs: our in-process inspection
// (inspect_link per program + map_digest of one policy-sized map) against
// the naive pattern of shelling out to bpftool, side by side in one run, for
// N = 5, 20 and 100 really attached programs.
//
// Needs root and bpffs. Pins live under /sys/fs/bpf/bpfwarden-bench-<pid>
// and are removed on exit, on failure and on SIGINT/SIGTERM. Prints figures;
// asserts nothing. See bench/README.md for how to read them.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "inspection/map_digest.h"
#include "inspection/pin_inspector.h"
#include "inspection/program_identity.h"
#include "loading/bpf_objects.h"
#include "loading/pin_layout.h"
#include "support/unique_fd.h"
#include "trust/bpf_image.h"

namespace bpfwarden {
namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

double seconds(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

double children_cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_CHILDREN, &usage);
    auto tv = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
    return tv(usage.ru_utime) + tv(usage.ru_stime);
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "watchdog_cycle_bench: %s\n", what.c_str());
    std::exit(1);
}

// Removes every pin under the bench root when it goes out of scope and on
// exit() (die): the programs detach once their pins are gone.
class BenchRoot {
public:
    BenchRoot() : root_("/sys/fs/bpf/bpfwarden-bench-" + std::to_string(getpid())) {
        instance_ = this;
        std::atexit([] {
            if (instance_)
                instance_->remove();
        });
        if (!is_bpffs("/sys/fs/bpf"))
            die("/sys/fs/bpf is not bpffs (mount -t bpf bpf /sys/fs/bpf)");
        if (mkdir(root_.c_str(), 0700) != 0)
            die("create " + root_.string() + ": " + std::strerror(errno));
    }
    ~BenchRoot() {
        remove();
        instance_ = nullptr;
    }
    void remove() {
        std::error_code ec;
        if (is_bpffs(root_.parent_path()))  // only the bpffs directory this benchmark made
            std::filesystem::remove_all(root_, ec);
    }
    const std::filesystem::path& path() const { return root_; }

private:
    static inline BenchRoot* instance_ = nullptr;
    std::filesystem::path root_;
};

// One policy-sized hash map: 100 entries of 16-byte key / 8-byte value,
// pinned so that bpftool can dump it by path.
struct PolicyMap {
    UniqueFd fd;
    std::string pin;
    Digest desired{};
};

PolicyMap make_policy_map(const std::filesystem::path& root) {
    PolicyMap map;
    map.fd.reset(bpf_map_create(BPF_MAP_TYPE_HASH, "bw_bench_policy", 16, 8, 1024, nullptr));
    if (!map.fd)
        die(std::string("create policy map: ") + std::strerror(errno));
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> desired;
    for (uint32_t i = 0; i < 100; ++i) {
        std::vector<uint8_t> key(16, 0), value(8, 0);
        std::memcpy(key.data(), &i, sizeof(i));  // (dev, ino)-like: low part varies
        key[8] = uint8_t(i * 37);
        value[0] = uint8_t(i % 2);  // deny / audit
        value[4] = uint8_t(i);      // rule id
        if (bpf_map_update_elem(map.fd.get(), key.data(), value.data(), BPF_NOEXIST) != 0)
            die(std::string("fill policy map: ") + std::strerror(errno));
        desired.emplace_back(std::move(key), std::move(value));
    }
    map.desired = digest_of_entries(16, 8, std::move(desired));
    map.pin = (root / "policy_map").string();
    if (bpf_obj_pin(map.fd.get(), map.pin.c_str()) != 0)
        die("pin policy map: " + std::string(std::strerror(errno)));
    return map;
}

// Where copy i attaches. The kernel caps one tracepoint at 64 BPF programs
// (BPF_TRACE_MAX_PROGS: the 65th attach fails with E2BIG), and every copy on
// sys_enter_bpf would also run on each bpf() call of the cycle being
// measured, charging N program runs per syscall to the watchdog where
// production has one. So copy 0 sits on sys_enter_bpf like the real
// program and the others spread over syscall-entry tracepoints nothing on
// a running host calls, each with at least one argument (the program reads
// args[0]; the kernel refuses, EACCES, to attach it where the context is
// shorter) — same context type, same program; --same-tracepoint
// puts them all on sys_enter_bpf instead (N <= 64) to show that effect.
std::vector<std::string> tracepoints_for(int n, bool same_tracepoint) {
    static const char* const kQuiet[] = {"acct",       "swapon",   "swapoff", "sethostname", "setdomainname",
                                         "pivot_root", "quotactl", "iopl",    "ioperm"};
    std::vector<std::string> quiet;
    for (const char* name : kQuiet)
        for (const char* tracefs : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"})
            if (access((std::string(tracefs) + "/events/syscalls/sys_enter_" + name).c_str(), F_OK) == 0) {
                quiet.push_back(std::string("sys_enter_") + name);
                break;
            }
    if (same_tracepoint && n > 64)
        die("--same-tracepoint allows at most 64 copies (BPF_TRACE_MAX_PROGS)");
    if (!same_tracepoint && size_t(n - 1) > quiet.size() * 64)
        die("not enough quiet tracepoints for " + std::to_string(n) + " copies");
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i)
        out.push_back(i == 0 || same_tracepoint ? std::string("sys_enter_bpf") : quiet[size_t(i - 1) % quiet.size()]);
    return out;
}

uint32_t map_id(bpf_object* obj, const char* name) {
    bpf_map* map = bpf_object__find_map_by_name(obj, name);
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (!map || bpf_obj_get_info_by_fd(bpf_map__fd(map), &info, &len) != 0)
        die(std::string("read map id of ") + name);
    return info.id;
}

// N copies of the image, each loaded on its own (own maps, own program, own
// perf_event link), attached, and its link pinned under <root>/copy<i>/ —
// what load_attach_pin does, with the tracepoint chosen per copy. Nothing
// of this process holds them afterwards: the pins do.
std::vector<ExpectedProgram> load_copies(const ObjectSpec& spec, const BpfImage& image, const ProgramIdentity& identity,
                                         const std::filesystem::path& root,
                                         const std::vector<std::string>& tracepoints) {
    std::vector<ExpectedProgram> expected;
    for (size_t i = 0; i < tracepoints.size() && !g_stop; ++i) {
        std::filesystem::path dir = root / ("copy" + std::to_string(i));
        if (mkdir(dir.c_str(), 0700) != 0)
            die("create " + dir.string() + ": " + std::strerror(errno));
        std::string name = object_name(image);
        LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name.c_str());
        std::unique_ptr<bpf_object, decltype(&bpf_object__close)> obj(
            bpf_object__open_mem(image.bytes.data(), image.bytes.size(), &opts), &bpf_object__close);
        if (!obj)
            die("open copy " + std::to_string(i) + ": " + std::strerror(errno));
        // Only the measured program: the object's LSM form cannot load here.
        bpf_program* other = nullptr;
        bpf_object__for_each_program(other, obj.get()) {
            bpf_program__set_autoload(other, std::string_view(bpf_program__name(other)) == spec.programs.front().name);
        }
        if (bpf_object__load(obj.get()) != 0)
            die("load copy " + std::to_string(i) + ": " + std::strerror(errno));
        bpf_program* prog = bpf_object__find_program_by_name(obj.get(), spec.programs.front().name);
        if (!prog)
            die(std::string("no program ") + spec.programs.front().name);
        bpf_link* link = bpf_program__attach_tracepoint(prog, "syscalls", tracepoints[i].c_str());
        if (!link)
            die("attach copy " + std::to_string(i) + " to syscalls/" + tracepoints[i] + ": " + std::strerror(errno));
        std::string pin = (dir / spec.programs.front().name).string();
        int pinned = bpf_link__pin(link, pin.c_str());
        bpf_link__destroy(link);  // the pin holds the attachment
        if (pinned != 0)
            die("pin " + pin + ": " + std::strerror(-pinned));
        ExpectedProgram program{pin, identity, "tracepoint/syscalls/" + tracepoints[i]};
        // The map check the watchdog should make too: the copy's own maps.
        program.map_ids = {map_id(obj.get(), kTrailLimitMap), map_id(obj.get(), kEventsMap)};
        expected.push_back(std::move(program));
    }
    return expected;
}

void unload_copies(const std::filesystem::path& root, int n) {
    std::error_code ec;
    for (int i = 0; i < n; ++i)
        std::filesystem::remove_all(root / ("copy" + std::to_string(i)), ec);
}

// The benchmark's one inspector, as the watchdog has one.
PinInspector& inspector() {
    static PinInspector instance;
    return instance;
}

// One in-process cycle; returns the number of findings (0 when healthy).
int our_cycle(const std::vector<ExpectedProgram>& programs, const PolicyMap& map) {
    int findings = 0;
    for (const auto& program : programs)
        if (inspector().inspect_link(program).problem != LinkProblem::None)
            ++findings;
    UniqueFd fd(bpf_obj_get(map.pin.c_str()));
    auto digest = fd ? map_digest(fd.get()) : Result<Digest>(fail_errno("open policy map pin"));
    if (!digest || *digest != map.desired)
        ++findings;
    return findings;
}

// fork + exec of bpftool, stdout captured the way a shell-out watchdog
// reads it; returns the output ("" on failure).
std::string run_bpftool(const std::vector<std::string>& args) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        dup2(out[1], STDOUT_FILENO);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDERR_FILENO);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(BPFWARDEN_BENCH_BPFTOOL));
        for (const auto& arg : args)
            argv.push_back(const_cast<char*>(arg.c_str()));
        argv.push_back(nullptr);
        execv(BPFWARDEN_BENCH_BPFTOOL, argv.data());
        _exit(127);
    }
    close(out[1]);
    std::string output;
    char buf[65536];
    for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) > 0;)
        output.append(buf, size_t(n));
    close(out[0]);
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? output : std::string();
}

std::string json_field(const std::string& json, const std::string& name) {
    std::string needle = "\"" + name + "\":";
    auto at = json.find(needle);
    if (at == std::string::npos)
        return {};
    at += needle.size();
    if (at < json.size() && json[at] == '"') {
        auto end = json.find('"', at + 1);
        return end == std::string::npos ? std::string() : json.substr(at + 1, end - at - 1);
    }
    auto end = json.find_first_not_of("0123456789", at);
    return json.substr(at, end - at);
}

// The naive cycle: per program `bpftool link show pinned` (for the program
// id) and `bpftool prog show id` (for its tag), then one `bpftool map dump
// pinned` of the policy map.
int bpftool_cycle(const std::vector<ExpectedProgram>& programs, const PolicyMap& map) {
    int findings = 0;
    for (const auto& program : programs) {
        std::string link = run_bpftool({"-j", "link", "show", "pinned", program.pin});
        std::string prog_id = json_field(link, "prog_id");
        std::string prog = prog_id.empty() ? std::string() : run_bpftool({"-j", "prog", "show", "id", prog_id});
        if (json_field(prog, "tag") != tag_hex(program.identity.tag))
            ++findings;
    }
    if (run_bpftool({"-j", "map", "dump", "pinned", map.pin}).empty())
        ++findings;
    return findings;
}

struct Options {
    std::string object = "bpf_audit";
    std::string image_dir = BPFWARDEN_BENCH_IMAGE_DIR;
    int our_cycles = 200;
    int bpftool_cycles = 5;
    std::vector<int> sizes = {5, 20, 100};
    bool same_tracepoint = false;
};

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                die("missing value for " + arg);
            return argv[++i];
        };
        if (arg == "--image-dir")
            options.image_dir = value();
        else if (arg == "--our-cycles")
            options.our_cycles = std::max(1, std::atoi(value().c_str()));
        else if (arg == "--bpftool-cycles")
            options.bpftool_cycles = std::max(1, std::atoi(value().c_str()));
        else if (arg == "--same-tracepoint")
            options.same_tracepoint = true;
        else if (arg == "--sizes") {
            options.sizes.clear();
            std::string list = value();
            for (size_t at = 0; at < list.size();) {
                size_t comma = list.find(',', at);
                options.sizes.push_back(std::max(1, std::atoi(list.substr(at, comma - at).c_str())));
                at = comma == std::string::npos ? list.size() : comma + 1;
            }
        } else {
            std::printf(
                "usage: watchdog_cycle_bench [--image-dir DIR] [--our-cycles 200] [--bpftool-cycles 5]\n"
                "                            [--sizes 5,20,100] [--same-tracepoint]\n");
            std::exit(arg == "--help" || arg == "-h" ? 0 : 2);
        }
    }
    return options;
}

// Links on the host: what foreign_lsm_programs walks.
size_t count_links() {
    size_t count = 0;
    for (__u32 id = 0; bpf_link_get_next_id(id, &id) == 0;)
        ++count;
    return count;
}

// map_digest alone, per read method: the batch-or-iterate measurement.
void measure_map_reads(const PolicyMap& map) {
    constexpr int kReps = 500;
    std::printf("map_digest of the 100-entry policy map (CPU per digest, %d reps):\n", kReps);
    for (auto [method, name] : {std::pair{MapReadMethod::Batch, "batch lookup (1 syscall)"},
                                std::pair{MapReadMethod::KeyByKey, "get_next_key + lookup (200 syscalls)"}}) {
        double t0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        bool ok = true;
        for (int i = 0; i < kReps; ++i) {
            auto digest = map_digest(map.fd.get(), method);
            ok = ok && digest && *digest == map.desired;
        }
        double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - t0;
        std::printf("  %-38s %8.1f us%s\n", name, cpu / kReps * 1e6, ok ? "" : "  (MISMATCH)");
    }
}

}  // namespace
}  // namespace bpfwarden

int main(int argc, char** argv) {
    using namespace bpfwarden;
    Options options = parse(argc, argv);
    if (geteuid() != 0)
        die("needs root (loads and attaches BPF programs)");
    struct sigaction action{};
    action.sa_handler = on_signal;
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        sigaction(sig, &action, nullptr);

    const ObjectSpec* spec = nullptr;
    for (const auto& candidate : managed_objects())
        if (candidate.name == options.object && !candidate.programs.empty())
            spec = &candidate;
    if (!spec)
        die("no object with a program named '" + options.object + "'");
    auto image = read_image(options.image_dir, options.object);
    if (!image)
        die(image.error().message());
    auto identities =
        derive_identities(*image, [&](std::string_view name) { return name == spec->programs.front().name; });
    if (!identities || identities->empty())
        die(identities ? "image has no program" : identities.error().message());
    const ProgramIdentity identity = identities->front();

    BenchRoot root;
    PolicyMap map = make_policy_map(root.path());

    std::printf("watchdog_cycle_bench: N attached copies of '%s' (image %s, tag %s)\n", spec->programs.front().name,
                spec->name, tag_hex(identity.tag).c_str());
    std::printf("placement: %s\n",
                options.same_tracepoint
                    ? "all copies on syscalls/sys_enter_bpf (each runs on every bpf() call measured)"
                    : "copy 0 on syscalls/sys_enter_bpf, the rest on quiet syscall-entry tracepoints");
#ifndef __OPTIMIZE__
    std::printf("WARNING: built without optimisation: figures overstate the cost (use a RelWithDebInfo build)\n");
#endif
    std::printf("one cycle = inspect_link per program + map_digest of a 100-entry (16 B key, 8 B value) hash map\n");
    std::printf(
        "bpftool pattern = per program `bpftool -j link show pinned` + `bpftool -j prog show id`,\n"
        "                  then `bpftool -j map dump pinned` of the policy map (fork/exec each)\n\n");
    measure_map_reads(map);

    // The LSM hook table is built on first use; its one-time cost is shown
    // apart from the per-cycle scan.
    const std::vector<std::string> hooks = {"file_open", "bprm_check_security", "bpf"};
    double t0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    auto first_scan = inspector().foreign_lsm_programs(hooks, {});
    double first_scan_cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - t0;
    std::printf("foreign_lsm_programs first call (loads vmlinux BTF once): %.1f ms CPU%s\n\n", first_scan_cpu * 1e3,
                first_scan ? "" : (" — failed: " + first_scan.error().message()).c_str());

    std::printf("%5s  %14s  %14s  %16s  %16s  %8s  %16s\n", "N", "ours CPU us", "ours wall us", "bpftool CPU ms",
                "bpftool wall ms", "ratio", "foreign scan us");
    std::printf("%5s  %14s  %14s  %16s  %16s  %8s  %16s\n", "", "/cycle", "/cycle", "/cycle (children)", "/cycle",
                "CPU", "/cycle (links)");
    for (int n : options.sizes) {
        if (g_stop)
            break;
        std::vector<ExpectedProgram> programs =
            load_copies(*spec, *image, identity, root.path(), tracepoints_for(n, options.same_tracepoint));
        if (g_stop)
            break;

        for (int i = 0; i < 10; ++i)  // warm caches (dentries, allocator)
            (void)our_cycle(programs, map);
        int findings = 0;
        double cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID), wall0 = seconds(CLOCK_MONOTONIC);
        for (int i = 0; i < options.our_cycles && !g_stop; ++i)
            findings += our_cycle(programs, map);
        double ours_cpu = (seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / options.our_cycles;
        double ours_wall = (seconds(CLOCK_MONOTONIC) - wall0) / options.our_cycles;

        std::vector<uint32_t> our_ids;
        for (const auto& program : programs)
            our_ids.push_back(inspector().inspect_link(program).prog_id);
        size_t foreign_found = 0;
        cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < options.our_cycles && !g_stop; ++i) {
            auto foreign = inspector().foreign_lsm_programs(hooks, our_ids);
            foreign_found = foreign ? foreign->size() : 0;
        }
        double scan_cpu = (seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / options.our_cycles;

        int bpftool_findings = 0;
        double children0 = children_cpu_seconds();
        wall0 = seconds(CLOCK_MONOTONIC);
        for (int i = 0; i < options.bpftool_cycles && !g_stop; ++i)
            bpftool_findings += bpftool_cycle(programs, map);
        double tool_cpu = (children_cpu_seconds() - children0) / options.bpftool_cycles;
        double tool_wall = (seconds(CLOCK_MONOTONIC) - wall0) / options.bpftool_cycles;

        std::printf("%5d  %14.1f  %14.1f  %16.2f  %16.2f  %7.0fx  %9.1f (%3zu)", n, ours_cpu * 1e6, ours_wall * 1e6,
                    tool_cpu * 1e3, tool_wall * 1e3, tool_cpu / ours_cpu, scan_cpu * 1e6, count_links());
        if (findings || bpftool_findings || foreign_found)
            std::printf("   (findings: ours %d, bpftool %d, foreign %zu — not a healthy run)", findings,
                        bpftool_findings, foreign_found);
        std::printf("\n");
        std::fflush(stdout);
        unload_copies(root.path(), n);
    }
    if (g_stop) {
        std::printf("watchdog_cycle_bench: interrupted; pins removed\n");
        return 130;
    }
    std::printf("\nwatchdog_cycle_bench: done — %d in-process and %d bpftool cycles per N; all pins under %s removed\n",
                options.our_cycles, options.bpftool_cycles, root.path().c_str());
    return 0;
}
