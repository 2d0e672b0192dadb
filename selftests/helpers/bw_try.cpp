// bw-try: performs one action that bpfwarden may deny and reports the exact
// outcome, so selftests assert errno values rather than grep error texts.
//
// Prints one line: "bw-try pid=<pid> <action> <target> result=<ok|ERRNO>"
// (exec-like actions add "child=<pid>": the process the kernel judged; loops and
// the race add counters) and exits 0 when the action succeeded, 1 when it
// failed, 2 on usage errors. An action of several steps reports the first step
// that failed and names it in the target on failure only: "/x(at mmap)".
// EUNKNOWN means a failure no errno describes (ldso-exec). Targets are one word
// when the operands are: "ID:rw", "OBJ[KEYHEX]=VALUEHEX", "PID:SIGKILL", "PID:fd3".
//
// Basics
//   open PATH                 open(2) PATH read-only
//   exec PATH [ARG...]        fork, execv(2) PATH, wait; reports execv's errno
//   prog-load                 BPF_PROG_LOAD of a two-instruction socket filter
//   open-loop PATH            open(2) PATH again and again until SIGTERM/SIGINT,
//                             then print how many opens succeeded (the no-gap canary)
//   lsm-attach HOOK SECONDS   load a BPF LSM program that allows everything and attach
//                             it to HOOK ("file_open") for SECONDS: another tool's
//                             program on our hook, as systemd's RestrictFileSystems= puts
//                             one (steps btf, load, attach; prints before it sleeps)
// File modification (two operands print as FROM->TO; symlink as LINKPATH->TARGET, like ls -l)
//   truncate PATH             truncate(2) to 0
//   ftruncate PATH            open O_WRONLY (step open), ftruncate to 0 (step ftruncate)
//   open-write PATH           open O_WRONLY
//   unlink PATH | rmdir PATH | mkdir PATH (0700)
//   create PATH               open O_CREAT|O_EXCL|O_WRONLY 0600
//   symlink TARGET LINKPATH | mknod PATH (a FIFO, 0600)
//   rename FROM TO | link FROM TO
//   chmod PATH (0600) | chown PATH (0:0) | utimes PATH (utimensat, now)
//   setxattr PATH | removexattr PATH
//                             "user.bwtest" (value "1"); "trusted.bwtest" only when the
//                             filesystem answers EOPNOTSUPP for user.*
// Exec routes
//   mmap-exec PATH            open, mmap the first page PROT_READ|PROT_EXEC MAP_PRIVATE
//   mprotect-exec PATH        open, mmap PROT_READ, mprotect to PROT_READ|PROT_EXEC
//   ldso-exec PATH            fork, execv the dynamic loader with argv {ld.so, PATH}: the
//                             loader runs, mapping PATH is what may be refused. ok when the
//                             child exits 0; EPERM when it fails saying "Operation not
//                             permitted" (a refused open) or "failed to map segment" (a
//                             refused mmap: glibc drops that errno) on stderr, which is
//                             passed through; else EUNKNOWN
//   memfd-exec PATH           copy PATH into a memfd (steps memfd_create, open, read, write),
//                             fork, fexecve it (step fexecve); errno and child= like exec
//   write-exec                anonymous mmap PROT_READ|PROT_WRITE, mprotect to PROT_READ|PROT_EXEC
// bpf(2) (OBJ is a pin path or id:N; PROG also prog:N; MODE is rw (default) or ro;
//         KEYHEX/VALUEHEX are hex bytes, spaces ignored, zero-padded to a page)
//   map-get-id ID [MODE] | map-get-pin PATH [MODE]
//   prog-get-id ID | link-get-id ID | pin-get PATH
//   map-delete OBJ KEYHEX | map-update OBJ KEYHEX VALUEHEX | map-freeze OBJ
//                             open the map read-write (step open), then the command
//   map-delete-race OBJ KEYHEX VALUEHEX FILE TRIES      (target OBJ[KEYHEX]->FILE)
//                             open the map read-write (step open), then TRIES times: delete KEY, open FILE, update KEY
//                             back to VALUE. ok when any open of FILE succeeded (the attack worked), else the last
//                             open's errno; adds "opens=<n> deletes_ok=<n>"
//   link-detach OBJ           BPF_LINK_DETACH (steps open, detach)
//   link-update OBJ PROG      BPF_LINK_UPDATE to PROG (steps open-link, open-prog, update)
//   prog-load-with-map OBJ    open the map read-only, load a socket filter referencing it
// Processes (PID > 0)
//   kill PID SIGNAL           SIGNAL as a number or name: KILL, SIGKILL, 9
//   ptrace-attach PID         PTRACE_ATTACH, then wait and PTRACE_DETACH
//   ptrace-seize PID          PTRACE_SEIZE (our exit detaches)
//   proc-mem PID              open /proc/PID/mem O_RDWR
//   pidfd-getfd PID FD        pidfd_open (step pidfd_open), pidfd_getfd (step getfd)
//   vm-write PID              process_vm_readv of 1 byte at address 0x1: it passes the same
//                             ptrace access check as process_vm_writev without writing
//                             anything; EFAULT (check passed, nothing mapped) prints ok
// Canaries to run alongside replacements (ok when any attempt succeeded, else the last errno)
//   loop-exec PATH SECONDS    fork+execv PATH (stdout/stderr to /dev/null); adds "runs=<n> ok=<n>"
//   loop-bpf SECONDS          BPF_MAP_CREATE of a 1-entry array, then close: a bpf() call the
//                             audit reports; adds "calls=<n> ok=<n>"
//   loop-open PATH SECONDS    open PATH; adds "opens=<n> ok=<n>"
#include <bpf/libbpf.h>
#include <elf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Older headers lack the pidfd syscalls; these are the x86_64 numbers.
#if !defined(SYS_pidfd_open) && defined(__x86_64__)
#define SYS_pidfd_open 434
#endif
#if !defined(SYS_pidfd_getfd) && defined(__x86_64__)
#define SYS_pidfd_getfd 438
#endif

