#include "policy/policy_compiler.h"

#include <algorithm>
#include <cstring>

#include "policy/scope.h"

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
           same_entries(a.bpf_allow, b.bpf_allow) && same_entries(a.scopes, b.scopes) &&
           same_entries(a.exec_allowed, b.exec_allowed) && same_bytes(a.bpf_policy, b.bpf_policy) &&
           same_bytes(a.settings, b.settings);
}

// The stricter of an existing rule and a new one; on a tie, the first.
void keep_stricter(bw_rule& existing, const bw_rule& rule) {
    if (existing.action == BW_ACTION_NONE || (rule.action == BW_ACTION_DENY && existing.action != BW_ACTION_DENY))
        existing = rule;
}

bool is_own_rule(const bw_rule& rule) { return rule.rule_id >= kProtectedExesRuleId; }

// An entry's two rules apart: for everyone, and for its scope (action NONE: none).
struct EntryRules {
    bw_rule everyone{};
    bw_rule scoped{};
};

EntryRules split(const bw_rule& entry) {
    if (!entry.scope)
        return {entry, {}};
    bw_rule everyone{};
    everyone.action = entry.else_action;
    everyone.rule_id = entry.else_rule_id;
    everyone.flags = entry.else_flags;
    bw_rule scoped{};
    scoped.action = entry.action;
    scoped.rule_id = entry.rule_id;
    scoped.flags = entry.flags;
    scoped.scope = entry.scope;
    return {everyone, scoped};
}

bw_rule join(const EntryRules& rules) {
    if (rules.scoped.action == BW_ACTION_NONE)
        return rules.everyone;
    bw_rule entry = rules.scoped;
    entry.else_action = rules.everyone.action;
    entry.else_rule_id = rules.everyone.rule_id;
    entry.else_flags = rules.everyone.flags;
    return entry;
}

// Adds `rule` to `entry` (see RuleTables); false if the entry has a rule for
// another scope already.
bool add_to_entry(bw_rule& entry, const bw_rule& rule) {
    EntryRules rules = split(entry);
    if (!rule.scope) {
        if (is_own_rule(rule))
            rules.scoped = {};
        keep_stricter(rules.everyone, rule);
    } else if (rules.everyone.action != BW_ACTION_NONE && is_own_rule(rules.everyone)) {
        return true;
    } else if (rules.scoped.action != BW_ACTION_NONE && rules.scoped.scope != rule.scope) {
        return false;
    } else {
        keep_stricter(rules.scoped, rule);
    }
    entry = join(rules);
    return true;
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
                                         Need{tables.bpf_allow.size(), kBpfAllowCapacity, "bpf.allow"},
                                         Need{tables.exec_allowed.size(), kExecAllowedCapacity, "allowlist"}})
        if (auto ok = check_capacity(count, capacity, what); !ok)
            return ok;
    return {};
}

std::string origin_of(const PolicySetting<uint32_t>& max_rules) {
    return max_rules.where ? "set in " + to_string(*max_rules.where) : "the default";
}

// The administrator's ceiling on [[file]] rules and on [[exec]] rules, checked
// before any path is resolved: an oversized policy costs no filesystem work.
Result<void> check_max_rules(const Policy& policy) {
    std::size_t file_rules = 0, exec_rules = 0;
    for (const PathRule& rule : policy.rules)
        ++(rule.kind == RuleKind::FileOpen ? file_rules : exec_rules);
    const auto& max_rules = policy.options.max_rules;
    struct Count {
        std::size_t rules, capacity;
        const char* what;
    };
    for (auto [rules, capacity, what] :
         {Count{file_rules, kFileRulesCapacity, "file"}, Count{exec_rules, kExecRulesCapacity, "exec"}})
        if (rules > max_rules.value)
            return fail(ErrorKind::PolicyInvalid, E2BIG,
                        "policy has " + std::to_string(rules) + " " + what + " rules, more than max_rules = " +
                            std::to_string(max_rules.value) + " (" + origin_of(max_rules) + "; the maps hold at most " +
                            std::to_string(capacity - kImplicitReserve) + ")");
    return {};
}

