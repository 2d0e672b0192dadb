// Every bad input a signed image set can present, each refused with a
// message that names the problem. Images here are opaque bytes: the set
// verifies bytes, it never parses ELF.
#include "trust/image_set.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "temp_dir.h"
#include "test_helpers.h"
#include "trust/manifest.h"
#include "trust/signature.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

std::vector<unsigned char> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

void write_file(const fs::path& path, const std::vector<unsigned char>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<unsigned char> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

class ImageSetTest : public ::testing::Test {
protected:
    void SetUp() override {
        for (auto dir : {"images", "keys", "state", "private"})
            fs::create_directory(root_ / dir);
        ASSERT_OK(generate_ed25519_key(root_ / "private/signing.key", root_ / "keys/signing.pem"));
        images_ = {{"alpha", bytes_of("alpha image bytes")}, {"beta", bytes_of(std::string(1000, 'b'))}};
        for (const auto& [name, bytes] : images_)
            write_file(image_path(name), bytes);
        sign(7);
    }

    fs::path image_path(const std::string& name) const { return root_ / "images" / (name + ".bpf.o"); }
    fs::path manifest_path() const { return root_ / "images" / kManifestFile; }
    fs::path signature_path() const { return root_ / "images" / kSignatureFile; }

    // Writes a manifest describing images_ and signs it with `key`.
    void sign(uint64_t version, const fs::path& key = {}) {
        Manifest manifest;
        manifest.version = version;
        manifest.created = "2026-11-21T05:00:00Z";
        for (const auto& [name, bytes] : images_)
            manifest.images.push_back({name, bytes.size(), sha256_hex(bytes), {"prog_" + name}, {"map_" + name}});
        std::string text = serialize_manifest(manifest);
        write_file(manifest_path(), bytes_of(text));
        sign_existing_manifest(key);
    }
    void sign_existing_manifest(const fs::path& key = {}) {
        auto signature = sign_file_bytes(key.empty() ? root_ / "private/signing.key" : key, read_file(manifest_path()));
        ASSERT_OK(signature);
        write_file(signature_path(), *signature);
    }

    ImageTrust trust() const {
        ImageTrust trust;
        trust.image_dir = root_ / "images";
        trust.keys_dir = root_ / "keys";
        trust.state_dir = root_ / "state";
        trust.key_rules.required_owner = getuid();
        return trust;
    }
    Result<VerifiedImageSet> open() const { return VerifiedImageSet::open(trust()); }

    TempDir temp_{"bpfwarden-imageset"};
    const fs::path& root_ = temp_.path();
    std::vector<std::pair<std::string, std::vector<unsigned char>>> images_;
};

TEST_F(ImageSetTest, ValidSetGivesExactlyTheSignedBytes) {
    auto set = open();
    ASSERT_OK(set);
    EXPECT_EQ(set->manifest().version, 7u);
    EXPECT_NE(set->signer().find("signing.pem"), std::string::npos) << set->signer();
    auto alpha = set->image("alpha");
    ASSERT_OK(alpha);
    EXPECT_EQ((*alpha)->bytes, images_[0].second);
    EXPECT_ERRNO(set->image("gamma"), ENOENT);
}

TEST_F(ImageSetTest, UnsignedManifestIsRefused) {
    fs::remove(signature_path());
    EXPECT_ERROR_MENTIONS(open(), "is not signed (no manifest.sig)");
}

TEST_F(ImageSetTest, SignatureByUntrustedKeyIsRefused) {
    ASSERT_OK(generate_ed25519_key(root_ / "private/other.key", root_ / "private/other.pem"));
    sign_existing_manifest(root_ / "private/other.key");
    EXPECT_ERROR_MENTIONS(open(), "signature does not verify with the trusted key (signing.pem)");
}

TEST_F(ImageSetTest, SignatureOverDifferentBytesIsRefused) {
    auto signature = sign_file_bytes(root_ / "private/signing.key", bytes_of("some other manifest\n"));
    ASSERT_OK(signature);
    write_file(signature_path(), *signature);
    EXPECT_ERROR_MENTIONS(open(), "does not verify");
}

TEST_F(ImageSetTest, ManifestWithOneFlippedByteIsRefused) {
    auto manifest = read_file(manifest_path());
    manifest[manifest.size() / 2] ^= 0x01;
    write_file(manifest_path(), manifest);
    EXPECT_ERROR_MENTIONS(open(), "does not verify");
}

TEST_F(ImageSetTest, ImageWithOneFlippedByteIsRefused) {
    auto image = images_[1].second;
    image[10] ^= 0x01;
    write_file(image_path("beta"), image);
    EXPECT_ERROR_MENTIONS(open(), "image 'beta'");
    EXPECT_ERROR_MENTIONS(open(), "does not match the SHA-256 in the signed manifest");
}

TEST_F(ImageSetTest, TruncatedImageIsRefused) {
    auto image = images_[1].second;
    image.resize(500);
    write_file(image_path("beta"), image);
    EXPECT_ERROR_MENTIONS(open(), "is 500 bytes but the signed manifest says 1000: truncated");
}

TEST_F(ImageSetTest, ImageLargerThanTheManifestSaysIsRefused) {
    auto image = images_[1].second;
    image.push_back('x');
    write_file(image_path("beta"), image);
    EXPECT_ERROR_MENTIONS(open(), "is 1001 bytes but the signed manifest says 1000: larger than signed");
}

TEST_F(ImageSetTest, ExtraImageNotInTheManifestIsRefused) {
    write_file(image_path("intruder"), bytes_of("not signed"));
    EXPECT_ERROR_MENTIONS(open(), "image 'intruder.bpf.o'");
    EXPECT_ERROR_MENTIONS(open(), "is not in the signed manifest");
}

TEST_F(ImageSetTest, MissingImageIsRefused) {
    fs::remove(image_path("alpha"));
    EXPECT_ERRNO(open(), ENOENT);
    EXPECT_ERROR_MENTIONS(open(), "alpha.bpf.o");
}

TEST_F(ImageSetTest, SignedManifestThatIsNotValidSyntaxIsRefused) {
    write_file(manifest_path(), bytes_of("this is not a manifest\n"));
    sign_existing_manifest();
    EXPECT_ERRNO(open(), EINVAL);
    EXPECT_ERROR_MENTIONS(open(), "manifest:1:");
}

TEST_F(ImageSetTest, EmptyManifestIsRefused) {
    write_file(manifest_path(), {});
    EXPECT_ERROR_MENTIONS(open(), "manifest '" + manifest_path().string() + "' is empty");
}

TEST_F(ImageSetTest, EmptySignatureIsRefused) {
    write_file(signature_path(), {});
    EXPECT_ERROR_MENTIONS(open(), "manifest signature '" + signature_path().string() + "' is empty");
}

TEST_F(ImageSetTest, EmptyImageIsRefused) {
    write_file(image_path("alpha"), {});
    EXPECT_ERROR_MENTIONS(open(), "is empty");
}

TEST_F(ImageSetTest, SymlinkSwappedInForAnImageIsRefused) {
    fs::rename(image_path("alpha"), root_ / "alpha-real.bpf.o");
    fs::create_symlink(root_ / "alpha-real.bpf.o", image_path("alpha"));
    EXPECT_ERROR_MENTIONS(open(), "alpha.bpf.o' is a symlink, refusing it");
}

TEST_F(ImageSetTest, OlderVersionIsRefusedAsRollback) {
    ASSERT_OK(RollbackState(root_ / "state").accept(9));
    EXPECT_ERRNO(open(), EKEYREJECTED);
    EXPECT_ERROR_MENTIONS(open(), "manifest version 7 is older than the highest accepted version 9");
}

TEST_F(ImageSetTest, CommitRecordsTheVersion) {
    auto set = open();
    ASSERT_OK(set);
    ASSERT_OK(set->commit_version(trust()));
    EXPECT_EQ(*RollbackState(root_ / "state").highest_accepted(), 7u);
    sign(6);
    EXPECT_ERRNO(open(), EKEYREJECTED);
}

TEST_F(ImageSetTest, KeyFileThatIsNotAKeyIsRefused) {
    write_file(root_ / "keys/garbage.pem",
               bytes_of("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"));
    EXPECT_ERROR_MENTIONS(open(), "garbage.pem");
}

TEST_F(ImageSetTest, WorldWritableKeyDirectoryIsRefused) {
    ASSERT_EQ(chmod((root_ / "keys").c_str(), 0777), 0);
    EXPECT_ERROR_MENTIONS(open(), "world-writable");
}

}  // namespace
}  // namespace bpfwarden
