// Fuzz target for the policy: parse_policy() on any bytes, the parsed policy
// merged into a fixed one (merge_policy(), as a second file of the policy
// directory would be), and both compiled (compile_policy()) against a
// made-up filesystem. Policy files are written by root, but they are text a
// tool or a person may get wrong, and the daemon parses them while enforcing.
//
// Beyond "no crash, no sanitizer report", every input checks promises that
// hold whatever keys the format has (docs/POLICY.md, lib/policy/policy.h):
//   - a refused input yields EINVAL "<file>:..." without control characters,
//     so a policy cannot forge log lines (text of the file may show through,
//     UTF-8 included: quote_for_message() and toml++ pass it);
//   - an accepted one names only this file, keeps its text, has only valid
//     absolute paths at real lines, a max_rules in range, and parses the same
//     twice;
//   - a refused merge leaves the policy it was merged into as it was; an
//     accepted one keeps every rule of both, at least as strict;
//   - compiling fails only as an invalid policy (E2BIG, EINVAL); compiled
//     rules are numbered in order, every map value names one of them, no map
//     is over its capacity, and compiling twice gives the same maps.
// The engines, the mutator (fed the tokens below) and the standalone driver
// are fuzz_driver.h's.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_driver.h"
#include "policy/policy.h"
#include "policy/policy_compiler.h"

namespace {

using namespace bpfwarden;
using fuzz::broken_promise;
using namespace std::string_view_literals;

constexpr const char* kSource = "fuzz.toml";

// The tokens, numbers and bytes the mutator works with: the format's
// keywords (whichever the parser knows today), its values, TOML's syntax.
const std::vector<std::string> kTokens = {
    "[[file]]",
    "[[exec]]",
    "[bpf]",
    "[scope.web]",
    "[file]",
    "[[bpf]]",
    "file",
    "exec",
    "bpf",
    "path",
    "action",
    "recursive",
    "mode",
    "allow",
    "restrict",
    "pid1",
    "scope",
    "unit",
    "slice",
    "cgroup",
    "uid",
    "gid",
    "exe",
    "protect",
    "deny_anonymous_exec",
    "deny_write_exec",
    "max_rules",
    "\"deny\"",
    "\"audit\"",
    "\"off\"",
    "\"enforce\"",
    "true",
    "false",
    "\"prog_load\"",
    "\"BPF_PROG_LOAD\"",
    "\"link_create\"",
    "\"map_create\"",
    "\"/etc/shadow\"",
    "\"/srv/secret/\"",
    "\"/\"",
    "\"//\"",
    "\"relative\"",
    "\"\"",
    "\"/usr/bin/nc\"",
    "\"/a\\u0000b\"",
    "\"/\\u00e9\"",
    "\"nginx.service\"",
    "\"/sys/fs/cgroup/system.slice\"",
    "{ path = \"/usr/lib/systemd/systemd\", pid1 = true }",
    "{ unit = \"nginx.service\" }",
    "=",
    " = ",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "#",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "\\",
    "\n",
    "\r\n",
    "\t",
    " ",
    "",
    std::string(1, '\0'),
    "\xc3\xa9",
    "\xff",
    "0",
    "-1",
    "1",
    "131008",
    "131009",
    "1e5",
    "100_000",
    "0x1F",
    "inf",
    "nan",
    "1979-05-27T07:32:00Z",
};

const std::vector<std::string> kNumbers = {
    "0",
    "1",
    "00",
    "-1",
    "+1",
    "100000",
    "131008",
    "131009",
    "4294967295",
    "4294967296",
    "65535",
    "65536",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999999",
};

constexpr std::string_view kSpecialBytes = " \n\r\t[]{}=,.\"'#/\\-_+:0123\x7f\x80\xff\0"sv;

// The fixed policy the input is merged into, as an earlier file would be: it
// sets options and bpf.mode, so an input setting them too is a conflict.
constexpr std::string_view kBase = R"(protect = true
max_rules = 50

[[file]]
path = "/etc/shadow"
action = "audit"

[[file]]
path = "/srv/secret/"
action = "deny"

[[exec]]
path = "/usr/bin/nc"
action = "deny"

[bpf]
mode = "deny"
allow = [{ path = "/usr/lib/systemd/systemd", pid1 = true }]
)";

bool accepts(std::string_view input) { return parse_policy(input, kSource).has_value(); }

// ---- A made-up filesystem ----------------------------------------------------

uint64_t fnv1a(std::string_view text) {
    uint64_t hash = 1469598103934665603ULL;
    for (const char c : text)
        hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    return hash;
}

FileIdentity identity(uint64_t hash, bool is_dir) {
    return FileIdentity{1 + hash % 3, hash >> 8 | 1, static_cast<uint32_t>(hash >> 40) % 4, is_dir};
}