bw_rule rule_value(const RuleInfo& info) {
    bw_rule value{};
    value.action = to_bw_action(info.action);
    value.rule_id = info.id;
    if (info.scope)
        value.scope = scope_key(info.scope->selector());
    if (info.audit_mode)
        value.flags |= BW_RULE_AUDIT_MODE;
    if (info.redacted)
        value.flags |= BW_RULE_REDACT;
    return value;
}

// Byte prefixes, as the kernel compares an executed path: "/home" also
// covers "/homework". A subtree rule above a prefix may match files under it.
bool is_redacted(const RuleInfo& info, const std::vector<std::string>& prefixes) {
    return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& prefix) {
        return info.path.starts_with(prefix) || (info.subtree && prefix.starts_with(info.path));
    });
}

bw_scope scope_value(const ScopeSpec& spec, const std::optional<FileIdentity>& target) {
    bw_scope scope{};
    switch (spec.kind) {
    case ScopeKind::Uid: scope.kind = BW_SCOPE_UID; break;
    case ScopeKind::Gid: scope.kind = BW_SCOPE_GID; break;
    case ScopeKind::Unit: scope.kind = BW_SCOPE_UNIT; break;
    case ScopeKind::Cgroup: scope.kind = BW_SCOPE_CGROUP; break;
    case ScopeKind::Exe: scope.kind = BW_SCOPE_EXE; break;
    }
    scope.id = spec.id;
    if (spec.kind == ScopeKind::Cgroup && target)
        scope.cgroup_id = target->ino;  // a cgroup's inode number is its kernfs id
    if (spec.kind == ScopeKind::Exe && target)
        scope.exe = to_key(*target);
    if (spec.kind == ScopeKind::Unit) {  // names the parser bounded to BW_SCOPE_NAME_LEN - 1
        std::strncpy(scope.unit, spec.value.c_str(), sizeof(scope.unit) - 1);
        std::strncpy(scope.slice, spec.slice.c_str(), sizeof(scope.slice) - 1);
    }
    return scope;
}

// The scope's entry in bpfw_scopes; two scopes whose texts hash alike are refused.
Result<void> add_scope(RuleTables& tables, const RuleInfo& info) {
    if (!info.scope || !info.active())
        return {};
    bw_scope value = scope_value(*info.scope, info.scope_target);
    auto [entry, added] = tables.scopes.try_emplace(scope_key(info.scope->selector()), value);
    if (!added && !same_bytes(entry->second, value))
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    to_string(info.where) + ": scope " + quote_for_message(info.scope->selector()) +
                        " collides with another scope of this policy: rename or reorder it");
    return {};
}

