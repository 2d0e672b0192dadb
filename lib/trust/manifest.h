// The manifest of a signed BPF image set.
//
// `bpfwardenctl sign` writes it together with a detached signature over its
// exact bytes; the loader verifies that signature over the raw bytes first and
// only then parses. The parser is still written for hostile input (it is
// fuzzed): the signature proves who wrote the manifest, not that the signer's
// tool was bug-free.
//
// The format is strict, line-oriented ASCII with exactly one accepted
// spelling for every manifest: parse_manifest(x) succeeds only when
// serialize_manifest(parse_manifest(x)) == x byte for byte. docs/MANIFEST.md
// is the specification:
//
//   bpfwarden-manifest 1
//   version 7
//   created 2026-11-21T05:00:00Z
//   image file_guard 23456 <64 lower-case hex digits>
//   program file_guard bw_file_open
//   map file_guard file_rules
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "support/error.h"

namespace bpfwarden {

// The only format this code reads and writes; anything else is refused.
inline constexpr uint32_t kManifestFormat = 1;

// Limits, all inclusive. They bound the parser's work on hostile input and
// match what the loader accepts (kManifestMaxImageBytes == kMaxImageBytes).
inline constexpr size_t kManifestMaxBytes = 1024 * 1024;
inline constexpr uint64_t kManifestMaxImageBytes = 16 * 1024 * 1024;
inline constexpr size_t kManifestMaxImages = 256;
inline constexpr size_t kManifestMaxProgramsPerImage = 256;
inline constexpr size_t kManifestMaxMapsPerImage = 256;
inline constexpr size_t kManifestMaxNameLength = 64;
// Anti-rollback versions fit a signed 64-bit integer (D-Bus 'x', JSON, SQL).
inline constexpr uint64_t kManifestMaxVersion = 9223372036854775807ULL;

struct ManifestImage {
    std::string name;    // [A-Za-z0-9_-], not starting with '-'; file <name>.bpf.o
    uint64_t size = 0;   // bytes, 1..kManifestMaxImageBytes
    std::string sha256;  // 64 lower-case hex digits
    // An image lists at least one program or map (maps alone: the policy store).
    std::vector<std::string> programs;  // [A-Za-z0-9_], in object order
    std::vector<std::string> maps;      // [A-Za-z0-9_.] (".bss", "file_gua.bss"), in object order

    bool operator==(const ManifestImage&) const = default;
};

struct Manifest {
    uint32_t format = kManifestFormat;
    uint64_t version = 0;  // 1..kManifestMaxVersion, increases with every signed set
    std::string created;   // RFC 3339 UTC, exactly "YYYY-MM-DDTHH:MM:SSZ"
    std::vector<ManifestImage> images;

    // The image called `name`, or nullptr.
    const ManifestImage* find(std::string_view name) const;

    bool operator==(const Manifest&) const = default;
};

// Parses and validates `bytes`. Every error is EINVAL with the context
// "<source_name>:<line>: <reason>" (or "<source_name>: <reason>" for the
// empty and oversized cases), e.g.
//   "/usr/lib/bpfwarden/images/manifest:4: sha256 of image 'file_guard' must be 64 lower-case hex digits".
Result<Manifest> parse_manifest(std::span<const unsigned char> bytes, const std::string& source_name);

// The canonical text: images, programs and maps in the order given. Only
// meaningful for a manifest that validate_manifest() accepts; for such a
// manifest, parse_manifest(serialize_manifest(m)) == m.
std::string serialize_manifest(const Manifest& manifest);

// The parser's rules for a manifest built in code (the signer), so that what
// is signed is known to parse. Errors are EINVAL, "manifest: <reason>".
Result<void> validate_manifest(const Manifest& manifest);

// `t` as "YYYY-MM-DDTHH:MM:SSZ" in UTC, for Manifest::created. Times outside
// 1970-01-01T00:00:00Z..9999-12-31T23:59:59Z are clamped to that range, the
// range the parser accepts.
std::string format_rfc3339_utc(std::time_t t);

}  // namespace bpfwarden