// Every path resolves the same way every time, from its hash and its
// directory's: a file, a directory, nothing yet, or an error, in a directory
// that exists or not. No real file is looked at.
PathTarget fake_resolve(const std::string& path) {
    PathTarget target;
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
    target.name = slash == std::string::npos ? path : path.substr(slash + 1);
    const uint64_t dir_hash = fnv1a(dir), hash = fnv1a(path);
    switch (dir_hash % 8) {
    case 0: target.dir_error = ENOENT; break;
    case 1: target.dir_error = EACCES; break;
    default:
        target.dir = identity(dir_hash, true);
        target.canonical = path;
        break;
    }
    if (!target.dir)
        target.file_error = target.dir_error;
    else if (hash % 4 == 0)
        target.file_error = ENOENT;
    else
        target.file = identity(hash, hash % 4 == 1);
    return target;
}

// ---- What a policy is, for comparing two ------------------------------------

std::string describe(const SourceLocation& where) { return to_string(where); }

std::string describe(const std::optional<SourceLocation>& where) { return where ? describe(*where) : "-"; }

std::string describe(const PathRule& rule) {
    return std::string(to_string(rule.kind)) + (rule.subtree ? " subtree " : " ") + rule.path + " " +
           std::string(to_string(rule.action)) + (rule.pid1_only ? " pid1 " : " ") + describe(rule.where);
}

// Every field merge_policy() is documented to look at.
std::string describe(const Policy& policy) {
    std::string out;
    for (const auto& rule : policy.rules)
        out += "rule " + describe(rule) + "\n";
    for (const auto& entry : policy.bpf.allow)
        out += "allow " + describe(entry) + "\n";
    out += "bpf " + std::string(to_string(policy.bpf.mode)) + " " + std::to_string(policy.bpf.restricted_cmds) + " " +
           describe(policy.bpf.mode_where) + " " + describe(policy.bpf.restrict_where) + "\n";
    const PolicyOptions& options = policy.options;
    for (const auto* option : {&options.protect, &options.deny_anonymous_exec, &options.deny_write_exec})
        out += "option " + std::to_string(option->value) + " " + describe(option->where) + "\n";
    out += "max_rules " + std::to_string(options.max_rules.value) + " " + describe(options.max_rules.where) + "\n";
    for (size_t i = 0; i < policy.sources.size(); ++i)
        out += "source " + policy.sources[i] + " " +
               std::to_string(i < policy.source_texts.size() ? policy.source_texts[i].size() : 0) + "\n";
    return out;
}

// ---- Promises ---------------------------------------------------------------

// No C0 control character or DEL: nothing that starts another log line.
bool free_of_controls(std::string_view text) {
    return std::none_of(text.begin(), text.end(), [](char c) { return (c >= 0 && c < 0x20) || c == 0x7f; });
}

void check_error(const Error& error, const char* what) {
    if (error.kind() != ErrorKind::PolicyInvalid)
        broken_promise((std::string(what) + " errors are PolicyInvalid").c_str(), error.message());
    if (!free_of_controls(error.context()))
        broken_promise((std::string(what) + " errors have no control characters").c_str(), error.context());
}

void check_refused(const Error& error) {
    check_error(error, "parse");
    if (error.errnum() != EINVAL)
        broken_promise("parse errors are EINVAL", error.message());
    if (!error.context().starts_with(std::string(kSource) + ":"))
        broken_promise("parse errors start with the file name", error.context());
}

bool valid_path(const std::string& path) {
    return !path.empty() && path.front() == '/' && path.find('\0') == std::string::npos &&
           path.size() <= kMaxPolicyPathLength;
}

void check_rule(const PathRule& rule, int lines) {
    if (!valid_path(rule.path))
        broken_promise("rules have valid absolute paths", describe(rule));
    if (rule.where.file != kSource || rule.where.line < 1 || rule.where.line > lines)
        broken_promise("rules are placed at a line of this file", describe(rule));
    if (rule.path != "/" && rule.path.ends_with('/'))
        broken_promise("a trailing slash becomes a subtree rule", describe(rule));
    if (rule.subtree && rule.path == "/")
        broken_promise("no subtree rule on /", describe(rule));
}

void check_accepted(const Policy& policy, std::string_view input) {
    if (policy.sources != std::vector<std::string>{kSource} || policy.source_texts.size() != 1 ||
        policy.source_texts[0] != input)
        broken_promise("a parsed policy names its file and keeps its text");
    const int lines = 1 + static_cast<int>(std::count(input.begin(), input.end(), '\n'));
    for (const auto& rule : policy.rules)
        check_rule(rule, lines);
    for (const auto& entry : policy.bpf.allow)
        if (!valid_path(entry.path))
            broken_promise("bpf.allow entries have valid absolute paths", describe(entry));
    const auto& max_rules = policy.options.max_rules;
    if (max_rules.value < 1 || max_rules.value > kMaxRulesLimit ||
        (!max_rules.where && max_rules.value != kDefaultMaxRules))
        broken_promise("max_rules is in range, or the default", std::to_string(max_rules.value));
    auto again = parse_policy(input, kSource);
    if (!again || describe(*again) != describe(policy))
        broken_promise("parsing is deterministic");
}

