#include "support/event.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "support/bpf_commands.h"

namespace bpfwarden {
namespace {

// Bounds for quoted fields. The kernel's comm (15 bytes) and path (255
// bytes) fit whole even when every byte is escaped to four (text) or six
// (JSON, \ufffd) characters; only a long rule_path from the daemon is cut.
constexpr size_t kCommTextMax = 64;
constexpr size_t kPathTextMax = 1024;
constexpr size_t kCommJsonMax = 6 * BW_COMM_LEN;
constexpr size_t kPathJsonMax = 6 * BW_PATH_LEN;

constexpr std::string_view kEllipsis = "...";
constexpr char kHex[] = "0123456789abcdef";

// The raw bytes of a fixed-size char array up to its first NUL, never past it.
template <size_t N>
std::string bounded_string(const char (&array)[N]) {
    const void* nul = std::memchr(array, '\0', N);
    size_t length = nul ? static_cast<size_t>(static_cast<const char*>(nul) - array) : N;
    return std::string(array, length);
}

// One unit of input: a single byte (ASCII, or a byte that is not part of
// valid UTF-8), or one complete, valid UTF-8 sequence.
struct Unit {
    size_t length;       // bytes of input consumed
    bool valid;          // false: a lone byte that is not valid UTF-8
    char32_t codepoint;  // when valid
};

// Decodes the unit at the start of `s` (non-empty) following the well-formed
// byte sequences of Unicode Table 3-7: no overlong forms, no surrogates,
// nothing above U+10FFFF.
Unit next_unit(std::string_view s) {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = byte(0);
    if (lead < 0x80)
        return {1, true, lead};

    size_t length;
    unsigned char second_min = 0x80, second_max = 0xBF;
    char32_t cp;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
        cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        cp = lead & 0x0F;
        if (lead == 0xE0)
            second_min = 0xA0;  // overlong
        else if (lead == 0xED)
            second_max = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        cp = lead & 0x07;
        if (lead == 0xF0)
            second_min = 0x90;  // overlong
        else if (lead == 0xF4)
            second_max = 0x8F;  // above U+10FFFF
    } else {
        return {1, false, 0};
    }
    if (s.size() < length)
        return {1, false, 0};
    for (size_t i = 1; i < length; ++i) {
        unsigned char min = i == 1 ? second_min : 0x80;
        unsigned char max = i == 1 ? second_max : 0xBF;
        if (byte(i) < min || byte(i) > max)
            return {1, false, 0};
        cp = (cp << 6) | (byte(i) & 0x3F);
    }
    return {length, true, cp};
}

// Valid characters that are escaped anyway: C0/C1 controls and DEL, and the
// characters that split a line or reorder what a reader sees.
bool is_unsafe_codepoint(char32_t cp) {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E ||
           cp == 0x200F || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

// Escapes `raw` unit by unit through `escape_unit(unit, bytes, out)`, which
// appends one unit's complete output. Each unit's output is indivisible: when
// the whole result would exceed max_bytes, it is cut after the last unit that
// leaves room for "..." and the dots are appended.
template <typename EscapeUnit>
std::string escape_bounded(std::string_view raw, size_t max_bytes, EscapeUnit escape_unit) {
    std::string out;
    out.reserve(std::min(raw.size(), max_bytes) + kEllipsis.size());
    const size_t keep_max = max_bytes >= kEllipsis.size() ? max_bytes - kEllipsis.size() : 0;
    size_t keep = 0;  // the longest unit-boundary prefix of `out` that fits beside "..."
    while (!raw.empty()) {
        Unit unit = next_unit(raw);
        escape_unit(unit, raw.substr(0, unit.length), out);
        raw.remove_prefix(unit.length);
        if (out.size() > max_bytes) {
            out.resize(keep);
            out.append(kEllipsis.substr(0, std::min(kEllipsis.size(), max_bytes)));
            return out;
        }
        if (out.size() <= keep_max)
            keep = out.size();
    }
    return out;
}

void append_hex_byte(std::string& out, unsigned char c) {
    out += '\\';
    out += 'x';
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
}

void append_json_codepoint_escape(std::string& out, char32_t cp) {
    // Only called for BMP code points (controls, bidi, separators, U+FFFD).
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4)
        out += kHex[(cp >> shift) & 0xF];
}

std::string json_string_body(std::string_view raw, size_t max_bytes) {
    return escape_bounded(raw, max_bytes, [](const Unit& unit, std::string_view bytes, std::string& out) {
        if (!unit.valid) {
            append_json_codepoint_escape(out, 0xFFFD);
        } else if (unit.codepoint == '"' || unit.codepoint == '\\') {
            out += '\\';
            out += static_cast<char>(unit.codepoint);
        } else if (is_unsafe_codepoint(unit.codepoint)) {
            append_json_codepoint_escape(out, unit.codepoint);
        } else {
            out.append(bytes);
        }
    });
}

std::string device_name(uint64_t dev) {
    return std::to_string(dev >> 20) + ':' + std::to_string(dev & 0xFFFFF);
}

bool is_bpf_kind(EventKind kind) {
    return kind == EventKind::BpfCheck || kind == EventKind::BpfCall;
}

bool has_rule(EventKind kind) {
    return kind == EventKind::FileOpen || kind == EventKind::ExecCheck;
}

// The key for the path field ("path" names the guarded file, "exe" the
// process's executable) and the bytes it shows.
std::pair<std::string_view, std::string_view> path_field(const Event& event,
                                                         std::string_view rule_path) {
    if (has_rule(event.kind))
        return {"path", rule_path.empty() ? std::string_view(event.path) : rule_path};
    return {"exe", event.path};
}

}  // namespace

