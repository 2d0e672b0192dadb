#include "policy/policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <new>
#include <system_error>
#include <toml++/toml.h>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "bpfwarden/abi.h"
#include "policy/policy_bundle.h"
#include "policy/scope.h"
#include "support/file_io.h"
#include "support/unique_fd.h"

namespace bpfwarden {
namespace {

int line_of(const toml::source_region& region) { return static_cast<int>(region.begin.line); }

std::string section_name(RuleKind kind) { return kind == RuleKind::FileOpen ? "[[file]]" : "[[exec]]"; }

// Parses one file's table into a Policy; the first problem ends the parse.
class FileParser {
public:
    FileParser(const std::string& source, std::string_view text) : source_(source) {
        policy_.sources.push_back(source);
        policy_.source_texts.emplace_back(text);
    }

    Result<Policy> run(const toml::table& root) {
        // toml::table iterates in key order; walk the file top to bottom
        // instead, so that rules (and the first error) follow the text.
        std::vector<std::pair<const toml::key*, const toml::node*>> entries;
        for (auto&& [key, node] : root)
            entries.emplace_back(&key, &node);
        std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
            const auto& pa = a.first->source().begin;
            const auto& pb = b.first->source().begin;
            return std::tie(pa.line, pa.column) < std::tie(pb.line, pb.column);
        });
        for (const auto& [key_ptr, node_ptr] : entries) {
            const toml::key& key = *key_ptr;
            const toml::node& node = *node_ptr;
            Result<void> ok;
            if (key.str() == "file")
                ok = parse_rules(RuleKind::FileOpen, key, node);
            else if (key.str() == "exec")
                ok = parse_rules(RuleKind::Exec, key, node);
            else if (key.str() == "bpf")
                ok = parse_bpf(node);
            else if (key.str() == "scope")
                ok = parse_named_scopes(node);
            else if (key.str() == "allowlist")
                ok = parse_allowlists(key, node);
            else if (key.str() == "mode")
                ok = parse_policy_mode(key, node);
            else if (key.str() == "max_rules")
                ok = parse_max_rules(key, node);
            else if (key.str() == "redact_paths")
                ok = parse_redact_paths(key, node);
            else if (PolicyOption* option = option_named(key.str()))
                ok = parse_option(*option, key, node);
            else
                ok = invalid(
                    key.source(),
                    std::string(node.is_table() || node.is_array_of_tables() ? "unknown table " : "unknown key ") +
                        quote_for_message(key.str()) +
                        " (expected [[file]], [[exec]], [[allowlist]], [bpf], [scope.NAME], mode, protect, "
                        "deny_anonymous_exec, "
                        "deny_write_exec, audit_bpf_reads, redact_paths or max_rules)");
            if (!ok)
                return fail(ok.error());
        }
        // [[file]] and [[exec]] entries may interleave.
        std::stable_sort(rules_.begin(), rules_.end(),
                         [](const PathRule& a, const PathRule& b) { return a.where.line < b.where.line; });
        Policy rules;
        rules.rules = std::move(rules_);
        rules.scopes = std::move(scopes_);
        rules.allowlists = std::move(allowlists_);
        if (auto ok = merge_policy(policy_, std::move(rules)); !ok)
            return fail(ok.error());
        return std::move(policy_);
    }

private:
    std::unexpected<Error> invalid(const toml::source_region& where, const std::string& reason) const {
        return fail(ErrorKind::PolicyInvalid, EINVAL, source_ + ":" + std::to_string(line_of(where)) + ": " + reason);
    }

    SourceLocation location(const toml::source_region& where) const { return {source_, line_of(where)}; }

    Result<std::string> parse_path(const toml::node& node, std::string_view what) const {
        const auto* value = node.as_string();
        if (!value)
            return invalid(node.source(), std::string(what) + " must be a string (an absolute path)");
        const std::string& path = value->get();
        if (path.empty())
            return invalid(node.source(), "empty path in " + std::string(what));
        if (path.find('\0') != std::string::npos)
            return invalid(node.source(), "path " + quote_for_message(path) + " contains a NUL byte");
        if (path.size() > kMaxPolicyPathLength)
            return invalid(node.source(), "path " + quote_for_message(path.substr(0, 64)) +
                                              "... is longer than PATH_MAX (" + std::to_string(path.size()) +
                                              " bytes, at most " + std::to_string(kMaxPolicyPathLength) + ")");
        if (path.front() != '/')
            return invalid(node.source(), "relative path " + quote_for_message(path) + " in " + std::string(what) +
                                              " (paths must be absolute)");
        return path;
    }

