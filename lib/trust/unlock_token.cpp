#include "trust/unlock_token.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <optional>
#include <span>

#include "support/atomic_file.h"
#include "support/file_io.h"
#include "support/text.h"
#include "support/unique_fd.h"
#include "trust/manifest.h"
#include "trust/signature.h"

namespace bpfwarden {
namespace {

constexpr std::string_view kMagic = "bpfwarden-unlock-token";
constexpr std::string_view kFormatVersion = "1";
constexpr size_t kNonceBytes = 16;
constexpr size_t kLineCount = 5;
// Times are capped at the last second format_rfc3339_utc() can show
// (9999-12-31T23:59:59Z): every time in a message is then the real one, and
// the arithmetic below stays far from overflow.
constexpr uint64_t kLastSecond = 253402300799;

// Each line's field name and the shape of its value, in order.
constexpr std::array<std::string_view, kLineCount> kFields = {kMagic, "nonce", "issued", "expires", "signature"};
constexpr std::array<std::string_view, kLineCount> kValueShapes = {"1", "<32 lower-case hex digits>", "<unix seconds>",
                                                                   "<unix seconds>", "<base64 signature>"};

std::unexpected<Error> invalid(const std::string& reason) { return fail(EINVAL, "unlock token: " + reason); }

// Untrusted text in a message: escaped, and cut so that one bad line does
// not drown the reason.
std::string shown(std::string_view text) {
    constexpr size_t kMaxShown = 48;
    return text.size() <= kMaxShown ? quote_for_message(text) : quote_for_message(text.substr(0, kMaxShown)) + "...";
}

std::span<const unsigned char> as_bytes(std::string_view text) {
    return {reinterpret_cast<const unsigned char*>(text.data()), text.size()};
}

std::string utc(uint64_t unix_seconds) { return format_rfc3339_utc(static_cast<std::time_t>(unix_seconds)); }

int64_t unix_seconds(std::chrono::system_clock::time_point at) {
    return std::chrono::floor<std::chrono::seconds>(at.time_since_epoch()).count();
}

bool is_nonce(std::string_view text) {
    return text.size() == 2 * kNonceBytes && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// Plain decimal seconds, written the one way we write them (no sign, no
// leading zero), so that every token has exactly one text.
std::optional<uint64_t> parse_seconds(std::string_view text) {
    uint64_t value = 0;
    const bool digits =
        !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || (text.size() > 1 && text.front() == '0'))
        return std::nullopt;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > kLastSecond)
        return std::nullopt;
    return value;
}

std::string base64_encode(std::span<const unsigned char> bytes) {
    std::string text(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
    const int length =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()), bytes.data(), static_cast<int>(bytes.size()));
    text.resize(static_cast<size_t>(std::max(length, 0)));
    return text;
}

// Strict base64: EVP_DecodeBlock alone skips whitespace and ignores the
// unused bits of the last character, so several texts would mean one
// signature. Only the text base64_encode() writes is accepted.
std::optional<std::vector<unsigned char>> base64_decode(std::string_view text) {
    const bool alphabet = std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
               c == '=';
    });
    if (text.empty() || text.size() % 4 != 0 || !alphabet)
        return std::nullopt;
    std::vector<unsigned char> bytes(text.size() / 4 * 3);
    const int length = EVP_DecodeBlock(bytes.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                       static_cast<int>(text.size()));
    const int padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
    if (length < padding)
        return std::nullopt;
    bytes.resize(static_cast<size_t>(length - padding));
    if (base64_encode(bytes) != text)
        return std::nullopt;
    return bytes;
}

// The lines of `text` without their '\n' (the last may lack one): the
// five of a token and, if anything follows, the start of what does.
std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty() && lines.size() <= kLineCount) {
        const size_t end = text.find('\n');
        lines.push_back(text.substr(0, end));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    }
    return lines;
}

// Line `index` (0-based; messages count from 1) holds printable ASCII only.
Result<void> check_line_bytes(std::string_view line, size_t index) {
    const std::string where = "line " + std::to_string(index + 1);
    if (line.empty())
        return invalid(where + " is empty");
    for (char c : line)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            return invalid(where + " holds a control or non-ASCII byte: " + shown(line));
    return {};
}

