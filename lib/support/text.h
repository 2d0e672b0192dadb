// Text for people and for scripts, in one place: joining lists, hex,
// quoting untrusted bytes for log lines, JSON and error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bpfwarden {

// "a, b, c" with `separator` between items.
std::string join(const std::vector<std::string>& items, std::string_view separator);

// Lower-case hex, two digits per byte.
std::string hex_encode(std::span<const uint8_t> bytes);

// Single-quoted for messages, with control characters, quote and backslash
// written as \xNN so that a path cannot forge a log line.
std::string quote_for_message(std::string_view text);

// Makes arbitrary bytes safe inside a double-quoted field of a log line (and
// valid UTF-8 for the journal), reversibly:
//   - printable ASCII passes, except '"' -> \" and '\' -> \\;
//   - \n, \t, \r are written so; every other C0 control and DEL -> \xNN;
//   - valid UTF-8 passes, except C1 controls (U+0080..U+009F), the line and
//     paragraph separators (U+2028, U+2029) and the bidi controls (U+061C,
//     U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), whose bytes are written
//     as \xNN: they could make one log line look like two, or reorder what a
//     reader sees;
//   - each byte that is not part of valid UTF-8 (overlong forms, surrogates,
//     > U+10FFFF, stray or truncated sequences) -> \xNN.
// NN is two lower-case hex digits. The result is at most max_bytes long: when
// the whole escaped input does not fit, it is cut at a character boundary
// (never inside an escape or a UTF-8 sequence) and "..." is appended, the
// three dots counted in max_bytes. (With max_bytes < 3 such a result is just
// max_bytes dots.) Note that an input which itself ends in "..." looks the
// same as a cut one. Never throws except std::bad_alloc.
std::string sanitize_field(std::string_view raw, size_t max_bytes = 256);

// A JSON string literal (quotes included) for arbitrary bytes, escaped as
// described above for the JSON format and bounded like sanitize_field().
std::string json_quote(std::string_view raw, size_t max_bytes = 4096);

}  // namespace bpfwarden
