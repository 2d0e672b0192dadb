#include "support/event.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "support/bpf_commands.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

using namespace std::string_literals;

constexpr uint64_t kernel_dev(uint64_t major, uint64_t minor) { return (major << 20) | minor; }

bw_event raw_event(uint32_t kind, uint32_t action) {
    bw_event raw{};
    raw.kind = kind;
    raw.action = action;
    raw.ts_ns = 123456789;
    raw.pid = 124;
    raw.tgid = 123;
    raw.uid = 1000;
    raw.gid = 1001;
    raw.dev = kernel_dev(8, 1);
    raw.ino = 1234;
    raw.rule_id = 3;
    raw.bpf_cmd = 5;
    raw.op = BW_OP_OPEN_WRITE;
    raw.target_pid = 4321;
    std::strcpy(raw.comm, "cat");
    std::strcpy(raw.path, "shadow");
    return raw;
}

// An exactly sized heap copy, so that ASan catches any read past the record.
std::vector<std::byte> bytes_of(const bw_event& raw) {
    std::vector<std::byte> bytes(sizeof(raw));
    std::memcpy(bytes.data(), &raw, sizeof(raw));
    return bytes;
}

Event make_event(EventKind kind, EventAction action, std::string comm, std::string path) {
    Event event;
    event.kind = kind;
    event.action = action;
    event.pid = 123;
    event.tgid = 123;
    event.uid = 0;
    event.gid = 0;
    event.dev = kernel_dev(8, 1);
    event.ino = 1234;
    event.rule_id = 3;
    event.bpf_cmd = 5;  // BPF_PROG_LOAD
    event.comm = std::move(comm);
    event.path = std::move(path);
    return event;
}

// --- Independent checkers (deliberately not sharing code with event.cpp) ---

// Strict UTF-8 validation per RFC 3629.
bool is_valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size())
            return false;
        for (size_t k = 1; k <= n; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Inverse of sanitize_field for untruncated output; nullopt on any malformed
// or dangling escape, or an unescaped '"' or control byte.
std::optional<std::string> unsanitize(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F || c == '"')
            return std::nullopt;
        if (c != '\\') {
            out += static_cast<char>(c);
            continue;
        }
        if (++i == s.size())
            return std::nullopt;
        switch (s[i]) {
        case '\\': out += '\\'; break;
        case '"': out += '"'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'x': {
            if (i + 2 >= s.size())
                return std::nullopt;
            auto hex = [](char h) -> int {
                if (h >= '0' && h <= '9')
                    return h - '0';
                if (h >= 'a' && h <= 'f')
                    return h - 'a' + 10;
                return -1;
            };
            int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
            if (hi < 0 || lo < 0)
                return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
            break;
        }
        default: return std::nullopt;
        }
    }
    return out;
}

// A strict RFC 8259 parser for the flat objects format_event_json writes:
// string keys, string or non-negative integer values. Returns the decoded
// members in order, or nullopt if the text is not valid JSON of that shape.
using JsonMembers = std::vector<std::pair<std::string, std::string>>;

class FlatJsonParser {
public:
    explicit FlatJsonParser(std::string_view text) : s_(text) {}

    std::optional<JsonMembers> parse() {
        if (!is_valid_utf8(s_) || !eat('{'))
            return std::nullopt;
        JsonMembers members;
        if (eat('}'))
            return at_end() ? std::optional(members) : std::nullopt;
        do {
            auto key = string();
            if (!key || !eat(':'))
                return std::nullopt;
            std::optional<std::string> value = peek() == '"' ? string() : number();
            if (!value)
                return std::nullopt;
            members.emplace_back(*key, *value);
        } while (eat(','));
        if (!eat('}') || !at_end())
            return std::nullopt;
        return members;
    }

private:
    char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
    bool at_end() const { return pos_ == s_.size(); }
    bool eat(char c) {
        if (peek() != c || at_end())
            return false;
        ++pos_;
        return true;
    }

    std::optional<std::string> number() {
        size_t start = pos_;
        if (peek() == '0') {
            ++pos_;
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9')
                ++pos_;
        } else {
            return std::nullopt;
        }
        return std::string(s_.substr(start, pos_ - start));
    }

    std::optional<uint32_t> hex4() {
        if (pos_ + 4 > s_.size())
            return std::nullopt;
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            char h = s_[pos_++];
            v <<= 4;
            if (h >= '0' && h <= '9')
                v |= h - '0';
            else if (h >= 'a' && h <= 'f')
                v |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F')
                v |= h - 'A' + 10;
            else
                return std::nullopt;
        }
        return v;
    }

    std::optional<std::string> string() {
        if (!eat('"'))
            return std::nullopt;
        std::string out;
        while (true) {
            if (at_end())
                return std::nullopt;
            auto c = static_cast<unsigned char>(s_[pos_++]);
            if (c == '"')
                return out;
            if (c < 0x20)
                return std::nullopt;
            if (c != '\\') {
                out += static_cast<char>(c);
                continue;
            }
            if (at_end())
                return std::nullopt;
            char e = s_[pos_++];
            switch (e) {
            case '"':
            case '\\':
            case '/': out += e; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                auto cp = hex4();
                if (!cp)
                    return std::nullopt;
                if (*cp >= 0xD800 && *cp <= 0xDBFF) {
                    if (!eat('\\') || !eat('u'))
                        return std::nullopt;
                    auto low = hex4();
                    if (!low || *low < 0xDC00 || *low > 0xDFFF)
                        return std::nullopt;
                    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
                } else if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
                    return std::nullopt;
                }
                append_utf8(out, *cp);
                break;
            }
            default: return std::nullopt;
            }
        }
    }

    std::string_view s_;
    size_t pos_ = 0;
};

std::optional<JsonMembers> parse_json(std::string_view text) { return FlatJsonParser(text).parse(); }

std::optional<std::string> json_member(const JsonMembers& members, std::string_view key) {
    for (const auto& [k, v] : members)
        if (k == key)
            return v;
    return std::nullopt;
}

bool has_control_bytes(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
            return true;
    return false;
}

// --- decode_event ---