namespace {

constexpr int kUnknownErr = -1;  // a failure without an errno: printed as EUNKNOWN

const char* errno_name(int err) {
    switch (err) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    default: return strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN";
    }
}

int report(const char* action, const std::string& target, int err, pid_t child = 0, const std::string& extra = {}) {
    printf("bw-try pid=%d %s %s result=%s", getpid(), action, target.c_str(), errno_name(err));
    if (child > 0)
        printf(" child=%d", child);
    printf("%s\n", extra.c_str());
    fflush(stdout);
    return err == 0 ? 0 : 1;
}

int errno_of(long ret) { return ret < 0 ? errno : 0; }

class UniqueFd {
public:
    explicit UniqueFd(int fd = -1) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        reset(std::exchange(other.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }
    int get() const { return fd_; }
    bool ok() const { return fd_ >= 0; }
    void reset(int fd = -1) {
        if (fd_ >= 0)
            close(fd_);
        fd_ = fd;
    }

private:
    int fd_;
};

using FdResult = std::expected<UniqueFd, int>;

FdResult fd_result(long fd) {
    if (fd < 0)
        return std::unexpected(errno);
    return UniqueFd(static_cast<int>(fd));
}

int err_of(const FdResult& fd) { return fd ? 0 : fd.error(); }

// The errno of a multi-step action and the step that produced it.
struct Outcome {
    int err = 0;
    const char* step = nullptr;
};

int usage(std::string_view action = {});

// One invocation: the action's name and its operands.
struct Call {
    const char* action;
    std::span<char*> args;

    char* arg(size_t i) const { return args[i]; }
    int bad_args() const { return usage(action); }
    bool has(size_t i) const { return i < args.size(); }
    int done(const std::string& target, Outcome outcome, pid_t child = 0, const std::string& extra = {}) const {
        std::string shown = target;
        if (outcome.err != 0 && outcome.step != nullptr)
            shown += std::string("(at ") + outcome.step + ")";
        return report(action, shown, outcome.err, child, extra);
    }
    int done(const std::string& target, int err, pid_t child = 0, const std::string& extra = {}) const {
        return done(target, Outcome{err, nullptr}, child, extra);
    }
};

// ---- argument parsing ----

std::optional<unsigned long> parse_number(const char* text) {
    char* end = nullptr;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return std::nullopt;
    return value;
}

std::optional<uint32_t> parse_u32(const char* text) {
    auto value = parse_number(text);
    if (!value || *value > UINT32_MAX)
        return std::nullopt;
    return static_cast<uint32_t>(*value);
}

// Refuses 0 and negative pids: kill(-1) and friends would reach every process.
std::optional<pid_t> parse_pid(const char* text) {
    auto value = parse_number(text);
    if (!value || *value == 0 || *value > 0x3fffffff)
        return std::nullopt;
    return static_cast<pid_t>(*value);
}

std::optional<double> parse_seconds(const char* text) {
    char* end = nullptr;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || !(value > 0))
        return std::nullopt;
    return value;
}

std::optional<int> parse_signal(std::string_view text) {
    if (auto number = parse_number(std::string(text).c_str()))
        return *number < NSIG ? std::optional<int>(static_cast<int>(*number)) : std::nullopt;
    if (text.starts_with("SIG"))
        text.remove_prefix(3);
    for (int sig = 1; sig < NSIG; ++sig) {
        const char* name = sigabbrev_np(sig);
        if (name != nullptr && text == name)
            return sig;
    }
    return std::nullopt;
}

std::string signal_text(int sig) {
    const char* name = sigabbrev_np(sig);
    return name != nullptr ? std::string("SIG") + name : std::to_string(sig);
}

// rw (or absent) → 0, ro → BPF_F_RDONLY: the same values for open_flags and file_flags.
std::optional<uint32_t> parse_mode(const Call& call, size_t i) {
    if (!call.has(i) || std::string_view(call.arg(i)) == "rw")
        return 0U;
    if (std::string_view(call.arg(i)) == "ro")
        return static_cast<uint32_t>(BPF_F_RDONLY);
    return std::nullopt;
}

const char* mode_text(uint32_t flags) { return flags == 0 ? ":rw" : ":ro"; }

// Hex bytes for a map key or value. The kernel reads key_size/value_size bytes,
// so the buffer is zero-padded to a page: a short argument is never over-read.
struct HexBytes {
    std::vector<uint8_t> bytes;
    std::string text;  // the bytes given, normalized, for the target
};

std::optional<HexBytes> parse_hex(std::string_view input) {
    constexpr size_t kMinBuffer = 4096;
    HexBytes out;
    for (char ch : input) {
        if (ch == ' ' || ch == ':')
            continue;
        if (!isxdigit(static_cast<unsigned char>(ch)))
            return std::nullopt;
        out.text += static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    }
    if (out.text.empty() || out.text.size() % 2 != 0)
        return std::nullopt;
    for (size_t i = 0; i < out.text.size(); i += 2)
        out.bytes.push_back(static_cast<uint8_t>(std::stoul(out.text.substr(i, 2), nullptr, 16)));
    out.bytes.resize(std::max(out.bytes.size(), kMinBuffer));
    return out;
}

