#include "policy/policy_compiler.h"

#include <algorithm>
#include <cstring>

namespace bpfwarden {
namespace {

// Map keys and values are plain C structs: compare their bytes.
template <typename T>
bool same_bytes(const T& a, const T& b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <typename Map>
bool same_entries(const Map& a, const Map& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
        return same_bytes(x.first, y.first) && same_bytes(x.second, y.second);
    });
}

bool same_tables(const RuleTables& a, const RuleTables& b) {
    return same_entries(a.file_rules, b.file_rules) && same_entries(a.exec_rules, b.exec_rules) &&
           same_entries(a.dirents, b.dirents) && same_entries(a.dir_rules, b.dir_rules) &&
           same_entries(a.bpf_allow, b.bpf_allow) && same_bytes(a.bpf_policy, b.bpf_policy) &&
           same_bytes(a.settings, b.settings);
}

// The stricter of an existing entry and a new rule; on a tie, the first.
void keep_stricter(bw_rule& existing, const bw_rule& rule) {
    if (existing.action == BW_ACTION_NONE || (rule.action == BW_ACTION_DENY && existing.action != BW_ACTION_DENY))
        existing = rule;
}

bw_rule& slot_of(bw_name_rules& rules, RuleKind kind) { return kind == RuleKind::FileOpen ? rules.file : rules.exec; }
bw_rule& slot_of(bw_dir_rules& rules, RuleKind kind) { return kind == RuleKind::FileOpen ? rules.file : rules.exec; }

std::string_view label(const PathRule& rule, bool bpf_allow) {
    if (bpf_allow)
        return "bpf allow entry";
    if (rule.subtree)
        return rule.kind == RuleKind::FileOpen ? "file subtree rule" : "exec subtree rule";
    return rule.kind == RuleKind::FileOpen ? "file rule" : "exec rule";
}

bool is_missing(int err) { return err == ENOENT || err == ENOTDIR; }

// Why a rule covers nothing (yet), for the warnings.
std::string inactive_warning(const PathRule& rule, bool bpf_allow, const PathTarget& target) {
    std::string out = to_string(rule.where) + ": ";
    int err = bpf_allow || rule.subtree ? target.file_error : target.dir_error;
    if (is_missing(err))
        out += (bpf_allow || rule.subtree ? "" : "the directory of ") + quote_for_message(rule.path) +
               " does not exist yet: rule inactive until it does";
    else if (err)
        out += "cannot resolve " + quote_for_message(rule.path) + ": " + std::strerror(err) + ": rule inactive";
    else
        out += quote_for_message(rule.path) + " is not a directory: subtree rule inactive";
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
    if (count + kImplicitReserve > capacity)
        return fail(ErrorKind::PolicyInvalid, E2BIG,
                    "policy needs " + std::to_string(count) + " " + std::string(what) + " entries, more than the " +
                        std::to_string(capacity - kImplicitReserve) + " the map holds");
    return {};
}

Result<void> check_capacities(const RuleTables& tables) {
    struct Need {
        std::size_t count, capacity;
        const char* what;
    };
    for (auto [count, capacity, what] : {Need{tables.file_rules.size(), kFileRulesCapacity, "file rule"},
                                         Need{tables.exec_rules.size(), kExecRulesCapacity, "exec rule"},
                                         Need{tables.dirents.size(), kDirentsCapacity, "name"},
                                         Need{tables.dir_rules.size(), kDirRulesCapacity, "directory"},
                                         Need{tables.bpf_allow.size(), kBpfAllowCapacity, "bpf.allow"}})
        if (auto ok = check_capacity(count, capacity, what); !ok)
            return ok;
    return {};
}

bw_rule rule_value(const RuleInfo& info) {
    bw_rule value{};
    value.action = to_bw_action(info.action);
    value.rule_id = info.id;
    return value;
}

// The map entries of one resolved path rule. An inactive rule has none: it
// is reported as covering nothing, so it must match nothing either.
void add_entries(RuleTables& tables, const RuleInfo& info) {
    if (!info.active())
        return;
    const PathTarget& target = info.target;
    bw_rule value = rule_value(info);
    if (info.subtree) {
        if (target.file && target.file->is_dir)
            tables.add_subtree_rule(info.kind, to_key(*target.file), value);
        // The directory itself too: listing it, renaming or removing it.
        if (info.kind == RuleKind::FileOpen && target.file)
            tables.add_inode_rule(info.kind, to_key(*target.file), value);
        return;
    }
    if (target.file)
        tables.add_inode_rule(info.kind, to_key(*target.file), value);
    if (target.dir)
        tables.add_name_rule(info.kind, to_key(*target.dir), target.name, value);
}

RuleInfo rule_info(CompiledPolicy& out, const PathRule& rule, bool bpf_allow, const PathResolver& resolve) {
    RuleInfo info{};
    info.id = static_cast<uint32_t>(out.rules.size());
    info.kind = rule.kind;
    info.path = rule.path;
    info.action = rule.action;
    info.where = rule.where;
    info.subtree = rule.subtree;
    info.bpf_allow = bpf_allow;
    info.pid1_only = rule.pid1_only;
    info.target = resolve(rule.path);
    if (!info.active())
        out.warnings.push_back(inactive_warning(rule, bpf_allow, info.target));
    return info;
}

Result<void> add_path_rules(const Policy& policy, const PathResolver& resolve, CompiledPolicy& out) {
    for (const PathRule& rule : policy.rules) {
        if (auto ok = check_path(rule); !ok)
            return ok;
        const RuleInfo& info = out.rules.emplace_back(rule_info(out, rule, false, resolve));
        add_entries(out.tables, info);
    }
    return {};
}

Result<void> add_bpf_allow_rules(const Policy& policy, const PathResolver& resolve, CompiledPolicy& out) {
    for (const PathRule& rule : policy.bpf.allow) {
        if (auto ok = check_path(rule); !ok)
            return ok;
        const RuleInfo& info = out.rules.emplace_back(rule_info(out, rule, true, resolve));
        if (!info.target.file)
            continue;
        bw_bpf_allow value{info.id, info.pid1_only ? BW_ALLOW_PID1_ONLY : 0u};
        auto [entry, added] = out.tables.bpf_allow.try_emplace(to_key(*info.target.file), value);
        // One executable by two paths: the first entry stays, and, as
        // merge_policy() does for one path, the broader allowance wins.
        if (!added && !info.pid1_only)
            entry->second.flags &= ~static_cast<uint32_t>(BW_ALLOW_PID1_ONLY);
    }
    return {};
}

bw_settings settings_of(const PolicyOptions& options) {
    bw_settings settings{};
    settings.protect = options.protect.value ? 1 : 0;
    settings.exec_options = (options.deny_anonymous_exec.value ? BW_EXEC_DENY_ANONYMOUS : 0u) |
                            (options.deny_write_exec.value ? BW_EXEC_DENY_WRITE_EXEC : 0u);
    settings.subtree_depth = BW_MAX_SUBTREE_DEPTH;
    return settings;
}

}  // namespace