TEST(EventDecode, ExactSizeRecordDecodesEveryField) {
    bw_event raw = raw_event(BW_EVENT_FILE_OPEN, BW_ACTION_DENY);
    auto event = decode_event(bytes_of(raw));
    ASSERT_OK(event);
    EXPECT_EQ(event->kind, EventKind::FileOpen);
    EXPECT_EQ(event->action, EventAction::Deny);
    EXPECT_EQ(event->ts_ns, 123456789u);
    EXPECT_EQ(event->pid, 124u);
    EXPECT_EQ(event->tgid, 123u);
    EXPECT_EQ(event->uid, 1000u);
    EXPECT_EQ(event->gid, 1001u);
    EXPECT_EQ(event->dev, kernel_dev(8, 1));
    EXPECT_EQ(event->ino, 1234u);
    EXPECT_EQ(event->rule_id, 3u);
    EXPECT_EQ(event->bpf_cmd, 5u);
    EXPECT_EQ(event->op, static_cast<uint32_t>(BW_OP_OPEN_WRITE));
    EXPECT_EQ(event->target_pid, 4321u);
    EXPECT_EQ(event->comm, "cat");
    EXPECT_EQ(event->path, "shadow");
}

TEST(EventDecode, EveryKnownKindAndActionDecodes) {
    for (uint32_t kind = BW_EVENT_FILE_OPEN; kind <= BW_EVENT_TAMPER; ++kind) {
        for (uint32_t action = BW_ACTION_NONE; action <= BW_ACTION_DENY; ++action) {
            auto event = decode_event(bytes_of(raw_event(kind, action)));
            ASSERT_OK(event);
            EXPECT_EQ(static_cast<uint32_t>(event->kind), kind);
            EXPECT_EQ(static_cast<uint32_t>(event->action), action);
        }
    }
}

TEST(EventDecode, UnalignedRecordDecodes) {
    auto bytes = bytes_of(raw_event(BW_EVENT_EXEC, BW_ACTION_NONE));
    std::vector<std::byte> shifted(bytes.size() + 1);
    std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
    auto event = decode_event(std::span(shifted).subspan(1));
    ASSERT_OK(event);
    EXPECT_EQ(event->kind, EventKind::Exec);
    EXPECT_EQ(event->ino, 1234u);
}

TEST(EventDecode, ShortRecordIsRejected) {
    auto bytes = bytes_of(raw_event(BW_EVENT_FILE_OPEN, BW_ACTION_DENY));
    EXPECT_ERRNO(decode_event(std::span(bytes).first(bytes.size() - 1)), EINVAL);
    EXPECT_ERROR_MENTIONS(decode_event(std::span(bytes).first(12)),
                          "event record is 12 bytes, expected " + std::to_string(sizeof(bw_event)));
    EXPECT_ERRNO(decode_event({}), EINVAL);
}

TEST(EventDecode, LongRecordIsRejected) {
    auto bytes = bytes_of(raw_event(BW_EVENT_FILE_OPEN, BW_ACTION_DENY));
    bytes.push_back(std::byte{0});
    EXPECT_ERRNO(decode_event(bytes), EINVAL);
    EXPECT_ERROR_MENTIONS(decode_event(bytes), std::to_string(sizeof(bw_event) + 1) + " bytes");
}

TEST(EventDecode, UnknownKindIsRejected) {
    for (uint32_t kind : {0u, 8u, 0xFFFFFFFFu}) {
        EXPECT_ERRNO(decode_event(bytes_of(raw_event(kind, BW_ACTION_DENY))), EINVAL);
        EXPECT_ERROR_MENTIONS(decode_event(bytes_of(raw_event(kind, BW_ACTION_DENY))),
                              "unknown kind " + std::to_string(kind));
    }
}

TEST(EventDecode, UnknownActionIsRejected) {
    EXPECT_ERRNO(decode_event(bytes_of(raw_event(BW_EVENT_FILE_OPEN, 4))), EINVAL);
    EXPECT_ERROR_MENTIONS(decode_event(bytes_of(raw_event(BW_EVENT_FILE_OPEN, 4))),
                          "event record (file_open) has unknown action 4");
}

TEST(EventDecode, StringsWithoutNulAreBoundedByTheirArrays) {
    bw_event raw = raw_event(BW_EVENT_EXEC, BW_ACTION_NONE);
    std::memset(raw.comm, 'C', sizeof(raw.comm));
    std::memset(raw.path, 'P', sizeof(raw.path));
    // bytes_of() allocates exactly sizeof(bw_event): path is the last field,
    // so reading past it would be a heap overflow ASan reports.
    auto event = decode_event(bytes_of(raw));
    ASSERT_OK(event);
    EXPECT_EQ(event->comm, std::string(BW_COMM_LEN, 'C'));
    EXPECT_EQ(event->path, std::string(BW_PATH_LEN, 'P'));
}

TEST(EventDecode, StringsStopAtFirstNulAndKeepRawBytes) {
    bw_event raw = raw_event(BW_EVENT_FILE_OPEN, BW_ACTION_AUDIT);
    std::memcpy(raw.comm, "ab\0stale", 8);
    std::memcpy(raw.path, "\xff\xfe\n\0stale", 9);
    auto event = decode_event(bytes_of(raw));
    ASSERT_OK(event);
    EXPECT_EQ(event->comm, "ab");
    EXPECT_EQ(event->path, "\xff\xfe\n");

    std::memset(raw.comm, 0, sizeof(raw.comm));
    std::memset(raw.path, 0, sizeof(raw.path));
    event = decode_event(bytes_of(raw));
    ASSERT_OK(event);
    EXPECT_EQ(event->comm, "");
    EXPECT_EQ(event->path, "");
}

// --- names ---

