#include "trust/unlock_token.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "temp_dir.h"
#include "test_helpers.h"
#include "trust/signature.h"
#include "trust/trusted_keys.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using Clock = std::chrono::system_clock;

// 2026-01-01T00:00:00Z: tests never depend on the real clock.
const Clock::time_point kNow = Clock::time_point(seconds(1767225600));

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The line of `token` that starts with `field ` replaced by `replacement`.
std::string with_line(const std::string& token, const std::string& field, const std::string& replacement) {
    const size_t start = token.find(field + " ");
    const size_t end = token.find('\n', start);
    return token.substr(0, start) + replacement + token.substr(end);
}

std::string without_line(const std::string& token, const std::string& field) {
    const size_t start = token.find(field + " ");
    return token.substr(0, start) + token.substr(token.find('\n', start) + 1);
}

std::string value_of(const std::string& token, const std::string& field) {
    const size_t start = token.find(field + " ") + field.size() + 1;
    return token.substr(start, token.find('\n', start) - start);
}

// One trusted Ed25519 key (keys/signer.pem, private half signer.key) and one
// key nobody trusts (stranger.key).
class UnlockTokenTest : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directory(keys_dir());
        fs::permissions(keys_dir(), static_cast<fs::perms>(0755));
        ASSERT_OK(generate_ed25519_key(dir_ / "signer.key", keys_dir() / "signer.pem"));
        ASSERT_OK(generate_ed25519_key(dir_ / "stranger.key", dir_ / "stranger.pem"));
        auto keys = TrustedKeys::load_dir(keys_dir(), KeyDirRules{getuid()});
        ASSERT_OK(keys);
        keys_ = std::move(*keys);
    }
    fs::path keys_dir() const { return dir_ / "keys"; }

    std::string make(seconds lifetime = hours(1), Clock::time_point now = kNow, const std::string& key = "signer.key") {
        auto token = make_unlock_token(dir_ / key, lifetime, now);
        EXPECT_TRUE(token.has_value()) << token.error().message();
        return token ? *token : std::string();
    }
    Result<UnlockToken> verify(const std::string& text, Clock::time_point now = kNow) const {
        return verify_unlock_token(text, keys_, now);
    }

    TempDir dir_{"bpfwarden-unlock"};
    TrustedKeys keys_;
};

TEST_F(UnlockTokenTest, HasTheDocumentedShape) {
    const std::string token = make(minutes(10));
    const std::string nonce = value_of(token, "nonce");
    const std::string signature = value_of(token, "signature");
    EXPECT_EQ(token, "bpfwarden-unlock-token 1\nnonce " + nonce +
                         "\nissued 1767225600\nexpires 1767226200\nsignature " + signature + "\n");
    EXPECT_EQ(nonce.size(), 32u);
    EXPECT_EQ(nonce.find_first_not_of("0123456789abcdef"), std::string::npos) << nonce;
    ASSERT_EQ(signature.size(), 88u);  // 64 bytes of Ed25519 signature, base64
    EXPECT_TRUE(signature.ends_with("==")) << signature;
    EXPECT_EQ(
        signature.substr(0, 86).find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
        std::string::npos)
        << signature;
}

TEST_F(UnlockTokenTest, RoundTripNamesTheSigner) {
    const std::string token = make(hours(2));
    auto verified = verify(token);
    ASSERT_OK(verified);
    EXPECT_EQ(verified->nonce, value_of(token, "nonce"));
    EXPECT_EQ(verified->issued, 1767225600u);
    EXPECT_EQ(verified->expires, 1767225600u + 7200u);
    EXPECT_EQ(verified->signer, "signer.pem");
}

TEST_F(UnlockTokenTest, EveryTokenHasItsOwnNonce) { EXPECT_NE(value_of(make(), "nonce"), value_of(make(), "nonce")); }

TEST_F(UnlockTokenTest, SignatureLineMayLoseItsFinalNewline) {
    std::string token = make();
    token.pop_back();
    EXPECT_OK(verify(token));
}

