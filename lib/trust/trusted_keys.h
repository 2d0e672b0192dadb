// The public keys whose signatures bpfwarden accepts.
//
// They live in a root-owned directory (default /etc/bpfwarden/keys/), one PEM
// SubjectPublicKeyInfo key ("-----BEGIN PUBLIC KEY-----") per file, named
// `*.pem` or `*.pub`; every such file is trusted, so a new key can be added
// before the old one is retired (rotation). Hidden files and other names
// (README, a.pem~, a.pem.dpkg-old) are ignored.
//
// Whoever can write a trusted key can load code into the kernel, so loading
// refuses, with the path, what is wrong and how to fix it:
//   - a directory or key file not owned by KeyDirRules::required_owner, or
//     group- or world-writable (EPERM);
//   - a symlink named like a key (ELOOP: it is never followed), or anything
//     else that is not a regular file (EINVAL);
//   - a file that is not exactly one PEM public key (EINVAL), a private key
//     (EPERM: it must not sit there);
//   - key types other than Ed25519, RSA >= 2048 bits and ECDSA P-256
//     (EKEYREJECTED);
//   - a directory with no keys at all (ENOKEY), a missing one (ENOENT).
// One bad file refuses the whole directory: a half-loaded key set would make
// rotation failures silent.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "support/error.h"
#include "trust/signature.h"

namespace bpfwarden {

struct TrustedKey {
    std::string name;            // file name, "release-2025.pem"
    std::filesystem::path path;  // where it was read from
    std::string algorithm;       // "ed25519", "rsa-3072", "ecdsa-p256"
    std::string fingerprint;     // "sha256:<hex of the DER SubjectPublicKeyInfo>"
    EvpPkeyPtr key;
};

struct KeyDirRules {
    uid_t required_owner = 0;  // of the directory and every key file
};

// Key files larger than this are refused (EFBIG) before reading.
inline constexpr size_t kMaxPublicKeyBytes = 64 * 1024;

class TrustedKeys {
public:
    // Every `*.pem`/`*.pub` in `dir`, sorted by name. Entries are opened
    // relative to the directory that was checked, never through its path again.
    static Result<TrustedKeys> load_dir(const std::filesystem::path& dir, KeyDirRules rules = {});

    // One key file, as `bpfwardenctl verify --key FILE` names it: any file
    // name; a symlink given here is followed, and the file it leads to is
    // checked like a key in the directory.
    static Result<TrustedKeys> load_file(const std::filesystem::path& file, KeyDirRules rules = {});

    // The key that verifies `signature` over `data`. Otherwise EBADMSG: an
    // empty signature, one whose length no trusted key produces (truncated,
    // or text instead of raw bytes), or "signature does not verify with any
    // of the N trusted keys (a.pem, b.pem)".
    Result<const TrustedKey*> verify(std::span<const unsigned char> data,
                                     std::span<const unsigned char> signature) const;

    const std::vector<TrustedKey>& keys() const { return keys_; }

private:
    std::vector<TrustedKey> keys_;
};

}  // namespace bpfwarden