TEST(EventNames, KindAndActionNames) {
    EXPECT_EQ(event_kind_name(BW_EVENT_FILE_OPEN), "file_open");
    EXPECT_EQ(event_kind_name(BW_EVENT_EXEC_CHECK), "exec_check");
    EXPECT_EQ(event_kind_name(BW_EVENT_BPF_CHECK), "bpf_check");
    EXPECT_EQ(event_kind_name(BW_EVENT_BPF_CALL), "bpf_call");
    EXPECT_EQ(event_kind_name(BW_EVENT_EXEC), "exec");
    EXPECT_EQ(event_kind_name(BW_EVENT_FILE_CHANGE), "file_change");
    EXPECT_EQ(event_kind_name(BW_EVENT_TAMPER), "tamper");
    EXPECT_EQ(event_kind_name(EventKind::BpfCall), "bpf_call");
    EXPECT_EQ(event_kind_name(EventKind::Tamper), "tamper");
    EXPECT_EQ(event_kind_name(0), "unknown");
    EXPECT_EQ(event_kind_name(8), "unknown");
    EXPECT_EQ(action_name(BW_ACTION_NONE), "none");
    EXPECT_EQ(action_name(BW_ACTION_AUDIT), "audit");
    EXPECT_EQ(action_name(BW_ACTION_DENY), "deny");
    EXPECT_EQ(action_name(EventAction::Deny), "deny");
    EXPECT_EQ(action_name(BW_ACTION_WOULD_DENY), "would-deny");
    EXPECT_EQ(action_name(4), "unknown");
}