    PolicyOption* option_named(std::string_view name) {
        if (name == "protect")
            return &policy_.options.protect;
        if (name == "deny_anonymous_exec")
            return &policy_.options.deny_anonymous_exec;
        if (name == "deny_write_exec")
            return &policy_.options.deny_write_exec;
        if (name == "audit_bpf_reads")
            return &policy_.options.audit_bpf_reads;
        return nullptr;
    }

    Result<void> parse_option(PolicyOption& option, const toml::key& key, const toml::node& node) {
        const auto* value = node.as_boolean();
        if (!value)
            return invalid(node.source(), quote_for_message(key.str()) + " must be true or false");
        option.value = value->get();
        option.where = location(key.source());
        return {};
    }

    // A whole number the rule maps can hold: toml++ reads integers as int64,
    // so the range is checked before the value is narrowed.
    Result<void> parse_max_rules(const toml::key& key, const toml::node& node) {
        const std::string range = "from 1 to " + std::to_string(kMaxRulesLimit) + ", the most the rule maps hold";
        const auto* value = node.as_integer();
        if (!value)
            return invalid(node.source(), "'max_rules' must be a whole number " + range);
        const int64_t wanted = value->get();
        if (wanted < 1 || wanted > int64_t{kMaxRulesLimit})
            return invalid(node.source(), "max_rules = " + std::to_string(wanted) + " is out of range (" + range + ")");
        policy_.options.max_rules = {static_cast<uint32_t>(wanted), location(key.source())};
        return {};
    }

    // Each an absolute path prefix the kernel can compare whole.
    Result<void> parse_redact_paths(const toml::key& key, const toml::node& node) {
        const auto* array = node.as_array();
        if (!array)
            return invalid(node.source(), "'redact_paths' must be an array of path prefixes (e.g. [\"/home/\"])");
        std::vector<std::string> prefixes;
        for (const toml::node& element : *array) {
            const auto* text = element.as_string();
            if (!text || !text->get().starts_with('/'))
                return invalid(element.source(),
                               "redact_paths entries must be absolute path prefixes (e.g. \"/home/\")");
            const std::string& prefix = text->get();
            if (prefix.size() >= BW_REDACT_LEN)
                return invalid(element.source(), "redact_paths entry " + quote_for_message(prefix) + " is " +
                                                     std::to_string(prefix.size()) +
                                                     " bytes; the kernel compares at most " +
                                                     std::to_string(BW_REDACT_LEN - 1));
            prefixes.push_back(prefix);
        }
        if (prefixes.size() > BW_MAX_REDACT)
            return invalid(node.source(), "redact_paths has " + std::to_string(prefixes.size()) + " entries; at most " +
                                              std::to_string(BW_MAX_REDACT) + " are supported");
        policy_.options.redact_paths = {std::move(prefixes), location(key.source())};
        return {};
    }

    // A trailing slash asks for the subtree: "/srv/secret/" covers what is beneath.
    static void take_subtree_slash(std::string& path, bool& subtree) {
        if (path.size() < 2 || !path.ends_with('/'))
            return;
        while (path.size() > 1 && path.ends_with('/'))
            path.pop_back();
        subtree = true;
    }

    Result<RuleAction> parse_action(const toml::node& node) const {
        const auto* value = node.as_string();
        if (!value)
            return invalid(node.source(), "action must be a string (\"deny\" or \"audit\")");
        if (value->get() == "deny")
            return RuleAction::Deny;
        if (value->get() == "audit")
            return RuleAction::Audit;
        return invalid(node.source(),
                       "unknown action " + quote_for_message(value->get()) + " (expected \"deny\" or \"audit\")");
    }

    Result<void> parse_rules(RuleKind kind, const toml::key& key, const toml::node& node) {
        const auto* array = node.as_array();
        if (!array)
            return invalid(key.source(), quote_for_message(key.str()) + " must be an array of tables: write " +
                                             section_name(kind) + ", not [" + std::string(key.str()) + "]");
        for (const toml::node& element : *array) {
            const auto* table = element.as_table();
            if (!table)
                return invalid(element.source(), "each " + quote_for_message(key.str()) + " entry must be a table (" +
                                                     section_name(kind) + ")");
            auto rule = parse_rule(kind, *table);
            if (!rule)
                return fail(rule.error());
            rules_.push_back(std::move(*rule));
        }
        return {};
    }

