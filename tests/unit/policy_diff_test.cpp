// `bpfwardenctl policy diff`'s comparison (ctl/policy_diff.h): running rules
// as ListRules and DriftedRules report them against a compiled policy.
#include "policy_diff.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <functional>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "test_helpers.h"

namespace bpfwarden::ctl {
namespace {

constexpr const char* kPolicyDir = "/etc/bpfwarden/policy.d";

// Every path exists, except beneath /missing/; paths beneath /srv are directories.
PathTarget fake_resolve(const std::string& path) {
    PathTarget target;
    if (path.starts_with("/missing/")) {
        target.file_error = target.dir_error = ENOENT;
        return target;
    }
    std::string parent = path.substr(0, path.rfind('/'));
    target.dir = FileIdentity{1, std::hash<std::string>{}(parent), 0, true};
    target.file = FileIdentity{1, std::hash<std::string>{}(path), 0, path.starts_with("/srv")};
    target.name = path.substr(path.rfind('/') + 1);
    target.canonical = path;
    return target;
}

// One policy file, `name` in `dir`, compiled against the fake filesystem.
CompiledPolicy compile(const std::string& text, const std::string& dir = kPolicyDir,
                       const std::string& name = "50-local.toml") {
    auto policy = parse_policy(text, dir + "/" + name);
    EXPECT_OK(policy);
    auto compiled = compile_policy(*policy, fake_resolve);
    EXPECT_OK(compiled);
    return *compiled;
}

// What ListRules reports for `compiled` once bpfwardend runs it
// (daemon/enforcer_bus.cpp: the path as written, a subtree's with its "/").
std::vector<RunningRule> running_of(const CompiledPolicy& compiled) {
    std::vector<RunningRule> running;
    for (const auto& rule : compiled.rules) {
        running.push_back({rule.id, rule_kind_name(rule), written_path(rule),
                           rule.bpf_allow ? "allow" : std::string(to_string(rule.action)), to_string(rule.where),
                           rule.active(), std::nullopt});
        if (rule.scope) {  // RuleScopes
            running.back().scope = rule.scope->selector();
            running.back().mode = rule.audit_mode ? "audit" : "enforce";
        }
    }
    return running;
}

constexpr const char* kBase = R"([[file]]
path = "/etc/shadow"
action = "audit"

[[exec]]
path = "/usr/bin/nc"
action = "deny"

[[file]]
path = "/srv/secret/"
action = "deny"

[bpf]
allow = ["/usr/sbin/bpftool"]
)";

TEST(PolicyDiff, SamePolicyHasNoDifference) {
    auto compiled = compile(kBase);
    PolicyDiff diff = diff_policy(running_of(compiled), compiled);
    EXPECT_TRUE(diff.empty());
}

TEST(PolicyDiff, StagingCopyComparesByFileNameAndLine) {
    auto running = running_of(compile(kBase));
    PolicyDiff diff = diff_policy(running, compile(kBase, "/home/admin/staging"));
    EXPECT_TRUE(diff.empty()) << diff.changed.size() << " changed";
}

TEST(PolicyDiff, AddedRuleIsReportedWithItsLocation) {
    auto running = running_of(compile(kBase));
    PolicyDiff diff =
        diff_policy(running, compile(std::string(kBase) + "\n[[file]]\npath = \"/etc/x\"\naction = \"deny\"\n"));
    ASSERT_EQ(diff.added.size(), 1u);
    EXPECT_EQ(diff.added[0].kind, "file");
    EXPECT_EQ(diff.added[0].path, "/etc/x");
    EXPECT_EQ(diff.added[0].action, "deny");
    EXPECT_EQ(diff.added[0].source, "50-local.toml:17");
    EXPECT_EQ(diff.added[0].state, "active");
    EXPECT_TRUE(diff.removed.empty());
    EXPECT_TRUE(diff.changed.empty());
    EXPECT_FALSE(diff.empty());
}

TEST(PolicyDiff, AddedRuleOnAMissingDirectoryWouldBeInactive) {
    auto running = running_of(compile(kBase));
    PolicyDiff diff =
        diff_policy(running, compile(std::string(kBase) + "\n[[file]]\npath = \"/missing/x\"\naction = \"deny\"\n"));
    ASSERT_EQ(diff.added.size(), 1u);
    EXPECT_EQ(diff.added[0].state, "inactive: path missing");
}

TEST(PolicyDiff, RemovedRuleIsReportedAsRunning) {
    auto running = running_of(compile(kBase));
    PolicyDiff diff = diff_policy(running, compile("[[file]]\npath = \"/etc/shadow\"\naction = \"audit\"\n"));
    ASSERT_EQ(diff.removed.size(), 3u);
    EXPECT_EQ(diff.removed[0].kind, "exec");
    EXPECT_EQ(diff.removed[0].path, "/usr/bin/nc");
    EXPECT_EQ(diff.removed[0].source, "50-local.toml:6");
    EXPECT_EQ(diff.removed[1].path, "/srv/secret/");  // a subtree rule, as written
    EXPECT_EQ(diff.removed[2].kind, "bpf-allow");
    EXPECT_EQ(diff.removed[2].action, "allow");
    EXPECT_TRUE(diff.added.empty());
    EXPECT_TRUE(diff.changed.empty());
}

constexpr const char* kScoped = R"([[file]]
path = "/etc/z"
action = "audit"

[[file]]
path = "/etc/z"
action = "deny"
scope = { uid = 33 }
)";

