// Shared by the signed line formats (manifest.cpp, policy_bundle.cpp).
#include "trust/signed_text.h"

#include <array>
#include <cstdio>
#include <limits>

namespace bpfwarden::signed_text {

// Untrusted text inside a message: anything but printable ASCII is escaped,
// and at most kMaxQuotedLength characters are shown, so a hostile
// manifest can neither forge log lines nor flood them.
std::string quote(std::string_view text) {
    std::string out = "'";
    size_t shown = 0;
    for (const char ch : text) {
        if (shown == kMaxQuotedLength) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            out += ch;
        } else {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned>(c));
            out += escaped;
        }
        ++shown;
    }
    out += "'";
    return out;
}

std::string describe_char(char ch) {
    const auto c = static_cast<unsigned char>(ch);
    if (c > 0x20 && c < 0x7f && c != '\'') {
        return std::string("'") + ch + "'";
    }
    char hex[16];
    std::snprintf(hex, sizeof hex, "byte 0x%02x", static_cast<unsigned>(c));
    return hex;
}

// ---------------------------------------------------------------- numbers

// Canonical decimal only: digits, no sign, no leading zero (except "0").
Decimal parse_decimal(std::string_view text) {
    if (text.empty())
        return {0, DecimalError::not_decimal};
    for (const char c : text) {
        if (c < '0' || c > '9')
            return {0, DecimalError::not_decimal};
    }
    if (text.size() > 1 && text.front() == '0')
        return {0, DecimalError::leading_zero};
    uint64_t value = 0;
    for (const char c : text) {
        const auto digit = static_cast<uint64_t>(c - '0');
        if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10)
            return {0, DecimalError::too_large};
        value = value * 10 + digit;
    }
    return {value, DecimalError::none};
}

// `what` is the subject of the sentence: "version", "size of image 'x'".
// `max` bounds the text of a number too large for uint64_t.
Problem decimal_syntax_problem(const std::string& what, std::string_view text, const Decimal& number, uint64_t max) {
    switch (number.error) {
    case DecimalError::none: return std::nullopt;
    case DecimalError::not_decimal: return what + " " + quote(text) + " is not a decimal number";
    case DecimalError::leading_zero: return what + " " + quote(text) + " has a leading zero";
    case DecimalError::too_large: return what + " " + quote(text) + " is larger than " + std::to_string(max);
    }
    return what + " " + quote(text) + " is not a decimal number";
}

Problem version_problem(uint64_t version) {
    if (version == 0)
        return "version 0 is not allowed: versions start at 1";
    if (version > kMaxSignedVersion)
        return "version " + std::to_string(version) + " is larger than " + std::to_string(kMaxSignedVersion);
    return std::nullopt;
}

Problem sha256_problem(const std::string& subject, std::string_view hex) {
    const std::string rule = "sha256 of " + subject + " must be 64 lower-case hex digits";
    if (hex.size() != 64)
        return rule + " (it has " + std::to_string(hex.size()) + ")";
    for (const char c : hex) {
        if (c >= 'A' && c <= 'F')
            return rule + " (upper-case " + describe_char(c) + " is not accepted)";
        bool lower_hex_digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        if (!lower_hex_digit)
            return rule + " (found " + describe_char(c) + ")";
    }
    return std::nullopt;
}

namespace {

bool is_leap_year(unsigned year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

unsigned days_in_month(unsigned year, unsigned month) {
    static constexpr std::array<unsigned, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && is_leap_year(year))
        return 29;
    return kDays[month - 1];
}

}  // namespace

// Exactly "YYYY-MM-DDTHH:MM:SSZ": RFC 3339 restricted to UTC, whole seconds,
// upper-case 'T' and 'Z', years 1970..9999, no leap second.
Problem created_problem(std::string_view time) {
    static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:ddZ";
    bool shaped = time.size() == kShape.size();
    for (size_t i = 0; shaped && i < kShape.size(); ++i) {
        shaped = kShape[i] == 'd' ? (time[i] >= '0' && time[i] <= '9') : time[i] == kShape[i];
    }
    if (!shaped)
        return "created time " + quote(time) + " is not of the form YYYY-MM-DDTHH:MM:SSZ (RFC 3339, UTC)";

    const auto number = [&](size_t offset, size_t digits) {
        unsigned value = 0;
        for (size_t i = offset; i < offset + digits; ++i)
            value = value * 10 + static_cast<unsigned>(time[i] - '0');
        return value;
    };
    const unsigned year = number(0, 4), month = number(5, 2), day = number(8, 2);
    const unsigned hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
    const std::string subject = "created time " + quote(time);
    if (year < 1970)
        return subject + " is before 1970";
    if (month < 1 || month > 12)
        return subject + " has month " + std::to_string(month) + "; months are 01 to 12";
    const unsigned month_days = days_in_month(year, month);
    if (day < 1 || day > month_days)
        return subject + " has day " + std::to_string(day) + ", but " + std::string(time.substr(0, 7)) + " has " +
               std::to_string(month_days) + " days";
    if (hour > 23)
        return subject + " has hour " + std::to_string(hour) + "; hours are 00 to 23";
    if (minute > 59)
        return subject + " has minute " + std::to_string(minute) + "; minutes are 00 to 59";
    if (second > 59)
        return subject + " has second " + std::to_string(second) + "; seconds are 00 to 59 (no leap seconds)";
    return std::nullopt;
}

// Byte- and space-level rules for one line (without its '\n').
Problem line_problem(std::string_view line, const std::string& document) {
    if (line.empty())
        return std::string("blank line");
    for (size_t i = 0; i < line.size(); ++i) {
        const auto c = static_cast<unsigned char>(line[i]);
        const std::string column = " at column " + std::to_string(i + 1);
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(c));
        if (c == 0)
            return "NUL byte" + column + ": " + document + " is text";
        if (c == '\r')
            return "carriage return" + column + ": lines end with \\n alone (CRLF is not accepted)";
        if (c == '\t')
            return "tab" + column + ": fields are separated by a single space";
        if (c < 0x20 || c == 0x7f)
            return "control character " + std::string(hex) + column;
        if (c >= 0x80)
            return "non-ASCII byte " + std::string(hex) + column + ": " + document + " is ASCII text";
    }
    if (line.front() == ' ')
        return std::string("leading space");
    if (line.back() == ' ')
        return "trailing space at column " + std::to_string(line.size());
    if (const size_t twice = line.find("  "); twice != std::string_view::npos)
        return "two spaces at column " + std::to_string(twice + 1) + ": fields are separated by a single space";
    return std::nullopt;
}

}  // namespace bpfwarden::signed_text
