#include "policy/policy_compiler.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>

namespace bpfwarden {
namespace {

using KeyTuple = std::pair<uint64_t, uint64_t>;  // (dev, ino), ordered

bw_inode_key to_key(const FileIdentity& identity) {
    bw_inode_key key{};
    key.dev = identity.dev;
    key.ino = identity.ino;
    return key;
}

bool key_less(const bw_inode_key& a, const bw_inode_key& b) { return std::tie(a.dev, a.ino) < std::tie(b.dev, b.ino); }

std::string_view label(const PathRule& rule, bool bpf_allow) {
    if (bpf_allow)
        return "bpf allow entry";
    return rule.kind == RuleKind::FileOpen ? "file rule" : "exec rule";
}

std::string unresolved_warning(const PathRule& rule, bool bpf_allow, const Error& error) {
    std::string out = to_string(rule.where) + ": ";
    if (error.errnum() == ENOENT || error.errnum() == ENOTDIR)
        out += quote_for_message(rule.path) + " does not exist yet: rule inactive until it does";
    else
        out +=
            "cannot resolve " + quote_for_message(rule.path) + ": " + std::strerror(error.errnum()) + ": rule inactive";
    out += " (" + std::string(label(rule, bpf_allow)) + ")";
    return out;
}

// The compiler only ever sees policies parse_policy() accepted, but Policy is
// a plain struct: check what the maps rely on.
Result<void> check_path(const PathRule& rule) {
    if (rule.path.empty() || rule.path.front() != '/' || rule.path.find('\0') != std::string::npos ||
        rule.path.size() > kMaxPolicyPathLength)
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    to_string(rule.where) + ": " + quote_for_message(rule.path) + " is not a valid absolute path");
    return {};
}

Result<void> check_capacity(std::size_t count, std::size_t capacity, std::string_view what) {
    if (count > capacity)
        return fail(ErrorKind::PolicyInvalid, E2BIG,
                    "policy names " + std::to_string(count) + " distinct files for " + std::string(what) +
                        ", more than the " + std::to_string(capacity) + " the map holds");
    return {};
}

const CompiledEntry* find_entry(const std::vector<CompiledEntry>& entries, const bw_inode_key& key) {
    auto it =
        std::lower_bound(entries.begin(), entries.end(), key,
                         [](const CompiledEntry& entry, const bw_inode_key& k) { return key_less(entry.key, k); });
    if (it == entries.end() || it->key.dev != key.dev || it->key.ino != key.ino)
        return nullptr;
    return &*it;
}

}  // namespace

Result<CompiledPolicy> compile_policy_dir(const std::filesystem::path& dir, const PathResolver& resolve,
                                          const PolicyFileOverride* override) {
    auto policy = load_policy_dir(dir, override);
    if (!policy)
        return fail(policy.error().as(ErrorKind::PolicyInvalid));
    auto compiled = compile_policy(*policy, resolve);
    if (!compiled)
        return fail(compiled.error().as(ErrorKind::PolicyInvalid));
    return compiled;
}

uint64_t kernel_dev(dev_t dev) { return (static_cast<uint64_t>(major(dev)) << 20) | static_cast<uint64_t>(minor(dev)); }

PathResolver stat_resolver() {
    return [](const std::string& path) -> Result<FileIdentity> {
        struct stat st{};
        if (::stat(path.c_str(), &st) != 0)
            return fail_errno("stat " + quote_for_message(path));
        return FileIdentity{kernel_dev(st.st_dev), static_cast<uint64_t>(st.st_ino)};
    };
}

namespace {

// Map keys and values are plain C structs: compare their bytes.
template <typename T>
bool same_bytes(const T& a, const T& b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

bool same_entries(const std::vector<CompiledEntry>& a, const std::vector<CompiledEntry>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const CompiledEntry& x, const CompiledEntry& y) {
        return same_bytes(x.key, y.key) && same_bytes(x.value, y.value);
    });
}

}  // namespace

bool same_policy(const CompiledPolicy& a, const CompiledPolicy& b) {
    using AllowEntry = std::pair<bw_inode_key, bw_bpf_allow>;
    return a.rules == b.rules && same_entries(a.file_rules, b.file_rules) && same_entries(a.exec_rules, b.exec_rules) &&
           same_bytes(a.bpf_policy, b.bpf_policy) &&
           std::equal(a.bpf_allow.begin(), a.bpf_allow.end(), b.bpf_allow.begin(), b.bpf_allow.end(),
                      [](const AllowEntry& x, const AllowEntry& y) {
                          return same_bytes(x.first, y.first) && same_bytes(x.second, y.second);
                      });
}

uint32_t to_bw_action(RuleAction action) { return action == RuleAction::Deny ? BW_ACTION_DENY : BW_ACTION_AUDIT; }

uint32_t to_bw_action(BpfGuardMode mode) {
    switch (mode) {
    case BpfGuardMode::Off: return BW_ACTION_NONE;
    case BpfGuardMode::Audit: return BW_ACTION_AUDIT;
    case BpfGuardMode::Deny: return BW_ACTION_DENY;
    }
    return BW_ACTION_NONE;
}

const RuleInfo* CompiledPolicy::rule(uint32_t id) const { return id < rules.size() ? &rules[id] : nullptr; }

const RuleInfo* CompiledPolicy::matching_rule(RuleKind kind, uint64_t dev, uint64_t ino) const {
    bw_inode_key key{};
    key.dev = dev;
    key.ino = ino;
    const CompiledEntry* entry = find_entry(kind == RuleKind::FileOpen ? file_rules : exec_rules, key);
    return entry ? rule(entry->value.rule_id) : nullptr;
}

