// Break-glass unlock tokens: bpfwarden protects itself from root, and whoever
// holds an image-signing private key may lift that protection for a bounded
// time with a signed, expiring, single-use token.
//
// A token is five lines of ASCII, easy to read and to paste into an email:
//
//   bpfwarden-unlock-token 1
//   nonce 0123456789abcdef0123456789abcdef
//   issued 1767225600
//   expires 1767229200
//   signature <base64 of the signature over the four lines above>
//
// The signature covers the first four lines exactly as they appear, each
// with its '\n'; it is made and checked with the same keys and primitives as
// image manifests (signature.h, trusted_keys.h). The first line keeps the two
// apart: a manifest starts with "bpfwarden-manifest", so neither can be
// passed off as the other. The signature line's own final '\n' is optional
// (mail clients drop it); anything else outside this shape is refused.
//
// Errors: a token that is not of this shape is EINVAL (InvalidArgument); a
// signature that does not verify, an expired token, one issued in the future
// and a nonce already used are Integrity (EBADMSG, EKEYEXPIRED,
// EKEYREJECTED, EALREADY). Messages start with "unlock token" and say why.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "support/error.h"
#include "trust/trusted_keys.h"

namespace bpfwarden {

// How long a token may unlock: long enough for an admin's repair session,
// short enough that a forgotten token soon stops mattering.
inline constexpr std::chrono::seconds kMinUnlockLifetime{1};
inline constexpr std::chrono::seconds kMaxUnlockLifetime = std::chrono::hours(24);
// How far in the future a token's issue time may be: the signing machine's
// clock and this host's may disagree a little, not more.
inline constexpr std::chrono::seconds kMaxUnlockClockSkew = std::chrono::minutes(5);
// A token is ~200 bytes (Ed25519) to ~800 (RSA-4096); longer text is refused
// before it is parsed.
inline constexpr size_t kMaxUnlockTokenBytes = 4096;

// A token whose signature and times were checked.
struct UnlockToken {
    std::string nonce;     // 32 lower-case hex digits
    uint64_t issued = 0;   // Unix seconds
    uint64_t expires = 0;  // Unix seconds; protection may be lifted until then
    std::string signer;    // the trusted key that verified it (TrustedKey::name, its file name)
};

// A token's text checked for shape only (the lines, the numbers, the
// lifetime): nothing in it is trusted yet. What bpfwardenctl checks before
// sending a token, and the first step of verify_unlock_token().
struct ParsedUnlockToken {
    std::string nonce;
    uint64_t issued = 0;
    uint64_t expires = 0;
    std::string signed_text;               // the four signed lines, each with its '\n'
    std::vector<unsigned char> signature;  // decoded from base64
};
Result<ParsedUnlockToken> parse_unlock_token(std::string_view text);

// A new token signed with the PEM private key in `private_key` (any key type
// sign_file_bytes() accepts), issued at `now` (whole seconds) and expiring
// `lifetime` later; lifetime must be kMinUnlockLifetime..kMaxUnlockLifetime
// (EINVAL otherwise). The nonce is 16 bytes from OpenSSL's RAND_bytes.
Result<std::string> make_unlock_token(const std::filesystem::path& private_key, std::chrono::seconds lifetime,
                                      std::chrono::system_clock::time_point now);

// Parses `text`, verifies its signature against `keys`, and refuses a token
// that has expired at `now` ("expired at <UTC time>") or was issued more than
// kMaxUnlockClockSkew after `now`. Does not look at used nonces: that is
// UsedNonces' job, and the caller's to do before lifting anything.
Result<UnlockToken> verify_unlock_token(std::string_view text, const TrustedKeys& keys,
                                        std::chrono::system_clock::time_point now);

// The nonces of tokens already used, so that each token unlocks once. Kept in
// `<state dir>/unlock-nonces`, one "<nonce> <expires>" line each, mode 0600,
// replaced atomically. An entry is kept until its token's expiry, after which
// the token cannot verify anyway.
class UsedNonces {
public:
    static constexpr const char* kFileName = "unlock-nonces";
    // A bound on the file, and so on the unlocks within one token lifetime
    // (a line is at most 46 bytes: ~1400); record() refuses more (E2BIG).
    static constexpr size_t kMaxFileBytes = 64 * 1024;

    // Reads the file. A state directory that does not exist is an error
    // naming it (ENOENT); a missing file is no entries. A file that is not
    // ours (owner, group/world-writable, not a regular file) or is corrupt is
    // an error naming the file and line: treating it as empty would let a
    // used token unlock again.
    static Result<UsedNonces> open(const std::filesystem::path& state_dir);

    bool contains(std::string_view nonce) const;

    // Adds `token`'s nonce (EALREADY when it is there already: the token was
    // used), drops entries that expired by `now`, and writes the file. The
    // entries change only when the file was written.
    Result<void> record(const UnlockToken& token, std::chrono::system_clock::time_point now);

    const std::filesystem::path& file() const { return file_; }
    size_t size() const { return entries_.size(); }

private:
    explicit UsedNonces(std::filesystem::path file) : file_(std::move(file)) {}
    std::filesystem::path file_;
    std::map<std::string, uint64_t, std::less<>> entries_;  // nonce -> expires
};

}  // namespace bpfwarden
