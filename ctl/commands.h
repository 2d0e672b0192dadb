// bpfwardenctl subcommands. Each takes its own arguments (argv[0] is the
// subcommand name) and returns the process exit status:
// 0 success, 1 the operation failed, 2 invalid arguments.
#pragma once

namespace bpfwarden::ctl {

int keygen(int argc, char** argv);
int sign(int argc, char** argv);
int verify(int argc, char** argv);
int allow_downgrade(int argc, char** argv);
// Both services over D-Bus: 0 enforcing and healthy, 1 degraded or unreachable.
int status(int argc, char** argv);
// Both services' counters and state as a Prometheus text exposition, on
// stdout or atomically into a node_exporter textfile (--textfile).
int metrics(int argc, char** argv);
// Removes bpfwarden's pins, and nothing else (unpin_command.h).
int unpin(int argc, char** argv);
// Makes a signed, expiring, single-use unlock token (--key), or sends one to
// bpfwardend over D-Bus (--token) to lift self-protection until it expires.
int unlock(int argc, char** argv);
// The policy workflow: `policy check [DIR|FILE]` validates without root;
// `policy show`, `diff [DIR]` and `apply [DIR]` work with the running policy
// over D-Bus and exit 2 on any error (diff: 1 when the policies differ).
int policy(int argc, char** argv);
// bpfwardend's events from the journal, filtered; --follow for new ones.
int events(int argc, char** argv);
// The BPF hardening checklist, each finding with its fix: 0 nothing worse
// than info, 1 a warning, 3 a failure (2 invalid arguments).
int doctor(int argc, char** argv);
// Every BPF program, link and map on the host and whose each is (bpfwarden,
// kernel, systemd, allowlisted, unknown): 1 with --unknown when a program is unknown.
int inventory(int argc, char** argv);
// Detaches and unpins one foreign program; refuses bpfwarden's, the kernel's
// and systemd's. 3 when it is still loaded afterwards.
int contain(int argc, char** argv);

}  // namespace bpfwarden::ctl
