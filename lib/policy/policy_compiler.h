// PolicyCompiler: turns a Policy (paths, as the administrator wrote them) into
// the exact contents of the policy maps the BPF programs read
// (bpf/include/bpfwarden/policy_maps.bpf.h).
//
// The programs know files by identity, so every path is resolved here, in
// user space, into up to two keys (docs/POLICY.md, "How a path is matched"):
//   - the file's inode (dev, ino, generation): hard links, renames of the file
//     itself, bind mounts and other mount namespaces;
//   - its name in its directory (the directory's inode and the name's hash):
//     whatever file sits at the path, so that a file replaced by rename, or
//     created later, is covered from its first use.
// A subtree rule ("/srv/secret/") keys the directory itself; the programs
// walk up from a file to find it. Symlinks are followed: a rule naming a
// symlink protects its target, at the target's name. Two paths naming one
// file become one map entry with the stricter action.
//
// A path that cannot be resolved at all (its directory does not exist) is not
// an error: the rule is kept, inactive, and reported in `warnings`, because a
// policy may well name software that is not installed (yet). A path whose
// directory exists is active even when the file does not: it covers the file
// from the moment it is created.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bpfwarden/abi.h"
#include "policy/file_identity.h"
#include "policy/policy.h"
#include "support/error.h"

namespace bpfwarden {

// rule_id of entries bpfwarden adds on its own; never an index into
// CompiledPolicy::rules.
inline constexpr uint32_t kSelfRuleId = 0xFFFFFFFF;            // the daemon in bpf.allow (protection off)
inline constexpr uint32_t kWatchdogRuleId = 0xFFFFFFFE;        // the watchdog in bpf.allow (protection off)
inline constexpr uint32_t kCanaryRuleId = 0xFFFFFFFD;          // the watchdog's always-denied canary
inline constexpr uint32_t kAnonymousExecRuleId = 0xFFFFFFFC;   // deny_anonymous_exec (set by the programs)
inline constexpr uint32_t kWriteExecRuleId = 0xFFFFFFFB;       // deny_write_exec (set by the programs)
inline constexpr uint32_t kProtectedFilesRuleId = 0xFFFFFFFA;  // bpfwarden's own pins, images, keys, state
inline constexpr uint32_t kProtectedExesRuleId = 0xFFFFFFF9;   // bpfwarden's own executables

// Map capacities: max_entries in bpf/include/bpfwarden/policy_maps.bpf.h (the
// rule maps take theirs from abi.h, as here; the host test compares every one
// with the loaded map). kImplicitReserve entries of each are kept for what
// bpfwarden adds itself.
inline constexpr std::size_t kImplicitReserve = 64;
inline constexpr std::size_t kFileRulesCapacity = BW_FILE_RULES_MAX;
inline constexpr std::size_t kExecRulesCapacity = BW_EXEC_RULES_MAX;
inline constexpr std::size_t kDirentsCapacity = BW_DIRENTS_MAX;
inline constexpr std::size_t kDirRulesCapacity = BW_DIR_RULES_MAX;
inline constexpr std::size_t kBpfAllowCapacity = 1024;
inline constexpr std::size_t kExecAllowedCapacity = 65536;
static_assert(kMaxRulesLimit == kFileRulesCapacity - kImplicitReserve,
              "max_rules may go up to what the file rule map holds for the policy");
inline constexpr std::size_t kSelfExesCapacity = 16;

// A rule for every process (no scope, nothing else).
inline bw_rule plain_rule(uint32_t action, uint32_t rule_id, uint32_t flags = 0) {
    bw_rule rule{};
    rule.action = action;
    rule.rule_id = rule_id;
    rule.flags = flags;
    return rule;
}

// Resolves an absolute path to what the programs will see there.
using PathResolver = std::function<PathTarget(const std::string& path)>;

// The real resolver: the filesystem, now (resolve_path()).
PathResolver filesystem_resolver();

struct InodeKeyLess {
    bool operator()(const bw_inode_key& a, const bw_inode_key& b) const {
        return std::tie(a.dev, a.ino, a.gen, a.is_dir) < std::tie(b.dev, b.ino, b.gen, b.is_dir);
    }
};
struct AllowedKeyLess {
    bool operator()(const bw_allowed_key& a, const bw_allowed_key& b) const {
        return std::tie(a.list, a.kind, a.id.dev, a.id.ino, a.id.gen, a.id.is_dir, a.name_hash) <
               std::tie(b.list, b.kind, b.id.dev, b.id.ino, b.id.gen, b.id.is_dir, b.name_hash);
    }
};
struct DirentKeyLess {
    bool operator()(const bw_dirent_key& a, const bw_dirent_key& b) const {
        return std::tie(a.dir.dev, a.dir.ino, a.dir.gen, a.dir.is_dir, a.name_hash) <
               std::tie(b.dir.dev, b.dir.ino, b.dir.gen, b.dir.is_dir, b.name_hash);
    }
};

template <typename Value>
using InodeMap = std::map<bw_inode_key, Value, InodeKeyLess>;

// The contents of the rule maps, sorted by key (two compilations of one
// policy on one host are identical). An entry holds one rule for everyone
// and at most one scoped rule (struct bw_rule); adding to an entry that
// exists keeps the stricter action (deny > audit) per scope, on a tie the
// first rule. bpfwarden's own entries (rule ids from kProtectedExesRuleId
// up) hold for everyone: a scoped rule there is dropped.
struct RuleTables {
    InodeMap<bw_rule> file_rules, exec_rules;
    std::map<bw_dirent_key, bw_name_rules, DirentKeyLess> dirents;
    InodeMap<bw_dir_rules> dir_rules;
    InodeMap<bw_bpf_allow> bpf_allow;
    std::map<uint64_t, bw_scope> scopes;                              // bpfw_scopes: bw_rule.scope → who
    std::map<bw_allowed_key, uint32_t, AllowedKeyLess> exec_allowed;  // what exec allowlists list
    bw_bpf_policy bpf_policy{};
    bw_settings settings{};
    // Rule ids of two rules with different scopes that reached one entry:
    // the policy is refused (compile_policy names both).
    std::vector<std::pair<uint32_t, uint32_t>> scope_conflicts;