// A BPF object on the command line: "id:N" (or "prog:N") by id, anything else a pin path.
struct ObjectRef {
    const char* pin = nullptr;
    uint32_t id = 0;
};

std::optional<ObjectRef> parse_ref(const char* text) {
    for (std::string_view prefix : {"id:", "prog:"}) {
        if (!std::string_view(text).starts_with(prefix))
            continue;
        auto id = parse_u32(text + prefix.size());
        return id ? std::optional<ObjectRef>(ObjectRef{nullptr, *id}) : std::nullopt;
    }
    return ObjectRef{text, 0};
}

// ---- bpf(2) ----

uint64_t ptr_u64(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr); }

long sys_bpf(bpf_cmd cmd, bpf_attr& attr) { return syscall(SYS_bpf, cmd, &attr, sizeof(attr)); }

FdResult obj_get(const char* pin, uint32_t file_flags) {
    bpf_attr attr{};
    attr.pathname = ptr_u64(pin);
    attr.file_flags = file_flags;
    return fd_result(sys_bpf(BPF_OBJ_GET, attr));
}

FdResult get_by_id(bpf_cmd cmd, uint32_t id, uint32_t open_flags) {
    bpf_attr attr{};
    attr.map_id = id;  // prog_id, map_id and link_id share one union member
    attr.open_flags = open_flags;
    return fd_result(sys_bpf(cmd, attr));
}

FdResult open_ref(const ObjectRef& ref, bpf_cmd by_id, uint32_t flags) {
    return ref.pin != nullptr ? obj_get(ref.pin, flags) : get_by_id(by_id, ref.id, flags);
}

int map_elem(int map_fd, bpf_cmd cmd, const HexBytes& key, const HexBytes* value) {
    bpf_attr attr{};
    attr.map_fd = static_cast<uint32_t>(map_fd);
    attr.key = ptr_u64(key.bytes.data());
    if (value != nullptr)
        attr.value = ptr_u64(value->bytes.data());
    attr.flags = BPF_ANY;
    return errno_of(sys_bpf(cmd, attr));
}

FdResult load_socket_filter(std::span<const bpf_insn> insns) {
    static char license[] = "GPL";
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = ptr_u64(insns.data());
    attr.insn_cnt = static_cast<uint32_t>(insns.size());
    attr.license = ptr_u64(license);
    return fd_result(sys_bpf(BPF_PROG_LOAD, attr));
}

// r0 = 0; exit
void put_return_zero(bpf_insn* insns) {
    insns[0] = bpf_insn{};
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].dst_reg = BPF_REG_0;
    insns[1] = bpf_insn{};
    insns[1].code = BPF_JMP | BPF_EXIT;
}

// ---- child processes ----

void silence_stdio() {
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);  // the dup2 copies stay open
    if (null_fd >= 0) {
        dup2(null_fd, STDOUT_FILENO);
        dup2(null_fd, STDERR_FILENO);
    }
}

// The errno a child's exec saw (0 once it exec'd) and the child, 0 if none ran.
struct Spawned {
    int err;
    pid_t child;
};

// Forks; the child calls exec_in_child, which returns only when the exec
// failed, and sends that errno back through a pipe that exec closes.
template <typename ExecFn>
Spawned spawn_exec(ExecFn exec_in_child, bool quiet = false) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return {errno, 0};
    UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
    pid_t child = fork();
    if (child < 0)
        return {errno, 0};
    if (child == 0) {
        if (quiet)
            silence_stdio();
        exec_in_child();
        int err = errno;
        (void)!write(write_end.get(), &err, sizeof(err));
        _exit(127);
    }
    write_end.reset();
    int err = 0;
    ssize_t n = read(read_end.get(), &err, sizeof(err));
    int status = 0;
    waitpid(child, &status, 0);
    if (n != sizeof(err))
        err = 0;  // exec succeeded: the pipe closed on exec
    return {err, child};
}

std::string read_all(int fd) {
    std::string text;
    char buf[4096];
    ssize_t n = 0;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        text.append(buf, static_cast<size_t>(n));
    return text;
}

bool write_all(int fd, const char* data, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0)
            return false;
        data += n;
        size -= static_cast<size_t>(n);
    }
    return true;
}

using Clock = std::chrono::steady_clock;

