// Rule scopes and modes: parsing ([scope.NAME], inline scopes, mode), their
// errors, and what the compiler puts in the maps for them.
#include "policy/scope.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "policy/policy_compiler.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

Policy parse(const std::string& text, const std::string& name = "50-test.toml") {
    auto policy = parse_policy(text, name);
    EXPECT_TRUE(policy) << (policy ? "" : policy.error().message());
    return policy ? *policy : Policy{};
}

std::string parse_error(const std::string& text) {
    auto policy = parse_policy(text, "50-test.toml");
    EXPECT_FALSE(policy) << "accepted:\n" << text;
    return policy ? "" : policy.error().message();
}

// Every path exists: directories end in '/' in `dirs`, everything else is a file.
PathResolver resolver(std::map<std::string, uint64_t> files, std::map<std::string, uint64_t> dirs = {}) {
    return [files, dirs](const std::string& path) {
        PathTarget target;
        auto slash = path.rfind('/');
        target.name = path.substr(slash + 1);
        target.dir = FileIdentity{1, 2, 0, true};
        if (auto it = files.find(path); it != files.end())
            target.file = FileIdentity{1, it->second, 0, false};
        else if (auto dir = dirs.find(path); dir != dirs.end())
            target.file = FileIdentity{1, dir->second, 0, true};
        else
            target.file_error = ENOENT;
        return target;
    };
}

const PathResolver kFiles = resolver({{"/etc/secret", 10}, {"/usr/sbin/nginx", 20}, {"/etc/other", 11}},
                                     {{"/sys/fs/cgroup/system.slice/web.service", 777}});

CompiledPolicy compile(const Policy& policy, const PathResolver& resolve = kFiles) {
    auto compiled = compile_policy(policy, resolve);
    EXPECT_TRUE(compiled) << (compiled ? "" : compiled.error().message());
    return compiled ? *compiled : CompiledPolicy{};
}

bw_rule file_entry(const CompiledPolicy& compiled, uint64_t ino) {
    auto it = compiled.tables.file_rules.find(bw_inode_key{1, ino, 0, 0});
    return it == compiled.tables.file_rules.end() ? bw_rule{} : it->second;
}

TEST(ScopeParse, InlineUnitScopeDefaultsToTheSystemSlice) {
    Policy policy = parse(R"(
[[file]]
path = "/etc/secret"
action = "deny"
scope = { unit = "nginx.service" }
)");
    ASSERT_EQ(policy.rules.size(), 1u);
    ASSERT_TRUE(policy.rules[0].scope);
    EXPECT_EQ(policy.rules[0].scope->kind, ScopeKind::Unit);
    EXPECT_EQ(policy.rules[0].scope->value, "nginx.service");
    EXPECT_EQ(policy.rules[0].scope->slice, "system.slice");
    EXPECT_EQ(policy.rules[0].scope->selector(), "unit=nginx.service slice=system.slice");
}

TEST(ScopeParse, NamedScopeMayBeDefinedInAnotherFile) {
    Policy merged = parse(R"(
[scope.web]
uid = 33
mode = "audit"
)",
                          "10-scopes.toml");
    ASSERT_TRUE(merge_policy(merged, parse(R"(
[[exec]]
path = "/usr/bin/nc"
action = "deny"
scope = "web"
)",
                                           "50-rules.toml")));
    auto scope = scope_of(merged, merged.rules.at(0));
    ASSERT_TRUE(scope && *scope);
    EXPECT_EQ((*scope)->kind, ScopeKind::Uid);
    EXPECT_EQ((*scope)->id, 33u);
    EXPECT_EQ((*scope)->mode, PolicyMode::Audit);
    EXPECT_EQ(to_string((*scope)->where), "10-scopes.toml:2");
}

TEST(ScopeParse, SameFileInTwoScopesStaysTwoRules) {
    Policy policy = parse(R"(
[[file]]
path = "/etc/secret"
action = "deny"
scope = { uid = 1000 }
[[file]]
path = "/etc/secret"
action = "audit"
)");
    EXPECT_EQ(policy.rules.size(), 2u);
}