TEST(EventNames, OpNames) {
    const std::map<uint32_t, std::string> expected = {
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
    for (const auto& [op, name] : expected)
        EXPECT_EQ(op_name(op), name) << op;
    // Every number without a name of its own, up to the self-protection block and past it.
    for (uint32_t op = 0; op < 64; ++op) {
        if (!expected.contains(op)) {
            EXPECT_EQ(op_name(op), "op_" + std::to_string(op));
        }
    }
    EXPECT_EQ(op_name(UINT32_MAX), "op_4294967295");
    // Names are unique: an op is never mistaken for another.
    std::set<std::string> names;
    for (const auto& [op, name] : expected)
        EXPECT_TRUE(names.insert(op_name(op)).second) << name;
}

// --- sanitize_field ---

TEST(EventSanitize, PrintableAsciiPassesUnchanged) {
    std::string printable;
    for (char c = 0x20; c < 0x7F; ++c)
        if (c != '"' && c != '\\')
            printable += c;
    EXPECT_EQ(sanitize_field(printable), printable);
    EXPECT_EQ(sanitize_field("/etc/shadow"), "/etc/shadow");
}

TEST(EventSanitize, EmptyString) {
    EXPECT_EQ(sanitize_field(""), "");
    EXPECT_EQ(sanitize_field("", 0), "");
}

TEST(EventSanitize, QuoteAndBackslashAreEscaped) {
    EXPECT_EQ(sanitize_field(R"(a"b\c)"), R"(a\"b\\c)");
    EXPECT_EQ(sanitize_field(R"(" path="/fake)"), R"(\" path=\"/fake)");
}

TEST(EventSanitize, ControlCharactersAreEscaped) {
    EXPECT_EQ(sanitize_field("a\nb\tc\rd"), R"(a\nb\tc\rd)");
    EXPECT_EQ(sanitize_field("\x01\x1b[31m\x7f"), R"(\x01\x1b[31m\x7f)");
    EXPECT_EQ(sanitize_field("x\0y"s), R"(x\x00y)");
    EXPECT_EQ(sanitize_field("\x1f"), R"(\x1f)");
}

TEST(EventSanitize, ValidUtf8IsKept) {
    for (const char* s : {"caf\u00e9", "\u65e5\u672c\u8a9e", "\U0001F600", "\u00a0", "\u07ff", "\u0800", "\uffff",
                          "\U00010000", "\U0010FFFF", "\u200b"}) {
        EXPECT_EQ(sanitize_field(s), s);
    }
}

TEST(EventSanitize, InvalidUtf8IsEscapedPerByte) {
    EXPECT_EQ(sanitize_field("\x80"), R"(\x80)");                          // stray continuation
    EXPECT_EQ(sanitize_field("\xc0\xaf"), R"(\xc0\xaf)");                  // overlong '/'
    EXPECT_EQ(sanitize_field("\xc1\xbf"), R"(\xc1\xbf)");                  // overlong
    EXPECT_EQ(sanitize_field("\xe0\x80\xaf"), R"(\xe0\x80\xaf)");          // overlong
    EXPECT_EQ(sanitize_field("\xf0\x80\x80\xaf"), R"(\xf0\x80\x80\xaf)");  // overlong
    EXPECT_EQ(sanitize_field("\xed\xa0\x80"), R"(\xed\xa0\x80)");          // surrogate
    EXPECT_EQ(sanitize_field("\xf4\x90\x80\x80"), R"(\xf4\x90\x80\x80)");  // > U+10FFFF
    EXPECT_EQ(sanitize_field("\xf5\xfe\xff"), R"(\xf5\xfe\xff)");          // never valid
    EXPECT_EQ(sanitize_field("ab\xe6\x97"), R"(ab\xe6\x97)");              // truncated at end
    EXPECT_EQ(sanitize_field("\xe6\x97"
                             "A"),
              R"(\xe6\x97A)");  // interrupted
    // A valid character right after an invalid byte is kept.
    EXPECT_EQ(sanitize_field("\xff\u00e9"), "\\xff\u00e9");
}

TEST(EventSanitize, LineAndBidiControlsAreEscaped) {
    EXPECT_EQ(sanitize_field("a\u2028b"), R"(a\xe2\x80\xa8b)");
    EXPECT_EQ(sanitize_field("\u2029"), R"(\xe2\x80\xa9)");
    EXPECT_EQ(sanitize_field("evil\u202etxt.exe"), R"(evil\xe2\x80\xaetxt.exe)");
    EXPECT_EQ(sanitize_field("\u2066\u2069\u200e\u200f\u061c"),
              R"(\xe2\x81\xa6\xe2\x81\xa9\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c)");
    EXPECT_EQ(sanitize_field("\u0085\u009b"), R"(\xc2\x85\xc2\x9b)");  // C1: NEL, CSI
}

TEST(EventSanitize, OutputRoundTripsToTheInput) {
    std::string all_bytes;
    for (int c = 0; c < 256; ++c)
        all_bytes += static_cast<char>(c);
    all_bytes += "\u00e9\u2028\U0001F600\xe6\x97";
    auto sanitized = sanitize_field(all_bytes, 1 << 20);
    EXPECT_FALSE(has_control_bytes(sanitized));
    EXPECT_TRUE(is_valid_utf8(sanitized));
    EXPECT_EQ(unsanitize(sanitized), all_bytes);
}

TEST(EventSanitize, OutputThatFitsExactlyIsNotCut) {
    EXPECT_EQ(sanitize_field(std::string(256, 'a')), std::string(256, 'a'));
    EXPECT_EQ(sanitize_field("\n", 2), R"(\n)");
    EXPECT_EQ(sanitize_field("abc", 3), "abc");
}

TEST(EventSanitize, TruncationIncludesTheEllipsisInMaxBytes) {
    EXPECT_EQ(sanitize_field(std::string(257, 'a')), std::string(253, 'a') + "...");
    EXPECT_EQ(sanitize_field("abcdef", 5), "ab...");
    EXPECT_EQ(sanitize_field("abcd", 3), "...");
    EXPECT_EQ(sanitize_field("abcd", 2), "..");
    EXPECT_EQ(sanitize_field("abcd", 0), "");
}

TEST(EventSanitize, TruncationNeverSplitsAnEscape) {
    // Each \x01 is four bytes: 17 bytes of room hold four of them.
    EXPECT_EQ(sanitize_field(std::string(100, '\x01'), 20), R"(\x01\x01\x01\x01...)");
    EXPECT_EQ(sanitize_field("a\"\"\"", 6), R"(a\"...)");
    EXPECT_EQ(sanitize_field("a\"\"\"", 5), "a...");
    EXPECT_EQ(sanitize_field("ab\n\n", 6), R"(ab\n\n)");
    EXPECT_EQ(sanitize_field("ab\n\n", 5), "ab...");
}

TEST(EventSanitize, TruncationNeverSplitsAUtf8Character) {
    std::string input;
    for (int i = 0; i < 100; ++i)
        input += "\u65e5";  // three bytes each
    EXPECT_EQ(sanitize_field(input, 20), "\u65e5\u65e5\u65e5\u65e5\u65e5...");
    EXPECT_EQ(sanitize_field("\U0001F600\U0001F600", 7), "\U0001F600...");
    EXPECT_EQ(sanitize_field("\U0001F600\U0001F600", 6), "...");
}

// Every cut, at every bound, over input mixing each kind of unit.
TEST(EventSanitize, TruncationPropertiesHoldForEveryBound) {
    const std::string input = "a\"\\\n\x01\u00e9\u65e5\U0001F600\u2028\xff\xe6\x97z"s + "\0"s + "end";
    const std::string full = sanitize_field(input, SIZE_MAX);
    ASSERT_EQ(unsanitize(full), input);
    for (size_t max = 0; max <= full.size() + 2; ++max) {
        SCOPED_TRACE("max_bytes=" + std::to_string(max));
        std::string out = sanitize_field(input, max);
        EXPECT_LE(out.size(), max);
        if (full.size() <= max) {
            EXPECT_EQ(out, full);
            continue;
        }
        if (max < 3) {
            EXPECT_EQ(out, std::string(max, '.'));
            continue;
        }
        ASSERT_TRUE(out.ends_with("..."));
        std::string kept = out.substr(0, out.size() - 3);
        EXPECT_TRUE(full.starts_with(kept));
        EXPECT_TRUE(is_valid_utf8(kept)) << "UTF-8 sequence split";
        auto decoded = unsanitize(kept);
        ASSERT_TRUE(decoded.has_value()) << "escape split: " << kept;
        EXPECT_TRUE(input.starts_with(*decoded));
        // The cut is as late as it can be: the largest unit here is 12 bytes.
        EXPECT_GT(kept.size() + 12, max - 3);
    }
}

TEST(EventSanitize, OneMebibyteInputIsBoundedAndFast) {
    std::mt19937 rng(7);
    std::string input(1 << 20, '\0');
    for (char& c : input)
        c = static_cast<char>(rng());
    std::string out = sanitize_field(input);
    EXPECT_LE(out.size(), 256u);
    EXPECT_TRUE(out.ends_with("..."));
    EXPECT_FALSE(has_control_bytes(out));
    EXPECT_TRUE(is_valid_utf8(out));

    std::string whole = sanitize_field(input, SIZE_MAX);
    EXPECT_EQ(unsanitize(whole), input);

    std::string long_ascii(1 << 20, 'x');
    EXPECT_EQ(sanitize_field(long_ascii, 1 << 20), long_ascii);
    EXPECT_EQ(sanitize_field(long_ascii, (1 << 20) - 1).size(), (1u << 20) - 1);
}

// --- format_event_text / format_event_json golden lines ---

TEST(EventFormat, FileOpenText) {
    Event event = make_event(EventKind::FileOpen, EventAction::Deny, "cat", "shadow");
    event.op = BW_OP_OPEN;
    EXPECT_EQ(
        format_event_text(event, "/etc/shadow"),
        R"(file_open deny pid=123 tgid=123 uid=0 gid=0 comm="cat" path="/etc/shadow" dev=8:1 ino=1234 rule=3 op=open)");
    // Without the rule's path, the kernel's dentry name.
    EXPECT_EQ(
        format_event_text(event),
        R"(file_open deny pid=123 tgid=123 uid=0 gid=0 comm="cat" path="shadow" dev=8:1 ino=1234 rule=3 op=open)");
    // An op the kernel did not set is printed as such, never left out.
    event.op = BW_OP_NONE;
    EXPECT_TRUE(format_event_text(event).ends_with(" rule=3 op=none"));
}

TEST(EventFormat, FileOpenJson) {
    Event event = make_event(EventKind::FileOpen, EventAction::Deny, "cat", "shadow");
    event.op = BW_OP_OPEN_WRITE;
    EXPECT_EQ(
        format_event_json(event, "/etc/shadow"),
        R"({"kind":"file_open","action":"deny","pid":123,"tgid":123,"uid":0,"gid":0,"comm":"cat","path":"/etc/shadow","dev":"8:1","ino":1234,"rule":3,"op":"open_write"})");
    EXPECT_EQ(
        format_event_json(event),
        R"({"kind":"file_open","action":"deny","pid":123,"tgid":123,"uid":0,"gid":0,"comm":"cat","path":"shadow","dev":"8:1","ino":1234,"rule":3,"op":"open_write"})");
}

TEST(EventFormat, ExecCheckTextAndJson) {
    Event event = make_event(EventKind::ExecCheck, EventAction::Audit, "bash", "./nc");
    event.rule_id = 7;
    event.dev = kernel_dev(259, 0xFFFFF);
    event.op = BW_OP_EXEC;
    EXPECT_EQ(
        format_event_text(event, "/usr/bin/nc.openbsd"),
        R"(exec_check audit pid=123 tgid=123 uid=0 gid=0 comm="bash" path="/usr/bin/nc.openbsd" dev=259:1048575 ino=1234 rule=7 op=exec)");
    EXPECT_EQ(
        format_event_text(event),
        R"(exec_check audit pid=123 tgid=123 uid=0 gid=0 comm="bash" path="./nc" dev=259:1048575 ino=1234 rule=7 op=exec)");
    EXPECT_EQ(
        format_event_json(event, "/usr/bin/nc.openbsd"),
        R"({"kind":"exec_check","action":"audit","pid":123,"tgid":123,"uid":0,"gid":0,"comm":"bash","path":"/usr/bin/nc.openbsd","dev":"259:1048575","ino":1234,"rule":7,"op":"exec"})");
    // The options the programs enforce on their own: memfd / deleted files, W^X.
    event.op = BW_OP_EXEC_ANONYMOUS;
    EXPECT_TRUE(format_event_text(event).ends_with(" rule=7 op=exec_anonymous"));
    event.op = BW_OP_WRITE_EXEC;
    EXPECT_TRUE(format_event_json(event).ends_with(R"("rule":7,"op":"write_exec"})"));
}

TEST(EventFormat, BpfCheckTextAndJson) {
    Event event = make_event(EventKind::BpfCheck, EventAction::Deny, "bpftool", "bpftool");
    event.pid = 78;
    event.tgid = 77;
    event.ino = 99;
    EXPECT_EQ(format_event_text(event),
              R"(bpf_check deny pid=78 tgid=77 uid=0 gid=0 comm="bpftool" cmd=prog_load exe="bpftool" dev=8:1 ino=99)");
    // rule_path does not apply to bpf kinds.
    EXPECT_EQ(format_event_text(event, "/ignored"), format_event_text(event));
    EXPECT_EQ(
        format_event_json(event),
        R"({"kind":"bpf_check","action":"deny","pid":78,"tgid":77,"uid":0,"gid":0,"comm":"bpftool","cmd":"prog_load","exe":"bpftool","dev":"8:1","ino":99})");
}

TEST(EventFormat, BpfCallTextAndJson) {
    Event event = make_event(EventKind::BpfCall, EventAction::None, "systemd", "systemd");
    event.bpf_cmd = 0;  // BPF_MAP_CREATE
    EXPECT_EQ(
        format_event_text(event),
        R"(bpf_call none pid=123 tgid=123 uid=0 gid=0 comm="systemd" cmd=map_create exe="systemd" dev=8:1 ino=1234)");
    EXPECT_EQ(
        format_event_json(event, "/ignored"),
        R"({"kind":"bpf_call","action":"none","pid":123,"tgid":123,"uid":0,"gid":0,"comm":"systemd","cmd":"map_create","exe":"systemd","dev":"8:1","ino":1234})");
    event.bpf_cmd = 99;  // newer than the table
    EXPECT_NE(format_event_text(event).find(" cmd=cmd_99 "), std::string::npos);
    EXPECT_NE(format_event_json(event).find(R"("cmd":"cmd_99")"), std::string::npos);
}

TEST(EventFormat, ExecTextAndJson) {
    Event event = make_event(EventKind::Exec, EventAction::None, "ls", "/usr/bin/ls");
    event.pid = 9;
    event.tgid = 9;
    event.uid = 1000;
    event.gid = 1000;
    event.dev = kernel_dev(259, 2);
    event.ino = 42;
    EXPECT_EQ(format_event_text(event, "/ignored"),
              R"(exec none pid=9 tgid=9 uid=1000 gid=1000 comm="ls" exe="/usr/bin/ls" dev=259:2 ino=42)");
    EXPECT_EQ(
        format_event_json(event),
        R"({"kind":"exec","action":"none","pid":9,"tgid":9,"uid":1000,"gid":1000,"comm":"ls","exe":"/usr/bin/ls","dev":"259:2","ino":42})");
}

TEST(EventFormat, FileChangeTextAndJson) {
    Event event = make_event(EventKind::FileChange, EventAction::Deny, "rm", "shadow");
    event.op = BW_OP_UNLINK;
    event.target_pid = 999;  // only a tamper names a target
    EXPECT_EQ(
        format_event_text(event, "/etc/shadow"),
        R"(file_change deny pid=123 tgid=123 uid=0 gid=0 comm="rm" path="/etc/shadow" dev=8:1 ino=1234 rule=3 op=unlink)");
    EXPECT_EQ(
        format_event_text(event),
        R"(file_change deny pid=123 tgid=123 uid=0 gid=0 comm="rm" path="shadow" dev=8:1 ino=1234 rule=3 op=unlink)");
    EXPECT_EQ(
        format_event_json(event, "/etc/shadow"),
        R"({"kind":"file_change","action":"deny","pid":123,"tgid":123,"uid":0,"gid":0,"comm":"rm","path":"/etc/shadow","dev":"8:1","ino":1234,"rule":3,"op":"unlink"})");

    for (uint32_t op : {BW_OP_TRUNCATE, BW_OP_RENAME_FROM, BW_OP_RENAME_ONTO, BW_OP_LINK, BW_OP_SETATTR, BW_OP_SETXATTR,
                        BW_OP_REMOVEXATTR, BW_OP_CREATE, BW_OP_RMDIR}) {
        event.op = op;
        EXPECT_TRUE(format_event_text(event).ends_with(" rule=3 op=" + op_name(op))) << format_event_text(event);
        auto members = parse_json(format_event_json(event));
        ASSERT_TRUE(members.has_value()) << format_event_json(event);
        EXPECT_EQ(json_member(*members, "op"), op_name(op));
        EXPECT_EQ(json_member(*members, "target"), std::nullopt);
    }
}

TEST(EventFormat, TamperBySignalNamesTargetAndSignal) {
    Event event = make_event(EventKind::Tamper, EventAction::Deny, "kill", "bpfwardend");
    event.op = BW_OP_SIGNAL;
    event.target_pid = 4321;
    event.bpf_cmd = 9;  // SIGKILL
    EXPECT_EQ(
        format_event_text(event),
        R"(tamper deny pid=123 tgid=123 uid=0 gid=0 comm="kill" path="bpfwardend" dev=8:1 ino=1234 rule=3 op=signal target=4321 signal=9)");
    EXPECT_EQ(
        format_event_json(event),
        R"({"kind":"tamper","action":"deny","pid":123,"tgid":123,"uid":0,"gid":0,"comm":"kill","path":"bpfwardend","dev":"8:1","ino":1234,"rule":3,"op":"signal","target":4321,"signal":9})");
    // Let through during a lift: reported, not denied.
    event.action = EventAction::Audit;
    EXPECT_TRUE(format_event_text(event).starts_with("tamper audit pid=123 "));
}

TEST(EventFormat, TamperFieldsThatDoNotApplyAreLeftOut) {
    Event event = make_event(EventKind::Tamper, EventAction::Deny, "bpftool", "bpfw_file_rules");
    event.op = BW_OP_MAP_WRITE_ACCESS;
    event.target_pid = 0;
    EXPECT_EQ(
        format_event_text(event),
        R"(tamper deny pid=123 tgid=123 uid=0 gid=0 comm="bpftool" path="bpfw_file_rules" dev=8:1 ino=1234 rule=3 op=map_write)");
    EXPECT_EQ(
        format_event_json(event),
        R"({"kind":"tamper","action":"deny","pid":123,"tgid":123,"uid":0,"gid":0,"comm":"bpftool","path":"bpfw_file_rules","dev":"8:1","ino":1234,"rule":3,"op":"map_write"})");

    // A process aimed at, but no signal.
    event.op = BW_OP_PTRACE;
    event.target_pid = 77;
    EXPECT_TRUE(format_event_text(event).ends_with(" rule=3 op=ptrace target=77")) << format_event_text(event);
    EXPECT_TRUE(format_event_json(event).ends_with(R"("rule":3,"op":"ptrace","target":77})"))
        << format_event_json(event);

    // A file of ours: the rule's path when the daemon knows it.
    event.op = BW_OP_UNLINK;
    event.target_pid = 0;
    EXPECT_NE(format_event_text(event, "/sys/fs/bpf/bpfwarden/maps/bpfw_file_rules")
                  .find(R"(path="/sys/fs/bpf/bpfwarden/maps/bpfw_file_rules")"),
              std::string::npos);
}

// The keys of a text line after "<kind> <action>", in order: every key=
// outside a quoted value.
std::vector<std::string> text_keys(std::string_view line) {
    std::vector<std::string> keys;
    bool quoted = false;
    std::size_t word = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (quoted) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ' ') {
            word = i + 1;
        } else if (c == '=') {
            keys.emplace_back(line.substr(word, i - word));
        }
    }
    return keys;
}

