#include "trust/trusted_keys.h"

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
#include "trust/signature.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<unsigned char>;

Bytes to_bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, std::string_view text, mode_t mode = 0644) {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
    }
    fs::permissions(path, static_cast<fs::perms>(mode));
}

void set_mode(const fs::path& path, mode_t mode) { fs::permissions(path, static_cast<fs::perms>(mode)); }

std::string q(const fs::path& path) { return "'" + path.string() + "'"; }

int run(const std::string& command) {
    int status = std::system(("(" + command + ") >/dev/null 2>&1 </dev/null").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string capture(const std::string& command) {
    std::string output;
    if (FILE* pipe = popen(("(" + command + ") 2>/dev/null </dev/null").c_str(), "r")) {
        char buffer[256];
        while (size_t n = fread(buffer, 1, sizeof buffer, pipe))
            output.append(buffer, n);
        pclose(pipe);
    }
    return output;
}

bool have_openssl_cli() { return access("/usr/bin/openssl", X_OK) == 0; }

// tmp/keys (0755, ours) is the trusted directory; private keys stay in tmp.
class TrustedKeysTest : public ::testing::Test {
protected:
    void SetUp() override {
        fs::create_directory(keys_dir());
        set_mode(keys_dir(), 0755);
    }
    fs::path keys_dir() const { return tmp_ / "keys"; }
    fs::path key(const std::string& name) const { return keys_dir() / name; }
    KeyDirRules rules() const { return KeyDirRules{getuid()}; }
    Result<TrustedKeys> load() const { return TrustedKeys::load_dir(keys_dir(), rules()); }

    // A fresh Ed25519 pair: private in tmp/<name>.key, public at `public_path`.
    void make_key(const fs::path& public_path) {
        ASSERT_OK(generate_ed25519_key(tmp_ / (public_path.filename().string() + ".key"), public_path));
    }
    void trust_new_key(const std::string& name) { make_key(key(name)); }

    // `openssl pkey -pubout` of a key the CLI generates with `genpkey_args`.
    void trust_openssl_key(const std::string& name, const std::string& genpkey_args) {
        ASSERT_EQ(run("openssl genpkey " + genpkey_args + " -out " + q(tmp_ / (name + ".key"))), 0) << genpkey_args;
        ASSERT_EQ(run("openssl pkey -in " + q(tmp_ / (name + ".key")) + " -pubout -out " + q(key(name))), 0);
        set_mode(key(name), 0644);
    }

    TempDir tmp_;
};

// ---------------------------------------------------------------- loading

TEST_F(TrustedKeysTest, LoadsEveryPemAndPubFileSortedByName) {
    trust_new_key("b.pub");
    trust_new_key("a.pem");
    write_file(key("README"), "the keys that sign bpfwarden's images\n");
    write_file(key("a.pem~"), "editor backup");
    write_file(key("c.pem.dpkg-old"), "old");
    write_file(key(".hidden.pem"), "hidden");

    auto keys = load();
    ASSERT_OK(keys);
    ASSERT_EQ(keys->keys().size(), 2u);
    EXPECT_EQ(keys->keys()[0].name, "a.pem");
    EXPECT_EQ(keys->keys()[0].path, key("a.pem"));
    EXPECT_EQ(keys->keys()[1].name, "b.pub");
    for (const auto& trusted : keys->keys()) {
        EXPECT_EQ(trusted.algorithm, "ed25519");
        EXPECT_TRUE(trusted.fingerprint.starts_with("sha256:")) << trusted.fingerprint;
        EXPECT_EQ(trusted.fingerprint.size(), 7u + 64u);
        EXPECT_NE(trusted.key, nullptr);
    }
    EXPECT_NE(keys->keys()[0].fingerprint, keys->keys()[1].fingerprint);
}

TEST_F(TrustedKeysTest, FingerprintIsTheSha256OfTheDerSubjectPublicKeyInfo) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    trust_new_key("a.pem");
    auto keys = load();
    ASSERT_OK(keys);
    std::string sum = capture("openssl pkey -pubin -in " + q(key("a.pem")) + " -outform DER | sha256sum");
    ASSERT_GE(sum.size(), 64u);
    EXPECT_EQ(keys->keys()[0].fingerprint, "sha256:" + sum.substr(0, 64));
}

TEST_F(TrustedKeysTest, AcceptsRsa2048AndP256AndNamesTheirAlgorithms) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    trust_openssl_key("rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
    trust_openssl_key("ec.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256");
    auto keys = load();
    ASSERT_OK(keys);
    ASSERT_EQ(keys->keys().size(), 2u);
    EXPECT_EQ(keys->keys()[0].algorithm, "ecdsa-p256");
    EXPECT_EQ(keys->keys()[1].algorithm, "rsa-2048");
}

TEST_F(TrustedKeysTest, MissingDirectoryIsEnoentNamingIt) {
    auto keys = TrustedKeys::load_dir(tmp_ / "absent", rules());
    EXPECT_ERRNO(keys, ENOENT);
    EXPECT_ERROR_MENTIONS(keys, "trusted key directory " + q(tmp_ / "absent"));
}

TEST_F(TrustedKeysTest, AFileInsteadOfADirectoryIsEnotdir) {
    trust_new_key("a.pem");
    EXPECT_ERRNO(TrustedKeys::load_dir(key("a.pem"), rules()), ENOTDIR);
}

TEST_F(TrustedKeysTest, EmptyDirectoryHasNoTrustedKeys) {
    auto keys = load();
    EXPECT_ERRNO(keys, ENOKEY);
    EXPECT_ERROR_MENTIONS(keys, "no trusted keys in " + q(keys_dir()));
}

TEST_F(TrustedKeysTest, OnlyIgnoredFilesMeansNoTrustedKeys) {
    write_file(key("README"), "nothing here yet\n");
    write_file(key(".old.pem"), "hidden\n");
    auto keys = load();
    EXPECT_ERRNO(keys, ENOKEY);
    EXPECT_ERROR_MENTIONS(keys, "*.pem or *.pub");
}

// ---------------------------------------------------------------- permissions

TEST_F(TrustedKeysTest, WorldWritableDirectoryIsRefused) {
    trust_new_key("a.pem");
    set_mode(keys_dir(), 0777);
    auto keys = load();
    EXPECT_ERRNO(keys, EPERM);
    EXPECT_ERROR_MENTIONS(keys, "trusted key directory " + q(keys_dir()) +
                                    " is world-writable (mode 0777): run 'chmod go-w " + keys_dir().string() + "'");
}

TEST_F(TrustedKeysTest, StickyWorldWritableDirectoryIsRefusedToo) {
    trust_new_key("a.pem");
    set_mode(keys_dir(), 01777);
    EXPECT_ERROR_MENTIONS(load(), "is world-writable (mode 1777)");
}

TEST_F(TrustedKeysTest, GroupWritableDirectoryIsRefused) {
    trust_new_key("a.pem");
    set_mode(keys_dir(), 0775);
    auto keys = load();
    EXPECT_ERRNO(keys, EPERM);
    EXPECT_ERROR_MENTIONS(keys, "is group-writable (mode 0775)");
}

TEST_F(TrustedKeysTest, GroupWritableKeyFileIsRefused) {
    trust_new_key("a.pem");
    trust_new_key("b.pem");
    set_mode(key("b.pem"), 0664);
    auto keys = load();
    EXPECT_ERRNO(keys, EPERM);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("b.pem")) + " is group-writable (mode 0664): run 'chmod go-w " +
                                    key("b.pem").string() + "'");
}

