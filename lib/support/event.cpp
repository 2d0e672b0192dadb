#include "support/event.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>

#include "support/bpf_commands.h"
#include "support/text.h"

namespace bpfwarden {
namespace {

// Bounds for quoted fields. The kernel's comm (15 bytes) and path (255
// bytes) fit whole even when every byte is escaped to four (text) or six
// (JSON, \ufffd) characters; only a long rule_path from the daemon is cut.
constexpr size_t kCommTextMax = 64;
constexpr size_t kPathTextMax = 1024;
constexpr size_t kCommJsonMax = 6 * BW_COMM_LEN;
constexpr size_t kPathJsonMax = 6 * BW_PATH_LEN;

// The raw bytes of a fixed-size char array up to its first NUL, never past it.
template <size_t N>
std::string bounded_string(const char (&array)[N]) {
    const void* nul = std::memchr(array, '\0', N);
    size_t length = nul ? static_cast<size_t>(static_cast<const char*>(nul) - array) : N;
    return std::string(array, length);
}

std::string device_name(uint64_t dev) { return std::to_string(dev >> 20) + ':' + std::to_string(dev & 0xFFFFF); }

bool is_bpf_kind(EventKind kind) { return kind == EventKind::BpfCheck || kind == EventKind::BpfCall; }

bool has_rule(EventKind kind) {
    return kind == EventKind::FileOpen || kind == EventKind::FileChange || kind == EventKind::ExecCheck ||
           kind == EventKind::Tamper;
}

bool names_a_file(EventKind kind) { return has_rule(kind); }

// The bpf kinds, and a tamper with one of our links: cmd= right after comm.
bool has_command(const Event& event) {
    return is_bpf_kind(event.kind) || (event.kind == EventKind::Tamper && event.op == BW_OP_LINK_CHANGE);
}

// The key for the path field ("path" names the guarded file, "exe" the
// process's executable) and the bytes it shows.
std::pair<std::string_view, std::string_view> path_field(const Event& event, std::string_view rule_path) {
    if (names_a_file(event.kind))
        return {"path", rule_path.empty() ? std::string_view(event.path) : rule_path};
    return {"exe", event.path};
}

// The file's name the kernel saw (file events carry the dentry's name; exec
// events the filename as passed, shown otherwise), when it is not the rule
// path's own last component:
// a file beneath a subtree rule ("new" under "/srv/secret"), or a file renamed
// onto a ruled name. Empty otherwise.
std::string_view seen_name(const Event& event, std::string_view rule_path) {
    bool dentry_name = event.kind == EventKind::FileOpen || event.kind == EventKind::FileChange;
    if (!dentry_name || rule_path.empty() || event.path.empty())
        return {};
    std::string_view last = rule_path.substr(rule_path.find_last_of('/') + 1);
    return last == event.path ? std::string_view() : std::string_view(event.path);
}

}  // namespace

Result<Event> decode_event(std::span<const std::byte> record) {
    if (record.size() != sizeof(bw_event))
        return fail(EINVAL, "event record is " + std::to_string(record.size()) + " bytes, expected " +
                                std::to_string(sizeof(bw_event)));
    bw_event raw;
    std::memcpy(&raw, record.data(), sizeof(raw));  // the record need not be aligned
    if (event_kind_name(raw.kind) == "unknown")
        return fail(EINVAL, "event record has unknown kind " + std::to_string(raw.kind));
    if (action_name(raw.action) == "unknown")
        return fail(EINVAL, "event record (" + std::string(event_kind_name(raw.kind)) + ") has unknown action " +
                                std::to_string(raw.action));
    return Event{
        .kind = static_cast<EventKind>(raw.kind),
        .action = static_cast<EventAction>(raw.action),
        .ts_ns = raw.ts_ns,
        .pid = raw.pid,
        .tgid = raw.tgid,
        .uid = raw.uid,
        .gid = raw.gid,
        .dev = raw.dev,
        .ino = raw.ino,
        .rule_id = raw.rule_id,
        .bpf_cmd = raw.bpf_cmd,
        .op = raw.op,
        .target_pid = raw.target_pid,
        .comm = bounded_string(raw.comm),
        .path = bounded_string(raw.path),
    };
}

std::string_view event_kind_name(uint32_t kind) {
    switch (kind) {
    case BW_EVENT_FILE_OPEN: return "file_open";
    case BW_EVENT_EXEC_CHECK: return "exec_check";
    case BW_EVENT_BPF_CHECK: return "bpf_check";
    case BW_EVENT_BPF_CALL: return "bpf_call";
    case BW_EVENT_EXEC: return "exec";
    case BW_EVENT_FILE_CHANGE: return "file_change";
    case BW_EVENT_TAMPER: return "tamper";
    default: return "unknown";
    }
}

std::string op_name(uint32_t op) {
    static constexpr std::pair<uint32_t, const char*> kNames[] = {
        {BW_OP_NONE, "none"},
        {BW_OP_OPEN, "open"},
        {BW_OP_OPEN_WRITE, "open_write"},
        {BW_OP_TRUNCATE, "truncate"},
        {BW_OP_UNLINK, "unlink"},
        {BW_OP_RENAME_FROM, "rename_from"},
        {BW_OP_RENAME_ONTO, "rename_onto"},
        {BW_OP_LINK, "link"},
        {BW_OP_SETATTR, "setattr"},
        {BW_OP_SETXATTR, "setxattr"},
        {BW_OP_REMOVEXATTR, "removexattr"},
        {BW_OP_CREATE, "create"},
        {BW_OP_RMDIR, "rmdir"},
        {BW_OP_EXEC, "exec"},
        {BW_OP_MMAP_EXEC, "mmap_exec"},
        {BW_OP_MPROTECT_EXEC, "mprotect_exec"},
        {BW_OP_EXEC_ANONYMOUS, "exec_anonymous"},
        {BW_OP_WRITE_EXEC, "write_exec"},
        {BW_OP_MAP_WRITE_ACCESS, "map_write"},
        {BW_OP_PROG_WITH_OUR_MAPS, "prog_with_our_maps"},
        {BW_OP_LINK_CHANGE, "link_change"},
        {BW_OP_SIGNAL, "signal"},
        {BW_OP_PTRACE, "ptrace"},
        {BW_OP_UNMOUNT, "unmount"},
        {BW_OP_MOUNT_OVER, "mount_over"},
    };
    for (auto [value, name] : kNames)
        if (value == op)
            return name;
    return "op_" + std::to_string(op);
}

std::string_view action_name(uint32_t action) {
    switch (action) {
    case BW_ACTION_NONE: return "none";
    case BW_ACTION_AUDIT: return "audit";
    case BW_ACTION_DENY: return "deny";
    case BW_ACTION_WOULD_DENY: return "would-deny";
    default: return "unknown";
    }
}

namespace {

// One field of an event as all three renderings see it, in their shared
// order. Text values are raw bytes (each rendering escapes them its own way);
// words (kind, action, cmd, op, dev, time) never need escaping.
struct EventField {
    std::string_view key;
    std::string value;
    enum class Type { Number, Word, Text } type;
};

std::vector<EventField> event_fields(const Event& event, std::string_view rule_path) {
    using Type = EventField::Type;
    auto number = [](uint64_t n) { return std::to_string(n); };
    std::vector<EventField> fields = {
        {"kind", std::string(event_kind_name(event.kind)), Type::Word},
        {"action", std::string(action_name(event.action)), Type::Word},
        {"pid", number(event.pid), Type::Number},
        {"tgid", number(event.tgid), Type::Number},
        {"uid", number(event.uid), Type::Number},
        {"gid", number(event.gid), Type::Number},
        {"comm", event.comm, Type::Text},
    };
    if (has_command(event))
        fields.push_back({"cmd", bpf_command_name(event.bpf_cmd), Type::Word});
    auto [key, path] = path_field(event, rule_path);
    fields.push_back({key, std::string(path), Type::Text});
    if (std::string_view name = seen_name(event, rule_path); !name.empty())
        fields.push_back({"name", std::string(name), Type::Text});
    fields.push_back({"dev", device_name(event.dev), Type::Word});
    fields.push_back({"ino", number(event.ino), Type::Number});
    if (has_rule(event.kind)) {
        fields.push_back({"rule", number(event.rule_id), Type::Number});
        fields.push_back({"op", op_name(event.op), Type::Word});
    }
    if (event.kind == EventKind::Tamper && event.target_pid)
        fields.push_back({"target", number(event.target_pid), Type::Number});
    if (event.kind == EventKind::Tamper && event.op == BW_OP_SIGNAL)
        fields.push_back({"signal", number(event.bpf_cmd), Type::Number});
    if (event.wall_time_usec)
        fields.push_back({"time", format_rfc3339_usec(event.wall_time_usec), Type::Word});
    return fields;
}

}  // namespace

std::string format_event_text(const Event& event, std::string_view rule_path) {
    std::vector<EventField> fields = event_fields(event, rule_path);
    std::string line = fields[0].value + ' ' + fields[1].value;  // "<kind> <action>"
    for (size_t i = 2; i < fields.size(); ++i) {
        const EventField& field = fields[i];
        line += ' ';
        line += field.key;
        line += '=';
        if (field.type == EventField::Type::Text)
            line += '"' + sanitize_field(field.value, field.key == "comm" ? kCommTextMax : kPathTextMax) + '"';
        else
            line += field.value;
    }
    return line;
}

std::string format_event_json(const Event& event, std::string_view rule_path) {
    std::string json = "{";
    for (const EventField& field : event_fields(event, rule_path)) {
        if (json.size() > 1)
            json += ',';
        json += '"';
        json += field.key;
        json += "\":";
        switch (field.type) {
        case EventField::Type::Number: json += field.value; break;
        case EventField::Type::Word: json += '"' + field.value + '"'; break;
        case EventField::Type::Text:
            json += json_quote(field.value, field.key == "comm" ? kCommJsonMax : kPathJsonMax);
            break;
        }
    }
    json += '}';
    return json;
}

LogFields event_journal_fields(const Event& event, std::string_view rule_path) {
    LogFields out;
    for (const EventField& field : event_fields(event, rule_path)) {
        std::string name = "BPFWARDEN_";
        for (char c : field.key == "kind" ? std::string_view("event") : field.key)
            name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        std::string value = field.type == EventField::Type::Text
                                ? sanitize_field(field.value, field.key == "comm" ? kCommTextMax : kPathTextMax)
                                : field.value;
        out.emplace_back(std::move(name), std::move(value));
    }
    if (has_rule(event.kind) && !rule_path.empty())
        out.emplace_back("BPFWARDEN_RULE_PATH", sanitize_field(rule_path, kPathTextMax));
    return out;
}

std::string format_rfc3339_usec(uint64_t usec_since_epoch) {
    time_t seconds = static_cast<time_t>(usec_since_epoch / 1000000);
    struct tm utc{};
    gmtime_r(&seconds, &utc);
    char text[40];
    size_t length = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(text + length, sizeof(text) - length, ".%06lluZ",
             static_cast<unsigned long long>(usec_since_epoch % 1000000));
    return text;
}

uint64_t monotonic_to_wall_usec(uint64_t monotonic_ns) {
    timespec mono{}, real{};
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    int64_t now_mono_ns = static_cast<int64_t>(mono.tv_sec) * 1000000000 + mono.tv_nsec;
    int64_t now_real_ns = static_cast<int64_t>(real.tv_sec) * 1000000000 + real.tv_nsec;
    int64_t wall_ns = now_real_ns - (now_mono_ns - static_cast<int64_t>(monotonic_ns));
    return wall_ns > 0 ? static_cast<uint64_t>(wall_ns / 1000) : 0;
}

}  // namespace bpfwarden