std::vector<std::string> json_keys(const JsonMembers& members) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : members)
        keys.push_back(key);
    return keys;
}

// "the same keys in the same order as the text format plus kind and action",
// for every kind and every op, and valid JSON every time.
TEST(EventFormat, JsonHasTheKeysOfTheTextLineInItsOrder) {
    for (uint32_t kind = BW_EVENT_FILE_OPEN; kind <= BW_EVENT_TAMPER; ++kind) {
        for (uint32_t op = 0; op <= BW_OP_MOUNT_OVER + 1; ++op) {
            Event event = make_event(static_cast<EventKind>(kind), EventAction::Deny, "c", "p");
            event.op = op;
            event.target_pid = 42;
            SCOPED_TRACE(std::string(event_kind_name(kind)) + " " + op_name(op));
            auto members = parse_json(format_event_json(event, "/rule/path"));
            ASSERT_TRUE(members.has_value()) << format_event_json(event, "/rule/path");
            std::vector<std::string> keys = json_keys(*members);
            ASSERT_GE(keys.size(), 2u);
            EXPECT_EQ(keys[0], "kind");
            EXPECT_EQ(keys[1], "action");
            keys.erase(keys.begin(), keys.begin() + 2);
            EXPECT_EQ(keys, text_keys(format_event_text(event, "/rule/path")));
        }
    }
}