TEST_F(UnlockTokenTest, KeyThatIsNotTrustedIsRefused) {
    auto verified = verify(make(hours(1), kNow, "stranger.key"));
    ASSERT_FALSE(verified.has_value());
    EXPECT_EQ(verified.error().kind(), ErrorKind::Integrity);
    EXPECT_NE(verified.error().message().find("unlock token: signature does not verify"), std::string::npos)
        << verified.error().message();
}

// A field changed after signing, but still well-formed: only the signature catches it.
TEST_F(UnlockTokenTest, TamperedSignedFieldIsRefused) {
    const std::string token = make(hours(1));
    const std::string nonce = value_of(token, "nonce");
    const std::string other_nonce = std::string(nonce[0] == 'a' ? "b" : "a") + nonce.substr(1);
    for (const std::string& tampered :
         {with_line(token, "nonce", "nonce " + other_nonce), with_line(token, "issued", "issued 1767225601"),
          with_line(token, "expires", "expires 1767229201")}) {
        auto verified = verify(tampered);
        ASSERT_FALSE(verified.has_value()) << tampered;
        EXPECT_EQ(verified.error().kind(), ErrorKind::Integrity) << verified.error().message();
        EXPECT_EQ(verified.error().errnum(), EBADMSG) << verified.error().message();
    }
}

TEST_F(UnlockTokenTest, TamperedSignatureIsRefused) {
    const std::string token = make();
    std::string signature = value_of(token, "signature");
    signature[0] = signature[0] == 'A' ? 'B' : 'A';
    auto verified = verify(with_line(token, "signature", "signature " + signature));
    ASSERT_FALSE(verified.has_value());
    EXPECT_EQ(verified.error().errnum(), EBADMSG) << verified.error().message();
    // Hex is not what the verifier reads: it decodes to bytes of the wrong length.
    EXPECT_ERROR_MENTIONS(verify(with_line(token, "signature", "signature " + std::string(128, 'a'))),
                          "signature is 96 bytes, a length the trusted key does not produce");
    EXPECT_ERROR_MENTIONS(verify(with_line(token, "signature", "signature 00ff!!")), "not base64");
    // Unused low bits in the last character would give a second text for the same signature.
    std::string noncanonical = value_of(token, "signature");
    ASSERT_NE(std::string("AQgw").find(noncanonical[noncanonical.size() - 3]), std::string::npos);
    noncanonical[noncanonical.size() - 3] += 1;  // 'A' -> 'B': the same byte, one unused bit set
    EXPECT_ERROR_MENTIONS(verify(with_line(token, "signature", "signature " + noncanonical)), "not base64");
    EXPECT_ERROR_MENTIONS(verify(with_line(token, "signature", "signature " + value_of(token, "signature") + " ")),
                          "not base64");
}

