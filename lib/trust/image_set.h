// The signed set of BPF images: the only way bpfwarden gets bytes to load.
//
//   <image-dir>/manifest       what the set contains (lib/manifest.h)
//   <image-dir>/manifest.sig   detached signature over the manifest's bytes
//   <image-dir>/<name>.bpf.o   the images
//
// Opening the set verifies the signature against the trusted keys first,
// then parses the manifest, applies the anti-rollback floor, and reads every
// image once, checking its size and SHA-256. The bytes kept here are the
// bytes handed to libbpf; nothing reopens an image afterwards.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "support/error.h"
#include "trust/bpf_image.h"
#include "trust/manifest.h"
#include "trust/rollback_state.h"
#include "trust/trusted_keys.h"

namespace bpfwarden {

inline constexpr const char* kManifestFile = "manifest";
inline constexpr const char* kSignatureFile = "manifest.sig";

struct ImageTrust {
    std::filesystem::path image_dir;
    std::filesystem::path keys_dir;   // trusted public keys
    std::filesystem::path key_file;   // instead of keys_dir: trust exactly this key
    std::filesystem::path state_dir;  // anti-rollback floor
    KeyDirRules key_rules;
    bool check_rollback = true;
};

class VerifiedImageSet {
public:
    static Result<VerifiedImageSet> open(const ImageTrust& trust);

    const Manifest& manifest() const { return manifest_; }
    const std::string& signer() const { return signer_; }  // "<file> (<algorithm>, <fingerprint>)"

    // ENOENT when the manifest does not list `name`.
    Result<const BpfImage*> image(std::string_view name) const;

    // Raises the anti-rollback floor to this set's version: call once the set
    // is in use.
    Result<void> commit_version(const ImageTrust& trust) const;

private:
    Manifest manifest_;
    std::string signer_;
    std::map<std::string, BpfImage, std::less<>> images_;
};

}  // namespace bpfwarden