// The header puts a tamper's cmd (a link detached or updated) right after
// comm, as for the bpf kinds, and JSON must carry the same keys as the text,
// so that a JSON consumer learns which bpf() command touched our link.
TEST(EventFormat, TamperOfALinkNamesTheCommandInTextAndJsonAlike) {
    Event event = make_event(EventKind::Tamper, EventAction::Deny, "bpftool", "bw_file_open");
    event.op = BW_OP_LINK_CHANGE;
    event.bpf_cmd = static_cast<uint32_t>(*bpf_command_from_name("link_detach"));
    std::string text = format_event_text(event);
    EXPECT_NE(text.find(R"(comm="bpftool" cmd=link_detach path=)"), std::string::npos) << text;
    auto members = parse_json(format_event_json(event));
    ASSERT_TRUE(members.has_value());
    EXPECT_EQ(json_member(*members, "cmd"), "link_detach");
    std::vector<std::string> keys = json_keys(*members);
    keys.erase(keys.begin(), keys.begin() + 2);
    EXPECT_EQ(keys, text_keys(text));
}

// A file beneath a subtree rule: the path names the rule, the name the file
// the kernel saw; a file at the ruled name itself shows no name.
TEST(EventFormat, NameTheKernelSawBesideTheRulePath) {
    Event event = make_event(EventKind::FileChange, EventAction::Audit, "touch", "new");
    event.op = BW_OP_CREATE;
    std::string text = format_event_text(event, "/srv/secret");
    EXPECT_NE(text.find(R"(path="/srv/secret" name="new" dev=)"), std::string::npos) << text;
    auto members = parse_json(format_event_json(event, "/srv/secret"));
    ASSERT_TRUE(members.has_value());
    EXPECT_EQ(json_member(*members, "name"), "new");
    std::vector<std::string> keys = json_keys(*members);
    keys.erase(keys.begin(), keys.begin() + 2);
    EXPECT_EQ(keys, text_keys(text));

    Event same = make_event(EventKind::FileOpen, EventAction::Deny, "cat", "shadow");
    EXPECT_EQ(format_event_text(same, "/etc/shadow").find(" name="), std::string::npos);
    EXPECT_EQ(format_event_text(same).find(" name="), std::string::npos) << "no rule path, no name";
}