TEST(ScopeParse, BadScopesNameTheLineAndTheReason) {
    const std::string rule = "[[file]]\npath = \"/etc/secret\"\naction = \"deny\"\n";
    const std::pair<std::string, std::string> cases[] = {
        {"scope = { team = \"x\" }\n", "50-test.toml:4: unknown scope kind 'team'"},
        {"scope = { unit = \"ng inx.service\" }\n",
         "50-test.toml:4: unit 'ng inx.service': the character ' ' is not allowed"},
        {"scope = { unit = \"nginx\" }\n", "not a unit with a cgroup"},
        {"scope = { cgroup = \"/etc/web\" }\n", "cgroup path '/etc/web' is outside the cgroup filesystem"},
        {"scope = { cgroup = \"/sys/fs/cgroup/../etc\" }\n", "not a plain path"},
        {"scope = { uid = 4294967295 }\n", "uid 4294967295 is out of range (0 to 4294967294)"},
        {"scope = { gid = -1 }\n", "gid -1 is out of range"},
        {"scope = { uid = 1, gid = 2 }\n", "a scope names one of"},
        {"scope = { mode = \"audit\" }\n", "a scope needs one of"},
        {"scope = { uid = 1, slice = \"a.slice\" }\n", "'slice' goes with a unit scope only"},
        {"scope = { exe = \"bin/x\" }\n", "relative path 'bin/x'"},
        {"scope = { uid = 1, mode = \"loud\" }\n", "a scope's mode must be \"enforce\" or \"audit\", not 'loud'"},
    };
    for (const auto& [scope, expected] : cases)
        EXPECT_MENTIONS(parse_error(rule + scope), expected) << "scope: " << scope;
    EXPECT_MENTIONS(parse_error("mode = \"permissive\"\n"), "50-test.toml:1: mode must be");
}

TEST(ScopeParse, ScopeNamesAndModeAreSetOnce) {
    Policy merged = parse("[scope.web]\nuid = 33\nmode = \"audit\"\n", "10-a.toml");
    auto twice = merge_policy(merged, parse("[scope.web]\nuid = 34\n", "20-b.toml"));
    ASSERT_FALSE(twice);
    EXPECT_MENTIONS(twice.error().message(), "20-b.toml:1: [scope.web] is already set in 10-a.toml:1");
    Policy modes = parse("mode = \"audit\"\n", "10-a.toml");
    auto mode_twice = merge_policy(modes, parse("mode = \"enforce\"\n", "20-b.toml"));
    ASSERT_FALSE(mode_twice);
    EXPECT_MENTIONS(mode_twice.error().message(), "20-b.toml:1: mode is already set in 10-a.toml:1");
}

TEST(ScopeParse, UnknownScopeNameIsAnErrorAtCompile) {
    Policy policy = parse("[[file]]\npath = \"/etc/secret\"\naction = \"deny\"\nscope = \"nope\"\n");
    auto compiled = compile_policy(policy, kFiles);
    ASSERT_FALSE(compiled);
    EXPECT_MENTIONS(compiled.error().message(),
                    "50-test.toml:2: unknown scope 'nope' (no [scope.NAME] table of that name in the policy)");
    // A name with a control character is shown escaped, and only once (found by policy_fuzz).
    auto tabbed =
        compile_policy(parse("[[file]]\npath = \"/etc/secret\"\naction = \"deny\"\nscope = \"a\\tb\"\n"), kFiles);
    ASSERT_FALSE(tabbed);
    EXPECT_EQ(tabbed.error().message().find('\t'), std::string::npos) << tabbed.error().message();
}

TEST(ScopeNames, UnitNamesAndSlices) {
    EXPECT_FALSE(unit_name_problem("getty@tty1.service"));
    EXPECT_FALSE(unit_name_problem("session-3.scope"));
    EXPECT_TRUE(unit_name_problem(std::string(64, 'a') + ".service"));
    EXPECT_EQ(default_slice_of("nginx.service"), "system.slice");
    EXPECT_EQ(default_slice_of("a-b.slice"), "a.slice");
    EXPECT_EQ(default_slice_of("user.slice"), "");
    EXPECT_NE(scope_key("uid=1"), scope_key("uid=2"));
    EXPECT_NE(scope_key(""), 0u);
}