// An exe or cgroup scope names a file, resolved like rule paths; a unit is
// matched by name and needs nothing resolved, but an unknown one is worth a word.
void resolve_scope(CompiledPolicy& out, RuleInfo& info, const PathResolver& resolve) {
    if (!info.scope)
        return;
    const ScopeSpec& scope = *info.scope;
    const std::string where = to_string(info.where) + ": ";
    if (scope.kind == ScopeKind::Unit) {
        if (!unit_known(scope.value))
            out.warnings.push_back(where + "unit " + quote_for_message(scope.value) +
                                   " is not known here: the rule applies once a unit of that name runs (in " +
                                   (scope.slice.empty() ? std::string("the root cgroup") : scope.slice) + ")");
        return;
    }
    if (scope.kind != ScopeKind::Exe && scope.kind != ScopeKind::Cgroup)
        return;
    PathTarget target = resolve(scope.value);
    bool usable = target.file && (scope.kind == ScopeKind::Exe || target.file->is_dir);
    if (usable)
        info.scope_target = target.file;
    else
        out.warnings.push_back(where + "the scope's " + std::string(to_string(scope.kind)) + " " +
                               quote_for_message(scope.value) + " does not exist: rule inactive until it does");
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

std::string describe_rule(const CompiledPolicy& out, uint32_t id) {
    const RuleInfo* rule = out.rule(id);
    if (!rule)
        return "bpfwarden's own rule";
    return to_string(rule->where) + " (" + std::string(rule->bpf_allow ? "bpf.allow" : to_string(rule->kind)) + " " +
           quote_for_message(rule->path + (rule->subtree ? "/" : "")) + " for " +
           (rule->scope ? rule->scope->selector() : std::string("everyone")) + ")";
}

// A map entry holds one rule for everyone and one for a single scope.
Result<void> check_scope_conflicts(const CompiledPolicy& out) {
    if (out.tables.scope_conflicts.empty())
        return {};
    auto [first, second] = out.tables.scope_conflicts.front();
    const RuleInfo* later = out.rule(second);
    return fail(ErrorKind::PolicyInvalid, EINVAL,
                (later ? to_string(later->where) + ": " : std::string()) +
                    "contradictory rules: " + describe_rule(out, second) + " and " + describe_rule(out, first) +
                    " cover the same file with different scopes; a file takes one rule for everyone and one "
                    "scoped rule: give both rules one scope, or drop one");
}

Result<void> add_path_rules(const Policy& policy, const PathResolver& resolve, CompiledPolicy& out) {
    for (const PathRule& rule : policy.rules) {
        if (auto ok = check_path(rule); !ok)
            return ok;
        auto scope = scope_of(policy, rule);
        if (!scope)
            return fail(scope.error());
        RuleInfo info = rule_info(out, rule, false, resolve);
        info.scope = std::move(*scope);
        info.audit_mode = info.scope && info.scope->mode == PolicyMode::Audit;
        info.redacted = is_redacted(info, policy.options.redact_paths.value);
        resolve_scope(out, info, resolve);
        if (auto ok = add_scope(out.tables, info); !ok)
            return ok;
        add_entries(out.tables, out.rules.emplace_back(std::move(info)));
    }
    return check_scope_conflicts(out);
}

// An executable has one bpfw_bpf_allow entry: for everyone or for one scope,
// as PID 1 only or not. The same executable twice (two paths, or one path
// with different conditions) keeps the entry that allows all the other does;
// where neither does (two scopes, or a scope against PID 1 only) it is
// refused, since one entry cannot hold both.
bool allows_all_of(const bw_bpf_allow& a, const bw_bpf_allow& b) {
    bool scope_covers = !a.scope || a.scope == b.scope;
    bool pid1_covers = !(a.flags & BW_ALLOW_PID1_ONLY) || (b.flags & BW_ALLOW_PID1_ONLY);
    return scope_covers && pid1_covers;
}

Result<void> merge_bpf_allow(const CompiledPolicy& out, bw_bpf_allow& entry, const bw_bpf_allow& added) {
    if (allows_all_of(entry, added))
        return {};
    if (allows_all_of(added, entry)) {
        entry.scope = added.scope;
        entry.flags = added.flags;
        return {};
    }
    const RuleInfo* later = out.rule(added.rule_id);
    return fail(ErrorKind::PolicyInvalid, EINVAL,
                (later ? to_string(later->where) + ": " : std::string()) + "contradictory bpf.allow entries: " +
                    describe_rule(out, added.rule_id) + " and " + describe_rule(out, entry.rule_id) +
                    " allow one executable under different conditions (scope, pid1); an executable takes one "
                    "entry: give both entries the same conditions, or drop one");
}

Result<void> add_bpf_allow_rules(const Policy& policy, const PathResolver& resolve, CompiledPolicy& out) {
    for (const PathRule& rule : policy.bpf.allow) {
        if (auto ok = check_path(rule); !ok)
            return ok;
        auto scope = scope_of(policy, rule);
        if (!scope)
            return fail(scope.error());
        RuleInfo info = rule_info(out, rule, true, resolve);
        info.scope = std::move(*scope);
        resolve_scope(out, info, resolve);
        if (auto ok = add_scope(out.tables, info); !ok)
            return ok;
        const RuleInfo& added = out.rules.emplace_back(std::move(info));
        const std::optional<FileIdentity>& exe = added.target.file;
        if (!added.active() || !exe)
            continue;
        bw_bpf_allow value{added.id, added.pid1_only ? BW_ALLOW_PID1_ONLY : 0u,
                           added.scope ? scope_key(added.scope->selector()) : 0u};
        auto [entry, inserted] = out.tables.bpf_allow.try_emplace(to_key(*exe), value);
        if (!inserted)
            if (auto ok = merge_bpf_allow(out, entry->second, value); !ok)
                return ok;
    }
    return {};
}

bw_settings settings_of(const PolicyOptions& options) {
    bw_settings settings{};
    settings.protect = options.protect.value ? 1 : 0;
    settings.exec_options = (options.deny_anonymous_exec.value ? BW_EXEC_DENY_ANONYMOUS : 0u) |
                            (options.deny_write_exec.value ? BW_EXEC_DENY_WRITE_EXEC : 0u);
    settings.subtree_depth = BW_MAX_SUBTREE_DEPTH;
    settings.audit_mode = options.mode == PolicyMode::Audit ? 1 : 0;
    settings.audit_bpf_reads = options.audit_bpf_reads.value ? 1 : 0;
    for (const std::string& prefix : options.redact_paths.value) {
        if (settings.redact_count == BW_MAX_REDACT || prefix.size() >= BW_REDACT_LEN)
            break;  // the parser refuses both
        bw_redact_prefix& entry = settings.redact[settings.redact_count++];
        entry.len = static_cast<uint32_t>(prefix.size());
        std::memcpy(entry.prefix, prefix.data(), prefix.size());
    }
    return settings;
}

// ---- Exec allowlists ----------------------------------------------------------

void list_entry(RuleTables& tables, uint32_t list, uint32_t kind, const FileIdentity& id, uint64_t name_hash = 0) {
    bw_allowed_key key{};
    key.id = to_key(id);
    key.name_hash = name_hash;
    key.list = list;
    key.kind = kind;
    tables.exec_allowed.try_emplace(key, 1);
}

// One entry of allowlist `list`: a file by inode and name, or a directory's subtree.
void add_allowlist_entry(CompiledPolicy& out, uint32_t list, std::string path, const SourceLocation& where,
                         const PathResolver& resolve) {
    bool subtree = path.size() > 1 && path.ends_with('/');
    while (path.size() > 1 && path.ends_with('/'))
        path.pop_back();
    PathTarget target = resolve(path);
    if (subtree && target.file && target.file->is_dir) {
        list_entry(out.tables, list, BW_ALLOWED_SUBTREE, *target.file);
        return;
    }
    if (!subtree && target.file)
        list_entry(out.tables, list, BW_ALLOWED_INODE, *target.file);
    if (!subtree && target.dir)
        list_entry(out.tables, list, BW_ALLOWED_NAME, *target.dir,
                   bw_name_hash(reinterpret_cast<const unsigned char*>(target.name.data()),
                                static_cast<__u32>(target.name.size())));
    if (subtree ? !(target.file && target.file->is_dir) : !target.file)
        out.warnings.push_back(to_string(where) + ": allowlist entry " + quote_for_message(path) +
                               (subtree ? " is not a directory here" : " does not exist") +
                               ": nothing is listed for it until it does");
}

// Allowlists with one scope are one list: their entries add up, and an
// enforcing one makes the list enforce.
struct ListPlan {
    ScopeSpec scope;
    std::vector<std::pair<std::string, SourceLocation>> entries;
    SourceLocation where;
    bool audit = true;
};

Result<std::vector<ListPlan>> plan_allowlists(const Policy& policy) {
    std::vector<ListPlan> plans;
    for (const ExecAllowlist& allowlist : policy.allowlists) {
        auto scope = scope_of(policy, allowlist);
        if (!scope)
            return fail(scope.error());
        auto same = std::find_if(plans.begin(), plans.end(),
                                 [&](const ListPlan& plan) { return plan.scope.selector() == scope->selector(); });
        if (same == plans.end()) {
            if (plans.size() == BW_MAX_ALLOWLISTS)
                return fail(ErrorKind::PolicyInvalid, E2BIG,
                            to_string(allowlist.where) + ": more than " + std::to_string(BW_MAX_ALLOWLISTS) +
                                " exec allowlists (scopes); merge some");
            same = plans.insert(plans.end(), ListPlan{*scope, {}, allowlist.where, true});
        }
        same->audit = same->audit && allowlist.mode.value_or(scope->mode) == PolicyMode::Audit;
        for (const std::string& entry : allowlist.entries)
            same->entries.emplace_back(entry, allowlist.where);
    }
    return plans;
}

std::string joined_entries(const ListPlan& plan) {
    std::string out;
    for (const auto& [path, where] : plan.entries)
        out += (out.empty() ? "" : ", ") + path;
    return out;
}

Result<void> add_allowlists(const Policy& policy, const PathResolver& resolve, CompiledPolicy& out) {
    auto plans = plan_allowlists(policy);
    if (!plans)
        return fail(plans.error());
    for (const ListPlan& plan : *plans) {
        RuleInfo info{};
        info.id = static_cast<uint32_t>(out.rules.size());
        info.kind = RuleKind::Exec;
        info.path = joined_entries(plan);
        for (const auto& entry : plan.entries)
            info.entries.push_back(entry.first);
        info.action = RuleAction::Deny;
        info.where = plan.where;
        info.allowlist = true;
        info.scope = plan.scope;
        info.audit_mode = plan.audit;
        resolve_scope(out, info, resolve);
        if ((plan.scope.kind == ScopeKind::Uid || plan.scope.kind == ScopeKind::Gid) && plan.scope.id == 0)
            out.warnings.push_back(to_string(plan.where) + ": an allowlist for " + plan.scope.selector() +
                                   " holds PID 1 and every root service: what it does not list, they cannot "
                                   "run (scope it to units instead)");
        if (auto ok = add_scope(out.tables, info); !ok)
            return ok;
        if (info.active()) {
            uint32_t list = out.tables.settings.allowlists++;
            bw_allowlist& slot = out.tables.settings.allowlist[list];
            slot.scope = scope_key(plan.scope.selector());
            slot.rule_id = info.id;
            slot.flags = plan.audit ? BW_RULE_AUDIT_MODE : 0;
            for (const auto& [path, where] : plan.entries)
                add_allowlist_entry(out, list, path, where, resolve);
        }
        out.rules.push_back(std::move(info));
    }
    return {};
}

}  // namespace