Clock::time_point deadline_after(double seconds) {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// ---- basics ----

int try_open(const Call& call) {
    UniqueFd fd(open(call.arg(0), O_RDONLY | O_CLOEXEC));
    return call.done(call.arg(0), fd.ok() ? 0 : errno);
}

int try_exec(const Call& call) {
    char** argv = call.args.data();  // null-terminated: the tail of main's argv
    Spawned run = spawn_exec([argv] { execv(argv[0], argv); });
    return report("exec", argv[0], run.err, run.child);
}

int try_prog_load(const Call& call) {
    bpf_insn insns[2];
    put_return_zero(insns);
    return call.done("socket_filter", err_of(load_socket_filter(insns)));
}

int try_lsm_attach(const Call& call) {
    const char* hook = call.arg(0);
    int seconds = std::atoi(call.arg(1));
    if (seconds <= 0)
        return call.bad_args();
    int btf_id = libbpf_find_vmlinux_btf_id(hook, BPF_LSM_MAC);
    if (btf_id < 0)
        return call.done(hook, Outcome{-btf_id, "btf"});
    static char license[] = "GPL";
    bpf_insn insns[2];
    put_return_zero(insns);
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_LSM;
    attr.expected_attach_type = BPF_LSM_MAC;
    attr.attach_btf_id = static_cast<uint32_t>(btf_id);
    attr.insns = ptr_u64(insns);
    attr.insn_cnt = 2;
    attr.license = ptr_u64(license);
    std::strncpy(attr.prog_name, "bw_foreign_lsm", sizeof(attr.prog_name) - 1);
    FdResult prog = fd_result(sys_bpf(BPF_PROG_LOAD, attr));
    if (!prog)
        return call.done(hook, Outcome{prog.error(), "load"});
    attr = bpf_attr{};
    attr.link_create.prog_fd = static_cast<uint32_t>(prog->get());
    attr.link_create.attach_type = BPF_LSM_MAC;
    FdResult link = fd_result(sys_bpf(BPF_LINK_CREATE, attr));
    if (!link)
        return call.done(hook, Outcome{link.error(), "attach"});
    call.done(hook, 0);
    fflush(stdout);
    sleep(static_cast<unsigned>(seconds));
    return 0;
}

volatile sig_atomic_t g_stop = 0;

void request_stop(int) { g_stop = 1; }

int try_open_loop(const Call& call) {
    const char* path = call.arg(0);
    signal(SIGTERM, request_stop);
    signal(SIGINT, request_stop);
    unsigned long attempts = 0, successes = 0, other_errors = 0;
    while (!g_stop) {
        UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
        ++attempts;
        if (fd.ok()) {
            // When: the first few successes, to find what let them through.
            if (++successes <= 3) {
                timespec now{};
                clock_gettime(CLOCK_REALTIME, &now);
                printf("bw-try pid=%d open-loop %s opened at %lld.%06ld\n", getpid(), path,
                       static_cast<long long>(now.tv_sec), now.tv_nsec / 1000);
                fflush(stdout);
            }
        } else if (errno != EPERM)
            ++other_errors;
    }
    printf("bw-try pid=%d open-loop %s attempts=%lu successes=%lu other_errors=%lu\n", getpid(), path, attempts,
           successes, other_errors);
    fflush(stdout);
    return successes == 0 && other_errors == 0 ? 0 : 1;
}

// ---- file modification ----

int try_truncate(const Call& call) { return call.done(call.arg(0), errno_of(truncate(call.arg(0), 0))); }

int try_ftruncate(const Call& call) {
    UniqueFd fd(open(call.arg(0), O_WRONLY | O_CLOEXEC));
    if (!fd.ok())
        return call.done(call.arg(0), Outcome{errno, "open"});
    return call.done(call.arg(0), Outcome{errno_of(ftruncate(fd.get(), 0)), "ftruncate"});
}

int try_open_write(const Call& call) {
    UniqueFd fd(open(call.arg(0), O_WRONLY | O_CLOEXEC));
    return call.done(call.arg(0), fd.ok() ? 0 : errno);
}

int try_create(const Call& call) {
    UniqueFd fd(open(call.arg(0), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
    return call.done(call.arg(0), fd.ok() ? 0 : errno);
}

int try_unlink(const Call& call) { return call.done(call.arg(0), errno_of(unlink(call.arg(0)))); }
int try_rmdir(const Call& call) { return call.done(call.arg(0), errno_of(rmdir(call.arg(0)))); }
int try_mkdir(const Call& call) { return call.done(call.arg(0), errno_of(mkdir(call.arg(0), 0700))); }
int try_mknod(const Call& call) { return call.done(call.arg(0), errno_of(mknod(call.arg(0), S_IFIFO | 0600, 0))); }
int try_chmod(const Call& call) { return call.done(call.arg(0), errno_of(chmod(call.arg(0), 0600))); }
int try_chown(const Call& call) { return call.done(call.arg(0), errno_of(chown(call.arg(0), 0, 0))); }

int try_utimes(const Call& call) {
    return call.done(call.arg(0), errno_of(utimensat(AT_FDCWD, call.arg(0), nullptr, 0)));
}

std::string arrow(const char* from, const char* to) { return std::string(from) + "->" + to; }

int try_symlink(const Call& call) {
    return call.done(arrow(call.arg(1), call.arg(0)), errno_of(symlink(call.arg(0), call.arg(1))));
}

int try_rename(const Call& call) {
    return call.done(arrow(call.arg(0), call.arg(1)), errno_of(rename(call.arg(0), call.arg(1))));
}

int try_link(const Call& call) {
    return call.done(arrow(call.arg(0), call.arg(1)), errno_of(link(call.arg(0), call.arg(1))));
}

// user.* first; trusted.* only where the filesystem has no user xattrs.
template <typename XattrFn>
int xattr_route(const Call& call, XattrFn op) {
    int err = errno_of(op("user.bwtest"));
    if (err == EOPNOTSUPP)
        err = errno_of(op("trusted.bwtest"));
    return call.done(call.arg(0), err);
}

int try_setxattr(const Call& call) {
    return xattr_route(call, [&](const char* name) { return setxattr(call.arg(0), name, "1", 1, 0); });
}

int try_removexattr(const Call& call) {
    return xattr_route(call, [&](const char* name) { return removexattr(call.arg(0), name); });
}

// ---- exec routes ----

size_t page_size() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

class Mapping {
public:
    Mapping(int prot, int flags, int fd) : addr_(mmap(nullptr, page_size(), prot, flags, fd, 0)) {}
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() {
        if (ok())
            munmap(addr_, page_size());
    }
    bool ok() const { return addr_ != MAP_FAILED; }
    int protect(int prot) const { return errno_of(mprotect(addr_, page_size(), prot)); }

private:
    void* addr_;
};

int try_mmap_exec(const Call& call) {
    UniqueFd fd(open(call.arg(0), O_RDONLY | O_CLOEXEC));
    if (!fd.ok())
        return call.done(call.arg(0), Outcome{errno, "open"});
    Mapping map(PROT_READ | PROT_EXEC, MAP_PRIVATE, fd.get());
    return call.done(call.arg(0), Outcome{map.ok() ? 0 : errno, "mmap"});
}

int try_mprotect_exec(const Call& call) {
    UniqueFd fd(open(call.arg(0), O_RDONLY | O_CLOEXEC));
    if (!fd.ok())
        return call.done(call.arg(0), Outcome{errno, "open"});
    Mapping map(PROT_READ, MAP_PRIVATE, fd.get());
    if (!map.ok())
        return call.done(call.arg(0), Outcome{errno, "mmap"});
    return call.done(call.arg(0), Outcome{map.protect(PROT_READ | PROT_EXEC), "mprotect"});
}

int try_write_exec(const Call& call) {
    Mapping map(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    if (!map.ok())
        return call.done("anon", Outcome{errno, "mmap"});
    return call.done("anon", Outcome{map.protect(PROT_READ | PROT_EXEC), "mprotect"});
}

// The PT_INTERP of an ELF64 file, empty if it has none.
std::string interp_of(const char* path) {
    UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
    Elf64_Ehdr ehdr{};
    if (!fd.ok() || pread(fd.get(), &ehdr, sizeof(ehdr), 0) != sizeof(ehdr) ||
        memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 || ehdr.e_ident[EI_CLASS] != ELFCLASS64)
        return {};
    for (unsigned i = 0; i < ehdr.e_phnum; ++i) {
        Elf64_Phdr phdr{};
        off_t at = static_cast<off_t>(ehdr.e_phoff + i * ehdr.e_phentsize);
        if (pread(fd.get(), &phdr, sizeof(phdr), at) != sizeof(phdr))
            return {};
        if (phdr.p_type != PT_INTERP)
            continue;
        std::string interp(phdr.p_filesz, '\0');
        if (pread(fd.get(), interp.data(), interp.size(), static_cast<off_t>(phdr.p_offset)) !=
            static_cast<ssize_t>(interp.size()))
            return {};
        interp.resize(strnlen(interp.c_str(), interp.size()));
        return interp;
    }
    return {};
}

std::string dynamic_loader() {
    const char* usual = "/lib64/ld-linux-x86-64.so.2";
    return access(usual, X_OK) == 0 ? usual : interp_of("/bin/true");
}

// The loader is allowed to run; what may be refused is its open or mmap of
// PATH, which only shows in its exit status and its message. glibc 2.36 prints
// the errno of a failed open but not of a failed segment mmap ("failed to map
// segment from shared object"), so that message stands for the LSM's EPERM.
int try_ldso_exec(const Call& call) {
    std::string loader = dynamic_loader();
    if (loader.empty())
        return call.done(call.arg(0), Outcome{ENOENT, "find-loader"});
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return call.done(call.arg(0), Outcome{errno, "pipe"});
    UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
    pid_t child = fork();
    if (child < 0)
        return call.done(call.arg(0), Outcome{errno, "fork"});
    if (child == 0) {
        dup2(write_end.get(), STDERR_FILENO);  // the duplicate is not close-on-exec
        char* argv[] = {loader.data(), call.arg(0), nullptr};
        execv(argv[0], argv);
        fprintf(stderr, "bw-try: execv %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    write_end.reset();
    std::string message = read_all(read_end.get());
    int status = 0;
    waitpid(child, &status, 0);
    fputs(message.c_str(), stderr);
    int err = kUnknownErr;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        err = 0;
    else if (message.find("Operation not permitted") != std::string::npos ||
             message.find("failed to map segment") != std::string::npos)
        err = EPERM;
    return call.done(call.arg(0), err, child);
}

Outcome copy_into(const char* path, int to_fd) {
    UniqueFd from(open(path, O_RDONLY | O_CLOEXEC));
    if (!from.ok())
        return {errno, "open"};
    char buf[65536];
    ssize_t n = 0;
    while ((n = read(from.get(), buf, sizeof(buf))) > 0) {
        if (!write_all(to_fd, buf, static_cast<size_t>(n)))
            return {errno, "write"};
    }
    return {n < 0 ? errno : 0, "read"};
}

int try_memfd_exec(const Call& call) {
    // Without MFD_CLOEXEC: fexecve of a close-on-exec fd fails for scripts,
    // whose interpreter must reopen /dev/fd/N after the exec.
    UniqueFd memfd(memfd_create("bw-try", 0));
    if (!memfd.ok())
        return call.done(call.arg(0), Outcome{errno, "memfd_create"});
    Outcome copied = copy_into(call.arg(0), memfd.get());
    if (copied.err != 0)
        return call.done(call.arg(0), copied);
    char* argv[] = {call.arg(0), nullptr};
    int fd = memfd.get();
    Spawned run = spawn_exec([fd, &argv] { fexecve(fd, argv, environ); });
    return call.done(call.arg(0), Outcome{run.err, "fexecve"}, run.child);
}

// ---- bpf(2) attacks ----

int try_map_get_id(const Call& call) {
    auto id = parse_u32(call.arg(0));
    auto flags = parse_mode(call, 1);
    if (!id || !flags)
        return call.bad_args();
    FdResult fd = get_by_id(BPF_MAP_GET_FD_BY_ID, *id, *flags);
    return call.done(call.arg(0) + std::string(mode_text(*flags)), err_of(fd));
}

int try_map_get_pin(const Call& call) {
    auto flags = parse_mode(call, 1);
    if (!flags)
        return call.bad_args();
    return call.done(call.arg(0) + std::string(mode_text(*flags)), err_of(obj_get(call.arg(0), *flags)));
}

int get_id_route(const Call& call, bpf_cmd cmd) {
    auto id = parse_u32(call.arg(0));
    if (!id)
        return call.bad_args();
    return call.done(call.arg(0), err_of(get_by_id(cmd, *id, 0)));
}

int try_prog_get_id(const Call& call) { return get_id_route(call, BPF_PROG_GET_FD_BY_ID); }
int try_link_get_id(const Call& call) { return get_id_route(call, BPF_LINK_GET_FD_BY_ID); }
int try_pin_get(const Call& call) { return call.done(call.arg(0), err_of(obj_get(call.arg(0), 0))); }

// Opens the map named by argument 0 read-write, as an attacker would.
FdResult open_map_rw(const Call& call) {
    auto ref = parse_ref(call.arg(0));
    return ref ? open_ref(*ref, BPF_MAP_GET_FD_BY_ID, 0) : std::unexpected(EINVAL);
}

int try_map_delete(const Call& call) {
    auto key = parse_hex(call.arg(1));
    if (!key || !parse_ref(call.arg(0)))
        return call.bad_args();
    std::string target = std::string(call.arg(0)) + "[" + key->text + "]";
    FdResult map = open_map_rw(call);
    if (!map)
        return call.done(target, Outcome{map.error(), "open"});
    return call.done(target, Outcome{map_elem(map->get(), BPF_MAP_DELETE_ELEM, *key, nullptr), "delete"});
}

int try_map_update(const Call& call) {
    auto key = parse_hex(call.arg(1));
    auto value = parse_hex(call.arg(2));
    if (!key || !value || !parse_ref(call.arg(0)))
        return call.bad_args();
    std::string target = std::string(call.arg(0)) + "[" + key->text + "]=" + value->text;
    FdResult map = open_map_rw(call);
    if (!map)
        return call.done(target, Outcome{map.error(), "open"});
    return call.done(target, Outcome{map_elem(map->get(), BPF_MAP_UPDATE_ELEM, *key, &*value), "update"});
}

int try_map_freeze(const Call& call) {
    if (!parse_ref(call.arg(0)))
        return call.bad_args();
    FdResult map = open_map_rw(call);
    if (!map)
        return call.done(call.arg(0), Outcome{map.error(), "open"});
    bpf_attr attr{};
    attr.map_fd = static_cast<uint32_t>(map->get());
    return call.done(call.arg(0), Outcome{errno_of(sys_bpf(BPF_MAP_FREEZE, attr)), "freeze"});
}

struct RaceCounts {
    unsigned long opens = 0;
    unsigned long deletes_ok = 0;
    int last_open_err = 0;
};

// The attacker's loop: drop the entry that denies FILE, try FILE, put the entry back.
RaceCounts run_delete_race(int map_fd, const HexBytes& key, const HexBytes& value, const char* file,
                           unsigned long tries) {
    RaceCounts counts;
    for (unsigned long i = 0; i < tries; ++i) {
        if (map_elem(map_fd, BPF_MAP_DELETE_ELEM, key, nullptr) == 0)
            ++counts.deletes_ok;
        UniqueFd fd(open(file, O_RDONLY | O_CLOEXEC));
        if (fd.ok())
            ++counts.opens;
        else
            counts.last_open_err = errno;
        map_elem(map_fd, BPF_MAP_UPDATE_ELEM, key, &value);
    }
    return counts;
}

int try_map_delete_race(const Call& call) {
    auto key = parse_hex(call.arg(1));
    auto value = parse_hex(call.arg(2));
    auto tries = parse_number(call.arg(4));
    if (!key || !value || !tries || *tries == 0 || !parse_ref(call.arg(0)))
        return call.bad_args();
    std::string target = std::string(call.arg(0)) + "[" + key->text + "]->" + call.arg(3);
    FdResult map = open_map_rw(call);
    if (!map)
        return call.done(target, Outcome{map.error(), "open"}, 0, " opens=0 deletes_ok=0");
    RaceCounts counts = run_delete_race(map->get(), *key, *value, call.arg(3), *tries);
    char extra[96];
    snprintf(extra, sizeof(extra), " opens=%lu deletes_ok=%lu", counts.opens, counts.deletes_ok);
    return call.done(target, counts.opens > 0 ? 0 : counts.last_open_err, 0, extra);
}

int try_link_detach(const Call& call) {
    auto ref = parse_ref(call.arg(0));
    if (!ref)
        return call.bad_args();
    FdResult link = open_ref(*ref, BPF_LINK_GET_FD_BY_ID, 0);
    if (!link)
        return call.done(call.arg(0), Outcome{link.error(), "open"});
    bpf_attr attr{};
    attr.link_detach.link_fd = static_cast<uint32_t>(link->get());
    return call.done(call.arg(0), Outcome{errno_of(sys_bpf(BPF_LINK_DETACH, attr)), "detach"});
}

int try_link_update(const Call& call) {
    auto link_ref = parse_ref(call.arg(0));
    auto prog_ref = parse_ref(call.arg(1));
    if (!link_ref || !prog_ref)
        return call.bad_args();
    std::string target = arrow(call.arg(0), call.arg(1));
    FdResult link = open_ref(*link_ref, BPF_LINK_GET_FD_BY_ID, 0);
    if (!link)
        return call.done(target, Outcome{link.error(), "open-link"});
    FdResult prog = open_ref(*prog_ref, BPF_PROG_GET_FD_BY_ID, 0);
    if (!prog)
        return call.done(target, Outcome{prog.error(), "open-prog"});
    bpf_attr attr{};
    attr.link_update.link_fd = static_cast<uint32_t>(link->get());
    attr.link_update.new_prog_fd = static_cast<uint32_t>(prog->get());
    return call.done(target, Outcome{errno_of(sys_bpf(BPF_LINK_UPDATE, attr)), "update"});
}

// A read-only map fd still lets a program be loaded against the map; the
// verifier accepts a map pointer loaded into r1 and never used.
int try_prog_load_with_map(const Call& call) {
    auto ref = parse_ref(call.arg(0));
    if (!ref)
        return call.bad_args();
    FdResult map = open_ref(*ref, BPF_MAP_GET_FD_BY_ID, BPF_F_RDONLY);
    if (!map)
        return call.done(call.arg(0), Outcome{map.error(), "open"});
    bpf_insn insns[4] = {};
    insns[0].code = BPF_LD | BPF_DW | BPF_IMM;  // r1 = map (two instruction slots)
    insns[0].dst_reg = BPF_REG_1;
    insns[0].src_reg = BPF_PSEUDO_MAP_FD;
    insns[0].imm = map->get();
    put_return_zero(insns + 2);
    return call.done(call.arg(0), Outcome{err_of(load_socket_filter(insns)), "prog-load"});
}

// ---- process attacks ----

int try_kill(const Call& call) {
    auto pid = parse_pid(call.arg(0));
    auto sig = parse_signal(call.arg(1));
    if (!pid || !sig)
        return call.bad_args();
    return call.done(std::string(call.arg(0)) + ":" + signal_text(*sig), errno_of(kill(*pid, *sig)));
}

int try_ptrace_attach(const Call& call) {
    auto pid = parse_pid(call.arg(0));
    if (!pid)
        return call.bad_args();
    if (ptrace(PTRACE_ATTACH, *pid, nullptr, nullptr) != 0)
        return call.done(call.arg(0), errno);
    int status = 0;
    waitpid(*pid, &status, __WALL);  // the attach stop; detaching with 0 drops its SIGSTOP
    ptrace(PTRACE_DETACH, *pid, nullptr, nullptr);
    return call.done(call.arg(0), 0);
}

int try_ptrace_seize(const Call& call) {
    auto pid = parse_pid(call.arg(0));
    if (!pid)
        return call.bad_args();
    // A seized tracee keeps running; our exit detaches it.
    return call.done(call.arg(0), errno_of(ptrace(PTRACE_SEIZE, *pid, nullptr, nullptr)));
}

int try_proc_mem(const Call& call) {
    if (!parse_pid(call.arg(0)))
        return call.bad_args();
    std::string path = std::string("/proc/") + call.arg(0) + "/mem";
    UniqueFd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
    return call.done(path, fd.ok() ? 0 : errno);
}

int try_pidfd_getfd(const Call& call) {
    auto pid = parse_pid(call.arg(0));
    auto target_fd = parse_u32(call.arg(1));
    if (!pid || !target_fd || *target_fd > INT32_MAX)
        return call.bad_args();
    std::string target = std::string(call.arg(0)) + ":fd" + call.arg(1);
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, *pid, 0)));
    if (!pidfd.ok())
        return call.done(target, Outcome{errno, "pidfd_open"});
    UniqueFd stolen(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), *target_fd, 0)));
    return call.done(target, Outcome{stolen.ok() ? 0 : errno, "getfd"});
}

