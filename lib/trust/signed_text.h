// The strict line formats bpfwarden signs (the image-set manifest, the
// policy bundle) share one set of rules for their text and fields, so both
// refuse the same things with the same words: printable ASCII lines of
// single-space separated fields, canonical decimals, lower-case SHA-256,
// RFC 3339 UTC times. Every check returns what is wrong, worded for a
// person, or nullopt; the parsers prefix "<file>:<line>: ".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bpfwarden::signed_text {

// What is wrong with one field; nullopt when nothing is.
using Problem = std::optional<std::string>;

// Anti-rollback versions fit a signed 64-bit integer (D-Bus 'x', JSON, SQL).
inline constexpr uint64_t kMaxSignedVersion = 9223372036854775807ULL;
// At most this many characters of untrusted text are quoted in a message.
inline constexpr size_t kMaxQuotedLength = 64;

// Untrusted text in single quotes, non-printable bytes escaped, cut at
// kMaxQuotedLength: a hostile file can neither forge log lines nor flood them.
std::string quote(std::string_view text);
// "'x'" for a printable character, "byte 0x09" otherwise.
std::string describe_char(char ch);

enum class DecimalError { none, not_decimal, leading_zero, too_large };

struct Decimal {
    uint64_t value = 0;
    DecimalError error = DecimalError::none;
};

// Canonical decimal only: digits, no sign, no leading zero (except "0").
Decimal parse_decimal(std::string_view text);
// `what` is the subject of the sentence: "version", "size of image 'x'";
// `max` is quoted for a number too large for uint64_t.
Problem decimal_syntax_problem(const std::string& what, std::string_view text, const Decimal& number, uint64_t max);
// 1..kMaxSignedVersion.
Problem version_problem(uint64_t version);
// `subject` names what is hashed: "image 'x'" -> "sha256 of image 'x' must be ...".
Problem sha256_problem(const std::string& subject, std::string_view hex);
// Exactly "YYYY-MM-DDTHH:MM:SSZ", a real date in 1970..9999.
Problem created_problem(std::string_view time);
// Byte- and space-level rules for one line (without its '\n'); `document`
// names the format in messages ("a manifest").
Problem line_problem(std::string_view line, const std::string& document);

// Splits on single spaces (line_problem() has excluded empty fields). Only
// the first kMaxFields are kept; `count` tells that there were more.
struct Fields {
    static constexpr size_t kMaxFields = 4;
    std::array<std::string_view, kMaxFields> field{};
    size_t count = 0;  // kMaxFields + 1 means "more than kMaxFields"

    explicit Fields(std::string_view line) {
        size_t start = 0;
        while (count <= kMaxFields) {
            const size_t space = line.find(' ', start);
            if (count < kMaxFields)
                field[count] = line.substr(start, space == std::string_view::npos ? space : space - start);
            ++count;
            if (space == std::string_view::npos)
                break;
            start = space + 1;
        }
    }
};

// The first problem of a text: the line it is on (1-based) and what is wrong.
struct LineProblem {
    size_t line = 0;
    std::string reason;
};

// Walks `text` line by line, as both formats are read: each line must pass
// line_problem() and end with '\n', then `parse(line_number, fields)` judges
// it. Stops at the first problem; nullopt when every line passed.
template <typename ParseLine>
std::optional<LineProblem> walk_lines(std::string_view text, const std::string& document, ParseLine&& parse) {
    size_t position = 0, line_number = 0;
    while (position < text.size()) {
        ++line_number;
        const size_t newline = text.find('\n', position);
        const bool terminated = newline != std::string_view::npos;
        const std::string_view line = text.substr(position, terminated ? newline - position : std::string_view::npos);
        position = terminated ? newline + 1 : text.size();
        if (Problem problem = line_problem(line, document))
            return LineProblem{line_number, *problem};
        if (!terminated)
            return LineProblem{line_number, "missing newline at the end of the file"};
        if (Problem problem = parse(line_number, Fields(line)))
            return LineProblem{line_number, *problem};
    }
    return std::nullopt;
}

}  // namespace bpfwarden::signed_text