TEST(EventFormat, ExtremeNumbers) {
    Event event = make_event(EventKind::FileOpen, EventAction::Deny, "x", "y");
    event.pid = event.tgid = event.uid = event.gid = event.rule_id = UINT32_MAX;
    event.dev = UINT64_MAX;
    event.ino = UINT64_MAX;
    EXPECT_EQ(
        format_event_text(event),
        R"(file_open deny pid=4294967295 tgid=4294967295 uid=4294967295 gid=4294967295 comm="x" path="y" dev=17592186044415:1048575 ino=18446744073709551615 rule=4294967295 op=none)");
    auto members = parse_json(format_event_json(event));
    ASSERT_TRUE(members.has_value());
    EXPECT_EQ(json_member(*members, "ino"), "18446744073709551615");
}

TEST(EventFormat, HostileStringsCannotForgeFields) {
    Event event =
        make_event(EventKind::FileOpen, EventAction::Audit, "x\" uid=0 \"", "a\nbpfwarden: file_open allow\xff\u2028");
    EXPECT_EQ(
        format_event_text(event),
        R"(file_open audit pid=123 tgid=123 uid=0 gid=0 comm="x\" uid=0 \"" path="a\nbpfwarden: file_open allow\xff\xe2\x80\xa8" dev=8:1 ino=1234 rule=3 op=none)");
    EXPECT_EQ(
        format_event_json(event),
        R"({"kind":"file_open","action":"audit","pid":123,"tgid":123,"uid":0,"gid":0,"comm":"x\" uid=0 \"","path":"a\u000abpfwarden: file_open allow\ufffd\u2028","dev":"8:1","ino":1234,"rule":3,"op":"none"})");
}