// process_vm_readv and process_vm_writev pass the same ptrace access check;
// reading one byte at 0x1, which is never mapped, exercises it without
// touching the target. EFAULT means the check passed.
int try_vm_write(const Call& call) {
    auto pid = parse_pid(call.arg(0));
    if (!pid)
        return call.bad_args();
    char byte = 0;
    iovec local{&byte, 1};
    iovec remote{reinterpret_cast<void*>(uintptr_t{1}), 1};
    int err = errno_of(process_vm_readv(*pid, &local, 1, &remote, 1, 0));
    return call.done(call.arg(0), err == EFAULT ? 0 : err);
}

// ---- canaries ----

int try_loop_exec(const Call& call) {
    auto seconds = parse_seconds(call.arg(1));
    if (!seconds)
        return call.bad_args();
    char* argv[] = {call.arg(0), nullptr};
    unsigned long runs = 0, ok = 0;
    int last_err = 0;
    for (auto end = deadline_after(*seconds); Clock::now() < end;) {
        Spawned run = spawn_exec([&argv] { execv(argv[0], argv); }, true);
        ++runs;
        if (run.err == 0)
            ++ok;
        else
            last_err = run.err;
    }
    char extra[96];
    snprintf(extra, sizeof(extra), " runs=%lu ok=%lu", runs, ok);
    return call.done(call.arg(0), ok > 0 ? 0 : last_err, 0, extra);
}