TEST_F(TrustedKeysTest, WorldWritableKeyFileIsRefused) {
    trust_new_key("a.pem");
    set_mode(key("a.pem"), 0666);
    auto keys = load();
    EXPECT_ERRNO(keys, EPERM);
    EXPECT_ERROR_MENTIONS(keys, "is world-writable (mode 0666)");
}

TEST_F(TrustedKeysTest, DirectoryNotOwnedByTheRequiredOwnerIsRefused) {
    trust_new_key("a.pem");
    const uid_t someone_else = getuid() + 1;
    auto keys = TrustedKeys::load_dir(keys_dir(), KeyDirRules{someone_else});
    EXPECT_ERRNO(keys, EPERM);
    EXPECT_ERROR_MENTIONS(keys, "trusted key directory " + q(keys_dir()) + " is owned by uid " +
                                    std::to_string(getuid()) + ", not by uid " + std::to_string(someone_else) +
                                    ": run 'chown " + std::to_string(someone_else) + " " + keys_dir().string() + "'");
}

TEST_F(TrustedKeysTest, KeyFileNotOwnedByTheRequiredOwnerIsRefused) {
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root to chown a file to someone else";
    trust_new_key("a.pem");
    ASSERT_EQ(chown(key("a.pem").c_str(), 4242, static_cast<gid_t>(-1)), 0);
    auto keys = load();
    EXPECT_ERRNO(keys, EPERM);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("a.pem")) + " is owned by uid 4242");
}