TEST(PolicyDiff, RulesOnOnePathArePairedByScope) {
    auto running = running_of(compile(kScoped));
    EXPECT_TRUE(diff_policy(running, compile(kScoped)).empty());
    PolicyDiff diff = diff_policy(running, compile("[[file]]\npath = \"/etc/z\"\naction = \"deny\"\n"
                                                   "scope = { uid = 34 }\n"));
    ASSERT_EQ(diff.added.size(), 1u);
    EXPECT_EQ(diff.added[0].scope, "uid=34");
    EXPECT_EQ(rule_text(diff.added[0]), "file /etc/z deny for uid=34 (50-local.toml:2)");
    ASSERT_EQ(diff.removed.size(), 2u);
    EXPECT_EQ(diff.removed[0].scope, "");
    EXPECT_EQ(diff.removed[1].scope, "uid=33");
}

TEST(PolicyDiff, AScopesModeChangeIsAChange) {
    auto running = running_of(compile(kScoped));
    std::string audit = kScoped;
    audit.replace(audit.find("{ uid = 33 }"), 12, "{ uid = 33, mode = \"audit\" }");
    PolicyDiff diff = diff_policy(running, compile(audit));
    ASSERT_EQ(diff.changed.size(), 1u);
    EXPECT_EQ(diff.changed[0].running.mode, "enforce");
    EXPECT_EQ(diff.changed[0].compiled.mode, "audit");
    EXPECT_EQ(rule_text(diff.changed[0].compiled), "file /etc/z deny for uid=33 (audit mode) (50-local.toml:6)");
}

TEST(PolicyDiff, ChangedActionShowsBothSides) {
    auto running = running_of(compile("[[file]]\npath = \"/etc/z\"\naction = \"audit\"\n"));
    PolicyDiff diff = diff_policy(running, compile("[[file]]\npath = \"/etc/z\"\naction = \"deny\"\n"));
    ASSERT_EQ(diff.changed.size(), 1u);
    EXPECT_EQ(diff.changed[0].running.action, "audit");
    EXPECT_EQ(diff.changed[0].compiled.action, "deny");
    EXPECT_TRUE(diff.added.empty());
    EXPECT_TRUE(diff.removed.empty());
    EXPECT_TRUE(diff.state_changes.empty());
}

TEST(PolicyDiff, MovedRuleIsAChangeOfLocation) {
    auto running = running_of(compile("[[file]]\npath = \"/etc/z\"\naction = \"deny\"\n"));
    PolicyDiff diff =
        diff_policy(running, compile("[[file]]\npath = \"/etc/z\"\naction = \"deny\"\n", kPolicyDir, "60-other.toml"));
    ASSERT_EQ(diff.changed.size(), 1u);
    EXPECT_EQ(diff.changed[0].running.source, "50-local.toml:2");
    EXPECT_EQ(diff.changed[0].compiled.source, "60-other.toml:2");
}

TEST(PolicyDiff, InactiveRuleThatWouldResolveIsAStateChange) {
    auto compiled = compile(kBase);
    auto running = running_of(compiled);
    running[0].active = false;  // its directory did not exist when applied
    PolicyDiff diff = diff_policy(running, compiled);
    ASSERT_EQ(diff.state_changes.size(), 1u);
    EXPECT_EQ(diff.state_changes[0].running.state, "inactive: path missing");
    EXPECT_EQ(diff.state_changes[0].compiled.state, "active");
    EXPECT_EQ(diff.state_changes[0].compiled.path, "/etc/shadow");
    EXPECT_TRUE(diff.changed.empty());
    EXPECT_FALSE(diff.empty());
}