int try_loop_bpf(const Call& call) {
    auto seconds = parse_seconds(call.arg(0));
    if (!seconds)
        return call.bad_args();
    unsigned long calls = 0, ok = 0;
    int last_err = 0;
    for (auto end = deadline_after(*seconds); Clock::now() < end;) {
        bpf_attr attr{};
        attr.map_type = BPF_MAP_TYPE_ARRAY;
        attr.key_size = 4;
        attr.value_size = 4;
        attr.max_entries = 1;
        FdResult map = fd_result(sys_bpf(BPF_MAP_CREATE, attr));
        ++calls;
        if (map)
            ++ok;
        else
            last_err = map.error();
    }
    char extra[96];
    snprintf(extra, sizeof(extra), " calls=%lu ok=%lu", calls, ok);
    return call.done("map-create", ok > 0 ? 0 : last_err, 0, extra);
}

int try_loop_open(const Call& call) {
    auto seconds = parse_seconds(call.arg(1));
    if (!seconds)
        return call.bad_args();
    unsigned long opens = 0, ok = 0;
    int last_err = 0;
    for (auto end = deadline_after(*seconds); Clock::now() < end;) {
        UniqueFd fd(open(call.arg(0), O_RDONLY | O_CLOEXEC));
        ++opens;
        if (fd.ok())
            ++ok;
        else
            last_err = errno;
    }
    char extra[96];
    snprintf(extra, sizeof(extra), " opens=%lu ok=%lu", opens, ok);
    return call.done(call.arg(0), ok > 0 ? 0 : last_err, 0, extra);
}

