// Signed policy bundles: the format (one spelling, every bad line refused
// with file:line and the reason), verification of a signed directory against
// every way it can be wrong, and the policy pipeline reading a directory only
// through its verified bundle.
#include "policy/policy_bundle.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "policy/last_good_policy.h"
#include "policy/policy_compiler.h"
#include "support/file_io.h"
#include "temp_dir.h"
#include "test_helpers.h"
#include "trust/manifest.h"
#include "trust/rollback_state.h"
#include "trust/signature.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSha = "36cf336ff557df8b977d08b7b76aafdc4c683ffd4daf0d47e94a87ccafa27349";

std::span<const unsigned char> bytes_of(std::string_view text) {
    return {reinterpret_cast<const unsigned char*>(text.data()), text.size()};
}

void write_text(const fs::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string parse_error(const std::string& text) {
    auto parsed = parse_policy_bundle(bytes_of(text), "policy-bundle");
    return parsed ? "(accepted)" : parsed.error().message();
}

std::string header(const std::string& version = "3") {
    return "bpfwarden-policy-bundle 1\nversion " + version + "\ncreated 2026-12-03T06:00:00Z\n";
}

std::string file_line(const std::string& name, const std::string& size = "46", const std::string& sha = kSha) {
    return "file " + name + " " + size + " " + sha + "\n";
}

TEST(PolicyBundleFormat, RoundTripsByteForByte) {
    const std::string text = header() + file_line("10-base.toml") + file_line("20-web.toml", "0");
    auto parsed = parse_policy_bundle(bytes_of(text), "policy-bundle");
    ASSERT_OK(parsed);
    EXPECT_EQ(parsed->version, 3u);
    ASSERT_EQ(parsed->files.size(), 2u);
    EXPECT_EQ(parsed->files[1].name, "20-web.toml");
    EXPECT_EQ(serialize_policy_bundle(*parsed), text);
    EXPECT_OK(validate_policy_bundle(*parsed));
}

TEST(PolicyBundleFormat, AnEmptyDirectoryIsAnEmptyBundle) {
    auto parsed = parse_policy_bundle(bytes_of(header()), "policy-bundle");
    ASSERT_OK(parsed);
    EXPECT_TRUE(parsed->files.empty());
}

TEST(PolicyBundleFormat, EveryBadLineIsRefusedWithItsLineAndReason) {
    const struct {
        std::string text, expected;
    } cases[] = {
        {"", "policy-bundle: empty policy bundle"},
        {"bpfwarden-manifest 1\n", "policy-bundle:1: not a bpfwarden policy bundle"},
        {"bpfwarden-policy-bundle 2\n", "policy-bundle:1: unsupported policy bundle format '2'"},
        {header("0"), "policy-bundle:2: version 0 is not allowed"},
        {header("007"), "policy-bundle:2: version '007' has a leading zero"},
        {"bpfwarden-policy-bundle 1\nversion 3\n", "policy-bundle:3: expected 'created <time>'"},
        {header() + "file 10-base.toml 46 " + kSha, "policy-bundle:4: missing newline at the end of the file"},
        {header() + "file 10-base.toml 46 " + kSha + "\r\n", "policy-bundle:4: carriage return"},
        {header() + file_line("10-base.toml", "46", std::string(64, 'A')), "upper-case 'A' is not accepted"},
        {header() + file_line("10-base.toml", "46", "abc"), "sha256 of file '10-base.toml' must be 64"},
        {header() + file_line("../shadow.toml"), "file name '../shadow.toml' contains '/'"},
        {header() + file_line(".hidden.toml"), "is not a policy file name"},
        {header() + file_line("notes.txt"), "is not a policy file name"},
        {header() + file_line("20-b.toml") + file_line("10-a.toml"),
         "policy-bundle:5: file '10-a.toml' is listed "
         "after '20-b.toml'"},
        {header() + file_line("10-a.toml") + file_line("10-a.toml"), "policy-bundle:5: duplicate file '10-a.toml'"},
        {header() + file_line("10-a.toml", "99999999999"), "more than the 16777216 a policy file may have"},
        {header() + "image a 1 " + kSha + "\n", "policy-bundle:4: unknown keyword 'image'"},
        {header() + "version 4\n", "policy-bundle:4: 'version' may appear only once, on line 2"},
        {header() + "file 10-a.toml 46\n", "'file' takes three fields"},
    };
    for (const auto& c : cases)
        EXPECT_MENTIONS(parse_error(c.text), c.expected);
}

class PolicyBundleTest : public ::testing::Test {
protected:
    void SetUp() override {
        for (auto dir : {"policy", "keys", "state", "private"})
            fs::create_directory(root_ / dir);
        for (auto dir : {"", "policy", "keys", "state", "private"})
            fs::permissions(root_ / dir, fs::perms::owner_all);
        ASSERT_OK(generate_ed25519_key(root_ / "private/signing.key", root_ / "keys/fleet.pem"));
        write_text(policy_dir() / "10-base.toml", "[[file]]\npath = \"/etc/shadow\"\naction = \"deny\"\n");
        write_text(policy_dir() / "20-web.toml", "[[exec]]\npath = \"/usr/bin/nc\"\naction = \"deny\"\n");
        sign(5);
    }

    fs::path policy_dir() const { return root_ / "policy"; }

    // Describes the directory as it is and signs the bundle with `key`.
    void sign(uint64_t version, const fs::path& key = {}) {
        auto bundle = describe_policy_dir(policy_dir());
        ASSERT_OK(bundle);
        bundle->version = version;
        bundle->created = format_rfc3339_utc(1764741600);
        ASSERT_OK(validate_policy_bundle(*bundle));
        std::string text = serialize_policy_bundle(*bundle);
        write_text(policy_dir() / kPolicyBundleFile, text);
        auto signature = sign_file_bytes(key.empty() ? root_ / "private/signing.key" : key, bytes_of(text));
        ASSERT_OK(signature);
        write_text(policy_dir() / kPolicyBundleSignatureFile,
                   std::string_view(reinterpret_cast<const char*>(signature->data()), signature->size()));
    }

    PolicyTrust trust() const {
        PolicyTrust trust;
        trust.keys_dir = root_ / "keys";
        trust.state_dir = root_ / "state";
        trust.key_rules.required_owner = getuid();
        return trust;
    }
    Result<VerifiedPolicyBundle> verify() const { return verify_policy_bundle(policy_dir(), trust()); }

    TempDir temp_{"bpfwarden-bundle"};
    const fs::path& root_ = temp_.path();
};

TEST_F(PolicyBundleTest, ASignedDirectoryVerifiesAndReturnsTheHashedTexts) {
    auto verified = verify();
    ASSERT_OK(verified);
    EXPECT_EQ(verified->bundle.version, 5u);
    EXPECT_MENTIONS(verified->signer, "fleet.pem (ed25519, sha256:");
    ASSERT_EQ(verified->files.size(), 2u);
    EXPECT_EQ(verified->files[0].name, "10-base.toml");
    EXPECT_MENTIONS(verified->files[0].text, "/etc/shadow");
}

TEST_F(PolicyBundleTest, AModifiedFileIsRefused) {
    write_text(policy_dir() / "10-base.toml", "[[file]]\npath = \"/etc/shadow\"\naction = \"audit\"\n");
    EXPECT_ERRNO(verify(), EBADMSG);
    EXPECT_ERROR_MENTIONS(verify(), "10-base.toml' does not match the signed policy bundle");
}

TEST_F(PolicyBundleTest, AFileOfTheSameSizeButOtherBytesIsRefused) {
    write_text(policy_dir() / "10-base.toml", "[[file]]\npath = \"/etc/shadoX\"\naction = \"deny\"\n");
    EXPECT_ERRNO(verify(), EBADMSG);
    EXPECT_ERROR_MENTIONS(verify(), "(same size, another SHA-256)");
}

TEST_F(PolicyBundleTest, AnUnlistedPolicyFileIsRefused) {
    write_text(policy_dir() / "99-local.toml", "");
    EXPECT_ERRNO(verify(), EBADMSG);
    EXPECT_ERROR_MENTIONS(verify(), "99-local.toml' is not in the signed policy bundle");
}

TEST_F(PolicyBundleTest, AMissingListedFileIsRefused) {
    fs::remove(policy_dir() / "20-web.toml");
    EXPECT_ERROR_MENTIONS(verify(), "20-web.toml' is listed in the signed policy bundle but missing");
}

TEST_F(PolicyBundleTest, AnEditedBundleFailsItsSignature) {
    auto text = read_config_file(policy_dir() / kPolicyBundleFile, 4096, "bundle");
    ASSERT_OK(text);
    text->replace(text->find("version 5"), 9, "version 6");
    write_text(policy_dir() / kPolicyBundleFile, *text);
    EXPECT_ERRNO(verify(), EBADMSG);
    EXPECT_ERROR_MENTIONS(verify(), "policy bundle " + (policy_dir() / kPolicyBundleFile).string());
}

TEST_F(PolicyBundleTest, AnUntrustedSignerIsRefused) {
    ASSERT_OK(generate_ed25519_key(root_ / "private/other.key", root_ / "private/other.pem"));
    sign(6, root_ / "private/other.key");
    EXPECT_ERRNO(verify(), EBADMSG);
}

TEST_F(PolicyBundleTest, AnUnsignedOrMissingBundleIsRefusedWithTheFix) {
    fs::remove(policy_dir() / kPolicyBundleSignatureFile);
    EXPECT_ERRNO(verify(), ENOENT);
    EXPECT_ERROR_MENTIONS(verify(), "is not signed");
    fs::remove(policy_dir() / kPolicyBundleFile);
    EXPECT_ERROR_MENTIONS(verify(), "holds no signed policy bundle");
}

TEST_F(PolicyBundleTest, AnOlderBundleIsRefusedUntilTheFloorIsLowered) {
    ASSERT_OK(commit_policy_bundle_version(trust(), 9));
    EXPECT_ERRNO(verify(), EKEYREJECTED);
    EXPECT_ERROR_MENTIONS(verify(), "'bpfwardenctl allow-downgrade --policy 5'");
    // The bundles' floor is their own: the image sets' is untouched.
    auto image_floor = RollbackState(root_ / "state").highest_accepted();
    ASSERT_OK(image_floor);
    EXPECT_EQ(*image_floor, 0u);
    ASSERT_OK(RollbackState(root_ / "state", SignedKind::PolicyBundle).allow_downgrade_to(5));
    EXPECT_OK(verify());
}

TEST_F(PolicyBundleTest, TheSignedPipelineCarriesTheBundleAndRefusesInPlaceEdits) {
    PolicyTrust required = trust();
    auto compiled = compile_policy_dir(policy_dir(), filesystem_resolver(), nullptr, &required);
    ASSERT_OK(compiled);
    ASSERT_TRUE(compiled->bundle.has_value());
    EXPECT_EQ(compiled->bundle->version, 5u);
    EXPECT_EQ(compiled->rules.size(), 2u);

    PolicyFileOverride runtime_edit{"90-runtime.toml", std::string("[[file]]\npath = \"/x\"\naction = \"deny\"\n")};
    auto edited = compile_policy_dir(policy_dir(), filesystem_resolver(), &runtime_edit, &required);
    EXPECT_ERRNO(edited, EPERM);
    EXPECT_ERROR_MENTIONS(edited, "require-signed-policy is set");

    // Without the requirement the same directory is read file by file.
    auto unsigned_read = compile_policy_dir(policy_dir(), filesystem_resolver());
    ASSERT_OK(unsigned_read);
    EXPECT_FALSE(unsigned_read->bundle.has_value());
}

TEST_F(PolicyBundleTest, ATamperedBundleAtStartFallsBackToTheLastGoodPolicy) {
    PolicyTrust required = trust();
    auto good = compile_policy_dir(policy_dir(), filesystem_resolver(), nullptr, &required);
    ASSERT_OK(good);
    ASSERT_OK(save_last_good_policy(root_ / "state", *good));
    write_text(policy_dir() / "10-base.toml", "");  // weakened after signing
    auto chosen = choose_policy(policy_dir(), root_ / "state", filesystem_resolver(), &required);
    ASSERT_OK(chosen);
    EXPECT_EQ(chosen->source, PolicySource::LastGood);
    ASSERT_TRUE(chosen->problem.has_value());
    EXPECT_MENTIONS(chosen->problem->message(), "does not match the signed policy bundle");
    EXPECT_EQ(chosen->policy.rules.size(), 2u);
}

}  // namespace
}  // namespace bpfwarden