void RuleTables::add_to(bw_rule& entry, const bw_rule& rule) {
    uint32_t present = entry.rule_id;
    if (!add_to_entry(entry, rule))
        scope_conflicts.emplace_back(present, rule.rule_id);
}

void RuleTables::add_inode_rule(RuleKind kind, const bw_inode_key& file, const bw_rule& rule) {
    auto& entries = kind == RuleKind::FileOpen ? file_rules : exec_rules;
    add_to(entries.try_emplace(file, bw_rule{}).first->second, rule);
}

void RuleTables::add_name_rule(RuleKind kind, const bw_inode_key& dir, const std::string& name, const bw_rule& rule) {
    bw_dirent_key key{};
    key.dir = dir;
    key.name_hash = bw_name_hash(reinterpret_cast<const unsigned char*>(name.data()), static_cast<__u32>(name.size()));
    add_to(slot_of(dirents.try_emplace(key, bw_name_rules{}).first->second, kind), rule);
    dir_rules.try_emplace(dir, bw_dir_rules{}).first->second.flags |= BW_DIR_HAS_ENTRIES;
}

void RuleTables::add_subtree_rule(RuleKind kind, const bw_inode_key& dir, const bw_rule& rule) {
    bw_dir_rules& entry = dir_rules.try_emplace(dir, bw_dir_rules{}).first->second;
    add_to(slot_of(entry, kind), rule);
    entry.flags |= BW_DIR_SUBTREE;
}

