#include "trust/image_set.h"

#include "support/file_io.h"
#include "trust/signature.h"

namespace bpfwarden {
namespace {

constexpr size_t kMaxSignatureBytes = 16 * 1024;

Result<BpfImage> read_checked_image(const std::filesystem::path& dir, const ManifestImage& entry) {
    auto image = read_image(dir, entry.name);
    if (!image) {
        if (image.error().errnum() == EFBIG)
            return fail(EFBIG, "image '" + entry.name + "' is larger than the manifest's " +
                                   std::to_string(entry.size) + " bytes");
        return std::unexpected(image.error());
    }
    const std::string file = image->source.string();
    if (image->bytes.size() != entry.size)
        return fail(EBADMSG, "image '" + entry.name + "' (" + file + ") is " + std::to_string(image->bytes.size()) +
                                 " bytes but the signed manifest says " + std::to_string(entry.size) + ": " +
                                 (image->bytes.size() < entry.size ? "truncated" : "larger than signed") +
                                 ", refusing it");
    if (sha256_hex(image->bytes) != entry.sha256)
        return fail(EBADMSG, "image '" + entry.name + "' (" + file +
                                 ") does not match the SHA-256 in the signed manifest: modified after signing, "
                                 "refusing it");
    return image;
}

// Every *.bpf.o in the directory must be accounted for by the manifest: an
// unlisted image is a sign of tampering or a half-done update.
Result<void> refuse_unlisted_images(const std::filesystem::path& dir, const Manifest& manifest) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        std::string file = entry.path().filename().string();
        if (!file.ends_with(".bpf.o"))
            continue;
        std::string name = file.substr(0, file.size() - std::string_view(".bpf.o").size());
        if (!manifest.find(name))
            return fail(EBADMSG, "image '" + file + "' in " + dir.string() +
                                     " is not in the signed manifest: remove it or sign a new manifest");
    }
    if (ec)
        return fail_system(ec.value(), "list image directory '" + dir.string() + "'");
    return {};
}

}  // namespace

Result<VerifiedImageSet> VerifiedImageSet::open(const ImageTrust& trust) {
    std::error_code ec;
    if (!std::filesystem::is_directory(trust.image_dir, ec))
        return fail(ENOENT,
                    "image directory '" + trust.image_dir.string() + "' does not exist (or is not a directory)");
    auto keys = trust.key_file.empty() ? TrustedKeys::load_dir(trust.keys_dir, trust.key_rules)
                                       : TrustedKeys::load_file(trust.key_file, trust.key_rules);
    if (!keys)
        return std::unexpected(keys.error());
    auto manifest_bytes = read_regular_file(trust.image_dir / kManifestFile, kManifestMaxBytes, "manifest");
    if (!manifest_bytes)
        return std::unexpected(manifest_bytes.error());
    auto signature = read_regular_file(trust.image_dir / kSignatureFile, kMaxSignatureBytes, "manifest signature");
    if (!signature) {
        if (signature.error().errnum() == ENOENT)
            return fail(ENOENT, "manifest in " + trust.image_dir.string() + " is not signed (no " + kSignatureFile +
                                    "): sign it with 'bpfwardenctl sign'");
        return std::unexpected(signature.error());
    }
    auto signer = keys->verify(*manifest_bytes, *signature);
    if (!signer)
        return std::unexpected(signer.error().wrap("manifest " + (trust.image_dir / kManifestFile).string()));

    // Only authenticated bytes are parsed.
    auto manifest = parse_manifest(*manifest_bytes, (trust.image_dir / kManifestFile).string());
    if (!manifest)
        return std::unexpected(manifest.error());
    if (trust.check_rollback)
        if (auto fresh = RollbackState(trust.state_dir).check(manifest->version); !fresh)
            return std::unexpected(fresh.error());
    if (auto listed = refuse_unlisted_images(trust.image_dir, *manifest); !listed)
        return std::unexpected(listed.error());

    VerifiedImageSet set;
    for (const auto& entry : manifest->images) {
        auto image = read_checked_image(trust.image_dir, entry);
        if (!image)
            return std::unexpected(image.error());
        set.images_.emplace(entry.name, std::move(*image));
    }
    const TrustedKey& key = **signer;
    set.signer_ = key.name + " (" + key.algorithm + ", " + key.fingerprint + ")";
    set.manifest_ = std::move(*manifest);
    return set;
}

Result<const BpfImage*> VerifiedImageSet::image(std::string_view name) const {
    auto it = images_.find(name);
    if (it == images_.end())
        return fail(ENOENT, "image '" + std::string(name) + "' is not in the signed manifest");
    return &it->second;
}

Result<void> VerifiedImageSet::commit_version(const ImageTrust& trust) const {
    return RollbackState(trust.state_dir).accept(manifest_.version);
}

}  // namespace bpfwarden