    Result<void> parse_rule_field(RuleKind kind, const toml::key& field, const toml::node& value, PathRule& rule,
                                  bool& has_path, bool& has_action) {
        if (field.str() == "path") {
            auto parsed = parse_path(value, "'path'");
            if (!parsed)
                return fail(parsed.error());
            rule.path = std::move(*parsed);
            rule.where.line = line_of(value.source());
            has_path = true;
            take_subtree_slash(rule.path, rule.subtree);
            return {};
        }
        if (field.str() == "action") {
            auto parsed = parse_action(value);
            if (!parsed)
                return fail(parsed.error());
            rule.action = *parsed;
            has_action = true;
            return {};
        }
        if (field.str() == "scope")
            return parse_rule_scope(value, rule);
        if (field.str() == "recursive") {
            const auto* recursive = value.as_boolean();
            if (!recursive)
                return invalid(value.source(), "'recursive' must be true or false");
            recursive_ = recursive->get();
            return {};
        }
        return invalid(field.source(), "unknown key " + quote_for_message(field.str()) + " in " + section_name(kind) +
                                           " (expected \"path\", \"action\", \"recursive\" or \"scope\")");
    }

    Result<PathRule> parse_rule(RuleKind kind, const toml::table& table) {
        PathRule rule{kind, {}, RuleAction::Audit, SourceLocation{source_, 0}};
        bool has_path = false, has_action = false;
        recursive_ = false;
        for (auto&& [field, value] : table)
            if (auto ok = parse_rule_field(kind, field, value, rule, has_path, has_action); !ok)
                return fail(ok.error());
        if (!has_path)
            return invalid(table.source(), section_name(kind) + " entry has no 'path'");
        if (!has_action)
            return invalid(table.source(), section_name(kind) + " entry for " + quote_for_message(rule.path) +
                                               " has no 'action' (\"deny\" or \"audit\")");
        rule.subtree = rule.subtree || recursive_ || rule.path == "/";
        if (rule.subtree && rule.path == "/")
            return invalid(table.source(),
                           section_name(kind) + " entry on \"/\" would cover every file: name a directory");
        return rule;
    }

    Result<PolicyMode> parse_mode_value(const toml::node& node, std::string_view what) const {
        const auto* value = node.as_string();
        if (value && value->get() == "enforce")
            return PolicyMode::Enforce;
        if (value && value->get() == "audit")
            return PolicyMode::Audit;
        return invalid(node.source(), std::string(what) + " must be \"enforce\" or \"audit\"" +
                                          (value ? ", not " + quote_for_message(value->get()) : std::string()));
    }

    Result<void> parse_policy_mode(const toml::key& key, const toml::node& node) {
        auto mode = parse_mode_value(node, "mode");
        if (!mode)
            return fail(mode.error());
        policy_.options.mode = *mode;
        policy_.options.mode_where = location(key.source());
        return {};
    }

    // scope = "NAME" (a [scope.NAME] table, in any file) or an inline table.
    Result<void> parse_rule_scope(const toml::node& node, PathRule& rule) const {
        if (const auto* name = node.as_string()) {
            if (name->get().empty())
                return invalid(node.source(), "empty scope name");
            rule.scope_ref = name->get();
            return {};
        }
        const auto* table = node.as_table();
        if (!table)
            return invalid(node.source(),
                           "'scope' must be a scope's name or a table such as { unit = \"nginx.service\" }");
        auto scope = parse_scope(*table, "");
        if (!scope)
            return fail(scope.error());
        rule.scope = std::move(*scope);
        return {};
    }

    Result<void> parse_allowlists(const toml::key& key, const toml::node& node) {
        const auto* array = node.as_array();
        if (!array)
            return invalid(key.source(), "'allowlist' must be an array of tables: write [[allowlist]]");
        for (const toml::node& element : *array) {
            const auto* table = element.as_table();
            if (!table)
                return invalid(element.source(), "each 'allowlist' entry must be a table ([[allowlist]])");
            auto allowlist = parse_allowlist(*table);
            if (!allowlist)
                return fail(allowlist.error());
            allowlists_.push_back(std::move(*allowlist));
        }
        return {};
    }

    // scope (required), exec = [paths] (at least one), mode.
    Result<ExecAllowlist> parse_allowlist(const toml::table& table) const {
        ExecAllowlist allowlist;
        allowlist.where = location(table.source());
        bool has_scope = false, has_exec = false;
        for (auto&& [field, value] : table) {
            Result<void> ok;
            if (field.str() == "scope") {
                PathRule holder{RuleKind::Exec, {}, RuleAction::Deny, {}};
                ok = parse_rule_scope(value, holder);
                allowlist.scope = std::move(holder.scope);
                allowlist.scope_ref = std::move(holder.scope_ref);
                has_scope = true;
            } else if (field.str() == "exec") {
                ok = parse_allowlist_entries(value, allowlist);
                has_exec = true;
            } else if (field.str() == "mode") {
                auto mode = parse_mode_value(value, "an allowlist's mode");
                ok = mode ? (allowlist.mode = *mode, Result<void>{}) : fail(mode.error());
            } else {
                ok = invalid(field.source(), "unknown key " + quote_for_message(field.str()) +
                                                 " in [[allowlist]] (expected \"scope\", \"exec\" or \"mode\")");
            }
            if (!ok)
                return fail(ok.error());
        }
        if (!has_scope)
            return invalid(table.source(),
                           "[[allowlist]] has no 'scope': say whose executables it limits (an allowlist for "
                           "every process would stop the machine)");
        if (!has_exec)
            return invalid(table.source(), "[[allowlist]] has no 'exec' list of executables");
        return allowlist;
    }

