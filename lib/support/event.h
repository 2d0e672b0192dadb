// Events from the BPF ring buffer: decoding, and the lines the daemon logs.
//
// A ring buffer record is a struct bw_event (bpf/include/bpfwarden/abi.h).
// It comes from kernel memory, but it is decoded as outside input: the size
// is checked, the kind and action must be known, and the strings are read up
// to the first NUL but never past their arrays.
//
// Text format (format_event_text), one line, no trailing newline (the log
// sink adds the process name in front). Fields
// always appear in this order; a field that does not apply to a kind is left
// out, never printed empty:
//
//   <kind> <action> pid=<n> tgid=<n> uid=<n> gid=<n> comm="<s>"
//              [cmd=<bpf command>] path|exe="<s>" dev=<major>:<minor> ino=<n> [rule=<n>] [op=<op>]
//              [target=<pid>] [signal=<n>] [time=<RFC 3339 UTC>]
//
//   kind         fields after comm
//   file_open    path="<s>" dev ino rule op       path: rule_path if given, else the dentry name
//   file_change  path="<s>" dev ino rule op       (truncate, unlink, rename, chmod, ... of a covered file)
//   exec_check   path="<s>" dev ino rule op       path: rule_path if given, else the exec filename
//   bpf_check    cmd exe="<s>" dev ino            exe: name of the calling executable
//   bpf_call     cmd exe="<s>" dev ino            exe: name of the calling executable
//   exec         exe="<s>" dev ino                exe: the filename as passed to execve
//   tamper       [cmd] path="<s>" dev ino rule op [target] [signal]
//                                                 a refused change to bpfwarden itself: op says
//                                                 what (map_write, signal, ptrace, unlink, ...),
//                                                 target the process aimed at, path the file or pin
//
// time is when the kernel saw it (the record's bpf_ktime_get_ns() as wall
// time), present once the daemon has set wall_time_usec: an event read late,
// e.g. buffered while bpfwardend restarted, keeps the time it happened.
//
// dev/ino name the file of the path/exe field (for bpf and exec kinds: the
// process's executable); dev is decoded from the kernel's encoding
// (major = dev >> 20, minor = dev & 0xfffff). cmd is bpf_command_name(),
// e.g. prog_load or cmd_99; it never needs quoting. Examples:
//
//   file_open deny pid=123 tgid=123 uid=0 gid=0 comm="cat" path="/etc/shadow" dev=8:1 ino=1234 rule=3
//   bpf_check deny pid=77 tgid=77 uid=0 gid=0 comm="bpftool" cmd=prog_load exe="bpftool" dev=8:1 ino=99
//   exec none pid=9 tgid=9 uid=1000 gid=1000 comm="ls" exe="/usr/bin/ls" dev=259:2 ino=42
//
// Every quoted string is sanitize_field() output (comm bounded to 64 bytes,
// path/exe to 1024 — enough for any kernel-supplied field even when every
// byte is escaped, so only a long rule_path is ever cut).
//
// JSON format (format_event_json): one object, no trailing newline, no
// whitespace, the same keys in the same order as the text format plus "kind"
// and "action"; numbers are JSON numbers (ino is a full uint64: parse it as
// an integer, not a double), dev is the string "<major>:<minor>":
//
//   {"kind":"file_open","action":"deny","pid":123,"tgid":123,"uid":0,"gid":0,"comm":"cat","path":"/etc/shadow","dev":"8:1","ino":1234,"rule":3}
//
// JSON strings: '"' and '\' are escaped, control characters (C0, DEL, C1)
// become \u00XX, valid UTF-8 passes unchanged except the layout-changing
// characters listed at sanitize_field (written as \uXXXX, so nothing is
// lost), and each byte that is not part of valid UTF-8 becomes \ufffd. That
// replacement is lossy by necessity (JSON strings are Unicode text, not
// bytes); the text format keeps the exact bytes, and dev/ino still identify
// the file. The output is always valid UTF-8 and valid JSON (RFC 8259).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "bpfwarden/abi.h"
#include "support/error.h"
#include "support/log.h"
#include "support/text.h"

