// What applying a large policy costs: 100 000 [[file]] and 10 000 [[exec]]
// rules on real files, from the policy directory to the kernel maps, the way
// bpfwardend does it: load_policy_dir (read, parse, merge), compile_policy
// (resolve every path), desired_maps, PolicyMaps::apply (all-or-nothing write
// into the store's maps). Applied twice: into empty maps, then the same policy
// again (a reload). Also the process's memory and the rule maps' kernel memory.
//
// Needs root and bpffs. The store object is loaded from the build's image
// into /sys/fs/bpf/bpfwarden-bench-apply-<pid>; the files and the policy are
// made in a new directory under --dir (default /var/tmp). Both are removed on
// exit, on failure and on SIGINT/SIGTERM. Prints figures; asserts nothing.
// See bench/README.md for how to read them.
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "inspection/map_digest.h"
#include "loading/bpf_objects.h"
#include "loading/pin_layout.h"
#include "policy/policy.h"
#include "policy/policy_compiler.h"
#include "policy/policy_maps.h"
#include "support/unique_fd.h"
#include "trust/bpf_image.h"

namespace bpfwarden {
namespace {

constexpr size_t kFilesPerDirectory = 1000;

volatile sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

double now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "policy_apply_bench: %s\n", what.c_str());
    std::exit(1);
}

void stop_if_asked() {
    if (g_stop)
        die("interrupted; pins and files removed");
}

// What this benchmark made: the pin root and the directory of files. Removed
// when it goes out of scope and on exit() (die).
class Scratch {
public:
    explicit Scratch(const std::filesystem::path& parent)
        : pins_("/sys/fs/bpf/bpfwarden-bench-apply-" + std::to_string(getpid())) {
        instance_ = this;
        std::atexit([] {
            if (instance_)
                instance_->remove();
        });
        if (!is_bpffs("/sys/fs/bpf"))
            die("/sys/fs/bpf is not bpffs (mount -t bpf bpf /sys/fs/bpf)");
        if (auto made = pins_.create(); !made)
            die(made.error().message());
        std::string pattern = (parent / "bw-apply-bench-XXXXXX").string();
        if (!mkdtemp(pattern.data()))
            die("create a directory in " + parent.string() + ": " + std::strerror(errno));
        files_ = pattern;
    }
    ~Scratch() {
        remove();
        instance_ = nullptr;
    }
    void remove() {
        std::error_code ec;
        if (is_bpffs(pins_.root().parent_path()))  // only the bpffs directory this benchmark made
            std::filesystem::remove_all(pins_.root(), ec);
        if (!files_.empty())
            std::filesystem::remove_all(files_, ec);
    }
    const PinLayout& pins() const { return pins_; }
    const std::filesystem::path& files() const { return files_; }

private:
    static inline Scratch* instance_ = nullptr;
    PinLayout pins_;
    std::filesystem::path files_;
};

// d000/f000 ... : the files the rules name, a thousand to a directory.
std::filesystem::path rule_file(const std::filesystem::path& root, size_t index) {
    char name[32];
    std::snprintf(name, sizeof name, "d%03zu/f%03zu", index / kFilesPerDirectory, index % kFilesPerDirectory);
    return root / name;
}

void make_files(const std::filesystem::path& root, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        if (i % kFilesPerDirectory == 0) {
            stop_if_asked();
            std::filesystem::create_directory(rule_file(root, i).parent_path());
        }
        UniqueFd fd(::open(rule_file(root, i).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd)
            die("create " + rule_file(root, i).string() + ": " + std::strerror(errno));
    }
}

// One policy file: the first `file_rules` files as [[file]] rules, the next
// `exec_rules` as [[exec]] rules.
void write_policy(const std::filesystem::path& policy_dir, const std::filesystem::path& root, size_t file_rules,
                  size_t exec_rules) {
    std::filesystem::create_directory(policy_dir);
    std::ofstream out(policy_dir / "00-bench.toml");
    out << "protect = false\n";
    for (size_t i = 0; i < file_rules + exec_rules; ++i)
        out << (i < file_rules ? "[[file]]\npath = \"" : "[[exec]]\npath = \"") << rule_file(root, i).string()
            << "\"\naction = \"deny\"\n";
    if (!out.flush())
        die("write the policy into " + policy_dir.string());
}

double rss_mib(const char* field) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with(field))
            return std::strtod(line.c_str() + std::strlen(field), nullptr) / 1024.0;
    return 0;
}

// Kernel memory charged to the four rule maps (fdinfo "memlock": buckets plus
// the entries present, for maps that allocate per entry).
double rule_maps_kernel_mib(const PinLayout& pins) {
    double bytes = 0;
    for (const char* map : {kFileRulesMap, kExecRulesMap, kDirentsMap, kDirRulesMap}) {
        auto fd = PinLayout::open_pin(pins.map_pin(map));
        if (!fd)
            die(fd.error().message());
        std::ifstream info("/proc/self/fdinfo/" + std::to_string(fd->get()));
        for (std::string line; std::getline(info, line);)
            if (line.starts_with("memlock:"))
                bytes += std::strtod(line.c_str() + 8, nullptr);
    }
    return bytes / (1024.0 * 1024.0);
}

// What the watchdog pays to check these maps: a digest of each (a batch
// lookup walks every bucket, however few entries a map holds).
double rule_maps_digest_ms(const PinLayout& pins) {
    const double start = now_ms();
    for (const char* map : {kFileRulesMap, kExecRulesMap, kDirentsMap, kDirRulesMap}) {
        auto fd = PinLayout::open_pin(pins.map_pin(map));
        if (!fd)
            die(fd.error().message());
        if (auto digest = map_digest(fd->get()); !digest)
            die(digest.error().message());
    }
    return now_ms() - start;
}