// ---- dispatch ----

constexpr int kAnyCount = -1;

struct ActionSpec {
    const char* name;
    const char* syntax;
    int min_args;
    int max_args;  // kAnyCount: no limit
    int (*run)(const Call&);
};

constexpr ActionSpec kActions[] = {
    {"open", "PATH", 1, 1, try_open},
    {"exec", "PATH [ARG...]", 1, kAnyCount, try_exec},
    {"prog-load", "", 0, 0, try_prog_load},
    {"open-loop", "PATH", 1, 1, try_open_loop},
    {"lsm-attach", "HOOK SECONDS", 2, 2, try_lsm_attach},
    {"truncate", "PATH", 1, 1, try_truncate},
    {"ftruncate", "PATH", 1, 1, try_ftruncate},
    {"open-write", "PATH", 1, 1, try_open_write},
    {"unlink", "PATH", 1, 1, try_unlink},
    {"rmdir", "PATH", 1, 1, try_rmdir},
    {"mkdir", "PATH", 1, 1, try_mkdir},
    {"create", "PATH", 1, 1, try_create},
    {"symlink", "TARGET LINKPATH", 2, 2, try_symlink},
    {"mknod", "PATH", 1, 1, try_mknod},
    {"rename", "FROM TO", 2, 2, try_rename},
    {"link", "FROM TO", 2, 2, try_link},
    {"chmod", "PATH", 1, 1, try_chmod},
    {"chown", "PATH", 1, 1, try_chown},
    {"utimes", "PATH", 1, 1, try_utimes},
    {"setxattr", "PATH", 1, 1, try_setxattr},
    {"removexattr", "PATH", 1, 1, try_removexattr},
    {"mmap-exec", "PATH", 1, 1, try_mmap_exec},
    {"mprotect-exec", "PATH", 1, 1, try_mprotect_exec},
    {"ldso-exec", "PATH", 1, 1, try_ldso_exec},
    {"memfd-exec", "PATH", 1, 1, try_memfd_exec},
    {"write-exec", "", 0, 0, try_write_exec},
    {"map-get-id", "ID [rw|ro]", 1, 2, try_map_get_id},
    {"map-get-pin", "PATH [rw|ro]", 1, 2, try_map_get_pin},
    {"prog-get-id", "ID", 1, 1, try_prog_get_id},
    {"link-get-id", "ID", 1, 1, try_link_get_id},
    {"pin-get", "PATH", 1, 1, try_pin_get},
    {"map-delete", "PIN|id:N KEYHEX", 2, 2, try_map_delete},
    {"map-update", "PIN|id:N KEYHEX VALUEHEX", 3, 3, try_map_update},
    {"map-freeze", "PIN|id:N", 1, 1, try_map_freeze},
    {"map-delete-race", "PIN|id:N KEYHEX VALUEHEX FILE TRIES", 5, 5, try_map_delete_race},
    {"link-detach", "PIN|id:N", 1, 1, try_link_detach},
    {"link-update", "PIN|id:N PROGPIN|prog:N", 2, 2, try_link_update},
    {"prog-load-with-map", "PIN|id:N", 1, 1, try_prog_load_with_map},
    {"kill", "PID SIGNAL", 2, 2, try_kill},
    {"ptrace-attach", "PID", 1, 1, try_ptrace_attach},
    {"ptrace-seize", "PID", 1, 1, try_ptrace_seize},
    {"proc-mem", "PID", 1, 1, try_proc_mem},
    {"pidfd-getfd", "PID FD", 2, 2, try_pidfd_getfd},
    {"vm-write", "PID", 1, 1, try_vm_write},
    {"loop-exec", "PATH SECONDS", 2, 2, try_loop_exec},
    {"loop-bpf", "SECONDS", 1, 1, try_loop_bpf},
    {"loop-open", "PATH SECONDS", 2, 2, try_loop_open},
};

