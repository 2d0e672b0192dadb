// bw-try: performs one action that bpfwarden may deny and reports the exact
// outcome, so selftests assert errno values rather than grep error texts.
//
//   bw-try open PATH         open(2) PATH read-only
//   bw-try exec PATH [ARG]   fork, execv(2) PATH, wait; reports execv's errno
//   bw-try prog-load         BPF_PROG_LOAD of a two-instruction socket filter
//   bw-try open-loop PATH    open(2) PATH again and again until SIGTERM/SIGINT,
//                            then print how many opens succeeded (the no-gap canary)
//
// Prints one line: "bw-try pid=<pid> <action> <target> result=<ok|ERRNO>"
// (exec adds "child=<pid>": the process the kernel judged)
// and exits 0 when the action succeeded, 1 when it failed, 2 on usage errors.
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

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

int report(const char* action, const std::string& target, int err, pid_t child = 0) {
    if (child > 0)
        printf("bw-try pid=%d %s %s result=%s child=%d\n", getpid(), action, target.c_str(), errno_name(err), child);
    else
        printf("bw-try pid=%d %s %s result=%s\n", getpid(), action, target.c_str(), errno_name(err));
    fflush(stdout);
    return err == 0 ? 0 : 1;
}

int try_open(const char* path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    return report("open", path, err);
}

int try_exec(char** argv) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return report("exec", argv[0], errno);
    pid_t child = fork();
    if (child < 0)
        return report("exec", argv[0], errno);
    if (child == 0) {
        execv(argv[0], argv);
        int err = errno;
        (void)!write(pipe_fds[1], &err, sizeof(err));
        _exit(127);
    }
    close(pipe_fds[1]);
    int err = 0;
    ssize_t n = read(pipe_fds[0], &err, sizeof(err));
    close(pipe_fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (n != sizeof(err))
        err = 0;  // exec succeeded: the pipe closed on exec
    return report("exec", argv[0], err, child);
}

int try_prog_load() {
    // r0 = 0; exit
    bpf_insn insns[2] = {};
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].dst_reg = BPF_REG_0;
    insns[1].code = BPF_JMP | BPF_EXIT;
    static char license[] = "GPL";
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = reinterpret_cast<uintptr_t>(insns);
    attr.insn_cnt = 2;
    attr.license = reinterpret_cast<uintptr_t>(license);
    long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
    int err = fd < 0 ? errno : 0;
    if (fd >= 0)
        close(static_cast<int>(fd));
    return report("prog-load", "socket_filter", err);
}

volatile sig_atomic_t g_stop = 0;

void request_stop(int) { g_stop = 1; }

int try_open_loop(const char* path) {
    signal(SIGTERM, request_stop);
    signal(SIGINT, request_stop);
    unsigned long attempts = 0, successes = 0, other_errors = 0;
    while (!g_stop) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ++attempts;
        if (fd >= 0) {
            ++successes;
            close(fd);
        } else if (errno != EPERM) {
            ++other_errors;
        }
    }
    printf("bw-try pid=%d open-loop %s attempts=%lu successes=%lu other_errors=%lu\n", getpid(), path, attempts,
           successes, other_errors);
    fflush(stdout);
    return successes == 0 && other_errors == 0 ? 0 : 1;
}

int usage() {
    fprintf(stderr, "usage: bw-try open PATH | exec PATH [ARG...] | prog-load | open-loop PATH\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2)
        return usage();
    std::string action = argv[1];
    if (action == "open" && argc == 3)
        return try_open(argv[2]);
    if (action == "exec" && argc >= 3)
        return try_exec(argv + 2);
    if (action == "open-loop" && argc == 3)
        return try_open_loop(argv[2]);
    if (action == "prog-load" && argc == 2)
        return try_prog_load();
    return usage();
}
