// Signed policy bundles: a policy directory signed once, for fleets.
//
//   <policy-dir>/policy-bundle       what the bundle contains (below)
//   <policy-dir>/policy-bundle.sig   detached signature over its bytes
//   <policy-dir>/*.toml              the policy files it lists
//
// `bpfwardenctl policy sign` writes both files with the keys and signature
// formats of the image sets (trust/signature.h). With require-signed-policy,
// bpfwardend and bpfwarden-watchdog read a policy directory only through
// verify_policy_bundle(): signature first, then the format, the bundle's own
// anti-rollback floor, then every listed file's size and SHA-256; a policy
// file the bundle does not list is refused. The texts returned are the bytes
// that were hashed: nothing reopens a file between checking and parsing.
//
// The format follows the manifest's rules (docs/POLICY.md, "Signed policy
// bundles"): strict ASCII lines, one spelling per bundle, files in byte order.
//
//   bpfwarden-policy-bundle 1
//   version 12
//   created 2026-12-03T06:00:00Z
//   file 10-base.toml 1234 <64 lower-case hex digits>
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "support/error.h"
#include "trust/image_set.h"
#include "trust/trusted_keys.h"

namespace bpfwarden {

inline constexpr const char* kPolicyBundleFile = "policy-bundle";
inline constexpr const char* kPolicyBundleSignatureFile = "policy-bundle.sig";
inline constexpr uint32_t kPolicyBundleFormat = 1;
inline constexpr size_t kPolicyBundleMaxBytes = 1024 * 1024;
inline constexpr size_t kPolicyBundleMaxFiles = 4096;
inline constexpr size_t kPolicyBundleMaxNameLength = 255;  // NAME_MAX

struct PolicyBundleFile {
    std::string name;   // a policy file name: [A-Za-z0-9_.-], ends ".toml", no leading '.'
    uint64_t size = 0;  // bytes, 0..kMaxPolicyFileBytes
    std::string sha256;
    bool operator==(const PolicyBundleFile&) const = default;
};

struct PolicyBundle {
    uint32_t format = kPolicyBundleFormat;
    uint64_t version = 0;                 // 1..2^63-1, its own counter (not the image set's)
    std::string created;                  // "YYYY-MM-DDTHH:MM:SSZ"
    std::vector<PolicyBundleFile> files;  // strictly ascending by name (merge order)
    bool operator==(const PolicyBundle&) const = default;
};

// Errors are EINVAL, "<source_name>:<line>: <reason>".
Result<PolicyBundle> parse_policy_bundle(std::span<const unsigned char> bytes, const std::string& source_name);
std::string serialize_policy_bundle(const PolicyBundle& bundle);
// The parser's rules for a bundle built in code; errors "policy bundle: <reason>".
Result<void> validate_policy_bundle(const PolicyBundle& bundle);

// Describes every policy file in `dir` for signing (version and created are
// the caller's). ENOENT-free: an empty directory is an empty bundle.
Result<PolicyBundle> describe_policy_dir(const std::filesystem::path& dir);

// What verifies a bundle on a host.
struct PolicyTrust {
    std::filesystem::path keys_dir;   // trusted public keys (the image sets' directory)
    std::filesystem::path key_file;   // instead of keys_dir: trust exactly this key
    std::filesystem::path state_dir;  // the bundle's anti-rollback floor
    KeyDirRules key_rules;
    bool check_rollback = true;
};

// Bundles are signed with the image sets' keys; their floor lives beside the image set's.
PolicyTrust policy_trust_for(const ImageTrust& images);

struct VerifiedPolicyFile {
    std::string name;
    std::string text;
};

struct VerifiedPolicyBundle {
    PolicyBundle bundle;
    std::string signer;                     // "<file> (<algorithm>, <fingerprint>)"
    std::vector<VerifiedPolicyFile> files;  // in bundle order
};

// EBADMSG for a bad signature, a modified, missing or unlisted file;
// EKEYREJECTED for a bundle older than the floor; ENOENT when `dir` has no
// bundle (or no signature). Every message names the file and the fix.
Result<VerifiedPolicyBundle> verify_policy_bundle(const std::filesystem::path& dir, const PolicyTrust& trust);

// Raises the bundle floor to `version`: once the bundle is in force.
Result<void> commit_policy_bundle_version(const PolicyTrust& trust, uint64_t version);

}  // namespace bpfwarden
