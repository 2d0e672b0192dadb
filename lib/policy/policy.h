// Policy files: what the administrator asks bpfwarden to enforce.
//
// Policy lives in TOML files in a directory (default /etc/bpfwarden/policy.d/).
// The `*.toml` files are read in lexical (byte) order and merged; hidden files
// and anything not ending in ".toml" (README, foo.toml~, foo.toml.dpkg-old,
// .foo.toml.swp) are ignored. docs/POLICY.md is the reference; in short:
//
//   protect = true            # self-protection (default true)
//   deny_anonymous_exec = false  # refuse running memfd / deleted files
//   deny_write_exec = false   # refuse memory going from writable to executable
//   audit_bpf_reads = false   # bpf() audit reports read-only commands too
//   redact_paths = ["/home/"] # executed paths reported as "[FILTERED]" (at most 4)
//   max_rules = 100000        # ceiling on [[file]] and on [[exec]] rules (each)
//
//   [[file]]                  # opening, truncating, renaming, ... this file
//   path = "/etc/shadow"      # "/srv/secret/" (trailing slash): everything beneath
//   action = "audit"          # "deny" | "audit"
//   recursive = false         # true: the same as a trailing slash
//
//   [[exec]]                  # running this file: execve, ld.so, mmap(PROT_EXEC)
//   path = "/usr/bin/nc.openbsd"
//   action = "deny"
//
//   [bpf]                     # lsm/bpf: restricted bpf() commands
//   mode = "deny"             # "deny" | "audit" | "off" (default "audit")
//   allow = ["/usr/sbin/bpftool", { path = "/usr/lib/systemd/systemd", pid1 = true },
//            { path = "/usr/bin/bpftrace", scope = "admins" }]
//   restrict = ["prog_load"]  # default: default_restricted_bpf_commands()
//
// Merging: rules of every file are kept; the same path named twice for the
// same kind becomes one rule whose action is the stricter one (deny > audit).
// bpf.allow lists concatenate. bpf.mode, bpf.restrict and each top-level
// option may be set in at most one file, so that no file silently overrides
// another.
//
// Errors are EINVAL with "<file>:<line>: <reason>" as context, the file named
// as it was given to the loader. Paths here are what the administrator wrote;
// turning them into map keys is policy_compiler.h's job.
#pragma once

#include <climits>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/bpf_commands.h"
#include "support/error.h"
#include "support/text.h"

namespace bpfwarden {

enum class RuleKind { FileOpen, Exec };
enum class RuleAction { Audit, Deny };
enum class BpfGuardMode { Off, Audit, Deny };

struct SourceLocation {
    std::string file;
    int line = 0;

    friend bool operator==(const SourceLocation&, const SourceLocation&) = default;
};

enum class PolicyMode { Enforce, Audit };
enum class ScopeKind { Unit, Cgroup, Uid, Gid, Exe };

// Who a rule is for (docs/POLICY.md, "Scopes"). Inline in a rule
// (scope = { unit = "nginx.service" }) or named ([scope.web], scope = "web").
struct ScopeSpec {
    ScopeKind kind = ScopeKind::Uid;
    std::string value;                   // unit name, cgroup path or executable path
    uint32_t id = 0;                     // uid or gid
    std::string slice = "system.slice";  // unit: the slice it runs in
    PolicyMode mode = PolicyMode::Enforce;
    std::string name;  // [scope.NAME]; empty for an inline scope
    SourceLocation where;

    // "unit=nginx.service slice=system.slice", "uid=33", ...: what the scope
    // selects (mode and name aside); equal selectors are the same scope.
    std::string selector() const;

    friend bool operator==(const ScopeSpec&, const ScopeSpec&) = default;
};

// [[allowlist]]: in the scope, only the listed executables run (docs/POLICY.md,
// "Exec allowlists").
struct ExecAllowlist {
    std::optional<ScopeSpec> scope = std::nullopt;
    std::string scope_ref{};
    std::vector<std::string> entries{};             // absolute paths; "/dir/" lists everything beneath
    std::optional<PolicyMode> mode = std::nullopt;  // nullopt: the scope's
    SourceLocation where{};
};

struct PathRule {
    RuleKind kind;
    std::string path;  // without the trailing slash of a subtree rule
    RuleAction action;
    SourceLocation where;
    bool subtree = false;                           // everything beneath the directory `path`
    bool pid1_only = false;                         // bpf.allow: only when running as PID 1
    std::optional<ScopeSpec> scope = std::nullopt;  // nullopt: every process
    std::string scope_ref{};                        // scope = "NAME": a [scope.NAME] table (scope_of())
};

// A top-level option and where it was set (nullopt: its default).
template <typename T>
struct PolicySetting {
    T value;
    std::optional<SourceLocation> where;
};
using PolicyOption = PolicySetting<bool>;

// max_rules: how many [[file]] rules, and how many [[exec]] rules, a policy
// may have. The default leaves room to grow; the most it may be set to is
// what the file rule map holds (BW_FILE_RULES_MAX, 131072) less the entries
// bpfwarden keeps for itself (policy_compiler.h checks both numbers).
inline constexpr uint32_t kDefaultMaxRules = 100000;
inline constexpr uint32_t kMaxRulesLimit = 131008;

struct PolicyOptions {
    // mode = "audit": every deny reports "would deny" and lets the action through.
    PolicyMode mode = PolicyMode::Enforce;
    std::optional<SourceLocation> mode_where;
    PolicyOption protect{true, std::nullopt};
    PolicyOption deny_anonymous_exec{false, std::nullopt};
    PolicyOption deny_write_exec{false, std::nullopt};
    // bpf() audit reports lookups, id walks, object info and obj_get too
    // (by default only commands that can change state).
    PolicyOption audit_bpf_reads{false, std::nullopt};
    // Executed paths under these prefixes are reported as BW_REDACTED_PATH,
    // decided in the kernel (at most BW_MAX_REDACT, each < BW_REDACT_LEN bytes).
    PolicySetting<std::vector<std::string>> redact_paths{{}, std::nullopt};
    PolicySetting<uint32_t> max_rules{kDefaultMaxRules, std::nullopt};
};

struct BpfGuardPolicy {
    BpfGuardMode mode = BpfGuardMode::Audit;
    // Executables allowed to use restricted commands: kind Exec, action Audit;
    // only path and where carry meaning. Unique by path.
    std::vector<PathRule> allow;
    uint64_t restricted_cmds = default_restricted_bpf_commands();  // bit (1 << cmd)