struct Timings {
    double parse, compile, desired, write;
    double total() const { return parse + compile + desired + write; }
};

// The daemon's path from the policy directory to the maps, timed step by step.
Timings apply_once(const std::filesystem::path& policy_dir, const PinLayout& pins, const ServiceIdentity& service) {
    Timings t{};
    double start = now_ms();
    auto policy = load_policy_dir(policy_dir);
    if (!policy)
        die(policy.error().message());
    t.parse = now_ms() - start;
    start = now_ms();
    auto compiled = compile_policy(*policy, filesystem_resolver());
    if (!compiled)
        die(compiled.error().message());
    t.compile = now_ms() - start;
    start = now_ms();
    DesiredMaps desired = desired_maps(*compiled, service);
    t.desired = now_ms() - start;
    start = now_ms();
    auto maps = PolicyMaps::open(pins);
    if (!maps)
        die(maps.error().message());
    if (auto applied = maps->apply(desired); !applied)
        die(applied.error().message());
    t.write = now_ms() - start;
    return t;
}

struct Options {
    std::string image_dir = BPFWARDEN_BENCH_IMAGE_DIR;
    std::filesystem::path dir = "/var/tmp";
    size_t file_rules = 100'000;
    size_t exec_rules = 10'000;
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
        else if (arg == "--dir")
            options.dir = value();
        else if (arg == "--file-rules")
            options.file_rules = std::strtoull(value().c_str(), nullptr, 10);
        else if (arg == "--exec-rules")
            options.exec_rules = std::strtoull(value().c_str(), nullptr, 10);
        else {
            std::printf(
                "usage: policy_apply_bench [--image-dir DIR] [--dir /var/tmp] [--file-rules 100000]\n"
                "                          [--exec-rules 10000]\n");
            std::exit(arg == "--help" || arg == "-h" ? 0 : 2);
        }
    }
    return options;
}

// One line of the table: the step times, then memory. `t` null: the empty maps.
void print_row(const char* what, const Timings* t, double rss_before, const PinLayout& pins) {
    std::printf("  %-16s", what);
    if (t)
        std::printf(" %7.0f %8.0f %8.0f %7.0f %7.0f %8.1f %8.1f %8.1f", t->parse, t->compile, t->desired, t->write,
                    t->total(), rss_before, rss_mib("VmRSS:"), rss_mib("VmHWM:"));
    else
        std::printf(" %7s %8s %8s %7s %7s %8s %8s %8s", "", "", "", "", "", "", "", "");
    std::printf(" %9.1f %9.1f\n", rule_maps_kernel_mib(pins), rule_maps_digest_ms(pins));
}

void print_header() {
    std::printf("  %-16s %7s %8s %8s %7s %7s %8s %8s %8s %9s %9s\n", "apply", "parse", "compile", "desired", "write",
                "total", "RSS", "RSS", "RSS", "rule maps", "digest of");
    std::printf("  %-16s %7s %8s %8s %7s %7s %8s %8s %8s %9s %9s\n", "", "ms", "ms", "ms", "ms", "ms", "before",
                "after", "peak MiB", "kern. MiB", "them, ms");
}

}  // namespace
}  // namespace bpfwarden

int main(int argc, char** argv) {
    using namespace bpfwarden;
    Options options = parse(argc, argv);
    if (geteuid() != 0)
        die("needs root (loads the store's maps)");
    struct sigaction action{};
    action.sa_handler = on_signal;
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        sigaction(sig, &action, nullptr);
    auto image = read_image(options.image_dir, "policy_maps");
    if (!image)
        die(image.error().message());

    Scratch scratch(options.dir);
    const std::filesystem::path files = scratch.files() / "files", policy_dir = scratch.files() / "policy.d";
    std::filesystem::create_directory(files);
    double start = now_ms();
    make_files(files, options.file_rules + options.exec_rules);
    write_policy(policy_dir, files, options.file_rules, options.exec_rules);
    const double setup_ms = now_ms() - start;
    if (auto loaded = load_attach_pin(*find_object("policy_maps"), *image, scratch.pins(), {}); !loaded)
        die(loaded.error().message());
    ServiceIdentity service;  // the benchmark's policy only: no canary, no own files
    service.canary = scratch.files() / "no-canary" / "canary";
    service.packager.clear();

    std::printf("policy_apply_bench: %zu [[file]] + %zu [[exec]] rules on real files (%s), the store's maps under %s\n",
                options.file_rules, options.exec_rules, files.c_str(), scratch.pins().root().c_str());
    std::printf("(made the files and the policy in %.1f s)\n", setup_ms / 1000);
#ifndef __OPTIMIZE__
    std::printf("WARNING: built without optimisation: figures overstate the cost (use a RelWithDebInfo build)\n");
#endif
    print_header();
    print_row("(empty maps)", nullptr, 0, scratch.pins());
    for (const char* what : {"into empty maps", "the same again"}) {
        stop_if_asked();
        const double rss_before = rss_mib("VmRSS:");
        const Timings timings = apply_once(policy_dir, scratch.pins(), service);
        print_row(what, &timings, rss_before, scratch.pins());
    }
    std::printf("policy_apply_bench: done; pins and files removed\n");
    return 0;
}