    void add_inode_rule(RuleKind kind, const bw_inode_key& file, const bw_rule& rule);
    // The rule on `name` in `dir`; marks the directory as having named entries.
    void add_name_rule(RuleKind kind, const bw_inode_key& dir, const std::string& name, const bw_rule& rule);
    void add_subtree_rule(RuleKind kind, const bw_inode_key& dir, const bw_rule& rule);
    // Nobody but the exempted changes the entries of `dir` or anything beneath
    // (`exemptions`: the rule and flags applying to its files).
    void protect_directory(const bw_inode_key& dir, const bw_rule& exemptions);

private:
    void add_to(bw_rule& entry, const bw_rule& rule);
};

struct RuleInfo {
    uint32_t id;  // index into CompiledPolicy::rules; the rule_id in map values and events
    RuleKind kind;
    std::string path;
    RuleAction action;  // as written; the map entry may hold a stricter one (see above)
    SourceLocation where;
    bool subtree = false;
    bool bpf_allow = false;  // a bpf.allow entry (kind Exec, action Audit)
    // An exec allowlist (kind Exec, action Deny, path: its entries joined by
    // ", "): what it does not list is refused in its scope.
    bool allowlist = false;
    std::vector<std::string> entries;               // an allowlist's paths, as written
    bool pid1_only = false;                         // bpf.allow: only as PID 1
    PathTarget target;                              // what the path named when compiled
    std::optional<ScopeSpec> scope = std::nullopt;  // nullopt: every process
    // The scope's executable or cgroup when compiled (exe and cgroup scopes).
    std::optional<FileIdentity> scope_target = std::nullopt;
    // A deny that only reports "would deny": the policy's or the scope's mode is audit.
    bool audit_mode = false;
    // Its events name the file "[FILTERED]": the path is under a redact_paths
    // prefix, or (a subtree) holds one.
    bool redacted = false;

    // Covers something in the kernel now: the file, its name, or the subtree,
    // and its scope's executable or cgroup exists.
    bool active() const;
    // Every path whose file the rule's map entries depend on: its own (as
    // resolved), an allowlist's entries, a scope's executable or cgroup. A
    // change in their directories calls for re-resolving the policy.
    std::vector<std::string> depends_on() const;

    friend bool operator==(const RuleInfo&, const RuleInfo&) = default;
};

struct CompiledPolicy {
    RuleTables tables;
    // Every rule, resolved or not, id = index: policy rules first, in policy
    // order, then bpf.allow entries.
    std::vector<RuleInfo> rules;
    // One line per rule that could not be resolved, "<file>:<line>: <what>".
    std::vector<std::string> warnings;
    // The policy files it was compiled from, and their text (Policy::sources).
    std::vector<std::string> sources, source_texts;
    std::optional<PolicyBundleInfo> bundle;  // Policy::bundle

    // nullptr if out of range (including the implicit rule ids above).
    const RuleInfo* rule(uint32_t id) const;
    // The bpf.allow entry for the executable with this inode, or nullptr.
    const RuleInfo* matching_bpf_allow(const bw_inode_key& exe) const;
};

// True if both would fill the maps identically and list the same rules
// (paths, actions, source lines, resolved files): applying `b` over `a`
// would change nothing anyone can observe.
bool same_policy(const CompiledPolicy& a, const CompiledPolicy& b);

// Fails only on a policy no file could produce (relative path, no resolver)
// or one that does not fit the maps (E2BIG).
Result<CompiledPolicy> compile_policy(const Policy& policy, const PathResolver& resolve);

// The one way from a policy directory to compiled rules: load_policy_dir
// (with the override and the signed-bundle requirement, if any) and
// compile_policy. Any failure is PolicyInvalid.
Result<CompiledPolicy> compile_policy_dir(const std::filesystem::path& dir, const PathResolver& resolve,
                                          const PolicyFileOverride* override = nullptr,
                                          const PolicyTrust* require_signed = nullptr);

// "file", "exec", "bpf-allow" or "exec-allowlist": a rule's kind as ListRules
// and bpfwardenctl show it.
std::string rule_kind_name(const RuleInfo& rule);
// A rule's path as the policy writes it: a subtree rule ends with '/'.
std::string written_path(const RuleInfo& rule);

// enum bw_action for a rule action / a bpf guard mode (Off → BW_ACTION_NONE).
uint32_t to_bw_action(RuleAction action);
uint32_t to_bw_action(BpfGuardMode mode);

}  // namespace bpfwarden