    // Where mode / restrict were set; empty while they hold their defaults.
    // Merging uses them to refuse a second file setting the same key.
    std::optional<SourceLocation> mode_where;
    std::optional<SourceLocation> restrict_where;
};

// The signed bundle a policy was read through (policy_bundle.h).
struct PolicyBundleInfo {
    uint64_t version = 0;
    std::string created;
    std::string signer;
    bool operator==(const PolicyBundleInfo&) const = default;
};

struct Policy {
    std::vector<PathRule> rules;            // unique by (kind, path, subtree, scope), in order of first appearance
    std::vector<ScopeSpec> scopes;          // [scope.NAME] tables, unique by name
    std::vector<ExecAllowlist> allowlists;  // [[allowlist]] tables, in order
    BpfGuardPolicy bpf;
    PolicyOptions options;
    std::vector<std::string> sources;        // files merged into this policy, in order
    std::vector<std::string> source_texts;   // their text as parsed, one per source
    std::optional<PolicyBundleInfo> bundle;  // set when read through a verified signed bundle
};

// Largest policy file accepted.
inline constexpr std::size_t kMaxPolicyFileBytes = 16 << 20;

// Longest path a rule may name, in bytes (PATH_MAX counts the NUL).
inline constexpr std::size_t kMaxPolicyPathLength = PATH_MAX - 1;

// One file's text; source_name is the file name errors and locations use.
Result<Policy> parse_policy(std::string_view text, const std::string& source_name);

// Reads and parses one file; the file is named by `file` as given. Only
// regular files (symlinks followed) are read.
Result<Policy> load_policy_file(const std::filesystem::path& file);

// One file of the directory as it would be after an edit: `text` in place of
// the file called `name` (added if there is none), or no such file at all.
struct PolicyFileOverride {
    std::string name;                 // "90-runtime.toml"
    std::optional<std::string> text;  // nullopt: the file is left out
};

struct PolicyTrust;  // policy_bundle.h

// Every policy file in `dir`, merged, with `override` applied when given. An
// empty directory is an empty policy; a missing one is ENOENT. With
// `require_signed`, the files are exactly those of the directory's verified
// signed bundle (verify_policy_bundle) and an override is refused.
Result<Policy> load_policy_dir(const std::filesystem::path& dir, const PolicyFileOverride* override = nullptr,
                               const PolicyTrust* require_signed = nullptr);

// Whether the policy directory reads a file of this name ("NAME.toml", not
// starting with '.').
bool is_policy_file_name(const std::string& name);

// Merges `from` (a later file) into `into`, following the rules above. A
// refused merge (bpf.mode, bpf.restrict or an option set in both) leaves
// `into` unchanged.
Result<void> merge_policy(Policy& into, Policy from);

// The scope `rule` is for: its inline scope, the [scope.NAME] table it names
// (defined in any file of the policy), or nullopt for every process. An
// unknown name is an error naming the rule's file and line.
Result<std::optional<ScopeSpec>> scope_of(const Policy& policy, const PathRule& rule);
// The same for an allowlist, whose scope is required.
Result<ScopeSpec> scope_of(const Policy& policy, const ExecAllowlist& allowlist);

// "audit"/"deny", "off"/"audit"/"deny", "file"/"exec" — the policy file spelling.
std::string_view to_string(RuleAction action);
std::string_view to_string(PolicyMode mode);
std::string_view to_string(ScopeKind kind);
std::string_view to_string(BpfGuardMode mode);
std::string_view to_string(RuleKind kind);
// "file:line"
std::string to_string(const SourceLocation& where);

// Stricter of two actions (deny > audit).
RuleAction stricter(RuleAction a, RuleAction b);

}  // namespace bpfwarden
