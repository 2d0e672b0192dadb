// Anti-rollback: the highest image-set (or policy-bundle) version ever
// accepted, kept in a root-only state file. An older manifest or bundle, even
// validly signed, is refused unless an admin explicitly lowers the floor
// (`bpfwardenctl allow-downgrade [--policy]`).
#pragma once

#include <cstdint>
#include <filesystem>

#include "support/error.h"

namespace bpfwarden {

// What a floor is for: each signed kind has its own counter, so signing a
// policy bundle never has to know the image set's version or the reverse.
enum class SignedKind { ImageSet, PolicyBundle };

class RollbackState {
public:
    static constexpr const char* kFileName = "image-set-version";
    static constexpr const char* kPolicyFileName = "policy-bundle-version";

    explicit RollbackState(const std::filesystem::path& state_dir, SignedKind kind = SignedKind::ImageSet)
        : file_(state_dir / (kind == SignedKind::ImageSet ? kFileName : kPolicyFileName)), kind_(kind) {}

    const std::filesystem::path& file() const { return file_; }

    // 0 when nothing was accepted yet. A state file that is not root-only,
    // or does not hold one decimal number, is an error (never "no floor").
    Result<uint64_t> highest_accepted() const;

    // EKEYREJECTED when `version` is below the floor, with the command that
    // would allow it.
    Result<void> check(uint64_t version) const;

    // Raises the floor to `version` (never lowers it). Atomic: write, fsync, rename.
    Result<void> accept(uint64_t version) const;

    // Sets the floor to exactly `version`: the admin's explicit downgrade.
    Result<void> allow_downgrade_to(uint64_t version) const;

private:
    Result<void> store(uint64_t version) const;
    std::filesystem::path file_;
    SignedKind kind_;
};

}  // namespace bpfwarden