TEST(EventFormat, JsonStringsAreEscapedAndParse) {
    std::string comm = "q\"b\\s/\t\x01\x7f\u0085";
    std::string path = "caf\u00e9/\u65e5\U0001F600/\u202e";
    Event event = make_event(EventKind::Exec, EventAction::None, comm, path);
    std::string json = format_event_json(event);
    EXPECT_NE(json.find(R"("comm":"q\"b\\s/\u0009\u0001\u007f\u0085")"), std::string::npos) << json;
    EXPECT_NE(json.find("\"exe\":\"caf\u00e9/\u65e5\U0001F600/\\u202e\""), std::string::npos) << json;
    auto members = parse_json(json);
    ASSERT_TRUE(members.has_value()) << json;
    // Valid strings survive the round trip exactly.
    EXPECT_EQ(json_member(*members, "comm"), comm);
    EXPECT_EQ(json_member(*members, "exe"), path);
    std::vector<std::string> keys;
    for (const auto& [key, value] : *members)
        keys.push_back(key);
    EXPECT_EQ(keys,
              (std::vector<std::string>{"kind", "action", "pid", "tgid", "uid", "gid", "comm", "exe", "dev", "ino"}));
}

TEST(EventFormat, JsonReplacesEachInvalidByte) {
    Event event = make_event(EventKind::FileOpen, EventAction::Deny, "\xc0\xaf", "\xff\xe6\x97!");
    auto members = parse_json(format_event_json(event));
    ASSERT_TRUE(members.has_value());
    EXPECT_EQ(json_member(*members, "comm"), "\ufffd\ufffd");
    EXPECT_EQ(json_member(*members, "path"), "\ufffd\ufffd\ufffd!");
}

TEST(EventFormat, KernelFieldsAreNeverCutButLongRulePathsAre) {
    Event event = make_event(EventKind::FileOpen, EventAction::Deny, std::string(15, '\x01'), std::string(255, '\xff'));
    std::string text = format_event_text(event);
    EXPECT_EQ(text.find("..."), std::string::npos);
    EXPECT_EQ(unsanitize(sanitize_field(event.path, 1024)), event.path);
    std::string json = format_event_json(event);
    EXPECT_EQ(json.find("..."), std::string::npos);
    EXPECT_TRUE(parse_json(json).has_value());

    std::string rule_path = "/" + std::string(4000, 'd');
    text = format_event_text(event, rule_path);
    auto start = text.find("path=\"") + 6;
    auto end = text.find('"', start);
    EXPECT_EQ(end - start, 1024u);
    EXPECT_EQ(text.substr(end - 3, 3), "...");
    json = format_event_json(event, rule_path);
    auto members = parse_json(json);
    ASSERT_TRUE(members.has_value());
    EXPECT_TRUE(json_member(*members, "path")->ends_with("..."));
}

// --- Random records: decode and format must never crash or leak raw bytes ---

TEST(EventFuzz, RandomRecordsDecodeAndFormatSafely) {
    std::mt19937_64 rng(20240601);
    std::uniform_int_distribution<int> byte_dist(0, 255);
    int decoded = 0;
    for (int iteration = 0; iteration < 10000; ++iteration) {
        size_t size = sizeof(bw_event);
        if (iteration % 10 == 0)
            size = rng() % (2 * sizeof(bw_event) + 1);
        std::vector<std::byte> record(size);
        for (auto& b : record)
            b = static_cast<std::byte>(byte_dist(rng));
        if (size == sizeof(bw_event) && rng() % 4 != 0) {
            // Mostly valid headers so that the formatters see most records.
            bw_event raw;
            std::memcpy(&raw, record.data(), sizeof(raw));
            raw.kind = 1 + rng() % 7;
            if (rng() % 2)
                raw.op = rng() % 40;
            raw.action = rng() % 3;
            if (rng() % 2)
                raw.comm[rng() % BW_COMM_LEN] = '\0';
            if (rng() % 2)
                raw.path[rng() % BW_PATH_LEN] = '\0';
            std::memcpy(record.data(), &raw, sizeof(raw));
        }
        auto event = decode_event(record);
        if (size != sizeof(bw_event)) {
            ASSERT_FALSE(event.has_value());
            continue;
        }
        if (!event)
            continue;
        ++decoded;
        ASSERT_LE(event->comm.size(), size_t{BW_COMM_LEN});
        ASSERT_LE(event->path.size(), size_t{BW_PATH_LEN});

        std::string rule_path;
        if (rng() % 3 == 0) {
            rule_path.resize(rng() % 2048);
            for (char& c : rule_path)
                c = static_cast<char>(byte_dist(rng));
        }
        std::string text = format_event_text(*event, rule_path);
        ASSERT_FALSE(has_control_bytes(text)) << text;
        ASSERT_TRUE(is_valid_utf8(text));
        std::string json = format_event_json(*event, rule_path);
        auto members = parse_json(json);
        ASSERT_TRUE(members.has_value()) << json;
        ASSERT_EQ(json_member(*members, "kind"), std::string(event_kind_name(event->kind)));

        size_t max = rng() % 300;
        std::string sanitized = sanitize_field(event->path, max);
        ASSERT_LE(sanitized.size(), max);
        ASSERT_FALSE(has_control_bytes(sanitized));
        if (sanitized == sanitize_field(event->path, SIZE_MAX))
            ASSERT_EQ(unsanitize(sanitized), event->path);
        else
            ASSERT_TRUE(sanitized.ends_with(std::string(std::min<size_t>(max, 3), '.')));
    }
    EXPECT_GT(decoded, 5000);
}

// --- wall time and journal fields ---

TEST(EventFormat, WallTimeIsTheLastFieldInTextAndJson) {
    Event event = make_event(EventKind::FileOpen, EventAction::Deny, "cat", "shadow");
    event.op = BW_OP_OPEN;
    event.wall_time_usec = 1796305200123456;  // 2026-12-03T13:40:00.123456Z
    EXPECT_TRUE(format_event_text(event, "/etc/shadow").ends_with(" op=open time=2026-12-03T13:40:00.123456Z"));
    EXPECT_TRUE(
        format_event_json(event, "/etc/shadow").ends_with(R"("op":"open","time":"2026-12-03T13:40:00.123456Z"})"));
    event.wall_time_usec = 0;
    EXPECT_EQ(format_event_text(event).find("time="), std::string::npos);
}

TEST(EventFormat, Rfc3339KeepsLeadingZerosOfTheFraction) {
    EXPECT_EQ(format_rfc3339_usec(0), "1970-01-01T00:00:00.000000Z");
    EXPECT_EQ(format_rfc3339_usec(1000001), "1970-01-01T00:00:01.000001Z");
}

TEST(EventFormat, MonotonicTimeBecomesWallTimeWithTheClocksOffset) {
    timespec mono{}, real{};
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    uint64_t mono_ns = static_cast<uint64_t>(mono.tv_sec) * 1000000000 + static_cast<uint64_t>(mono.tv_nsec);
    int64_t real_usec = static_cast<int64_t>(real.tv_sec) * 1000000 + real.tv_nsec / 1000;
    // An event ten seconds old is ten seconds before now, within scheduling noise.
    int64_t converted = static_cast<int64_t>(monotonic_to_wall_usec(mono_ns - 10000000000ULL));
    EXPECT_NEAR(static_cast<double>(real_usec - converted), 10e6, 0.5e6);
}

TEST(EventFormat, JournalFieldsCarryEveryFieldUnquoted) {
    Event event = make_event(EventKind::FileOpen, EventAction::Deny, "c\"at", "shadow");
    event.op = BW_OP_OPEN;
    event.wall_time_usec = 1796305200123456;
    std::map<std::string, std::string> fields;
    for (const auto& [name, value] : event_journal_fields(event, "/etc/shadow"))
        EXPECT_TRUE(fields.emplace(name, value).second) << "field twice: " << name;
    EXPECT_EQ(fields["BPFWARDEN_EVENT"], "file_open");
    EXPECT_EQ(fields["BPFWARDEN_ACTION"], "deny");
    EXPECT_EQ(fields["BPFWARDEN_PID"], "123");
    EXPECT_EQ(fields["BPFWARDEN_UID"], "0");
    EXPECT_EQ(fields["BPFWARDEN_COMM"], "c\\\"at");  // the text format's escaping, without its quotes
    EXPECT_EQ(fields["BPFWARDEN_PATH"], "/etc/shadow");
    EXPECT_EQ(fields["BPFWARDEN_RULE_PATH"], "/etc/shadow");
    EXPECT_EQ(fields["BPFWARDEN_RULE"], "3");
    EXPECT_EQ(fields["BPFWARDEN_OP"], "open");
    EXPECT_EQ(fields["BPFWARDEN_DEV"], "8:1");
    EXPECT_EQ(fields["BPFWARDEN_INO"], "1234");
    EXPECT_EQ(fields["BPFWARDEN_TIME"], "2026-12-03T13:40:00.123456Z");
}

TEST(EventFormat, JournalFieldsOfABpfCallNameTheCommandAndExe) {
    Event event = make_event(EventKind::BpfCall, EventAction::None, "bpftool", "bpftool");
    event.bpf_cmd = 5;  // prog_load
    std::map<std::string, std::string> fields;
    for (const auto& [name, value] : event_journal_fields(event))
        fields.emplace(name, value);
    EXPECT_EQ(fields["BPFWARDEN_EVENT"], "bpf_call");
    EXPECT_EQ(fields["BPFWARDEN_CMD"], "prog_load");
    EXPECT_EQ(fields["BPFWARDEN_EXE"], "bpftool");
    EXPECT_EQ(fields.count("BPFWARDEN_RULE"), 0u);
    EXPECT_EQ(fields.count("BPFWARDEN_PATH"), 0u);
}

}  // namespace
}  // namespace bpfwarden