TEST_F(TrustedKeysTest, DefaultRulesRequireRoot) {
    trust_new_key("a.pem");
    auto keys = TrustedKeys::load_dir(keys_dir());
    if (getuid() == 0)
        EXPECT_OK(keys);
    else
        EXPECT_ERROR_MENTIONS(keys, "not by root: run 'chown root ");
}

// ---------------------------------------------------------------- what is in it

TEST_F(TrustedKeysTest, SymlinkToAKeyIsRefused) {
    trust_new_key("a.pem");
    make_key(tmp_ / "elsewhere.pem");
    fs::create_symlink(tmp_ / "elsewhere.pem", key("link.pem"));
    auto keys = load();
    EXPECT_ERRNO(keys, ELOOP);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("link.pem")) + " is a symbolic link");
}

TEST_F(TrustedKeysTest, DanglingSymlinkIsRefused) {
    trust_new_key("a.pem");
    fs::create_symlink(tmp_ / "nowhere.pem", key("gone.pub"));
    EXPECT_ERRNO(load(), ELOOP);
}

TEST_F(TrustedKeysTest, SymlinkedDirectoryIsCheckedWhereItLeads) {
    trust_new_key("a.pem");
    fs::create_directory_symlink(keys_dir(), tmp_ / "keys-link");
    EXPECT_OK(TrustedKeys::load_dir(tmp_ / "keys-link", rules()));
    set_mode(keys_dir(), 0777);
    EXPECT_ERRNO(TrustedKeys::load_dir(tmp_ / "keys-link", rules()), EPERM);
}

TEST_F(TrustedKeysTest, GarbageFileIsRefusedNamingIt) {
    trust_new_key("a.pem");
    write_file(key("notes.pem"), "remember to rotate the key in March\n");
    auto keys = load();
    EXPECT_ERRNO(keys, EINVAL);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("notes.pem")) + " is not a PEM public key");
}

TEST_F(TrustedKeysTest, EmptyKeyFileIsRefusedNamingIt) {
    write_file(key("empty.pem"), "");
    auto keys = load();
    EXPECT_ERRNO(keys, EINVAL);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("empty.pem")) + " is empty");
}

TEST_F(TrustedKeysTest, MangledPemIsRefusedNamingIt) {
    write_file(key("bad.pem"), "-----BEGIN PUBLIC KEY-----\n!!!not base64!!!\n-----END PUBLIC KEY-----\n");
    auto keys = load();
    EXPECT_ERRNO(keys, EINVAL);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("bad.pem")));
    write_file(key("bad.pem"), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    EXPECT_ERROR_MENTIONS(load(), "is not a valid public key");
}

TEST_F(TrustedKeysTest, PrivateKeyInTheDirectoryIsRefused) {
    trust_new_key("a.pem");
    ASSERT_OK(generate_ed25519_key(key("leaked.pem"), tmp_ / "leaked.pub"));  // private half, 0600
    auto keys = load();
    EXPECT_ERRNO(keys, EPERM);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("leaked.pem")) + " is a private key, which must never be");
}