    Result<void> parse_allowlist_entries(const toml::node& node, ExecAllowlist& allowlist) const {
        const auto* array = node.as_array();
        if (!array)
            return invalid(node.source(), "allowlist 'exec' must be an array of executable or directory paths");
        if (array->empty())
            return invalid(node.source(), "allowlist 'exec' is empty: nothing could run in its scope");
        for (const toml::node& element : *array) {
            auto path = parse_path(element, "allowlist entry");
            if (!path)
                return fail(path.error());
            if (*path == "/")
                return invalid(element.source(), "allowlist entry \"/\" would list every file: name directories");
            allowlist.entries.push_back(std::move(*path));
        }
        return {};
    }

    // [scope.NAME] tables.
    Result<void> parse_named_scopes(const toml::node& node) {
        const auto* table = node.as_table();
        if (!table)
            return invalid(node.source(), "'scope' must hold named tables: write [scope.NAME]");
        for (auto&& [name, value] : *table) {
            const auto* body = value.as_table();
            if (!body)
                return invalid(name.source(), "scope " + quote_for_message(name.str()) + " must be a table ([scope." +
                                                  std::string(name.str()) + "])");
            auto scope = parse_scope(*body, std::string(name.str()));
            if (!scope)
                return fail(scope.error());
            scope->where = location(name.source());
            scopes_.push_back(std::move(*scope));
        }
        return {};
    }

    // One of unit, cgroup, uid, gid or exe; for a unit, its slice; a mode.
    Result<ScopeSpec> parse_scope(const toml::table& table, const std::string& name) const {
        ScopeSpec scope;
        scope.name = name;
        scope.where = location(table.source());
        int selectors = 0;
        bool has_slice = false;
        for (auto&& [field, value] : table) {
            Result<void> ok;
            if (field.str() == "mode") {
                auto mode = parse_mode_value(value, "a scope's mode");
                ok = mode ? (scope.mode = *mode, Result<void>{}) : fail(mode.error());
            } else if (field.str() == "slice") {
                has_slice = true;
                ok = parse_unit_name(value, "slice", scope.slice);
                if (ok && !scope.slice.ends_with(".slice"))
                    ok = invalid(value.source(), "slice " + quote_for_message(scope.slice) + " is not a slice name");
            } else if (auto kind = scope_kind_named(field.str())) {
                ++selectors;
                scope.kind = *kind;
                ok = parse_selector(value, scope);
            } else {
                ok = invalid(field.source(), "unknown scope kind " + quote_for_message(field.str()) +
                                                 " (expected unit, cgroup, uid, gid or exe; and mode, slice)");
            }
            if (!ok)
                return fail(ok.error());
        }
        if (selectors != 1)
            return invalid(table.source(), std::string(selectors ? "a scope names one of" : "a scope needs one of") +
                                               " unit, cgroup, uid, gid or exe");
        if (has_slice && scope.kind != ScopeKind::Unit)
            return invalid(table.source(), "'slice' goes with a unit scope only");
        if (scope.kind == ScopeKind::Unit && !has_slice)
            scope.slice = default_slice_of(scope.value);
        return scope;
    }

    static std::optional<ScopeKind> scope_kind_named(std::string_view name) {
        if (name == "unit")
            return ScopeKind::Unit;
        if (name == "cgroup")
            return ScopeKind::Cgroup;
        if (name == "uid")
            return ScopeKind::Uid;
        if (name == "gid")
            return ScopeKind::Gid;
        if (name == "exe")
            return ScopeKind::Exe;
        return std::nullopt;
    }

    Result<void> parse_selector(const toml::node& value, ScopeSpec& scope) const {
        switch (scope.kind) {
        case ScopeKind::Unit: return parse_unit_name(value, "unit", scope.value);
        case ScopeKind::Uid:
        case ScopeKind::Gid: return parse_id(value, scope);
        case ScopeKind::Cgroup: {
            const auto* path = value.as_string();
            if (!path)
                return invalid(value.source(), "cgroup must be a string (a path below /sys/fs/cgroup/)");
            if (auto problem = cgroup_path_problem(path->get()))
                return invalid(value.source(), "cgroup path " + quote_for_message(path->get()) + " is " + *problem);
            scope.value = path->get();
            while (scope.value.ends_with('/'))
                scope.value.pop_back();
            return {};
        }
        case ScopeKind::Exe: {
            auto path = parse_path(value, "scope exe");
            if (!path)
                return fail(path.error());
            scope.value = std::move(*path);
            return {};
        }
        }
        return {};
    }