// The value of line `index`, which must read "<field> <value>".
Result<std::string_view> field_value(std::string_view line, size_t index) {
    const std::string_view field = kFields.at(index);
    if (!line.starts_with(field) || line.size() <= field.size() + 1 || line[field.size()] != ' ')
        return invalid("line " + std::to_string(index + 1) + ": expected '" + std::string(field) + " " +
                       std::string(kValueShapes.at(index)) + "', got " + shown(line));
    return line.substr(field.size() + 1);
}

Result<void> check_header(std::string_view line) {
    auto version = field_value(line, 0);
    if (!version)
        return invalid("not an unlock token: the first line must be 'bpfwarden-unlock-token 1', not " + shown(line));
    if (*version != kFormatVersion)
        return invalid("format version " + shown(*version) + " is not supported (this bpfwarden reads version 1)");
    return {};
}

// Five lines of printable ASCII, the first the header, nothing after them.
// Line endings and the header come first: they tell a token saved with CRLF
// and a file that is no token at all from a damaged token.
Result<void> check_lines(const std::vector<std::string_view>& lines) {
    if (lines.empty())
        return invalid("the text is empty");
    for (size_t i = 0; i < std::min(lines.size(), kLineCount); ++i)
        if (lines[i].ends_with('\r'))
            return invalid("line " + std::to_string(i + 1) +
                           " ends in a carriage return (CRLF line endings): keep the token's Unix line endings");
    if (auto header = check_header(lines[0]); !header)
        return header;
    for (size_t i = 1; i < std::min(lines.size(), kLineCount); ++i)
        if (auto ok = check_line_bytes(lines[i], i); !ok)
            return ok;
    if (lines.size() > kLineCount)
        return invalid("unexpected text after the signature line (line " + std::to_string(kLineCount + 1) + ": " +
                       shown(lines[kLineCount]) + ")");
    if (lines.size() < kLineCount)
        return invalid("only " + std::to_string(lines.size()) + " of its " + std::to_string(kLineCount) +
                       " lines (bpfwarden-unlock-token 1, nonce, issued, expires, signature) are there");
    return {};
}

Result<uint64_t> seconds_field(std::string_view line, size_t index) {
    auto value = field_value(line, index);
    if (!value)
        return std::unexpected(value.error());
    auto seconds = parse_seconds(*value);
    if (!seconds)
        return invalid(std::string(kFields.at(index)) + " " + shown(*value) +
                       " is not a whole number of Unix seconds (0.." + std::to_string(kLastSecond) +
                       ", no sign or leading zero)");
    return *seconds;
}

Result<void> check_lifetime(uint64_t issued, uint64_t expires) {
    if (expires <= issued)
        return invalid("expires (" + std::to_string(expires) + ") is not after issued (" + std::to_string(issued) +
                       ")");
    const uint64_t max = static_cast<uint64_t>(kMaxUnlockLifetime.count());
    if (expires - issued > max)
        return invalid("lifetime of " + std::to_string(expires - issued) + " s is longer than the " +
                       std::to_string(max) + " s (24 h) a token may unlock for");
    return {};
}

}  // namespace

Result<ParsedUnlockToken> parse_unlock_token(std::string_view text) {
    if (text.size() > kMaxUnlockTokenBytes)
        return invalid("the text is " + std::to_string(text.size()) + " bytes, more than the " +
                       std::to_string(kMaxUnlockTokenBytes) + " any token is");
    const std::vector<std::string_view> lines = split_lines(text);
    if (auto shape = check_lines(lines); !shape)
        return std::unexpected(shape.error());
    ParsedUnlockToken token;
    auto nonce = field_value(lines[1], 1);
    if (!nonce)
        return std::unexpected(nonce.error());
    if (!is_nonce(*nonce))
        return invalid("nonce " + shown(*nonce) + " is not 32 lower-case hex digits");
    token.nonce = *nonce;
    auto issued = seconds_field(lines[2], 2);
    auto expires = seconds_field(lines[3], 3);
    if (!issued || !expires)
        return std::unexpected(!issued ? issued.error() : expires.error());
    if (auto lifetime = check_lifetime(*issued, *expires); !lifetime)
        return std::unexpected(lifetime.error());
    token.issued = *issued;
    token.expires = *expires;
    auto encoded = field_value(lines[4], 4);
    if (!encoded)
        return std::unexpected(encoded.error());
    auto signature = base64_decode(*encoded);
    if (!signature)
        return invalid("the signature is not base64 (as 'bpfwardenctl unlock' writes it): " + shown(*encoded));
    token.signature = std::move(*signature);
    // The lines are contiguous in `text`: the signed part ends where line 5 starts.
    token.signed_text = std::string(text.substr(0, static_cast<size_t>(lines[4].data() - text.data())));
    return token;
}

