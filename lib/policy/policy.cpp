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
            else if (PolicyOption* option = option_named(key.str()))
                ok = parse_option(*option, key, node);
            else
                ok = invalid(
                    key.source(),
                    std::string(node.is_table() || node.is_array_of_tables() ? "unknown table " : "unknown key ") +
                        quote_for_message(key.str()) +
                        " (expected [[file]], [[exec]], [bpf], protect, deny_anonymous_exec or deny_write_exec)");
            if (!ok)
                return fail(ok.error());
        }
        // [[file]] and [[exec]] entries may interleave.
        std::stable_sort(rules_.begin(), rules_.end(),
                         [](const PathRule& a, const PathRule& b) { return a.where.line < b.where.line; });
        Policy rules;
        rules.rules = std::move(rules_);
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
        if (field.str() == "recursive") {
            const auto* recursive = value.as_boolean();
            if (!recursive)
                return invalid(value.source(), "'recursive' must be true or false");
            recursive_ = recursive->get();
            return {};
        }
        return invalid(field.source(), "unknown key " + quote_for_message(field.str()) + " in " + section_name(kind) +
                                           " (expected \"path\", \"action\" or \"recursive\")");
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
    // only as PID 1 (the service manager; not the same binary run by hand).
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
            if (field.str() != "pid1")
                return invalid(field.source(), "unknown key " + quote_for_message(field.str()) +
                                                   " in a bpf.allow entry (expected \"path\" or \"pid1\")");
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
    std::vector<PathRule> rules_;  // [[file]] and [[exec]] entries, merged into policy_ at the end
    bool recursive_ = false;       // the entry being parsed said recursive = true
};

// Key for "the same rule": kind, subtree or not, and path.
std::string rule_key(const PathRule& rule) {
    std::string key(1, rule.kind == RuleKind::FileOpen ? 'f' : 'x');
    key += rule.subtree ? '/' : '=';
    key += rule.path;
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

// bpf.allow: concatenated, one entry per path; an entry without the PID 1
// condition wins over one with it (the broader allowance was asked for).
void add_allow(std::vector<PathRule>& into, std::vector<PathRule>&& from) {
    std::unordered_map<std::string, std::size_t> present;
    for (std::size_t i = 0; i < into.size(); ++i)
        present.emplace(into[i].path, i);
    for (PathRule& entry : from) {
        auto [it, inserted] = present.emplace(entry.path, into.size());
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

bool is_policy_file_name(const std::string& name) {
    constexpr std::string_view kSuffix = ".toml";
    return !name.empty() && name.front() != '.' && name.size() > kSuffix.size() && name.ends_with(kSuffix);
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

Result<Policy> parse_policy(std::string_view text, const std::string& source_name) {
    try {
        toml::table root = toml::parse(text, std::string(source_name));
        return FileParser(source_name, text).run(root);
    } catch (const toml::parse_error& error) {
        const auto& begin = error.source().begin;
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    source_name + ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) + ": " +
                        std::string(error.description()));
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

Result<Policy> load_policy_dir(const std::filesystem::path& dir, const PolicyFileOverride* override) {
    struct stat st{};
    if (::stat(dir.c_str(), &st) == 0)
        if (auto trusted = check_written_only_by_owner(st, "policy directory '" + dir.string() + "'"); !trusted)
            return fail(trusted.error().as(ErrorKind::PolicyInvalid));
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
Result<void> check_option(std::string_view name, const PolicyOption& into, const PolicyOption& from) {
    if (from.where && into.where)
        return fail(ErrorKind::PolicyInvalid, EINVAL, describe_conflict(name, *into.where, *from.where));
    return {};
}

Result<void> check_options(const PolicyOptions& into, const PolicyOptions& from) {
    if (auto ok = check_option("protect", into.protect, from.protect); !ok)
        return ok;
    if (auto ok = check_option("deny_anonymous_exec", into.deny_anonymous_exec, from.deny_anonymous_exec); !ok)
        return ok;
    return check_option("deny_write_exec", into.deny_write_exec, from.deny_write_exec);
}

void take_option(PolicyOption& into, PolicyOption& from) {
    if (from.where)
        into = std::move(from);
}

}  // namespace

Result<void> merge_policy(Policy& into, Policy from) {
    // Every check before any change, so that a refused merge leaves `into` as it was.
    if (auto ok = check_options(into.options, from.options); !ok)
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
    take_option(into.options.protect, from.options.protect);
    take_option(into.options.deny_anonymous_exec, from.options.deny_anonymous_exec);
    take_option(into.options.deny_write_exec, from.options.deny_write_exec);
    add_rules(into.rules, std::move(from.rules));
    add_allow(into.bpf.allow, std::move(from.bpf.allow));
    into.sources.insert(into.sources.end(), std::make_move_iterator(from.sources.begin()),
                        std::make_move_iterator(from.sources.end()));
    into.source_texts.insert(into.source_texts.end(), std::make_move_iterator(from.source_texts.begin()),
                             std::make_move_iterator(from.source_texts.end()));
    return {};
}

}  // namespace bpfwarden