    Result<void> parse_unit_name(const toml::node& value, std::string_view what, std::string& out) const {
        const auto* name = value.as_string();
        if (!name)
            return invalid(value.source(), std::string(what) + " must be a string (such as \"nginx.service\")");
        if (auto problem = unit_name_problem(name->get()))
            return invalid(value.source(), std::string(what) + " " + quote_for_message(name->get()) + ": " + *problem);
        out = name->get();
        return {};
    }

    // uid_t and gid_t are 32 bits; (uid_t)-1 means "no id" to the kernel.
    Result<void> parse_id(const toml::node& value, ScopeSpec& scope) const {
        const auto* number = value.as_integer();
        const char* what = scope.kind == ScopeKind::Uid ? "uid" : "gid";
        if (!number)
            return invalid(value.source(), std::string(what) + " must be a number");
        if (number->get() < 0 || number->get() >= 0xFFFFFFFFLL)
            return invalid(value.source(), std::string(what) + " " + std::to_string(number->get()) +
                                               " is out of range (0 to 4294967294)");
        scope.id = static_cast<uint32_t>(number->get());
        return {};
    }

    Result<void> parse_bpf(const toml::node& node) {
        const auto* table = node.as_table();
        if (!table)
            return invalid(node.source(), "'bpf' must be a table ([bpf])");
        for (auto&& [field, value] : *table) {
            Result<void> ok;
            if (field.str() == "mode")
                ok = parse_mode(field, value);
            else if (field.str() == "allow")
                ok = parse_allow(value);
            else if (field.str() == "restrict")
                ok = parse_restrict(field, value);
            else
                ok = invalid(field.source(), "unknown key " + quote_for_message(field.str()) +
                                                 " in [bpf] (expected \"mode\", \"allow\" or \"restrict\")");
            if (!ok)
                return ok;
        }
        return {};
    }

    Result<void> parse_mode(const toml::key& key, const toml::node& node) {
        const auto* value = node.as_string();
        if (!value)
            return invalid(node.source(), "bpf.mode must be a string (\"deny\", \"audit\" or \"off\")");
        const std::string& mode = value->get();
        if (mode == "deny")
            policy_.bpf.mode = BpfGuardMode::Deny;
        else if (mode == "audit")
            policy_.bpf.mode = BpfGuardMode::Audit;
        else if (mode == "off")
            policy_.bpf.mode = BpfGuardMode::Off;
        else
            return invalid(node.source(), "unknown bpf mode " + quote_for_message(mode) +
                                              " (expected \"deny\", \"audit\" or \"off\")");
        policy_.bpf.mode_where = location(key.source());
        return {};
    }

    Result<void> parse_allow(const toml::node& node) {
        const auto* array = node.as_array();
        if (!array)
            return invalid(node.source(), "bpf.allow must be an array of executable paths");
        Policy addition;
        for (const toml::node& element : *array) {
            auto entry = parse_allow_entry(element);
            if (!entry)
                return fail(entry.error());
            addition.bpf.allow.push_back(std::move(*entry));
        }
        return merge_policy(policy_, std::move(addition));
    }

    // "/path", or { path = "/path", pid1 = true } for an executable allowed
    // only as PID 1 (the service manager; not the same binary run by hand),
    // or { path = "/path", scope = ... } for one allowed only in a scope.
    Result<PathRule> parse_allow_entry(const toml::node& element) const {
        PathRule entry{RuleKind::Exec, {}, RuleAction::Audit, location(element.source())};
        const auto* table = element.as_table();
        if (!table) {
            auto path = parse_path(element, "bpf.allow entry");
            if (!path)
                return fail(path.error());
            entry.path = std::move(*path);
            return entry;
        }
        const toml::node* path = table->get("path");
        if (!path)
            return invalid(element.source(), "bpf.allow entry has no 'path'");
        auto parsed = parse_path(*path, "bpf.allow entry");
        if (!parsed)
            return fail(parsed.error());
        entry.path = std::move(*parsed);
        for (auto&& [field, value] : *table) {
            if (field.str() == "path")
                continue;
            if (field.str() == "scope") {
                if (auto ok = parse_rule_scope(value, entry); !ok)
                    return fail(ok.error());
                continue;
            }
            if (field.str() != "pid1")
                return invalid(field.source(), "unknown key " + quote_for_message(field.str()) +
                                                   " in a bpf.allow entry (expected \"path\", \"pid1\" or \"scope\")");
            const auto* pid1 = value.as_boolean();
            if (!pid1)
                return invalid(value.source(), "'pid1' must be true or false");
            entry.pid1_only = pid1->get();
        }
        return entry;
    }