TEST_F(TrustedKeysTest, TraditionalPrivateKeyInTheDirectoryIsRefused) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    ASSERT_EQ(run("openssl ecparam -name prime256v1 -genkey -noout -out " + q(key("ec.pem"))), 0);
    set_mode(key("ec.pem"), 0600);
    EXPECT_ERROR_MENTIONS(load(), "is a private key");
}

TEST_F(TrustedKeysTest, TwoKeysInOneFileAreRefused) {
    make_key(tmp_ / "one.pem");
    make_key(tmp_ / "two.pem");
    write_file(key("both.pem"), read_text(tmp_ / "one.pem") + read_text(tmp_ / "two.pem"));
    auto keys = load();
    EXPECT_ERRNO(keys, EINVAL);
    EXPECT_ERROR_MENTIONS(keys, "holds 2 PEM blocks: put exactly one public key in each file");
}

TEST_F(TrustedKeysTest, CertificateIsRefusedWithHowToExtractTheKey) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    ASSERT_EQ(run("openssl genpkey -algorithm ed25519 -out " + q(tmp_ / "ca.key")), 0);
    ASSERT_EQ(run("openssl req -x509 -new -key " + q(tmp_ / "ca.key") + " -subj /CN=bpfwarden -days 1 -out " +
                  q(key("cert.pem"))),
              0);
    set_mode(key("cert.pem"), 0644);
    auto keys = load();
    EXPECT_ERRNO(keys, EINVAL);
    EXPECT_ERROR_MENTIONS(keys, "is a certificate, not a public key: extract its key with 'openssl x509");
}

TEST_F(TrustedKeysTest, Pkcs1RsaPublicKeyIsRefusedWithHowToConvertIt) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    ASSERT_EQ(run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + q(tmp_ / "rsa.key")), 0);
    ASSERT_EQ(run("openssl rsa -in " + q(tmp_ / "rsa.key") + " -RSAPublicKey_out -out " + q(key("rsa.pem"))), 0);
    set_mode(key("rsa.pem"), 0644);
    EXPECT_ERROR_MENTIONS(load(), "is a PKCS#1 RSA public key; convert it");
}

TEST_F(TrustedKeysTest, DerPublicKeyIsRefusedWithHowToConvertIt) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    make_key(tmp_ / "a.pem");
    ASSERT_EQ(run("openssl pkey -pubin -in " + q(tmp_ / "a.pem") + " -outform DER -out " + q(key("a.pub"))), 0);
    set_mode(key("a.pub"), 0644);
    EXPECT_ERROR_MENTIONS(load(), "looks like DER, not PEM");
}

TEST_F(TrustedKeysTest, OpenSshPublicKeyIsRefusedWithHowToConvertIt) {
    write_file(key("admin.pub"),
               "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2ADBh0c3GyWQWv+cXbyWJ0NUlDSgZYq8bqaMgVL2Qb admin@host\n");
    auto keys = load();
    EXPECT_ERRNO(keys, EINVAL);
    EXPECT_ERROR_MENTIONS(keys, "is an OpenSSH public key, not PEM: convert it with 'ssh-keygen -e -m PKCS8");
}

TEST_F(TrustedKeysTest, DirectoryNamedLikeAKeyIsRefused) {
    trust_new_key("a.pem");
    fs::create_directory(key("sub.pem"));
    auto keys = load();
    EXPECT_ERRNO(keys, EINVAL);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("sub.pem")) + " is a directory, not a key file");
}

TEST_F(TrustedKeysTest, FifoNamedLikeAKeyIsRefusedWithoutBlocking) {
    trust_new_key("a.pem");
    ASSERT_EQ(mkfifo(key("pipe.pem").c_str(), 0644), 0);
    auto keys = load();
    EXPECT_ERRNO(keys, EINVAL);
    EXPECT_ERROR_MENTIONS(keys, "is a FIFO");
}

TEST_F(TrustedKeysTest, OversizedFileIsRefused) {
    write_file(key("huge.pem"), std::string(kMaxPublicKeyBytes + 1, 'A'));
    EXPECT_ERRNO(load(), EFBIG);
}

