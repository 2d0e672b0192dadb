#include "trust/signature.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "test_helpers.h"
#include "trust/trusted_keys.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

Bytes to_bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

Bytes read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string read_text(const fs::path& path) {
    Bytes bytes = read_file(path);
    return std::string(bytes.begin(), bytes.end());
}

void write_file(const fs::path& path, const Bytes& bytes, mode_t mode = 0644) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    fs::permissions(path, static_cast<fs::perms>(mode));
}

mode_t mode_of(const fs::path& path) {
    struct stat st{};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

std::string q(const fs::path& path) { return "'" + path.string() + "'"; }

// Exit status of a shell command; its output goes nowhere.
int run(const std::string& command) {
    int status = std::system(("(" + command + ") >/dev/null 2>&1 </dev/null").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool have_openssl_cli() { return access("/usr/bin/openssl", X_OK) == 0; }

Bytes flipped(Bytes bytes, size_t at) {
    bytes.at(at) ^= 0x01;
    return bytes;
}

const Bytes kManifest = to_bytes(
    "version = 7\n"
    "[[image]]\nname = \"file_guard\"\nsize = 4096\n"
    "sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n");

// ---------------------------------------------------------------- keygen

TEST(SignatureKeygen, WritesPrivateKey0600AndPublicKey0644WhateverTheUmask) {
    TempDir dir;
    const mode_t old_umask = umask(0);  // modes must not depend on it
    auto generated = generate_ed25519_key(dir / "signer.key", dir / "signer.pub");
    umask(old_umask);
    ASSERT_OK(generated);

    EXPECT_EQ(mode_of(dir / "signer.key"), 0600u);
    EXPECT_EQ(mode_of(dir / "signer.pub"), 0644u);
    EXPECT_TRUE(read_text(dir / "signer.key").starts_with("-----BEGIN PRIVATE KEY-----\n"));
    EXPECT_TRUE(read_text(dir / "signer.pub").starts_with("-----BEGIN PUBLIC KEY-----\n"));

    if (have_openssl_cli()) {
        // The stock tool reads both, and they are halves of one pair.
        ASSERT_EQ(run("openssl pkey -in " + q(dir / "signer.key") + " -pubout -out " + q(dir / "derived.pub")), 0);
        EXPECT_EQ(read_text(dir / "derived.pub"), read_text(dir / "signer.pub"));
    }
}

TEST(SignatureKeygen, RestrictiveUmaskStillGivesAReadablePublicKey) {
    TempDir dir;
    const mode_t old_umask = umask(077);
    auto generated = generate_ed25519_key(dir / "signer.key", dir / "signer.pub");
    umask(old_umask);
    ASSERT_OK(generated);
    EXPECT_EQ(mode_of(dir / "signer.key"), 0600u);
    EXPECT_EQ(mode_of(dir / "signer.pub"), 0644u);
}

TEST(SignatureKeygen, RefusesToOverwriteAnExistingPrivateKey) {
    TempDir dir;
    write_file(dir / "signer.key", to_bytes("precious"), 0600);
    auto generated = generate_ed25519_key(dir / "signer.key", dir / "signer.pub");
    EXPECT_ERRNO(generated, EEXIST);
    EXPECT_ERROR_MENTIONS(generated, "refusing to overwrite existing private key " + q(dir / "signer.key"));
    EXPECT_EQ(read_text(dir / "signer.key"), "precious");
    EXPECT_FALSE(fs::exists(dir / "signer.pub"));
}

TEST(SignatureKeygen, RefusesToOverwriteAnExistingPublicKeyAndLeavesNoHalfPair) {
    TempDir dir;
    write_file(dir / "signer.pub", to_bytes("old public key"));
    auto generated = generate_ed25519_key(dir / "signer.key", dir / "signer.pub");
    EXPECT_ERRNO(generated, EEXIST);
    EXPECT_ERROR_MENTIONS(generated, "public key " + q(dir / "signer.pub"));
    EXPECT_EQ(read_text(dir / "signer.pub"), "old public key");
    EXPECT_FALSE(fs::exists(dir / "signer.key"));
    // Once the way is clear, a retry works.
    fs::remove(dir / "signer.pub");
    EXPECT_OK(generate_ed25519_key(dir / "signer.key", dir / "signer.pub"));
}

TEST(SignatureKeygen, NeverWritesThroughASymlink) {
    TempDir dir;
    write_file(dir / "target", to_bytes("not yours"));
    fs::create_symlink(dir / "target", dir / "signer.key");
    EXPECT_ERRNO(generate_ed25519_key(dir / "signer.key", dir / "signer.pub"), EEXIST);
    EXPECT_EQ(read_text(dir / "target"), "not yours");
}

TEST(SignatureKeygen, RefusesTheSamePathForBothHalves) {
    TempDir dir;
    EXPECT_ERRNO(generate_ed25519_key(dir / "k", dir / "./k"), EINVAL);
    EXPECT_FALSE(fs::exists(dir / "k"));
}

TEST(SignatureKeygen, MissingDirectoryIsEnoentNamingThePath) {
    TempDir dir;
    auto generated = generate_ed25519_key(dir / "nope" / "signer.key", dir / "signer.pub");
    EXPECT_ERRNO(generated, ENOENT);
    EXPECT_ERROR_MENTIONS(generated, (dir / "nope" / "signer.key").string());
}

TEST(SignatureKeygen, EveryCallMakesANewKey) {
    TempDir dir;
    ASSERT_OK(generate_ed25519_key(dir / "a.key", dir / "a.pub"));
    ASSERT_OK(generate_ed25519_key(dir / "b.key", dir / "b.pub"));
    EXPECT_NE(read_text(dir / "a.pub"), read_text(dir / "b.pub"));
}

// ---------------------------------------------------------------- sha256

TEST(SignatureSha256, MatchesKnownVectors) {
    EXPECT_EQ(sha256_hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex(to_bytes("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex(to_bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// ---------------------------------------------------------------- sign

// A trusted key directory with the public half of one fresh Ed25519 key.
class SignatureVerify : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directory(keys_dir());
        fs::permissions(keys_dir(), static_cast<fs::perms>(0755));
        ASSERT_OK(generate_ed25519_key(dir_ / "signer.key", keys_dir() / "signer.pem"));
    }
    fs::path keys_dir() const { return dir_ / "keys"; }
    KeyDirRules rules() const { return KeyDirRules{getuid()}; }

    TrustedKeys load() {
        auto keys = TrustedKeys::load_dir(keys_dir(), rules());
        EXPECT_TRUE(keys.has_value()) << keys.error().message();
        return keys ? std::move(*keys) : TrustedKeys{};
    }
    Bytes sign(const std::string& key_file, const Bytes& data) {
        auto signature = sign_file_bytes(dir_ / key_file, data);
        EXPECT_TRUE(signature.has_value()) << signature.error().message();
        return signature ? *signature : Bytes{};
    }

    TempDir dir_;
};

TEST_F(SignatureVerify, RoundTripReturnsTheSigningKey) {
    Bytes signature = sign("signer.key", kManifest);
    EXPECT_EQ(signature.size(), 64u);
    TrustedKeys keys = load();
    auto signer = keys.verify(kManifest, signature);
    ASSERT_OK(signer);
    EXPECT_EQ((*signer)->name, "signer.pem");
    EXPECT_EQ((*signer)->algorithm, "ed25519");
    EXPECT_EQ(*signer, &keys.keys().front());
}

TEST_F(SignatureVerify, Ed25519SignaturesAreDeterministic) {
    EXPECT_EQ(sign("signer.key", kManifest), sign("signer.key", kManifest));
}

TEST_F(SignatureVerify, EmptyDataCanBeSignedAndVerified) {
    Bytes signature = sign("signer.key", {});
    EXPECT_OK(load().verify({}, signature));
    EXPECT_ERRNO(load().verify(to_bytes("x"), signature), EBADMSG);
}

TEST_F(SignatureVerify, OneFlippedByteOfDataIsRejected) {
    Bytes signature = sign("signer.key", kManifest);
    TrustedKeys keys = load();
    for (size_t at : {size_t{0}, kManifest.size() / 2, kManifest.size() - 1}) {
        SCOPED_TRACE(at);
        auto signer = keys.verify(flipped(kManifest, at), signature);
        EXPECT_ERRNO(signer, EBADMSG);
        EXPECT_ERROR_MENTIONS(signer, "signature does not verify with the trusted key (signer.pem)");
    }
    Bytes longer = kManifest;
    longer.push_back('\n');
    EXPECT_ERRNO(keys.verify(longer, signature), EBADMSG);
}

TEST_F(SignatureVerify, OneFlippedByteOfSignatureIsRejected) {
    Bytes signature = sign("signer.key", kManifest);
    TrustedKeys keys = load();
    for (size_t at : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
        SCOPED_TRACE(at);
        EXPECT_ERRNO(keys.verify(kManifest, flipped(signature, at)), EBADMSG);
    }
}

TEST_F(SignatureVerify, TruncatedOrExtendedSignatureIsRejectedNamingItsLength) {
    Bytes signature = sign("signer.key", kManifest);
    TrustedKeys keys = load();
    auto truncated = keys.verify(kManifest, Bytes(signature.begin(), signature.end() - 1));
    EXPECT_ERRNO(truncated, EBADMSG);
    EXPECT_ERROR_MENTIONS(truncated,
                          "signature is 63 bytes, a length the trusted key does not produce "
                          "(signer.pem: ed25519, 64 bytes): truncated");
    Bytes extended = signature;
    extended.push_back(0);
    EXPECT_ERROR_MENTIONS(keys.verify(kManifest, extended), "signature is 65 bytes");
}

TEST_F(SignatureVerify, EmptySignatureIsRejected) {
    auto signer = load().verify(kManifest, {});
    EXPECT_ERRNO(signer, EBADMSG);
    EXPECT_ERROR_MENTIONS(signer, "signature is empty");
}

TEST_F(SignatureVerify, Base64SignatureGetsAHint) {
    Bytes text = to_bytes(std::string(86, 'A') + "==\n");  // base64 of 64 bytes
    auto signer = load().verify(kManifest, text);
    EXPECT_ERRNO(signer, EBADMSG);
    EXPECT_ERROR_MENTIONS(signer, "looks like text");
}

TEST_F(SignatureVerify, SignatureByAnUntrustedKeyNamesTheTrustedKeys) {
    ASSERT_OK(generate_ed25519_key(dir_ / "other.key", keys_dir() / "another.pub"));
    ASSERT_OK(generate_ed25519_key(dir_ / "stranger.key", dir_ / "stranger.pub"));  // not trusted
    auto signer = load().verify(kManifest, sign("stranger.key", kManifest));
    EXPECT_ERRNO(signer, EBADMSG);
    EXPECT_ERROR_MENTIONS(signer, "signature does not verify with any of the 2 trusted keys (another.pub, signer.pem)");
}

TEST_F(SignatureVerify, RotationAcceptsEitherTrustedKey) {
    ASSERT_OK(generate_ed25519_key(dir_ / "next.key", keys_dir() / "next.pem"));
    TrustedKeys keys = load();
    ASSERT_EQ(keys.keys().size(), 2u);

    auto by_old = keys.verify(kManifest, sign("signer.key", kManifest));
    ASSERT_OK(by_old);
    EXPECT_EQ((*by_old)->name, "signer.pem");
    auto by_new = keys.verify(kManifest, sign("next.key", kManifest));
    ASSERT_OK(by_new);
    EXPECT_EQ((*by_new)->name, "next.pem");

    // Retiring the old key: its signatures stop verifying.
    fs::remove(keys_dir() / "signer.pem");
    EXPECT_ERRNO(load().verify(kManifest, sign("signer.key", kManifest)), EBADMSG);
    EXPECT_OK(load().verify(kManifest, sign("next.key", kManifest)));
}

TEST_F(SignatureVerify, KeysStayValidAfterAMove) {
    TrustedKeys moved = load();
    TrustedKeys keys = std::move(moved);
    auto signer = keys.verify(kManifest, sign("signer.key", kManifest));
    ASSERT_OK(signer);
    EXPECT_EQ(*signer, &keys.keys().front());
}

TEST_F(SignatureVerify, AnEmptyKeySetVerifiesNothing) {
    EXPECT_ERRNO(TrustedKeys{}.verify(kManifest, sign("signer.key", kManifest)), ENOKEY);
}

TEST(SignatureSign, MissingPrivateKeyIsEnoentNamingIt) {
    TempDir dir;
    auto signature = sign_file_bytes(dir / "absent.key", kManifest);
    EXPECT_ERRNO(signature, ENOENT);
    EXPECT_ERROR_MENTIONS(signature, (dir / "absent.key").string());
}

TEST(SignatureSign, APublicKeyCannotSign) {
    TempDir dir;
    ASSERT_OK(generate_ed25519_key(dir / "signer.key", dir / "signer.pub"));
    auto signature = sign_file_bytes(dir / "signer.pub", kManifest);
    EXPECT_ERRNO(signature, EINVAL);
    EXPECT_ERROR_MENTIONS(signature, "is a public key");
}

TEST(SignatureSign, GarbageIsNotAPrivateKey) {
    TempDir dir;
    write_file(dir / "garbage.key", to_bytes("this is not a key\n"), 0600);
    auto signature = sign_file_bytes(dir / "garbage.key", kManifest);
    EXPECT_ERRNO(signature, EINVAL);
    EXPECT_ERROR_MENTIONS(signature, "private key " + q(dir / "garbage.key") + " is not a PEM private key");
    write_file(dir / "empty.key", {}, 0600);
    EXPECT_ERROR_MENTIONS(sign_file_bytes(dir / "empty.key", kManifest), "is empty");
}

TEST(SignatureSign, PassphraseProtectedKeyIsRefusedWithoutPrompting) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    TempDir dir;
    ASSERT_EQ(run("openssl genpkey -algorithm ed25519 -aes256 -pass pass:secret -out " + q(dir / "locked.key")), 0);
    auto signature = sign_file_bytes(dir / "locked.key", kManifest);
    EXPECT_ERRNO(signature, EINVAL);
    EXPECT_ERROR_MENTIONS(signature, "passphrase-protected");
}

TEST(SignatureSign, RefusesKeysTheVerifierWouldRefuse) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    TempDir dir;
    ASSERT_EQ(run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out " + q(dir / "weak.key")), 0);
    auto weak = sign_file_bytes(dir / "weak.key", kManifest);
    EXPECT_ERRNO(weak, EKEYREJECTED);
    EXPECT_ERROR_MENTIONS(weak, "RSA key of 1024 bits is too weak");
    ASSERT_EQ(run("openssl genpkey -algorithm ed448 -out " + q(dir / "ed448.key")), 0);
    EXPECT_ERRNO(sign_file_bytes(dir / "ed448.key", kManifest), EKEYREJECTED);
}

// ------------------------------------------- interoperability with openssl(1)

class SignatureInterop : public SignatureVerify {
protected:
    void SetUp() override {
        if (!have_openssl_cli())
            GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
        SignatureVerify::SetUp();
        write_file(manifest(), kManifest);
    }
    fs::path manifest() const { return dir_ / "manifest"; }
    fs::path sig() const { return dir_ / "manifest.sig"; }

    // `openssl pkey -pubout` of dir_/<key_file> into the trusted directory.
    void trust_public_half(const std::string& key_file, const std::string& name) {
        ASSERT_EQ(run("openssl pkey -in " + q(dir_ / key_file) + " -pubout -out " + q(keys_dir() / name)), 0);
        fs::permissions(keys_dir() / name, static_cast<fs::perms>(0644));
    }

    // The CLI's signature is accepted, attributed to `name` with `algorithm`,
    // and no longer once one byte of the data or of the signature changes.
    void expect_cli_signature_verifies(const std::string& name, const std::string& algorithm) {
        Bytes signature = read_file(sig());
        ASSERT_FALSE(signature.empty());
        TrustedKeys keys = load();
        auto signer = keys.verify(kManifest, signature);
        ASSERT_OK(signer);
        EXPECT_EQ((*signer)->name, name);
        EXPECT_EQ((*signer)->algorithm, algorithm);
        EXPECT_ERRNO(keys.verify(flipped(kManifest, 10), signature), EBADMSG);
        EXPECT_ERRNO(keys.verify(kManifest, flipped(signature, signature.size() / 2)), EBADMSG);
        EXPECT_ERRNO(keys.verify(kManifest, flipped(signature, signature.size() - 1)), EBADMSG);
    }

    // Our signature with dir_/<key_file> passes `openssl dgst -sha256 -verify`.
    void expect_openssl_dgst_accepts_ours(const std::string& key_file) {
        auto signature = sign_file_bytes(dir_ / key_file, kManifest);
        ASSERT_OK(signature);
        write_file(dir_ / "ours.sig", *signature);
        ASSERT_EQ(run("openssl pkey -in " + q(dir_ / key_file) + " -pubout -out " + q(dir_ / "ours.pub")), 0);
        EXPECT_EQ(run("openssl dgst -sha256 -verify " + q(dir_ / "ours.pub") + " -signature " + q(dir_ / "ours.sig") +
                      " " + q(manifest())),
                  0);
    }
};

TEST_F(SignatureInterop, OpensslEd25519PkeyutlSignatureVerifies) {
    ASSERT_EQ(run("openssl genpkey -algorithm ed25519 -out " + q(dir_ / "ed.key")), 0);
    trust_public_half("ed.key", "ed.pem");
    ASSERT_EQ(run("openssl pkeyutl -sign -rawin -inkey " + q(dir_ / "ed.key") + " -in " + q(manifest()) + " -out " +
                  q(sig())),
              0);
    expect_cli_signature_verifies("ed.pem", "ed25519");
    // Same key, same bytes: the CLI and bpfwarden produce the same signature.
    EXPECT_EQ(sign("ed.key", kManifest), read_file(sig()));
}

TEST_F(SignatureInterop, OurEd25519SignatureVerifiesWithOpensslPkeyutl) {
    write_file(sig(), sign("signer.key", kManifest));
    const std::string verify = "openssl pkeyutl -verify -pubin -inkey " + q(keys_dir() / "signer.pem") +
                               " -rawin -sigfile " + q(sig()) + " -in ";
    EXPECT_EQ(run(verify + q(manifest())), 0);
    write_file(dir_ / "tampered", flipped(kManifest, 3));
    EXPECT_NE(run(verify + q(dir_ / "tampered")), 0);
}

TEST_F(SignatureInterop, OpensslRsa3072DgstSignatureVerifies) {
    ASSERT_EQ(run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out " + q(dir_ / "rsa.key")), 0);
    trust_public_half("rsa.key", "rsa.pem");
    ASSERT_EQ(run("openssl dgst -sha256 -sign " + q(dir_ / "rsa.key") + " -out " + q(sig()) + " " + q(manifest())), 0);
    EXPECT_EQ(read_file(sig()).size(), 384u);
    expect_cli_signature_verifies("rsa.pem", "rsa-3072");
    expect_openssl_dgst_accepts_ours("rsa.key");

    // Only SHA-256 is accepted: a SHA-512 signature by the same key is not.
    ASSERT_EQ(run("openssl dgst -sha512 -sign " + q(dir_ / "rsa.key") + " -out " + q(sig()) + " " + q(manifest())), 0);
    EXPECT_ERRNO(load().verify(kManifest, read_file(sig())), EBADMSG);
}

TEST_F(SignatureInterop, OpensslEcdsaP256EcparamKeyVerifies) {
    // `ecparam -genkey` writes the traditional "EC PRIVATE KEY" form.
    ASSERT_EQ(run("openssl ecparam -name prime256v1 -genkey -noout -out " + q(dir_ / "ec.key")), 0);
    trust_public_half("ec.key", "ec.pem");
    ASSERT_EQ(run("openssl dgst -sha256 -sign " + q(dir_ / "ec.key") + " -out " + q(sig()) + " " + q(manifest())), 0);
    expect_cli_signature_verifies("ec.pem", "ecdsa-p256");
    expect_openssl_dgst_accepts_ours("ec.key");
}

TEST_F(SignatureInterop, OpensslEcdsaP256GenpkeyKeyVerifies) {
    ASSERT_EQ(run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + q(dir_ / "ec.key")), 0);
    trust_public_half("ec.key", "ec.pub");
    ASSERT_EQ(run("openssl dgst -sha256 -sign " + q(dir_ / "ec.key") + " -out " + q(sig()) + " " + q(manifest())), 0);
    expect_cli_signature_verifies("ec.pub", "ecdsa-p256");
}

TEST_F(SignatureInterop, MixedKeyTypesRotateTogether) {
    ASSERT_EQ(run("openssl ecparam -name prime256v1 -genkey -noout -out " + q(dir_ / "ec.key")), 0);
    trust_public_half("ec.key", "ec.pem");
    TrustedKeys keys = load();
    ASSERT_EQ(keys.keys().size(), 2u);
    auto by_ec = keys.verify(kManifest, sign("ec.key", kManifest));
    ASSERT_OK(by_ec);
    EXPECT_EQ((*by_ec)->name, "ec.pem");
    auto by_ed = keys.verify(kManifest, sign("signer.key", kManifest));
    ASSERT_OK(by_ed);
    EXPECT_EQ((*by_ed)->name, "signer.pem");
}

TEST_F(SignatureInterop, Rsa1024KeyIsRefused) {
    ASSERT_EQ(run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out " + q(dir_ / "weak.key")), 0);
    trust_public_half("weak.key", "weak.pem");
    auto keys = TrustedKeys::load_dir(keys_dir(), rules());
    EXPECT_ERRNO(keys, EKEYREJECTED);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(keys_dir() / "weak.pem") + ": RSA key of 1024 bits is too weak");
}

}  // namespace
}  // namespace bpfwarden