Result<std::string> make_unlock_token(const std::filesystem::path& private_key, std::chrono::seconds lifetime,
                                      std::chrono::system_clock::time_point now) {
    if (lifetime < kMinUnlockLifetime || lifetime > kMaxUnlockLifetime)
        return invalid("a lifetime of " + std::to_string(lifetime.count()) + " s is out of range (1 s.." +
                       std::to_string(kMaxUnlockLifetime.count()) + " s, i.e. 24 h)");
    const int64_t issued = unix_seconds(now);
    if (issued < 0 || static_cast<uint64_t>(issued) > kLastSecond - static_cast<uint64_t>(lifetime.count()))
        return invalid("this machine's clock (" + std::to_string(issued) +
                       " s) is outside the range a token can carry");
    std::array<unsigned char, kNonceBytes> nonce{};
    if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1)
        return fail(EIO, "unlock token: no random bytes for the nonce (" + take_openssl_error() + ")");
    const std::string signed_text = std::string(kMagic) + " " + std::string(kFormatVersion) + "\nnonce " +
                                    hex_encode(nonce) + "\nissued " + std::to_string(issued) + "\nexpires " +
                                    std::to_string(issued + lifetime.count()) + "\n";
    auto signature = sign_file_bytes(private_key, as_bytes(signed_text));
    if (!signature)
        return std::unexpected(signature.error().wrap("unlock token"));
    return signed_text + "signature " + base64_encode(*signature) + "\n";
}

Result<UnlockToken> verify_unlock_token(std::string_view text, const TrustedKeys& keys,
                                        std::chrono::system_clock::time_point now) {
    auto parsed = parse_unlock_token(text);
    if (!parsed)
        return std::unexpected(parsed.error());
    // The signature first: until it verifies, the times are anyone's words.
    auto signer = keys.verify(as_bytes(parsed->signed_text), parsed->signature);
    if (!signer)
        return std::unexpected(signer.error().wrap("unlock token"));
    const int64_t at = unix_seconds(now);
    if (at >= static_cast<int64_t>(parsed->expires))
        return fail(ErrorKind::Integrity, EKEYEXPIRED,
                    "unlock token expired at " + utc(parsed->expires) + " (it is " + utc(at) + " now)");
    if (static_cast<int64_t>(parsed->issued) > at + kMaxUnlockClockSkew.count())
        return fail(ErrorKind::Integrity, EKEYREJECTED,
                    "unlock token was issued at " + utc(parsed->issued) + ", more than 5 minutes after this host's " +
                        "clock (" + utc(at) + "): check the clocks of the signing machine and of this host");
    return UnlockToken{std::move(parsed->nonce), parsed->issued, parsed->expires, (*signer)->name};
}

// ---------------------------------------------------------------- UsedNonces