Result<Event> decode_event(std::span<const std::byte> record) {
    if (record.size() != sizeof(bw_event))
        return fail(EINVAL, "event record is " + std::to_string(record.size()) +
                                " bytes, expected " + std::to_string(sizeof(bw_event)));
    bw_event raw;
    std::memcpy(&raw, record.data(), sizeof(raw));  // the record need not be aligned
    if (event_kind_name(raw.kind) == "unknown")
        return fail(EINVAL, "event record has unknown kind " + std::to_string(raw.kind));
    if (action_name(raw.action) == "unknown")
        return fail(EINVAL, "event record (" + std::string(event_kind_name(raw.kind)) +
                                ") has unknown action " + std::to_string(raw.action));
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
        .comm = bounded_string(raw.comm),
        .path = bounded_string(raw.path),
    };
}

std::string sanitize_field(std::string_view raw, size_t max_bytes) {
    return escape_bounded(raw, max_bytes, [](const Unit& unit, std::string_view bytes, std::string& out) {
        if (!unit.valid || is_unsafe_codepoint(unit.codepoint)) {
            switch (unit.codepoint) {
            case '\n': out += "\\n"; return;
            case '\t': out += "\\t"; return;
            case '\r': out += "\\r"; return;
            default:
                for (char c : bytes)
                    append_hex_byte(out, static_cast<unsigned char>(c));
                return;
            }
        }
        if (unit.codepoint == '"' || unit.codepoint == '\\')
            out += '\\';
        out.append(bytes);
    });
}

std::string json_quote(std::string_view raw, size_t max_bytes) {
    return '"' + json_string_body(raw, max_bytes) + '"';
}

std::string_view event_kind_name(uint32_t kind) {
    switch (kind) {
    case BW_EVENT_FILE_OPEN: return "file_open";
    case BW_EVENT_EXEC_CHECK: return "exec_check";
    case BW_EVENT_BPF_CHECK: return "bpf_check";
    case BW_EVENT_BPF_CALL: return "bpf_call";
    case BW_EVENT_EXEC: return "exec";
    default: return "unknown";
    }
}

std::string_view action_name(uint32_t action) {
    switch (action) {
    case BW_ACTION_NONE: return "none";
    case BW_ACTION_AUDIT: return "audit";
    case BW_ACTION_DENY: return "deny";
    default: return "unknown";
    }
}

std::string format_event_text(const Event& event, std::string_view rule_path) {
    std::string line;
    line += event_kind_name(event.kind);
    line += ' ';
    line += action_name(event.action);
    line += " pid=" + std::to_string(event.pid);
    line += " tgid=" + std::to_string(event.tgid);
    line += " uid=" + std::to_string(event.uid);
    line += " gid=" + std::to_string(event.gid);
    line += " comm=\"" + sanitize_field(event.comm, kCommTextMax) + '"';
    if (is_bpf_kind(event.kind))
        line += " cmd=" + bpf_command_name(event.bpf_cmd);
    auto [key, path] = path_field(event, rule_path);
    line += ' ';
    line += key;
    line += "=\"" + sanitize_field(path, kPathTextMax) + '"';
    line += " dev=" + device_name(event.dev);
    line += " ino=" + std::to_string(event.ino);
    if (has_rule(event.kind))
        line += " rule=" + std::to_string(event.rule_id);
    return line;
}

std::string format_event_json(const Event& event, std::string_view rule_path) {
    std::string json = "{\"kind\":\"";
    json += event_kind_name(event.kind);
    json += "\",\"action\":\"";
    json += action_name(event.action);
    json += "\",\"pid\":" + std::to_string(event.pid);
    json += ",\"tgid\":" + std::to_string(event.tgid);
    json += ",\"uid\":" + std::to_string(event.uid);
    json += ",\"gid\":" + std::to_string(event.gid);
    json += ",\"comm\":\"" + json_string_body(event.comm, kCommJsonMax) + '"';
    if (is_bpf_kind(event.kind))
        json += ",\"cmd\":\"" + bpf_command_name(event.bpf_cmd) + '"';
    auto [key, path] = path_field(event, rule_path);
    json += ",\"";
    json += key;
    json += "\":\"" + json_string_body(path, kPathJsonMax) + '"';
    json += ",\"dev\":\"" + device_name(event.dev) + '"';
    json += ",\"ino\":" + std::to_string(event.ino);
    if (has_rule(event.kind))
        json += ",\"rule\":" + std::to_string(event.rule_id);
    json += '}';
    return json;
}

}  // namespace bpfwarden