    Result<void> parse_restrict(const toml::key& key, const toml::node& node) {
        const auto* array = node.as_array();
        if (!array)
            return invalid(node.source(), "bpf.restrict must be an array of bpf command names (e.g. \"prog_load\")");
        uint64_t mask = 0;
        for (const toml::node& element : *array) {
            const auto* name = element.as_string();
            if (!name)
                return invalid(element.source(), "bpf.restrict entries must be bpf command names (e.g. \"prog_load\")");
            auto cmd = bpf_command_from_name(name->get());
            if (!cmd)
                return invalid(element.source(),
                               "unknown bpf command " + quote_for_message(name->get()) + " in bpf.restrict");
            if (*cmd >= 64)  // cannot happen with today's table; the kernel side only has 64 bits
                return invalid(element.source(), "bpf command " + quote_for_message(name->get()) +
                                                     " cannot be restricted (number >= 64)");
            mask |= uint64_t{1} << *cmd;
        }
        policy_.bpf.restricted_cmds = mask;
        policy_.bpf.restrict_where = location(key.source());
        return {};
    }

    const std::string& source_;
    Policy policy_;
    std::vector<PathRule> rules_;            // [[file]] and [[exec]] entries, merged into policy_ at the end
    std::vector<ScopeSpec> scopes_;          // [scope.NAME] tables
    std::vector<ExecAllowlist> allowlists_;  // [[allowlist]] tables
    bool recursive_ = false;                 // the entry being parsed said recursive = true
};

// Key for "the same rule": kind, subtree or not, and path.
std::string rule_key(const PathRule& rule) {
    std::string key(1, rule.kind == RuleKind::FileOpen ? 'f' : 'x');
    key += rule.subtree ? '/' : '=';
    key += rule.path;
    key += '\0';
    key += rule.scope ? rule.scope->selector() : rule.scope_ref.empty() ? "" : "ref:" + rule.scope_ref;
    return key;
}

// Appends `from` to `into`; a (kind, path) already present keeps its place and
// takes the stricter action, with the location of the rule that set it.
void add_rules(std::vector<PathRule>& into, std::vector<PathRule>&& from) {
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < into.size(); ++i)
        index.emplace(rule_key(into[i]), i);
    for (PathRule& rule : from) {
        auto [it, inserted] = index.emplace(rule_key(rule), into.size());
        if (inserted) {
            into.push_back(std::move(rule));
            continue;
        }
        PathRule& existing = into[it->second];
        if (stricter(existing.action, rule.action) != existing.action) {
            existing.action = rule.action;
            existing.where = std::move(rule.where);
        }
    }
}

// bpf.allow: concatenated, one entry per (path, scope); an entry without the
// PID 1 condition wins over one with it (the broader allowance was asked
// for). One executable in two scopes is the compiler's to refuse.
void add_allow(std::vector<PathRule>& into, std::vector<PathRule>&& from) {
    std::unordered_map<std::string, std::size_t> present;
    for (std::size_t i = 0; i < into.size(); ++i)
        present.emplace(rule_key(into[i]), i);
    for (PathRule& entry : from) {
        auto [it, inserted] = present.emplace(rule_key(entry), into.size());
        if (inserted)
            into.push_back(std::move(entry));
        else if (!entry.pid1_only)
            into[it->second].pid1_only = false;
    }
}

std::string describe_conflict(std::string_view key, const SourceLocation& first, const SourceLocation& second) {
    return to_string(second) + ": " + std::string(key) + " is already set in " + to_string(first) +
           " (set it in one file only)";
}

}  // namespace

RuleAction stricter(RuleAction a, RuleAction b) {
    return (a == RuleAction::Deny || b == RuleAction::Deny) ? RuleAction::Deny : RuleAction::Audit;
}

std::string_view to_string(RuleAction action) { return action == RuleAction::Deny ? "deny" : "audit"; }

std::string_view to_string(BpfGuardMode mode) {
    switch (mode) {
    case BpfGuardMode::Off: return "off";
    case BpfGuardMode::Audit: return "audit";
    case BpfGuardMode::Deny: return "deny";
    }
    return "unknown";
}

std::string_view to_string(RuleKind kind) { return kind == RuleKind::FileOpen ? "file" : "exec"; }

std::string to_string(const SourceLocation& where) { return where.file + ":" + std::to_string(where.line); }

namespace {

// toml++ quotes what it saw as it was, control characters included ("saw
// 'tr\n'", an ESC): written as \xNN here, so that a policy file cannot break
// or colour the log line or terminal its error is shown on.
std::string escape_controls(std::string_view text) {
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte != 0x7f) {
            out += c;
            continue;
        }
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
        out += escaped;
    }
    return out;
}

}  // namespace

