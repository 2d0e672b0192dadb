#include "policy_diff.h"

#include <deque>
#include <map>
#include <tuple>
#include <utility>

namespace bpfwarden::ctl {
namespace {

constexpr const char* kActive = "active";
constexpr const char* kInactive = "inactive: path missing";

// (kind, path as written, scope): a subtree rule's path ends with "/", so
// "/srv/a/" and a rule on the file "/srv/a" are two rules.
using RuleKey = std::tuple<std::string, std::string, std::string>;

RuleKey key_of(const RuleView& view) { return {view.kind, view.path, view.scope}; }

std::string action_name(const RuleInfo& rule) { return rule.bpf_allow ? "allow" : std::string(to_string(rule.action)); }

// The running rules not yet paired, by identity, in policy order.
using Unpaired = std::map<RuleKey, std::deque<size_t>>;

Unpaired index_running(const std::vector<RuleView>& running) {
    Unpaired unpaired;
    for (size_t i = 0; i < running.size(); ++i)
        unpaired[key_of(running[i])].push_back(i);
    return unpaired;
}

void compare_pair(const RuleView& running, const RuleView& compiled, PolicyDiff& diff) {
    if (running.action != compiled.action || running.source != compiled.source || running.mode != compiled.mode)
        diff.changed.push_back({running, compiled});
    if (running.state != compiled.state)
        diff.state_changes.push_back({running, compiled});
}

}  // namespace

std::string rule_state(const RunningRule& rule) {
    if (rule.drift)
        return "drifted: " + *rule.drift;
    return rule.active ? kActive : kInactive;
}

std::string source_file_line(const std::string& source) {
    size_t slash = source.rfind('/');
    return slash == std::string::npos ? source : source.substr(slash + 1);
}

RuleView view_of(const RuleInfo& rule) {
    // rule_kind_name(): the very names ListRules uses, so that both sides agree.
    RuleView view{rule_kind_name(rule), written_path(rule), action_name(rule), source_file_line(to_string(rule.where)),
                  rule.active() ? kActive : kInactive};
    if (rule.scope) {
        view.scope = rule.scope->selector();
        view.mode = to_string(rule.audit_mode ? PolicyMode::Audit : PolicyMode::Enforce);
    }
    return view;
}

RuleView view_of(const RunningRule& rule) {
    return {rule.kind, rule.path, rule.action, source_file_line(rule.source), rule_state(rule), rule.scope, rule.mode};
}

std::string rule_text(const RuleView& rule) {
    std::string text = rule.kind + " " + rule.path + " " + rule.action;
    if (!rule.scope.empty())
        text += " for " + rule.scope + (rule.mode == "audit" ? " (audit mode)" : "");
    return text + " (" + rule.source + ")";
}

PolicyDiff diff_policy(const std::vector<RunningRule>& running_rules, const CompiledPolicy& compiled) {
    std::vector<RuleView> running;
    for (const auto& rule : running_rules)
        running.push_back(view_of(rule));
    Unpaired unpaired = index_running(running);
    std::vector<bool> paired(running.size(), false);
    PolicyDiff diff;
    for (const auto& rule : compiled.rules) {
        RuleView view = view_of(rule);
        auto match = unpaired.find(key_of(view));
        if (match == unpaired.end() || match->second.empty()) {
            diff.added.push_back(std::move(view));
            continue;
        }
        size_t index = match->second.front();
        match->second.pop_front();
        paired[index] = true;
        compare_pair(running[index], view, diff);
    }
    for (size_t i = 0; i < running.size(); ++i)
        if (!paired[i])
            diff.removed.push_back(running[i]);
    return diff;
}

}  // namespace bpfwarden::ctl