namespace bpfwarden {

enum class EventKind : uint32_t {
    FileOpen = BW_EVENT_FILE_OPEN,
    ExecCheck = BW_EVENT_EXEC_CHECK,
    BpfCheck = BW_EVENT_BPF_CHECK,
    BpfCall = BW_EVENT_BPF_CALL,
    Exec = BW_EVENT_EXEC,
    FileChange = BW_EVENT_FILE_CHANGE,
    Tamper = BW_EVENT_TAMPER,
};

// What the kernel did about the event (enum bw_action).
enum class EventAction : uint32_t {
    None = BW_ACTION_NONE,
    Audit = BW_ACTION_AUDIT,
    Deny = BW_ACTION_DENY,
    WouldDeny = BW_ACTION_WOULD_DENY,  // a deny rule in audit mode let it through
};

// A decoded, user-space copy of struct bw_event.
struct Event {
    EventKind kind = EventKind::FileOpen;
    EventAction action = EventAction::None;
    uint64_t ts_ns = 0;  // bpf_ktime_get_ns(): CLOCK_MONOTONIC
    uint32_t pid = 0;    // thread id
    uint32_t tgid = 0;   // process id
    uint32_t uid = 0;
    uint32_t gid = 0;
    uint64_t dev = 0;  // kernel encoding: (major << 20) | minor
    uint64_t ino = 0;
    uint32_t rule_id = 0;         // file_open, exec_check
    uint32_t bpf_cmd = 0;         // bpf_check, bpf_call, tamper of a link: enum bpf_cmd; tamper by signal: the signal
    uint32_t op = 0;              // enum bw_op
    uint32_t target_pid = 0;      // tamper with a process: which one
    std::string comm;             // raw bytes up to the first NUL (at most BW_COMM_LEN)
    std::string path;             // raw bytes up to the first NUL (at most BW_PATH_LEN)
    uint64_t wall_time_usec = 0;  // ts_ns as wall time (monotonic_to_wall_usec); 0: not converted, "time" left out

    bool operator==(const Event&) const = default;
};

// Decodes one ring buffer record. EINVAL when the record is not exactly
// sizeof(bw_event) bytes, or its kind or action is unknown. The record need
// not be aligned.
Result<Event> decode_event(std::span<const std::byte> record);

// "file_open", "exec_check", "bpf_check", "bpf_call", "exec"; "unknown" otherwise.
std::string_view event_kind_name(uint32_t kind);
inline std::string_view event_kind_name(EventKind kind) { return event_kind_name(static_cast<uint32_t>(kind)); }

// "open", "unlink", "mmap_exec", "signal", ... (enum bw_op); "op_<n>" otherwise.
std::string op_name(uint32_t op);

// "none", "audit", "deny"; "unknown" otherwise.
std::string_view action_name(uint32_t action);
inline std::string_view action_name(EventAction action) { return action_name(static_cast<uint32_t>(action)); }

// The text line described at the top of this file. rule_path is the full
// path of the matching policy rule, which the daemon knows and the kernel
// does not; it is used for file_open and exec_check and ignored otherwise.
std::string format_event_text(const Event& event, std::string_view rule_path = {});

// The JSON object described at the top of this file; rule_path as above.
std::string format_event_json(const Event& event, std::string_view rule_path = {});

// The same fields as journal fields, for `journalctl BPFWARDEN_PATH=/etc/shadow`:
// BPFWARDEN_<KEY> with the key upper-cased (kind becomes BPFWARDEN_EVENT),
// text values as the text format shows them without the quotes, plus
// BPFWARDEN_RULE_PATH when a rule path is given.
LogFields event_journal_fields(const Event& event, std::string_view rule_path = {});

// A CLOCK_MONOTONIC time from bpf_ktime_get_ns() as microseconds since the
// epoch, using the clocks' offset now (an event read late keeps the time it
// happened; a clock step since then shifts it).
uint64_t monotonic_to_wall_usec(uint64_t monotonic_ns);

// "2026-12-03T13:40:00.123456Z" (UTC).
std::string format_rfc3339_usec(uint64_t usec_since_epoch);

}  // namespace bpfwarden
