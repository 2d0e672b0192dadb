// Anti-rollback: the highest image-set version ever accepted, kept in a
// root-only state file. An older manifest, even validly signed, is refused
// unless an admin explicitly lowers the floor (`bpfwardenctl allow-downgrade`).
#pragma once

#include <cstdint>
#include <filesystem>

#include "support/error.h"

namespace bpfwarden {

class RollbackState {
public:
    static constexpr const char* kFileName = "image-set-version";

    explicit RollbackState(const std::filesystem::path& state_dir) : file_(state_dir / kFileName) {}

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
};

}  // namespace bpfwarden