void RuleTables::protect_directory(const bw_inode_key& dir, const bw_rule& exemptions) {
    bw_dir_rules& entry = dir_rules.try_emplace(dir, bw_dir_rules{}).first->second;
    // Protection wins over an administrator's rule there: our own files.
    entry.file = exemptions;
    entry.flags |= BW_DIR_SUBTREE | BW_DIR_PROTECT;
}

bool RuleInfo::active() const {
    if (allowlist)
        return !scope || (scope->kind != ScopeKind::Exe && scope->kind != ScopeKind::Cgroup) || scope_target;
    if (scope && (scope->kind == ScopeKind::Exe || scope->kind == ScopeKind::Cgroup) && !scope_target)
        return false;
    if (bpf_allow)
        return target.file.has_value();
    if (subtree)
        return target.file && target.file->is_dir;
    return target.dir.has_value();
}

std::vector<std::string> RuleInfo::depends_on() const {
    std::vector<std::string> paths = entries;
    if (!allowlist)
        paths.push_back(target.canonical.empty() ? path : target.canonical);
    if (scope && (scope->kind == ScopeKind::Exe || scope->kind == ScopeKind::Cgroup))
        paths.push_back(scope->value);
    return paths;
}

PathResolver filesystem_resolver() {
    return [](const std::string& path) { return resolve_path(path); };
}