TEST_F(UnlockTokenTest, MalformedTextIsRefusedNamingTheReason) {
    const std::string token = make();
    const size_t signature_line = token.find("signature ");
    const struct {
        std::string text;
        std::string reason;
    } cases[] = {
        {token + "extra line\n", "unexpected text after the signature line (line 6: 'extra line')"},
        {token + "\n", "unexpected text after the signature line"},
        {with_line(token, "issued", ""), "line 3 is empty"},
        {token.substr(0, signature_line), "only 4 of its 5 lines"},
        {with_line(token, "issued", "expires 1767229200"), "line 3: expected 'issued <unix seconds>'"},
        {without_line(token, "issued"), "only 4 of its 5 lines"},
        {"bpfwarden-unlock-token 1\nnonce " + value_of(token, "nonce") + "\nexpires " + value_of(token, "expires") +
             "\nissued " + value_of(token, "issued") + "\nsignature " + value_of(token, "signature") + "\n",
         "line 3: expected 'issued <unix seconds>', got 'expires "},
        {with_line(token, "nonce", "nonce XYZ"), "nonce 'XYZ' is not 32 lower-case hex digits"},
        {with_line(token, "issued", "issued 12a"), "issued '12a' is not a whole number of Unix seconds"},
        {with_line(token, "issued", "issued 01767225600"), "not a whole number"},
        {with_line(token, "issued", "issued -1"), "not a whole number"},
        {with_line(token, "issued", "issued  1767225600"), "not a whole number"},
        {with_line(token, "expires", "expires 99999999999999999999"), "not a whole number"},
        {with_line(token, "expires", "expires 1767225600"), "expires (1767225600) is not after issued (1767225600)"},
        {with_line(token, "expires", "expires 1767312001"), "lifetime of 86401 s is longer than the 86400 s"},
        {with_line(token, "bpfwarden-unlock-token", "bpfwarden-unlock-token 2"), "format version '2' is not supported"},
        {"bpfwarden-manifest 1\n" + token.substr(token.find('\n') + 1), "not an unlock token"},
        {"", "the text is empty"},
        {"garbage\n", "not an unlock token: the first line must be 'bpfwarden-unlock-token 1', not 'garbage'"},
        {"\x7f"
         "ELF\x02\x01",
         "not an unlock token"},
        {std::string(kMaxUnlockTokenBytes + 1, 'x'), "more than the 4096"},
        {with_line(token, "nonce", "nonce \x01"), "control or non-ASCII byte"},
    };
    for (const auto& [text, reason] : cases) {
        auto parsed = parse_unlock_token(text);
        ASSERT_FALSE(parsed.has_value()) << text;
        EXPECT_EQ(parsed.error().kind(), ErrorKind::InvalidArgument) << parsed.error().message();
        EXPECT_EQ(parsed.error().message().rfind("unlock token: ", 0), 0u) << parsed.error().message();
        EXPECT_NE(parsed.error().message().find(reason), std::string::npos)
            << "want '" << reason << "' in: " << parsed.error().message();
        // verify refuses what parse refuses, before any signature check.
        EXPECT_EQ(verify(text).error().message(), parsed.error().message());
    }
}

TEST_F(UnlockTokenTest, CrlfLineEndingsAreRefused) {
    std::string crlf;
    for (char c : make()) {
        if (c == '\n')
            crlf += '\r';
        crlf += c;
    }
    EXPECT_ERROR_MENTIONS(verify(crlf), "line 1 ends in a carriage return (CRLF line endings)");
}

TEST_F(UnlockTokenTest, ParseAloneChecksShapeButNotTheSignature) {
    const std::string token = make(hours(1), kNow, "stranger.key");
    auto parsed = parse_unlock_token(token);
    ASSERT_OK(parsed);
    EXPECT_EQ(parsed->nonce, value_of(token, "nonce"));
    EXPECT_EQ(parsed->expires - parsed->issued, 3600u);
    EXPECT_EQ(parsed->signed_text, token.substr(0, token.find("signature ")));
    EXPECT_EQ(parsed->signature.size(), 64u);
}

TEST_F(UnlockTokenTest, ExpiredTokenIsRefusedWithItsExpiry) {
    const std::string token = make(minutes(10));
    EXPECT_OK(verify(token, kNow + minutes(10) - seconds(1)));
    auto verified = verify(token, kNow + minutes(10));
    ASSERT_FALSE(verified.has_value());
    EXPECT_EQ(verified.error().kind(), ErrorKind::Integrity);
    EXPECT_EQ(verified.error().errnum(), EKEYEXPIRED);
    EXPECT_ERROR_MENTIONS(verified, "unlock token expired at 2026-01-01T00:10:00Z");
}

