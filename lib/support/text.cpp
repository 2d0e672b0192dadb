#include "support/text.h"

#include <cstdio>

namespace bpfwarden {
namespace {

constexpr std::string_view kEllipsis = "...";
constexpr char kHex[] = "0123456789abcdef";

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
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F || cp == 0x2028 ||
           cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
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

}  // namespace

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

std::string json_quote(std::string_view raw, size_t max_bytes) { return '"' + json_string_body(raw, max_bytes) + '"'; }

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i)
            out += separator;
        out += items[i];
    }
    return out;
}

std::string hex_encode(std::span<const uint8_t> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (uint8_t byte : bytes) {
        out += kHex[byte >> 4];
        out += kHex[byte & 0xf];
    }
    return out;
}

std::string quote_for_message(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f || c == '\\' || c == '\'') {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\x%02x", byte);
            out += buf;
        } else {
            out += c;
        }
    }
    out += '\'';
    return out;
}

}  // namespace bpfwarden