void print_syntax(FILE* out, const char* lead, const ActionSpec& spec) {
    fprintf(out, "%sbw-try %s%s%s\n", lead, spec.name, spec.syntax[0] != '\0' ? " " : "", spec.syntax);
}

void print_usage(FILE* out) {
    fprintf(out, "usage: bw-try ACTION [ARG...]   (bw-try --help; the source's top comment explains each)\n");
    for (const ActionSpec& spec : kActions)
        print_syntax(out, "  ", spec);
}

// A known action's usage errors show its own syntax; anything else the whole list.
int usage(std::string_view action) {
    for (const ActionSpec& spec : kActions) {
        if (action == spec.name) {
            print_syntax(stderr, "usage: ", spec);
            return 2;
        }
    }
    print_usage(stderr);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2)
        return usage();
    std::string_view action = argv[1];
    if (action == "--help" || action == "-h") {
        print_usage(stdout);
        return 0;
    }
    std::span<char*> args(argv + 2, static_cast<size_t>(argc - 2));
    for (const ActionSpec& spec : kActions) {
        if (action != spec.name)
            continue;
        int count = argc - 2;
        if (count < spec.min_args || (spec.max_args != kAnyCount && count > spec.max_args))
            return usage(action);
        return spec.run(Call{spec.name, args});
    }
    return usage();
}