TEST_F(UnlockTokenTest, TokenIssuedInTheFutureIsRefusedBeyondFiveMinutesOfSkew) {
    const std::string token = make(hours(1), kNow + minutes(5));
    EXPECT_OK(verify(token, kNow));
    auto verified = verify(make(hours(1), kNow + minutes(5) + seconds(1)), kNow);
    ASSERT_FALSE(verified.has_value());
    EXPECT_EQ(verified.error().kind(), ErrorKind::Integrity);
    EXPECT_ERROR_MENTIONS(verified, "issued at 2026-01-01T00:05:01Z, more than 5 minutes after this host's clock");
}

TEST_F(UnlockTokenTest, LifetimeMustBeOneSecondToOneDay) {
    EXPECT_OK(make_unlock_token(dir_ / "signer.key", seconds(1), kNow));
    EXPECT_OK(make_unlock_token(dir_ / "signer.key", hours(24), kNow));
    EXPECT_OK(verify(make(hours(24))));
    EXPECT_ERRNO(make_unlock_token(dir_ / "signer.key", seconds(0), kNow), EINVAL);
    EXPECT_ERRNO(make_unlock_token(dir_ / "signer.key", seconds(-5), kNow), EINVAL);
    EXPECT_ERROR_MENTIONS(make_unlock_token(dir_ / "signer.key", hours(24) + seconds(1), kNow),
                          "lifetime of 86401 s is out of range");
}

TEST_F(UnlockTokenTest, MissingOrPublicSigningKeyIsNamed) {
    EXPECT_ERRNO(make_unlock_token(dir_ / "absent.key", hours(1), kNow), ENOENT);
    EXPECT_ERROR_MENTIONS(make_unlock_token(dir_ / "absent.key", hours(1), kNow), (dir_ / "absent.key").string());
    EXPECT_ERROR_MENTIONS(make_unlock_token(keys_dir() / "signer.pem", hours(1), kNow), "is a public key");
}

// ---------------------------------------------------------------- UsedNonces

class UsedNoncesTest : public ::testing::Test {
protected:
    fs::path file() const { return dir_ / UsedNonces::kFileName; }
    Result<UsedNonces> open() const { return UsedNonces::open(dir_.path()); }
    static UnlockToken token(char digit, uint64_t expires) {
        return UnlockToken{std::string(32, digit), 1767225600, expires, "signer.pem"};
    }
    void write_state(const std::string& text) const {
        dir_.write(UsedNonces::kFileName, text);
        fs::permissions(file(), static_cast<fs::perms>(0600));
    }

    TempDir dir_{"bpfwarden-nonces"};
};

TEST_F(UsedNoncesTest, MissingFileIsNoEntries) {
    auto nonces = open();
    ASSERT_OK(nonces);
    EXPECT_EQ(nonces->size(), 0u);
    EXPECT_FALSE(nonces->contains(std::string(32, 'a')));
    EXPECT_FALSE(fs::exists(file()));
}

TEST_F(UsedNoncesTest, RecordThenContainsAndPersistsAcrossOpen) {
    auto nonces = open();
    ASSERT_OK(nonces);
    ASSERT_OK(nonces->record(token('a', 1767229200), kNow));
    EXPECT_TRUE(nonces->contains(std::string(32, 'a')));
    EXPECT_FALSE(nonces->contains(std::string(32, 'b')));
    EXPECT_EQ(read_text(file()), std::string(32, 'a') + " 1767229200\n");
    struct stat st{};
    ASSERT_EQ(stat(file().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);

    auto reopened = open();
    ASSERT_OK(reopened);
    EXPECT_TRUE(reopened->contains(std::string(32, 'a')));
    EXPECT_EQ(reopened->size(), 1u);
}

TEST_F(UsedNoncesTest, UsedNonceCannotBeRecordedTwice) {
    auto nonces = open();
    ASSERT_OK(nonces);
    ASSERT_OK(nonces->record(token('a', 1767229200), kNow));
    auto again = open()->record(token('a', 1767229200), kNow);
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().kind(), ErrorKind::Integrity);
    EXPECT_ERROR_MENTIONS(again, "was already used");
}