Result<Policy> parse_policy(std::string_view text, const std::string& source_name) {
    try {
        toml::table root = toml::parse(text, std::string(source_name));
        return FileParser(source_name, text).run(root);
    } catch (const toml::parse_error& error) {
        const auto& begin = error.source().begin;
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    source_name + ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) + ": " +
                        escape_controls(error.description()));
    } catch (const std::bad_alloc&) {
        return fail(ENOMEM, "parse " + source_name);
    } catch (const std::exception& error) {
        return fail(ErrorKind::PolicyInvalid, EINVAL, source_name + ": " + error.what());
    }
}

Result<Policy> load_policy_file(const std::filesystem::path& file) {
    auto text = read_trusted_config_file(file, kMaxPolicyFileBytes, "policy file");
    if (!text)
        return fail(text.error().as(ErrorKind::PolicyInvalid));
    return parse_policy(*text, file.string());
}

bool is_policy_file_name(const std::string& name) {
    constexpr std::string_view kSuffix = ".toml";
    return !name.empty() && name.front() != '.' && name.size() > kSuffix.size() && name.ends_with(kSuffix);
}

namespace {

// The signed path: only the bytes the bundle's hashes vouch for are parsed.
Result<Policy> load_signed_policy_dir(const std::filesystem::path& dir, const PolicyFileOverride* override,
                                      const PolicyTrust& trust) {
    if (override)
        return fail(ErrorKind::PolicyInvalid, EPERM,
                    "require-signed-policy is set: the policy changes only through a signed policy bundle "
                    "('bpfwardenctl policy sign'), not by editing '" +
                        override->name + "' in place");
    auto verified = verify_policy_bundle(dir, trust);
    if (!verified)
        return fail(verified.error().as(ErrorKind::PolicyInvalid));
    Policy merged;
    for (const VerifiedPolicyFile& file : verified->files) {
        auto policy = parse_policy(file.text, (dir / file.name).string());
        if (!policy)
            return fail(policy.error());
        if (auto ok = merge_policy(merged, std::move(*policy)); !ok)
            return fail(ok.error());
    }
    merged.bundle = PolicyBundleInfo{verified->bundle.version, verified->bundle.created, verified->signer};
    return merged;
}

}  // namespace

Result<Policy> load_policy_dir(const std::filesystem::path& dir, const PolicyFileOverride* override,
                               const PolicyTrust* require_signed) {
    struct stat st{};
    if (::stat(dir.c_str(), &st) == 0)
        if (auto trusted = check_written_only_by_owner(st, "policy directory '" + dir.string() + "'"); !trusted)
            return fail(trusted.error().as(ErrorKind::PolicyInvalid));
    if (require_signed)
        return load_signed_policy_dir(dir, override, *require_signed);
    std::vector<std::string> names;
    std::error_code ec;
    std::filesystem::directory_iterator it(dir, ec);
    if (ec)
        return fail_system(ec.value(), "open policy directory '" + dir.string() + "'");
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
        if (ec)
            return fail_system(ec.value(), "read policy directory '" + dir.string() + "'");
        std::string name = it->path().filename().string();
        if (is_policy_file_name(name) && !(override && name == override->name))
            names.push_back(std::move(name));
    }
    if (ec)
        return fail_system(ec.value(), "read policy directory '" + dir.string() + "'");
    if (override && override->text)
        names.push_back(override->name);
    std::sort(names.begin(), names.end());

    Policy merged;
    for (const std::string& name : names) {
        const std::string* edited = override && override->text && name == override->name ? &*override->text : nullptr;
        auto policy = edited ? parse_policy(*edited, (dir / name).string()) : load_policy_file(dir / name);
        if (!policy)
            return fail(policy.error());
        if (auto ok = merge_policy(merged, std::move(*policy)); !ok)
            return fail(ok.error());
    }
    return merged;
}

namespace {

// Each option may be set in one file only.
template <typename T>
Result<void> check_option(std::string_view name, const PolicySetting<T>& into, const PolicySetting<T>& from) {
    if (from.where && into.where)
        return fail(ErrorKind::PolicyInvalid, EINVAL, describe_conflict(name, *into.where, *from.where));
    return {};
}

Result<void> check_options(const PolicyOptions& into, const PolicyOptions& from) {
    if (auto ok = check_option("protect", into.protect, from.protect); !ok)
        return ok;
    if (auto ok = check_option("deny_anonymous_exec", into.deny_anonymous_exec, from.deny_anonymous_exec); !ok)
        return ok;
    if (auto ok = check_option("deny_write_exec", into.deny_write_exec, from.deny_write_exec); !ok)
        return ok;
    if (auto ok = check_option("audit_bpf_reads", into.audit_bpf_reads, from.audit_bpf_reads); !ok)
        return ok;
    if (auto ok = check_option("redact_paths", into.redact_paths, from.redact_paths); !ok)
        return ok;
    return check_option("max_rules", into.max_rules, from.max_rules);
}

template <typename T>
void take_option(PolicySetting<T>& into, PolicySetting<T>& from) {
    if (from.where)
        into = std::move(from);
}

}  // namespace

