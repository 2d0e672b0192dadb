// Runtime rule edits (D-Bus AddRule/RemoveRule), persisted as one file of
// the policy directory, 90-runtime.toml, so that a restart keeps them.
//
// An edit is planned before anything is written: the arguments are checked,
// the new file text is built (toml++ edits the parsed file, so whatever else
// an administrator put in it stays; comments do not), and the whole policy
// directory, with that text in place of the runtime file, is parsed, merged
// and compiled exactly as the daemon will load it. Only a policy that passes
// is written, atomically (temporary file in the same directory, fsync,
// rename, fsync of the directory). An edit that would make the policy
// invalid therefore changes nothing, and the error names the file, line and
// reason.
//
// Not thread-safe; the daemon uses it from its event loop. Never logs.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "policy/policy.h"
#include "policy/policy_compiler.h"

namespace bpfwarden {

class RuntimeRules {
public:
    static constexpr const char* kFileName = "90-runtime.toml";

    // `require_signed` (may be nullptr) outlives this object: with it, every
    // edit is refused, since the directory changes only as a signed bundle.
    RuntimeRules(std::filesystem::path policy_dir, const PolicyTrust* require_signed);

    const std::filesystem::path& file() const { return file_; }

    // What an edit would write; `changed` is false when the file already
    // says so (adding a rule that is there with the same action).
    struct Plan {
        std::optional<std::string> old_text;  // empty: the file does not exist yet
        std::string new_text;
        bool changed = false;
    };

    // kind "file" | "exec", action "deny" | "audit", an absolute path.
    Result<Plan> plan_add(std::string_view kind, std::string_view path, std::string_view action) const;
    // NotFound names the file that defines the rule when it is not a runtime
    // rule (`in_force` is the running policy, for that message).
    Result<Plan> plan_remove(std::string_view kind, std::string_view path, const CompiledPolicy& in_force) const;

    // Writes `text` as the runtime file, atomically. nullopt removes the file.
    Result<void> write(const std::optional<std::string>& text) const;

private:
    Result<std::optional<std::string>> read_current() const;
    // The directory's merged policy with `text` as the runtime file, compiled.
    Result<void> validate(const std::string& text) const;

    std::filesystem::path dir_;
    std::filesystem::path file_;
    const PolicyTrust* require_signed_;
};

// Checks a rule path given over D-Bus, as the policy parser would, and more
// strictly (no control characters). The message says what to fix.
Result<void> check_rule_path(std::string_view path);

}  // namespace bpfwarden