TEST_F(UsedNoncesTest, ExpiredEntriesArePrunedOnRecord) {
    auto nonces = open();
    ASSERT_OK(nonces);
    ASSERT_OK(nonces->record(token('a', 1767225660), kNow));  // expires a minute after kNow
    ASSERT_OK(nonces->record(token('b', 1767229200), kNow));
    EXPECT_EQ(nonces->size(), 2u);
    ASSERT_OK(nonces->record(token('c', 1767232800), kNow + minutes(1)));  // 'a' has expired by then
    EXPECT_FALSE(nonces->contains(std::string(32, 'a')));
    EXPECT_TRUE(nonces->contains(std::string(32, 'b')));
    EXPECT_TRUE(nonces->contains(std::string(32, 'c')));
    EXPECT_EQ(read_text(file()), std::string(32, 'b') + " 1767229200\n" + std::string(32, 'c') + " 1767232800\n");
}

TEST_F(UsedNoncesTest, CorruptFileIsRefusedNamingFileAndLine) {
    const std::string good = std::string(32, 'a') + " 1767229200\n";
    for (const std::string& corrupt :
         {good + "not a nonce line\n", good + std::string(32, 'b') + " soon\n",
          good + std::string(32, 'b') + " 1767229200", good + "\n", good + std::string(32, 'B') + " 1767229200\n"}) {
        write_state(corrupt);
        auto nonces = UsedNonces::open(dir_.path());
        ASSERT_FALSE(nonces.has_value()) << corrupt;
        EXPECT_EQ(nonces.error().errnum(), EINVAL);
        EXPECT_NE(nonces.error().message().find(file().string() + ":2: expected '<nonce> <expires>'"),
                  std::string::npos)
            << nonces.error().message();
    }
}

TEST_F(UsedNoncesTest, FileOthersMayWriteIsRefused) {
    write_state(std::string(32, 'a') + " 1767229200\n");
    fs::permissions(file(), static_cast<fs::perms>(0666));
    EXPECT_ERRNO(UsedNonces::open(dir_.path()), EPERM);
    fs::permissions(file(), static_cast<fs::perms>(0600));
    fs::rename(file(), dir_ / "elsewhere");
    fs::create_symlink(dir_ / "elsewhere", file());
    EXPECT_ERRNO(UsedNonces::open(dir_.path()), ELOOP);
}

TEST_F(UsedNoncesTest, MissingStateDirectoryIsAnErrorNamingIt) {
    auto nonces = UsedNonces::open(dir_ / "typo");
    EXPECT_ERRNO(nonces, ENOENT);
    EXPECT_ERROR_MENTIONS(nonces, "state directory '" + (dir_ / "typo").string() + "' does not exist");
    dir_.touch("a-file");
    EXPECT_ERRNO(UsedNonces::open(dir_ / "a-file"), ENOTDIR);
}

TEST_F(UsedNoncesTest, RecordedVerifiedTokenIsSingleUse) {
    TempDir keys_root{"bpfwarden-unlock-keys"};
    fs::create_directory(keys_root / "keys");
    fs::permissions(keys_root / "keys", static_cast<fs::perms>(0755));
    ASSERT_OK(generate_ed25519_key(keys_root / "signer.key", keys_root / "keys" / "signer.pem"));
    auto keys = TrustedKeys::load_dir(keys_root / "keys", KeyDirRules{getuid()});
    ASSERT_OK(keys);
    auto text = make_unlock_token(keys_root / "signer.key", minutes(15), kNow);
    ASSERT_OK(text);
    auto verified = verify_unlock_token(*text, *keys, kNow);
    ASSERT_OK(verified);
    auto nonces = open();
    ASSERT_OK(nonces);
    ASSERT_FALSE(nonces->contains(verified->nonce));
    ASSERT_OK(nonces->record(*verified, kNow));
    EXPECT_TRUE(open()->contains(verify_unlock_token(*text, *keys, kNow + seconds(1))->nonce));
}

}  // namespace
}  // namespace bpfwarden
