// What `bpfwardenctl policy diff` compares: the rules bpfwardend enforces now
// (ListRules and DriftedRules over D-Bus) against a policy directory compiled
// here. Pure functions of those two lists, so that they are tested without a
// bus or a daemon (tests/unit/policy_diff_test.cpp).
//
// A rule is known by (kind, path), the way an administrator names it and the
// way ListRules lists it. ListRules gives a subtree rule's path without its
// trailing "/" (daemon/enforcer_bus.cpp), so a trailing "/" is ignored when
// matching; should two rules share (kind, path) (a file rule and a subtree
// rule on one directory), they are paired in policy order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/policy_compiler.h"

namespace bpfwarden::ctl {

// A rule in force, as ListRules (and DriftedRules, for `drift`) report it.
struct RunningRule {
    uint32_t id = 0;
    std::string kind;                  // rule_kind_name(): "file", "exec", "bpf-allow", ...
    std::string path;                  // as ListRules gives it: as written, a subtree rule's ending in "/"
    std::string action;                // "deny", "audit", "allow" (bpf-allow)
    std::string source;                // "file:line", the file as bpfwardend named it
    bool active = false;               // its path resolved when applied
    std::optional<std::string> drift;  // DriftedRules' detail: it names another file now
    std::string scope{};               // RuleScopes: "uid=33", ...; empty: every process
    std::string mode{};                // RuleScopes: "enforce" or "audit"; empty without a scope
    uint64_t hits = 0;                 // RuleHits: matches since the policy was applied
};

// "active", "inactive: path missing" or "drifted: <detail>".
std::string rule_state(const RunningRule& rule);

// One side of a comparison: a rule as the diff prints it.
struct RuleView {
    std::string kind;     // rule_kind_name(): "file", "exec", "bpf-allow", ...
    std::string path;     // as written: a subtree rule's ends in "/"
    std::string action;   // "deny", "audit", "allow"
    std::string source;   // "50-local.toml:3": the file's name, not its directory
    std::string state;    // rule_state(), or what the compiled rule would be
    std::string scope{};  // the scope's selector; empty: every process
    std::string mode{};   // the scope's mode; empty without a scope
};

// "kind path action (source)", with " for SCOPE" and " (audit mode)" when scoped.
std::string rule_text(const RuleView& rule);

// A rule on both sides whose action or source location differs, or whose
// resolved state would differ once applied.
struct RulePair {
    RuleView running, compiled;
};

struct PolicyDiff {
    std::vector<RuleView> added;          // compiled only
    std::vector<RuleView> removed;        // running only
    std::vector<RulePair> changed;        // action or source location
    std::vector<RulePair> state_changes;  // inactive <-> active, or drifted (an apply re-resolves it)

    bool empty() const { return added.empty() && removed.empty() && changed.empty() && state_changes.empty(); }
};

// "50-local.toml:3" from "/etc/bpfwarden/policy.d/50-local.toml:3": a
// staging directory's files are compared with the daemon's by name.
std::string source_file_line(const std::string& source);

// The rule as `compiled` holds it.
RuleView view_of(const RuleInfo& rule);
RuleView view_of(const RunningRule& rule);

// What applying `compiled` over `running` would change, in rule terms. Only
// rules: ListRules does not show top-level options or [bpf] mode/restrict.
PolicyDiff diff_policy(const std::vector<RunningRule>& running, const CompiledPolicy& compiled);

}  // namespace bpfwarden::ctl