// ---------------------------------------------------------------- key types

TEST_F(TrustedKeysTest, Rsa1024KeyIsRefusedNamingFileAndType) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    trust_openssl_key("old-rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024");
    auto keys = load();
    EXPECT_ERRNO(keys, EKEYREJECTED);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("old-rsa.pem")) + ": RSA key of 1024 bits is too weak");
}

TEST_F(TrustedKeysTest, EcKeyOnAnotherCurveIsRefused) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    trust_openssl_key("p384.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384");
    auto keys = load();
    EXPECT_ERRNO(keys, EKEYREJECTED);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("p384.pem")) + ": EC key on curve secp384r1 is not supported");
}

TEST_F(TrustedKeysTest, DsaKeyIsRefused) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    ASSERT_EQ(run("openssl dsaparam -genkey -noout -out " + q(tmp_ / "dsa.key") + " 1024"), 0);
    ASSERT_EQ(run("openssl pkey -in " + q(tmp_ / "dsa.key") + " -pubout -out " + q(key("dsa.pem"))), 0);
    set_mode(key("dsa.pem"), 0644);
    auto keys = load();
    EXPECT_ERRNO(keys, EKEYREJECTED);
    EXPECT_ERROR_MENTIONS(keys, "trusted key " + q(key("dsa.pem")) + ": DSA key is not supported");
}

TEST_F(TrustedKeysTest, Ed448AndRsaPssKeysAreRefused) {
    if (!have_openssl_cli())
        GTEST_FAIL() << "needs /usr/bin/openssl: run scripts/install-deps.sh";
    trust_openssl_key("ed448.pem", "-algorithm ed448");
    EXPECT_ERROR_MENTIONS(load(), "ED448 key is not supported");
    fs::remove(key("ed448.pem"));
    trust_openssl_key("pss.pem", "-algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048");
    EXPECT_ERROR_MENTIONS(load(), "RSA-PSS key is not supported");
}

// ---------------------------------------------------------------- load_file

TEST_F(TrustedKeysTest, LoadFileReadsOneKeyOfAnyName) {
    make_key(tmp_ / "release-key.public");
    auto keys = TrustedKeys::load_file(tmp_ / "release-key.public", rules());
    ASSERT_OK(keys);
    ASSERT_EQ(keys->keys().size(), 1u);
    EXPECT_EQ(keys->keys()[0].name, "release-key.public");
    EXPECT_EQ(keys->keys()[0].algorithm, "ed25519");

    auto signature = sign_file_bytes(tmp_ / "release-key.public.key", to_bytes("manifest"));
    ASSERT_OK(signature);
    EXPECT_OK(keys->verify(to_bytes("manifest"), *signature));
}

TEST_F(TrustedKeysTest, LoadFileFollowsASymlinkButChecksWhereItLeads) {
    make_key(tmp_ / "real.pem");
    fs::create_symlink(tmp_ / "real.pem", tmp_ / "link.pem");
    EXPECT_OK(TrustedKeys::load_file(tmp_ / "link.pem", rules()));
    set_mode(tmp_ / "real.pem", 0646);
    auto keys = TrustedKeys::load_file(tmp_ / "link.pem", rules());
    EXPECT_ERRNO(keys, EPERM);
    EXPECT_ERROR_MENTIONS(keys, "world-writable");
}

TEST_F(TrustedKeysTest, LoadFileRefusesMissingFilesAndPrivateKeys) {
    auto missing = TrustedKeys::load_file(tmp_ / "absent.pem", rules());
    EXPECT_ERRNO(missing, ENOENT);
    EXPECT_ERROR_MENTIONS(missing, (tmp_ / "absent.pem").string());

    make_key(tmp_ / "a.pem");
    EXPECT_ERRNO(TrustedKeys::load_file(tmp_ / "a.pem.key", rules()), EPERM);  // the private half
    EXPECT_ERRNO(TrustedKeys::load_file(tmp_ / "a.pem", KeyDirRules{getuid() + 1}), EPERM);
}

}  // namespace
}  // namespace bpfwarden
