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
#include <unordered_set>
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
    explicit FileParser(const std::string& source) : source_(source) { policy_.sources.push_back(source); }

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
            else
                ok = invalid(
                    key.source(),
                    std::string(node.is_table() || node.is_array_of_tables() ? "unknown table " : "unknown key ") +
                        quote_for_message(key.str()) + " (expected [[file]], [[exec]] or [bpf])");
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
            std::optional<std::string> path;
            std::optional<RuleAction> action;
            int path_line = 0;
            for (auto&& [field, value] : *table) {
                if (field.str() == "path") {
                    auto parsed = parse_path(value, "'path'");
                    if (!parsed)
                        return fail(parsed.error());
                    path = std::move(*parsed);
                    path_line = line_of(value.source());
                } else if (field.str() == "action") {
                    auto parsed = parse_action(value);
                    if (!parsed)
                        return fail(parsed.error());
                    action = *parsed;
                } else {
                    return invalid(field.source(), "unknown key " + quote_for_message(field.str()) + " in " +
                                                       section_name(kind) + " (expected \"path\" or \"action\")");
                }
            }
            if (!path)
                return invalid(table->source(), section_name(kind) + " entry has no 'path'");
            if (!action)
                return invalid(table->source(), section_name(kind) + " entry for " + quote_for_message(*path) +
                                                    " has no 'action' (\"deny\" or \"audit\")");
            rules_.push_back(PathRule{kind, std::move(*path), *action, SourceLocation{source_, path_line}});
        }
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
            auto path = parse_path(element, "bpf.allow entry");
            if (!path)
                return fail(path.error());
            addition.bpf.allow.push_back(
                PathRule{RuleKind::Exec, std::move(*path), RuleAction::Audit, location(element.source())});
        }
        return merge_policy(policy_, std::move(addition));
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
};

// Key for "the same rule": kind and path.
std::string rule_key(RuleKind kind, const std::string& path) {
    std::string key(1, kind == RuleKind::FileOpen ? 'f' : 'x');
    key += path;
    return key;
}

// Appends `from` to `into`; a (kind, path) already present keeps its place and
// takes the stricter action, with the location of the rule that set it.
void add_rules(std::vector<PathRule>& into, std::vector<PathRule>&& from) {
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < into.size(); ++i)
        index.emplace(rule_key(into[i].kind, into[i].path), i);
    for (PathRule& rule : from) {
        auto [it, inserted] = index.emplace(rule_key(rule.kind, rule.path), into.size());
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

// bpf.allow: concatenated, the first mention of a path kept.
void add_allow(std::vector<PathRule>& into, std::vector<PathRule>&& from) {
    std::unordered_set<std::string> present;
    for (const PathRule& entry : into)
        present.insert(entry.path);
    for (PathRule& entry : from) {
        if (present.insert(entry.path).second)
            into.push_back(std::move(entry));
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
        return FileParser(source_name).run(root);
    } catch (const toml::parse_error& error) {
        const auto& begin = error.source().begin;
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    source_name + ":" + std::to_string(begin.line) + ": " + std::string(error.description()) +
                        " (column " + std::to_string(begin.column) + ")");
    } catch (const std::bad_alloc&) {
        return fail(ENOMEM, "parse " + source_name);
    } catch (const std::exception& error) {
        return fail(ErrorKind::PolicyInvalid, EINVAL, source_name + ": " + error.what());
    }
}

Result<Policy> load_policy_file(const std::filesystem::path& file) {
    auto text = read_config_file(file, kMaxPolicyFileBytes, "policy file");
    if (!text)
        return fail(text.error().as(ErrorKind::PolicyInvalid));
    return parse_policy(*text, file.string());
}

Result<Policy> load_policy_dir(const std::filesystem::path& dir, const PolicyFileOverride* override) {
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

Result<void> merge_policy(Policy& into, Policy from) {
    // Both checks before any change, so that a refused merge leaves `into` as it was.
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
    add_rules(into.rules, std::move(from.rules));
    add_allow(into.bpf.allow, std::move(from.bpf.allow));
    into.sources.insert(into.sources.end(), std::make_move_iterator(from.sources.begin()),
                        std::make_move_iterator(from.sources.end()));
    return {};
}

}  // namespace bpfwarden