void RuleTables::add_inode_rule(RuleKind kind, const bw_inode_key& file, const bw_rule& rule) {
    auto& entries = kind == RuleKind::FileOpen ? file_rules : exec_rules;
    keep_stricter(entries.try_emplace(file, bw_rule{}).first->second, rule);
}

void RuleTables::add_name_rule(RuleKind kind, const bw_inode_key& dir, const std::string& name, const bw_rule& rule) {
    bw_dirent_key key{};
    key.dir = dir;
    key.name_hash = bw_name_hash(reinterpret_cast<const unsigned char*>(name.data()), static_cast<__u32>(name.size()));
    keep_stricter(slot_of(dirents.try_emplace(key, bw_name_rules{}).first->second, kind), rule);
    dir_rules.try_emplace(dir, bw_dir_rules{}).first->second.flags |= BW_DIR_HAS_ENTRIES;
}

void RuleTables::add_subtree_rule(RuleKind kind, const bw_inode_key& dir, const bw_rule& rule) {
    bw_dir_rules& entry = dir_rules.try_emplace(dir, bw_dir_rules{}).first->second;
    keep_stricter(slot_of(entry, kind), rule);
    entry.flags |= BW_DIR_SUBTREE;
}

void RuleTables::protect_directory(const bw_inode_key& dir, const bw_rule& exemptions) {
    bw_dir_rules& entry = dir_rules.try_emplace(dir, bw_dir_rules{}).first->second;
    // Protection wins over an administrator's rule there: our own files.
    entry.file = exemptions;
    entry.flags |= BW_DIR_SUBTREE | BW_DIR_PROTECT;
}

bool RuleInfo::active() const {
    if (bpf_allow)
        return target.file.has_value();
    if (subtree)
        return target.file && target.file->is_dir;
    return target.dir.has_value();
}

PathResolver filesystem_resolver() {
    return [](const std::string& path) { return resolve_path(path); };
}

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

bool same_policy(const CompiledPolicy& a, const CompiledPolicy& b) {
    return a.rules == b.rules && same_tables(a.tables, b.tables);
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

const RuleInfo* CompiledPolicy::matching_bpf_allow(const bw_inode_key& exe) const {
    auto it = tables.bpf_allow.find(exe);
    return it == tables.bpf_allow.end() ? nullptr : rule(it->second.rule_id);
}

Result<CompiledPolicy> compile_policy(const Policy& policy, const PathResolver& resolve) {
    if (!resolve)
        return fail(EINVAL, "compile policy: no path resolver");
    if (policy.rules.size() + policy.bpf.allow.size() >= kProtectedExesRuleId)
        return fail(ErrorKind::PolicyInvalid, E2BIG, "compile policy: too many rules");

    CompiledPolicy out;
    out.rules.reserve(policy.rules.size() + policy.bpf.allow.size());
    if (auto ok = add_path_rules(policy, resolve, out); !ok)
        return fail(ok.error());
    if (auto ok = add_bpf_allow_rules(policy, resolve, out); !ok)
        return fail(ok.error());
    if (auto ok = check_capacities(out.tables); !ok)
        return fail(ok.error());
    out.tables.bpf_policy.action = to_bw_action(policy.bpf.mode);
    out.tables.bpf_policy.restricted_cmds = policy.bpf.restricted_cmds;
    out.tables.settings = settings_of(policy.options);
    out.sources = policy.sources;
    out.source_texts = policy.source_texts;
    return out;
}

}  // namespace bpfwarden