namespace {

using NonceMap = std::map<std::string, uint64_t, std::less<>>;

// "<nonce> <expires>\n" lines. `where` names the file in errors.
Result<NonceMap> parse_nonce_lines(std::string_view text, const std::string& where) {
    NonceMap entries;
    for (size_t number = 1; !text.empty(); ++number) {
        const size_t end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        const size_t space = line.find(' ');
        const std::string_view nonce = line.substr(0, space);
        const auto expires = space == std::string_view::npos ? std::nullopt : parse_seconds(line.substr(space + 1));
        if (end == std::string_view::npos || !is_nonce(nonce) || !expires)
            return fail(EINVAL, where + ":" + std::to_string(number) + ": expected '<nonce> <expires>'" +
                                    (end == std::string_view::npos ? " ending in a newline" : "") + ", got " +
                                    shown(line) + ": the file is corrupt; repair it (removing it lets used tokens " +
                                    "that have not expired unlock again)");
        uint64_t& kept = entries[std::string(nonce)];
        kept = std::max(kept, *expires);
        text.remove_prefix(end + 1);
    }
    return entries;
}

std::string serialize(const NonceMap& entries) {
    std::string text;
    for (const auto& [nonce, expires] : entries)
        text += nonce + " " + std::to_string(expires) + "\n";
    return text;
}

// The file's text; "" when it does not exist. Only a regular file that we
// own and nobody else may write is read: whoever can rewrite it can let a
// used token unlock again.
Result<std::string> read_nonce_file(const std::filesystem::path& path, const std::string& where) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    if (!fd && errno == ENOENT)
        return std::string();
    if (!fd && errno == ELOOP)
        return fail(ELOOP, where + " is a symbolic link, which is never followed: replace it with a regular file");
    if (!fd)
        return fail_errno("open " + where);
    struct stat st{};
    if (fstat(fd.get(), &st) != 0)
        return fail_errno("stat " + where);
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, where + " is not a regular file");
    if (st.st_uid != geteuid())
        return fail(EPERM, where + " is owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
                               std::to_string(geteuid()) + " (bpfwarden's)");
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return fail(EPERM, where + " is group- or world-writable: run 'chmod 0600 " + path.string() + "'");
    if (static_cast<uintmax_t>(st.st_size) > UsedNonces::kMaxFileBytes)
        return fail(EFBIG, where + " is larger than " + std::to_string(UsedNonces::kMaxFileBytes) +
                               " bytes, which bpfwarden never writes");
    std::string text(static_cast<size_t>(st.st_size), '\0');
    if (auto filled = read_exactly(fd.get(), std::span<char>(text), where); !filled)
        return std::unexpected(filled.error());
    return text;
}

std::string file_where(const std::filesystem::path& path) { return "used unlock nonces '" + path.string() + "'"; }

}  // namespace

Result<UsedNonces> UsedNonces::open(const std::filesystem::path& state_dir) {
    struct stat st{};
    if (::stat(state_dir.c_str(), &st) != 0) {
        if (errno != ENOENT)
            return fail_errno("stat state directory '" + state_dir.string() + "'");
        // A mistyped directory must not quietly forget every used token.
        return fail(ENOENT, "state directory '" + state_dir.string() +
                                "' does not exist, so used unlock tokens cannot be remembered: create it");
    }
    if (!S_ISDIR(st.st_mode))
        return fail(ENOTDIR, "state directory '" + state_dir.string() + "' is not a directory");
    UsedNonces nonces(state_dir / kFileName);
    const std::string where = file_where(nonces.file_);
    auto text = read_nonce_file(nonces.file_, where);
    if (!text)
        return std::unexpected(text.error());
    auto entries = parse_nonce_lines(*text, nonces.file_.string());
    if (!entries)
        return std::unexpected(entries.error());
    nonces.entries_ = std::move(*entries);
    return nonces;
}

bool UsedNonces::contains(std::string_view nonce) const { return entries_.find(nonce) != entries_.end(); }

Result<void> UsedNonces::record(const UnlockToken& token, std::chrono::system_clock::time_point now) {
    if (!is_nonce(token.nonce))
        return fail(EINVAL, "unlock token nonce " + shown(token.nonce) + " is not 32 lower-case hex digits");
    if (contains(token.nonce))
        return fail(ErrorKind::Integrity, EALREADY,
                    "unlock token " + token.nonce + " was already used: each token unlocks once");
    // An entry whose token has expired can never verify again: drop it.
    const int64_t at = unix_seconds(now);
    NonceMap next = entries_;
    std::erase_if(next, [at](const auto& entry) { return static_cast<int64_t>(entry.second) <= at; });
    next.emplace(token.nonce, token.expires);
    const std::string text = serialize(next);
    if (text.size() > kMaxFileBytes)
        return fail(E2BIG, file_where(file_) + " would grow beyond " + std::to_string(kMaxFileBytes) + " bytes (" +
                               std::to_string(next.size()) + " unexpired tokens used): wait until some expire");
    // Only a file of used nonces is replaced (open() read it as one).
    auto is_nonce_file = [](std::string_view existing) { return parse_nonce_lines(existing, "").has_value(); };
    if (auto written = write_file_atomically(file_, text, 0600, is_nonce_file); !written)
        return written;
    entries_ = std::move(next);
    return {};
}

}  // namespace bpfwarden