TEST(PolicyDiff, ActiveRuleWhosePathVanishedIsAStateChange) {
    auto running = running_of(compile("[[exec]]\npath = \"/srv/tool\"\naction = \"deny\"\n"));
    PolicyDiff diff = diff_policy(running, compile("[[exec]]\npath = \"/missing/tool\"\naction = \"deny\"\n"));
    // Another path is another rule: removed and added, not a state change.
    EXPECT_EQ(diff.added.size(), 1u);
    EXPECT_EQ(diff.removed.size(), 1u);

    auto gone = running_of(compile("[[exec]]\npath = \"/missing/tool\"\naction = \"deny\"\n"));
    gone[0].active = true;  // it resolved when applied; its directory has gone since
    PolicyDiff vanished = diff_policy(gone, compile("[[exec]]\npath = \"/missing/tool\"\naction = \"deny\"\n"));
    ASSERT_EQ(vanished.state_changes.size(), 1u);
    EXPECT_EQ(vanished.state_changes[0].running.state, "active");
    EXPECT_EQ(vanished.state_changes[0].compiled.state, "inactive: path missing");
}

TEST(PolicyDiff, DriftedRuleWouldBeReResolved) {
    auto compiled = compile(kBase);
    auto running = running_of(compiled);
    running[1].drift = "names inode 7 on device 1 now, applied to inode 5 on device 1";
    PolicyDiff diff = diff_policy(running, compiled);
    ASSERT_EQ(diff.state_changes.size(), 1u);
    EXPECT_EQ(diff.state_changes[0].running.state,
              "drifted: names inode 7 on device 1 now, applied to inode 5 on device 1");
    EXPECT_EQ(diff.state_changes[0].compiled.state, "active");
}

TEST(PolicyDiff, SubtreeRuleKeepsItsSlash) {
    auto compiled = compile("[[file]]\npath = \"/srv/secret/\"\naction = \"deny\"\n");
    auto running = running_of(compiled);
    ASSERT_EQ(running[0].path, "/srv/secret/");
    EXPECT_TRUE(diff_policy(running, compiled).empty());

    PolicyDiff removed = diff_policy(running, compile(""));
    ASSERT_EQ(removed.removed.size(), 1u);
    PolicyDiff added = diff_policy({}, compiled);
    ASSERT_EQ(added.added.size(), 1u);
    EXPECT_EQ(added.added[0].path, "/srv/secret/");  // the compiled side shows what it is
}

TEST(PolicyDiff, FileAndSubtreeRulesOnOnePathAreTwoRules) {
    constexpr const char* both =
        "[[file]]\npath = \"/srv/a\"\naction = \"audit\"\n\n"
        "[[file]]\npath = \"/srv/a/\"\naction = \"deny\"\n";
    auto compiled = compile(both);
    ASSERT_EQ(compiled.rules.size(), 2u);
    EXPECT_TRUE(diff_policy(running_of(compiled), compiled).empty());
    // Dropping the subtree rule leaves one of the two unpaired.
    PolicyDiff diff = diff_policy(running_of(compiled), compile("[[file]]\npath = \"/srv/a\"\naction = \"audit\"\n"));
    ASSERT_EQ(diff.removed.size(), 1u);
    EXPECT_EQ(diff.removed[0].path, "/srv/a/");
    EXPECT_TRUE(diff.added.empty());
}

TEST(PolicyDiff, KindIsPartOfTheIdentity) {
    auto running = running_of(compile("[[file]]\npath = \"/usr/bin/nc\"\naction = \"deny\"\n"));
    PolicyDiff diff = diff_policy(running, compile("[[exec]]\npath = \"/usr/bin/nc\"\naction = \"deny\"\n"));
    EXPECT_EQ(diff.added.size(), 1u);
    EXPECT_EQ(diff.removed.size(), 1u);
    EXPECT_TRUE(diff.changed.empty());
}

TEST(PolicyDiff, RuleStateWords) {
    RunningRule rule;
    rule.active = true;
    EXPECT_EQ(rule_state(rule), "active");
    rule.active = false;
    EXPECT_EQ(rule_state(rule), "inactive: path missing");
    rule.drift = "names inode 2 now";
    EXPECT_EQ(rule_state(rule), "drifted: names inode 2 now");
}

TEST(PolicyDiff, SourceFileLineDropsTheDirectory) {
    EXPECT_EQ(source_file_line("/etc/bpfwarden/policy.d/00-default.toml:26"), "00-default.toml:26");
    EXPECT_EQ(source_file_line("local.toml:3"), "local.toml:3");
}

}  // namespace
}  // namespace bpfwarden::ctl