const RuleInfo* CompiledPolicy::matching_bpf_allow(uint64_t dev, uint64_t ino) const {
    auto it = std::lower_bound(bpf_allow.begin(), bpf_allow.end(), KeyTuple{dev, ino},
                               [](const std::pair<bw_inode_key, bw_bpf_allow>& entry, const KeyTuple& k) {
                                   return KeyTuple{entry.first.dev, entry.first.ino} < k;
                               });
    if (it == bpf_allow.end() || it->first.dev != dev || it->first.ino != ino)
        return nullptr;
    return rule(it->second.rule_id);
}

namespace {

// std::map keeps the map contents sorted by key, so that two compilations
// of one policy on one host give identical vectors.
using RuleEntries = std::map<KeyTuple, bw_rule>;
using AllowEntries = std::map<KeyTuple, bw_bpf_allow>;

// Every rule gets a RuleInfo (its id is its index), resolved or not: an
// unresolved path is a warning, so the rule can take effect once it exists.
const RuleInfo& add_rule_info(CompiledPolicy& out, const PathRule& rule, bool bpf_allow, const PathResolver& resolve) {
    RuleInfo info{};
    info.id = static_cast<uint32_t>(out.rules.size());
    info.kind = rule.kind;
    info.path = rule.path;
    info.action = rule.action;
    info.where = rule.where;
    info.bpf_allow = bpf_allow;
    if (auto identity = resolve(rule.path))
        info.identity = *identity;
    else
        out.warnings.push_back(unresolved_warning(rule, bpf_allow, identity.error()));
    return out.rules.emplace_back(std::move(info));
}

Result<void> add_path_rules(const Policy& policy, const PathResolver& resolve, CompiledPolicy& out,
                            RuleEntries& file_entries, RuleEntries& exec_entries) {
    for (const PathRule& rule : policy.rules) {
        if (auto ok = check_path(rule); !ok)
            return fail(ok.error());
        const RuleInfo& info = add_rule_info(out, rule, false, resolve);
        if (!info.identity)
            continue;
        auto& entries = rule.kind == RuleKind::FileOpen ? file_entries : exec_entries;
        bw_rule value{};
        value.action = to_bw_action(rule.action);
        value.rule_id = info.id;
        auto [it, inserted] = entries.try_emplace(KeyTuple{info.identity->dev, info.identity->ino}, value);
        // Same file named twice: the stricter rule owns the entry; on a tie, the first.
        if (!inserted && value.action == BW_ACTION_DENY && it->second.action != BW_ACTION_DENY)
            it->second = value;
    }
    return {};
}

Result<void> add_bpf_allow_rules(const Policy& policy, const PathResolver& resolve, CompiledPolicy& out,
                                 AllowEntries& allow_entries) {
    for (const PathRule& rule : policy.bpf.allow) {
        if (auto ok = check_path(rule); !ok)
            return fail(ok.error());
        const RuleInfo& info = add_rule_info(out, rule, true, resolve);
        if (!info.identity)
            continue;
        bw_bpf_allow value{};
        value.rule_id = info.id;
        allow_entries.try_emplace(KeyTuple{info.identity->dev, info.identity->ino}, value);
    }
    return {};
}

Result<void> check_capacities(const RuleEntries& file_entries, const RuleEntries& exec_entries,
                              const AllowEntries& allow_entries) {
    if (auto ok = check_capacity(file_entries.size(), kFileRulesCapacity, "file rules"); !ok)
        return fail(ok.error());
    if (auto ok = check_capacity(exec_entries.size(), kExecRulesCapacity, "exec rules"); !ok)
        return fail(ok.error());
    if (auto ok = check_capacity(allow_entries.size(), kBpfAllowCapacity, "bpf.allow"); !ok)
        return fail(ok.error());
    return {};
}

void flatten(const RuleEntries& entries, std::vector<CompiledEntry>& into) {
    into.reserve(entries.size());
    for (const auto& [key, value] : entries)
        into.push_back(CompiledEntry{to_key({key.first, key.second}), value});
}

}  // namespace

Result<CompiledPolicy> compile_policy(const Policy& policy, const PathResolver& resolve) {
    if (!resolve)
        return fail(EINVAL, "compile policy: no path resolver");
    if (policy.rules.size() + policy.bpf.allow.size() >= kSelfRuleId)
        return fail(ErrorKind::PolicyInvalid, E2BIG, "compile policy: too many rules");

    CompiledPolicy out;
    out.rules.reserve(policy.rules.size() + policy.bpf.allow.size());
    RuleEntries file_entries, exec_entries;
    AllowEntries allow_entries;
    if (auto ok = add_path_rules(policy, resolve, out, file_entries, exec_entries); !ok)
        return fail(ok.error());
    if (auto ok = add_bpf_allow_rules(policy, resolve, out, allow_entries); !ok)
        return fail(ok.error());
    if (auto ok = check_capacities(file_entries, exec_entries, allow_entries); !ok)
        return fail(ok.error());

    flatten(file_entries, out.file_rules);
    flatten(exec_entries, out.exec_rules);
    out.bpf_allow.reserve(allow_entries.size());
    for (const auto& [key, value] : allow_entries)
        out.bpf_allow.emplace_back(to_key({key.first, key.second}), value);

    out.bpf_policy.action = to_bw_action(policy.bpf.mode);
    out.bpf_policy.pad = 0;
    out.bpf_policy.restricted_cmds = policy.bpf.restricted_cmds;
    return out;
}

}  // namespace bpfwarden
