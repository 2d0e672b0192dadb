// The last policy that was applied successfully, kept in the state directory
// so that a policy directory that is invalid at start (a typo, a half-written
// file) never means less enforcement than before: the daemon and the
// watchdog enforce the last good policy instead, and, with none saved, the
// shipped default (docs/POLICY.md, "When the policy directory is invalid").
//
// One file, <state>/last-good-policy, replaced atomically:
//   bpfwarden-last-good-policy 1
//   digest <sha256 hex of everything after this line>
//   saved <unix seconds>
//   file <name> <bytes>
//   <bytes of text>
//   file ...
// The files are the policy's sources, in merge order, as they were parsed;
// they are compiled again when used (identities are of this boot).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "policy/policy.h"
#include "policy/policy_compiler.h"
#include "support/error.h"

namespace bpfwarden {

// Saves the sources of `policy` (compiled from a policy directory).
Result<void> save_last_good_policy(const std::filesystem::path& state_dir, const CompiledPolicy& policy);

struct SavedPolicy {
    Policy policy;
    std::string digest;  // of the saved sources
    uint64_t saved = 0;  // unix seconds
};

// ENOENT when none was saved; any damage is an error naming the file.
Result<SavedPolicy> load_last_good_policy(const std::filesystem::path& state_dir);

// The shipped default policy (policy/default.toml), built into the binary.
Result<Policy> shipped_default_policy();

// Where the policy being enforced came from.
enum class PolicySource { PolicyDirectory, LastGood, ShippedDefault };
std::string_view to_string(PolicySource source);

struct ChosenPolicy {
    CompiledPolicy policy;
    PolicySource source = PolicySource::PolicyDirectory;
    std::optional<Error> problem;  // why not the policy directory (or not the last good one either)
};

// The policy directory if it compiles (and, with `require_signed`, its signed
// bundle verifies); else the last good policy; else the shipped default.
// Fails only when not even the default compiles.
Result<ChosenPolicy> choose_policy(const std::filesystem::path& policy_dir, const std::filesystem::path& state_dir,
                                   const PathResolver& resolve, const PolicyTrust* require_signed = nullptr);

}  // namespace bpfwarden
