// PolicyCompiler: turns a Policy (paths, as the administrator wrote them) into
// the exact contents of the file_rules, exec_rules, bpf_allow_exe and
// bpf_policy maps (bpf/lsm/*.bpf.c).
//
// The kernel programs know files only as (device, inode) of the inode being
// opened or executed, so every path is resolved here, in user space, with
// stat() following symlinks: a rule naming a symlink protects its target.
// Two paths naming one file (hard links, symlinks) become one map entry with
// the stricter action. A path that cannot be resolved is not an error — the
// rule is kept, inactive, and reported in `warnings` — because a policy may
// well name software that is not installed (yet).
//
// Caveat: the kernel compares inode->i_sb->s_dev. stat()'s st_dev agrees with
// it on ordinary file systems (ext4, xfs, tmpfs), but btrfs reports a
// per-subvolume device to stat(), and overlayfs may show the hooks a
// different inode than stat() sees; rules on such files may never match.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bpfwarden/abi.h"
#include "policy/policy.h"
#include "support/error.h"

namespace bpfwarden {

// rule_id of the daemon's own executable in bpf_allow_exe; never an index
// into CompiledPolicy::rules.
inline constexpr uint32_t kSelfRuleId = 0xFFFFFFFF;

// Map capacities; must match max_entries in bpf/lsm/{file,exec,bpf}_guard.bpf.c.
// A few bpf_allow_exe slots are kept for bpfwarden's own executables (the
// daemon with kSelfRuleId, the watchdog), which PolicyMaps adds.
inline constexpr std::size_t kFileRulesCapacity = 65536;
inline constexpr std::size_t kExecRulesCapacity = 65536;
inline constexpr std::size_t kBpfAllowReservedSlots = 8;
inline constexpr std::size_t kBpfAllowCapacity = 1024 - kBpfAllowReservedSlots;

// stat()'s dev_t in the kernel's internal encoding, (major << 20) | minor,
// which is what the BPF programs read from inode->i_sb->s_dev.
uint64_t kernel_dev(dev_t dev);

struct FileIdentity {
    uint64_t dev;  // kernel encoding (kernel_dev())
    uint64_t ino;

    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

// Resolves an absolute path to the file it names. Errors carry the errno
// (ENOENT/ENOTDIR: the file does not exist).
using PathResolver = std::function<Result<FileIdentity>(const std::string& path)>;

// The real resolver: stat(), following symlinks, dev through kernel_dev().
PathResolver stat_resolver();

struct CompiledEntry {
    bw_inode_key key;
    bw_rule value;
};

struct RuleInfo {
    uint32_t id;  // index into CompiledPolicy::rules; the rule_id in map values and events
    RuleKind kind;
    std::string path;
    RuleAction action;  // as written; the map entry may hold a stricter one (see above)
    SourceLocation where;
    bool bpf_allow = false;                // a bpf.allow entry (kind Exec, action Audit)
    std::optional<FileIdentity> identity;  // empty: unresolved, the rule is inactive

    friend bool operator==(const RuleInfo&, const RuleInfo&) = default;
};

struct CompiledPolicy {
    // Map contents, keys unique, sorted by (dev, ino).
    std::vector<CompiledEntry> file_rules, exec_rules;
    std::vector<std::pair<bw_inode_key, bw_bpf_allow>> bpf_allow;  // without the daemon's own entry
    bw_bpf_policy bpf_policy{};                                    // key 0 of bpf_policy
    // Every rule, resolved or not, id = index: policy rules first, in policy
    // order, then bpf.allow entries.
    std::vector<RuleInfo> rules;
    // One line per rule that could not be resolved, "<file>:<line>: <what>".
    std::vector<std::string> warnings;

    // nullptr if out of range (including kSelfRuleId).
    const RuleInfo* rule(uint32_t id) const;

    // The rule whose map entry is (dev, ino) for this kind — the one an event
    // with that key matched — or nullptr. Looks at file_rules/exec_rules.
    const RuleInfo* matching_rule(RuleKind kind, uint64_t dev, uint64_t ino) const;
    // The bpf.allow entry whose map entry is (dev, ino), or nullptr.
    const RuleInfo* matching_bpf_allow(uint64_t dev, uint64_t ino) const;
};

// True if both would fill the maps identically and list the same rules
// (paths, actions, source lines, resolved files): applying `b` over `a`
// would change nothing anyone can observe.
bool same_policy(const CompiledPolicy& a, const CompiledPolicy& b);

// Fails only on a policy no file could produce (relative path, empty
// resolver) or one that does not fit the maps (E2BIG).
Result<CompiledPolicy> compile_policy(const Policy& policy, const PathResolver& resolve);

// The one way from a policy directory to compiled rules: load_policy_dir
// (with the override, if any) and compile_policy. Any failure is PolicyInvalid.
Result<CompiledPolicy> compile_policy_dir(const std::filesystem::path& dir, const PathResolver& resolve,
                                          const PolicyFileOverride* override = nullptr);

// enum bw_action for a rule action / a bpf guard mode (Off → BW_ACTION_NONE).
uint32_t to_bw_action(RuleAction action);
uint32_t to_bw_action(BpfGuardMode mode);

}  // namespace bpfwarden