Result<CompiledPolicy> compile_policy_dir(const std::filesystem::path& dir, const PathResolver& resolve,
                                          const PolicyFileOverride* override, const PolicyTrust* require_signed) {
    auto policy = load_policy_dir(dir, override, require_signed);
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

std::string written_path(const RuleInfo& rule) {
    return rule.subtree && !rule.path.ends_with('/') ? rule.path + "/" : rule.path;
}

std::string rule_kind_name(const RuleInfo& rule) {
    if (rule.bpf_allow)
        return "bpf-allow";
    if (rule.allowlist)
        return "exec-allowlist";
    return std::string(to_string(rule.kind));
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
    if (auto ok = check_max_rules(policy); !ok)
        return fail(ok.error());

    CompiledPolicy out;
    out.rules.reserve(policy.rules.size() + policy.bpf.allow.size());
    if (auto ok = add_path_rules(policy, resolve, out); !ok)
        return fail(ok.error());
    if (auto ok = add_bpf_allow_rules(policy, resolve, out); !ok)
        return fail(ok.error());
    out.tables.settings = settings_of(policy.options);
    if (auto ok = add_allowlists(policy, resolve, out); !ok)
        return fail(ok.error());
    if (auto ok = check_capacities(out.tables); !ok)
        return fail(ok.error());
    // The policy's audit mode reports what bpf.mode = "deny" would refuse.
    BpfGuardMode bpf_mode = policy.bpf.mode;
    if (bpf_mode == BpfGuardMode::Deny && policy.options.mode == PolicyMode::Audit)
        bpf_mode = BpfGuardMode::Audit;
    out.tables.bpf_policy.action = to_bw_action(bpf_mode);
    out.tables.bpf_policy.restricted_cmds = policy.bpf.restricted_cmds;
    out.sources = policy.sources;
    out.source_texts = policy.source_texts;
    out.bundle = policy.bundle;
    return out;
}

}  // namespace bpfwarden