// Some rule of `merged` covers `rule` at least as strictly.
bool kept(const Policy& merged, const PathRule& rule) {
    for (const auto& candidate : merged.rules)
        if (candidate.kind == rule.kind && candidate.path == rule.path && candidate.subtree == rule.subtree &&
            stricter(candidate.action, rule.action) == candidate.action)
            return true;
    return false;
}

// Returns the merged policy, or nullopt if the merge was refused.
std::optional<Policy> check_merge(const Policy& base, const Policy& parsed) {
    Policy merged = base;
    auto result = merge_policy(merged, parsed);
    if (!result) {
        check_error(result.error(), "merge");
        if (result.error().errnum() != EINVAL)
            broken_promise("merge errors are EINVAL", result.error().message());
        if (describe(merged) != describe(base))
            broken_promise("a refused merge leaves the policy as it was", result.error().context());
        return std::nullopt;
    }
    if (merged.sources != std::vector<std::string>{base.sources[0], kSource})
        broken_promise("a merged policy names both files");
    if (merged.rules.size() > base.rules.size() + parsed.rules.size())
        broken_promise("merging adds no rule of its own");
    for (const Policy* part : {&base, &parsed})
        for (const auto& rule : part->rules)
            if (!kept(merged, rule))
                broken_promise("merging keeps every rule, at least as strict", describe(rule));
    return merged;
}

template <typename Value>
bool names_a_rule(const Value& value, size_t rules) {
    return value.action == BW_ACTION_NONE || value.rule_id < rules;
}

void check_rule_ids(const RuleTables& tables, size_t rules) {
    bool ok = true;
    for (const auto* map : {&tables.file_rules, &tables.exec_rules})
        for (const auto& [key, value] : *map)
            ok = ok && names_a_rule(value, rules);
    for (const auto& [key, value] : tables.dirents)
        ok = ok && names_a_rule(value.file, rules) && names_a_rule(value.exec, rules);
    for (const auto& [key, value] : tables.dir_rules)
        ok = ok && names_a_rule(value.file, rules) && names_a_rule(value.exec, rules);
    for (const auto& [key, value] : tables.bpf_allow)
        ok = ok && value.rule_id < rules;
    if (!ok)
        broken_promise("every map value names a compiled rule");
}

void check_capacities(const RuleTables& tables) {
    const size_t room = kImplicitReserve;
    if (tables.file_rules.size() + room > kFileRulesCapacity || tables.exec_rules.size() + room > kExecRulesCapacity ||
        tables.dirents.size() + room > kDirentsCapacity || tables.dir_rules.size() + room > kDirRulesCapacity ||
        tables.bpf_allow.size() + room > kBpfAllowCapacity)
        broken_promise("a compiled policy fits the maps");
}

void check_compile(const Policy& policy) {
    const PathResolver resolve = fake_resolve;
    auto compiled = compile_policy(policy, resolve);
    if (!compiled) {
        check_error(compiled.error(), "compile");
        if (compiled.error().errnum() != E2BIG && compiled.error().errnum() != EINVAL)
            broken_promise("compile errors are E2BIG or EINVAL", compiled.error().message());
        return;
    }
    const size_t rules = compiled->rules.size();
    if (rules != policy.rules.size() + policy.bpf.allow.size())
        broken_promise("every rule and bpf.allow entry is compiled");
    size_t inactive = 0;
    for (size_t i = 0; i < rules; ++i) {
        if (compiled->rules[i].id != i)
            broken_promise("compiled rules are numbered in order");
        inactive += compiled->rules[i].active() ? 0 : 1;
    }
    if (compiled->warnings.size() < inactive)
        broken_promise("every inactive rule is warned about");
    check_rule_ids(compiled->tables, rules);
    check_capacities(compiled->tables);
    auto again = compile_policy(policy, resolve);
    if (!again || !same_policy(*compiled, *again))
        broken_promise("compiling is deterministic");
}

const Policy& base_policy() {
    static const Policy base = [] {
        auto parsed = parse_policy(kBase, "00-base.toml");
        if (!parsed)
            broken_promise("the fixed base policy parses", parsed.error().message());
        return std::move(*parsed);
    }();
    return base;
}

}  // namespace

const bpfwarden::fuzz::Target& bpfwarden::fuzz::fuzz_target() {
    static const Target target{
        "policy_fuzz", kTokens, kNumbers, kSpecialBytes, "[[file]]\npath = \"/etc/shadow\"\naction = \"deny\"\n",
        accepts};
    return target;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    auto parsed = parse_policy(input, kSource);
    if (!parsed) {
        check_refused(parsed.error());
        return 0;
    }
    check_accepted(*parsed, input);
    check_compile(*parsed);
    if (auto merged = check_merge(base_policy(), *parsed))
        check_compile(*merged);
    return 0;
}