namespace {

Result<std::optional<ScopeSpec>> find_scope(const Policy& policy, const std::optional<ScopeSpec>& inline_scope,
                                            const std::string& name, const SourceLocation& where) {
    if (inline_scope || name.empty())
        return inline_scope;
    for (const ScopeSpec& scope : policy.scopes)
        if (scope.name == name)
            return scope;
    return fail(ErrorKind::PolicyInvalid, EINVAL,
                to_string(where) + ": unknown scope " + quote_for_message(name) +
                    " (no [scope.NAME] table of that name in the policy)");
}

}  // namespace

Result<std::optional<ScopeSpec>> scope_of(const Policy& policy, const PathRule& rule) {
    return find_scope(policy, rule.scope, rule.scope_ref, rule.where);
}

Result<ScopeSpec> scope_of(const Policy& policy, const ExecAllowlist& allowlist) {
    auto scope = find_scope(policy, allowlist.scope, allowlist.scope_ref, allowlist.where);
    if (!scope)
        return fail(scope.error());
    const std::optional<ScopeSpec>& found = *scope;
    if (!found)
        return fail(ErrorKind::PolicyInvalid, EINVAL, to_string(allowlist.where) + ": [[allowlist]] has no scope");
    return *found;
}

namespace {

// A scope name is defined once across all files.
Result<void> check_scope_names(const std::vector<ScopeSpec>& into, const std::vector<ScopeSpec>& from) {
    for (const ScopeSpec& added : from)
        for (const ScopeSpec& present : into)
            if (added.name == present.name)
                return fail(ErrorKind::PolicyInvalid, EINVAL,
                            describe_conflict("[scope." + added.name + "]", present.where, added.where));
    return {};
}

}  // namespace

Result<void> merge_policy(Policy& into, Policy from) {
    // Every check before any change, so that a refused merge leaves `into` as it was.
    if (auto ok = check_options(into.options, from.options); !ok)
        return ok;
    if (from.options.mode_where && into.options.mode_where)
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    describe_conflict("mode", *into.options.mode_where, *from.options.mode_where));
    if (auto ok = check_scope_names(into.scopes, from.scopes); !ok)
        return ok;
    if (from.bpf.mode_where && into.bpf.mode_where)
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    describe_conflict("bpf.mode", *into.bpf.mode_where, *from.bpf.mode_where));
    if (from.bpf.restrict_where && into.bpf.restrict_where)
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    describe_conflict("bpf.restrict", *into.bpf.restrict_where, *from.bpf.restrict_where));
    if (from.bpf.mode_where) {
        into.bpf.mode = from.bpf.mode;
        into.bpf.mode_where = std::move(from.bpf.mode_where);
    }
    if (from.bpf.restrict_where) {
        into.bpf.restricted_cmds = from.bpf.restricted_cmds;
        into.bpf.restrict_where = std::move(from.bpf.restrict_where);
    }
    if (from.options.mode_where) {
        into.options.mode = from.options.mode;
        into.options.mode_where = std::move(from.options.mode_where);
    }
    into.scopes.insert(into.scopes.end(), std::make_move_iterator(from.scopes.begin()),
                       std::make_move_iterator(from.scopes.end()));
    into.allowlists.insert(into.allowlists.end(), std::make_move_iterator(from.allowlists.begin()),
                           std::make_move_iterator(from.allowlists.end()));
    take_option(into.options.protect, from.options.protect);
    take_option(into.options.deny_anonymous_exec, from.options.deny_anonymous_exec);
    take_option(into.options.deny_write_exec, from.options.deny_write_exec);
    take_option(into.options.audit_bpf_reads, from.options.audit_bpf_reads);
    take_option(into.options.redact_paths, from.options.redact_paths);
    take_option(into.options.max_rules, from.options.max_rules);
    add_rules(into.rules, std::move(from.rules));
    add_allow(into.bpf.allow, std::move(from.bpf.allow));
    into.sources.insert(into.sources.end(), std::make_move_iterator(from.sources.begin()),
                        std::make_move_iterator(from.sources.end()));
    into.source_texts.insert(into.source_texts.end(), std::make_move_iterator(from.source_texts.begin()),
                             std::make_move_iterator(from.source_texts.end()));
    return {};
}

}  // namespace bpfwarden