TEST(ScopeCompile, ScopedRuleCarriesItsScopeKeyAndTheScopeIsInTheMap) {
    CompiledPolicy compiled = compile(parse(R"(
[[file]]
path = "/etc/secret"
action = "deny"
scope = { unit = "web.service" }
)"));
    bw_rule entry = file_entry(compiled, 10);
    EXPECT_EQ(entry.action, BW_ACTION_DENY);
    EXPECT_EQ(entry.scope, scope_key("unit=web.service slice=system.slice"));
    EXPECT_EQ(entry.else_action, BW_ACTION_NONE);
    ASSERT_EQ(compiled.tables.scopes.size(), 1u);
    const bw_scope& scope = compiled.tables.scopes.begin()->second;
    EXPECT_EQ(scope.kind, BW_SCOPE_UNIT);
    EXPECT_STREQ(scope.unit, "web.service");
    EXPECT_STREQ(scope.slice, "system.slice");
}

TEST(ScopeCompile, ScopedAndEveryoneRulesShareTheEntry) {
    CompiledPolicy compiled = compile(parse(R"(
[[file]]
path = "/etc/secret"
action = "audit"
[[file]]
path = "/etc/secret"
action = "deny"
scope = { uid = 1000 }
)"));
    bw_rule entry = file_entry(compiled, 10);
    EXPECT_EQ(entry.action, BW_ACTION_DENY);
    EXPECT_EQ(entry.rule_id, 1u);
    EXPECT_EQ(entry.scope, scope_key("uid=1000"));
    EXPECT_EQ(entry.else_action, BW_ACTION_AUDIT);
    EXPECT_EQ(entry.else_rule_id, 0u);
    EXPECT_EQ(compiled.tables.scopes.at(entry.scope).id, 1000u);
}

TEST(ScopeCompile, TwoScopesOnOneFileAreContradictory) {
    Policy merged = parse("[[file]]\npath = \"/etc/secret\"\naction = \"deny\"\nscope = { uid = 1 }\n", "10-a.toml");
    ASSERT_TRUE(merge_policy(
        merged, parse("[[file]]\npath = \"/etc/secret\"\naction = \"deny\"\nscope = { uid = 2 }\n", "20-b.toml")));
    auto compiled = compile_policy(merged, kFiles);
    ASSERT_FALSE(compiled);
    EXPECT_MENTIONS(compiled.error().message(), "20-b.toml:2: contradictory rules");
    EXPECT_MENTIONS(compiled.error().message(), "10-a.toml:2");
    EXPECT_MENTIONS(compiled.error().message(), "for uid=2");
}

TEST(ScopeCompile, BpfwardensOwnRuleHoldsForEveryone) {
    RuleTables tables;
    bw_rule scoped = plain_rule(BW_ACTION_AUDIT, 3);
    scoped.scope = scope_key("uid=1");
    bw_inode_key key{1, 10, 0, 0};
    tables.add_inode_rule(RuleKind::FileOpen, key, scoped);
    tables.add_inode_rule(RuleKind::FileOpen, key, plain_rule(BW_ACTION_DENY, kProtectedFilesRuleId));
    tables.add_inode_rule(RuleKind::FileOpen, key, scoped);
    EXPECT_EQ(tables.file_rules.at(key).rule_id, kProtectedFilesRuleId);
    EXPECT_EQ(tables.file_rules.at(key).scope, 0u);
    EXPECT_TRUE(tables.scope_conflicts.empty());
}

TEST(ScopeCompile, ModesBecomeFlagsAndSettings) {
    CompiledPolicy scoped_audit = compile(parse(R"(
[[file]]
path = "/etc/secret"
action = "deny"
scope = { uid = 7, mode = "audit" }
)"));
    EXPECT_TRUE(file_entry(scoped_audit, 10).flags & BW_RULE_AUDIT_MODE);
    EXPECT_EQ(scoped_audit.tables.settings.audit_mode, 0u);

    CompiledPolicy global_audit = compile(parse(R"(
mode = "audit"
[bpf]
mode = "deny"
[[file]]
path = "/etc/secret"
action = "deny"
)"));
    EXPECT_EQ(global_audit.tables.settings.audit_mode, 1u);
    EXPECT_EQ(global_audit.tables.bpf_policy.action, BW_ACTION_AUDIT);
    EXPECT_EQ(file_entry(global_audit, 10).action, BW_ACTION_DENY);  // the rule is unchanged
}

// bpf.allow entries take scopes like rules: the entry carries the scope's key
// and the scope is in the map; one executable is allowed for everyone or in
// one scope.
TEST(ScopeCompile, ScopedBpfAllowEntryCarriesItsScope) {
    CompiledPolicy compiled = compile(parse(R"(
[scope.web]
unit = "web.service"

[bpf]
allow = ["/usr/sbin/nginx", { path = "/etc/secret", scope = "web", pid1 = true }]
)"));
    ASSERT_EQ(compiled.tables.bpf_allow.size(), 2u);
    const bw_bpf_allow& everyone = compiled.tables.bpf_allow.at(bw_inode_key{1, 20, 0, 0});
    EXPECT_EQ(everyone.scope, 0u);
    const bw_bpf_allow& scoped = compiled.tables.bpf_allow.at(bw_inode_key{1, 10, 0, 0});
    EXPECT_EQ(scoped.scope, scope_key("unit=web.service slice=system.slice"));
    EXPECT_EQ(scoped.flags, static_cast<uint32_t>(BW_ALLOW_PID1_ONLY));
    EXPECT_EQ(compiled.tables.scopes.at(scoped.scope).kind, static_cast<uint32_t>(BW_SCOPE_UNIT));
    const RuleInfo* info = compiled.rule(scoped.rule_id);
    ASSERT_NE(info, nullptr);
    ASSERT_TRUE(info->scope);
    EXPECT_EQ(info->scope->name, "web");
}

TEST(ScopeCompile, BpfAllowForEveryoneAndInAScopeIsTheBroaderOne) {
    CompiledPolicy compiled = compile(parse(R"(
[bpf]
allow = [{ path = "/usr/sbin/nginx", scope = { uid = 33 } }, "/usr/sbin/nginx"]
)"));
    ASSERT_EQ(compiled.rules.size(), 2u) << "two entries: (path, scope) differ";
    ASSERT_EQ(compiled.tables.bpf_allow.size(), 1u);
    EXPECT_EQ(compiled.tables.bpf_allow.begin()->second.scope, 0u);
}

TEST(ScopeCompile, BpfAllowInTwoScopesIsContradictory) {
    Policy merged = parse("[bpf]\nallow = [{ path = \"/usr/sbin/nginx\", scope = { uid = 1 } }]\n", "10-a.toml");
    ASSERT_TRUE(merge_policy(
        merged, parse("[bpf]\nallow = [{ path = \"/usr/sbin/nginx\", scope = { uid = 2 } }]\n", "20-b.toml")));
    auto compiled = compile_policy(merged, kFiles);
    ASSERT_FALSE(compiled);
    EXPECT_MENTIONS(compiled.error().message(), "20-b.toml:2: contradictory bpf.allow entries");
    EXPECT_MENTIONS(compiled.error().message(), "bpf.allow '/usr/sbin/nginx' for uid=2");
    EXPECT_MENTIONS(compiled.error().message(), "10-a.toml:2");
}

// A scoped entry and a PID-1-only entry: neither allows all the other does,
// and keeping either one's conditions only would widen the other.
TEST(ScopeCompile, BpfAllowInAScopeAndAsPid1OnlyIsContradictory) {
    auto compiled = compile_policy(parse(R"(
[bpf]
allow = [{ path = "/usr/sbin/nginx", pid1 = true }, { path = "/usr/sbin/nginx", scope = { uid = 33 } }]
)"),
                                   kFiles);
    ASSERT_FALSE(compiled);
    EXPECT_MENTIONS(compiled.error().message(), "contradictory bpf.allow entries");
}

TEST(ScopeCompile, BpfAllowInAScopeThatDoesNotResolveAllowsNobody) {
    CompiledPolicy compiled = compile(parse(R"(
[bpf]
allow = [{ path = "/usr/sbin/nginx", scope = { cgroup = "/sys/fs/cgroup/gone" } }]
)"));
    EXPECT_TRUE(compiled.tables.bpf_allow.empty());
    ASSERT_EQ(compiled.rules.size(), 1u);
    EXPECT_FALSE(compiled.rules[0].active());
    EXPECT_FALSE(compiled.warnings.empty());
}

TEST(ScopeParse, BpfAllowEntryScopeErrorsNameTheLine) {
    EXPECT_MENTIONS(parse_error("[bpf]\nallow = [{ path = \"/usr/sbin/bpftool\", scope = { team = \"x\" } }]\n"),
                    "50-test.toml:2");
    EXPECT_MENTIONS(parse_error("[bpf]\nallow = [{ path = \"/usr/sbin/bpftool\", owner = 1 }]\n"),
                    "(expected \"path\", \"pid1\" or \"scope\")");
}

TEST(ScopeCompile, ExeAndCgroupScopesResolveOrLeaveTheRuleInactive) {
    CompiledPolicy compiled = compile(parse(R"(
[[file]]
path = "/etc/secret"
action = "deny"
scope = { exe = "/usr/sbin/nginx" }
[[file]]
path = "/etc/other"
action = "deny"
scope = { cgroup = "/sys/fs/cgroup/system.slice/web.service/" }
[[exec]]
path = "/etc/secret"
action = "deny"
scope = { exe = "/usr/sbin/missing" }
)"));
    const bw_scope& exe = compiled.tables.scopes.at(file_entry(compiled, 10).scope);
    EXPECT_EQ(exe.kind, BW_SCOPE_EXE);
    EXPECT_EQ(exe.exe.ino, 20u);
    const bw_scope& cgroup = compiled.tables.scopes.at(file_entry(compiled, 11).scope);
    EXPECT_EQ(cgroup.kind, BW_SCOPE_CGROUP);
    EXPECT_EQ(cgroup.cgroup_id, 777u);
    EXPECT_FALSE(compiled.rules.at(2).active());
    EXPECT_TRUE(compiled.tables.exec_rules.empty());
    ASSERT_EQ(compiled.warnings.size(), 1u);
    EXPECT_MENTIONS(compiled.warnings[0], "50-test.toml:11: the scope's exe '/usr/sbin/missing' does not exist");
}

TEST(AllowlistParse, BadAllowlistsNameTheLineAndTheReason) {
    EXPECT_MENTIONS(parse_error("[[allowlist]]\nscope = { uid = 1 }\nexec = []\n"),
                    "50-test.toml:3: allowlist 'exec' is empty");
    EXPECT_MENTIONS(parse_error("[[allowlist]]\nexec = [\"/bin/sh\"]\n"), "[[allowlist]] has no 'scope'");
    EXPECT_MENTIONS(parse_error("[[allowlist]]\nscope = { uid = 1 }\n"), "[[allowlist]] has no 'exec'");
    EXPECT_MENTIONS(parse_error("[[allowlist]]\nscope = { uid = 1 }\nexec = [\"/\"]\n"), "would list every file");
    EXPECT_MENTIONS(parse_error("[[allowlist]]\nscope = { uid = 1 }\nexec = [\"/bin/sh\"]\nonly = true\n"),
                    "unknown key 'only' in [[allowlist]]");
}

const PathResolver kTree = resolver({{"/usr/sbin/nginx", 20}, {"/etc/secret", 10}}, {{"/usr/lib", 30}});

TEST(AllowlistCompile, EntriesListFilesByInodeAndNameAndDirectoriesBySubtree) {
    CompiledPolicy compiled = compile(parse(R"(
[[allowlist]]
scope = { unit = "web.service" }
exec = ["/usr/sbin/nginx", "/usr/lib/", "/usr/bin/missing"]
)"),
                                      kTree);
    ASSERT_EQ(compiled.tables.settings.allowlists, 1u);
    const bw_allowlist& list = compiled.tables.settings.allowlist[0];
    EXPECT_EQ(list.scope, scope_key("unit=web.service slice=system.slice"));
    EXPECT_EQ(list.flags, 0u);
    const RuleInfo* rule = compiled.rule(list.rule_id);
    ASSERT_NE(rule, nullptr);
    EXPECT_TRUE(rule->allowlist);
    EXPECT_EQ(rule_kind_name(*rule), "exec-allowlist");
    EXPECT_EQ(rule->path, "/usr/sbin/nginx, /usr/lib/, /usr/bin/missing");
    std::vector<std::pair<uint32_t, uint64_t>> listed;  // kind, inode
    for (const auto& [key, value] : compiled.tables.exec_allowed) {
        EXPECT_EQ(key.list, 0u);
        listed.emplace_back(key.kind, key.id.ino);
    }
    // nginx by inode and by name in its directory (ino 2 in the fake), /usr/lib
    // as a subtree, the missing file by name only.
    std::vector<std::pair<uint32_t, uint64_t>> expected = {
        {BW_ALLOWED_INODE, 20}, {BW_ALLOWED_NAME, 2}, {BW_ALLOWED_NAME, 2}, {BW_ALLOWED_SUBTREE, 30}};
    std::sort(listed.begin(), listed.end());
    EXPECT_EQ(listed, expected);
    ASSERT_EQ(compiled.warnings.size(), 2u);  // the unknown unit, the missing entry
    EXPECT_MENTIONS(compiled.warnings[1], "allowlist entry '/usr/bin/missing' does not exist");
}

TEST(ScopeCompile, ARuleDependsOnItsPathItsScopesFileAndItsEntries) {
    CompiledPolicy compiled = compile(parse(R"(
[[file]]
path = "/etc/secret"
action = "deny"
scope = { exe = "/usr/sbin/nginx" }
[[allowlist]]
scope = { uid = 1 }
exec = ["/usr/sbin/nginx", "/usr/lib/"]
)"),
                                      kTree);
    EXPECT_EQ(compiled.rules.at(0).depends_on(), (std::vector<std::string>{"/etc/secret", "/usr/sbin/nginx"}));
    EXPECT_EQ(compiled.rules.at(1).depends_on(), (std::vector<std::string>{"/usr/sbin/nginx", "/usr/lib/"}));
}

TEST(AllowlistCompile, OneScopeIsOneListAndItsModeIsKept) {
    Policy merged =
        parse("[[allowlist]]\nscope = { uid = 33 }\nexec = [\"/usr/sbin/nginx\"]\nmode = \"audit\"\n", "10-a.toml");
    ASSERT_TRUE(merge_policy(merged, parse("[[allowlist]]\nscope = { uid = 33 }\nexec = [\"/usr/lib/\"]\n"
                                           "mode = \"audit\"\n",
                                           "20-b.toml")));
    CompiledPolicy compiled = compile(merged, kTree);
    ASSERT_EQ(compiled.tables.settings.allowlists, 1u);
    EXPECT_EQ(compiled.tables.settings.allowlist[0].flags, uint32_t{BW_RULE_AUDIT_MODE});
    EXPECT_EQ(compiled.tables.exec_allowed.size(), 3u);
}

TEST(AllowlistCompile, AnAllowlistForRootIsWarnedAbout) {
    CompiledPolicy compiled =
        compile(parse("[[allowlist]]\nscope = { uid = 0 }\nexec = [\"/usr/sbin/nginx\"]\n"), kTree);
    ASSERT_EQ(compiled.warnings.size(), 1u);
    EXPECT_MENTIONS(compiled.warnings[0], "50-test.toml:1: an allowlist for uid=0 holds PID 1");
}

TEST(AllowlistCompile, AtMostEightScopes) {
    std::string text;
    for (int uid = 0; uid < BW_MAX_ALLOWLISTS + 1; ++uid)
        text += "[[allowlist]]\nscope = { uid = " + std::to_string(uid) + " }\nexec = [\"/usr/sbin/nginx\"]\n";
    auto compiled = compile_policy(parse(text), kTree);
    ASSERT_FALSE(compiled);
    EXPECT_MENTIONS(compiled.error().message(), "50-test.toml:25: more than 8 exec allowlists");
}

}  // namespace
}  // namespace bpfwarden
