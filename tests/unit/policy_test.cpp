#include "policy/policy.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "support/bpf_commands.h"
#include "temp_dir.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

uint64_t bit(std::string_view cmd) { return uint64_t{1} << *bpf_command_from_name(cmd); }

std::string read_text(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// ---------------------------------------------------------------------------
// Parsing one file

TEST(PolicyParse, EmptyTextIsEmptyPolicy) {
    auto policy = parse_policy("", "empty.toml");
    ASSERT_OK(policy);
    EXPECT_TRUE(policy->rules.empty());
    EXPECT_TRUE(policy->bpf.allow.empty());
    EXPECT_EQ(policy->bpf.mode, BpfGuardMode::Audit);
    EXPECT_EQ(policy->bpf.restricted_cmds, default_restricted_bpf_commands());
    EXPECT_FALSE(policy->bpf.mode_where);
    EXPECT_FALSE(policy->bpf.restrict_where);
    EXPECT_EQ(policy->sources, std::vector<std::string>{"empty.toml"});
    EXPECT_EQ(policy->source_texts, std::vector<std::string>{""});
    EXPECT_TRUE(policy->options.protect.value);
    EXPECT_FALSE(policy->options.protect.where);
    EXPECT_FALSE(policy->options.deny_anonymous_exec.value);
    EXPECT_FALSE(policy->options.deny_anonymous_exec.where);
    EXPECT_FALSE(policy->options.deny_write_exec.value);
    EXPECT_FALSE(policy->options.deny_write_exec.where);
}

TEST(PolicyParse, CommentsAndBlankLinesOnlyIsEmptyPolicy) {
    auto policy = parse_policy("# nothing here yet\n\n   \n# really\n", "c.toml");
    ASSERT_OK(policy);
    EXPECT_TRUE(policy->rules.empty());
    EXPECT_TRUE(policy->bpf.allow.empty());
}

TEST(PolicyParse, FullExample) {
    constexpr std::string_view kText = R"(# example
[[file]]
path = "/etc/shadow"
action = "audit"

[[exec]]
path = "/usr/bin/nc.openbsd"
action = "deny"

[[file]]
path = "/etc/ssh/ssh_host_ed25519_key"
action = "deny"

[bpf]
mode = "deny"
allow = ["/usr/lib/systemd/systemd",
         "/usr/sbin/bpftool"]
restrict = ["prog_load", "link_detach"]
)";
    auto policy = parse_policy(kText, "10-base.toml");
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 3u);

    const PathRule& shadow = policy->rules[0];
    EXPECT_EQ(shadow.kind, RuleKind::FileOpen);
    EXPECT_EQ(shadow.path, "/etc/shadow");
    EXPECT_EQ(shadow.action, RuleAction::Audit);
    EXPECT_EQ(shadow.where, (SourceLocation{"10-base.toml", 3}));

    const PathRule& nc = policy->rules[1];
    EXPECT_EQ(nc.kind, RuleKind::Exec);
    EXPECT_EQ(nc.path, "/usr/bin/nc.openbsd");
    EXPECT_EQ(nc.action, RuleAction::Deny);
    EXPECT_EQ(nc.where, (SourceLocation{"10-base.toml", 7}));

    EXPECT_EQ(policy->rules[2].path, "/etc/ssh/ssh_host_ed25519_key");
    EXPECT_EQ(policy->rules[2].where.line, 11);

    EXPECT_EQ(policy->bpf.mode, BpfGuardMode::Deny);
    EXPECT_EQ(policy->bpf.mode_where, (SourceLocation{"10-base.toml", 15}));
    ASSERT_EQ(policy->bpf.allow.size(), 2u);
    EXPECT_EQ(policy->bpf.allow[0].path, "/usr/lib/systemd/systemd");
    EXPECT_EQ(policy->bpf.allow[0].kind, RuleKind::Exec);
    EXPECT_EQ(policy->bpf.allow[0].action, RuleAction::Audit);
    EXPECT_EQ(policy->bpf.allow[0].where, (SourceLocation{"10-base.toml", 16}));
    EXPECT_EQ(policy->bpf.allow[1].path, "/usr/sbin/bpftool");
    EXPECT_EQ(policy->bpf.allow[1].where.line, 17);
    EXPECT_EQ(policy->bpf.restricted_cmds, bit("prog_load") | bit("link_detach"));
    EXPECT_EQ(policy->bpf.restrict_where, (SourceLocation{"10-base.toml", 18}));
}

TEST(PolicyParse, ModesAndActions) {
    for (auto [text, mode] : {std::pair{"off", BpfGuardMode::Off}, std::pair{"audit", BpfGuardMode::Audit},
                              std::pair{"deny", BpfGuardMode::Deny}}) {
        auto policy = parse_policy(std::string("[bpf]\nmode = \"") + text + "\"\n", "m.toml");
        ASSERT_OK(policy);
        EXPECT_EQ(policy->bpf.mode, mode) << text;
        EXPECT_EQ(to_string(policy->bpf.mode), text);
    }
    EXPECT_EQ(to_string(RuleAction::Audit), "audit");
    EXPECT_EQ(to_string(RuleAction::Deny), "deny");
    EXPECT_EQ(to_string(RuleKind::FileOpen), "file");
    EXPECT_EQ(to_string(RuleKind::Exec), "exec");
    EXPECT_EQ(to_string(SourceLocation{"a.toml", 4}), "a.toml:4");
    EXPECT_EQ(stricter(RuleAction::Audit, RuleAction::Deny), RuleAction::Deny);
    EXPECT_EQ(stricter(RuleAction::Deny, RuleAction::Audit), RuleAction::Deny);
    EXPECT_EQ(stricter(RuleAction::Audit, RuleAction::Audit), RuleAction::Audit);
}

TEST(PolicyParse, BpfTableWithoutModeKeepsDefaults) {
    auto policy = parse_policy("[bpf]\nallow = [\"/usr/lib/systemd/systemd\"]\n", "a.toml");
    ASSERT_OK(policy);
    EXPECT_EQ(policy->bpf.mode, BpfGuardMode::Audit);
    EXPECT_FALSE(policy->bpf.mode_where);
    EXPECT_EQ(policy->bpf.restricted_cmds, default_restricted_bpf_commands());
    EXPECT_FALSE(policy->bpf.restrict_where);
}

TEST(PolicyParse, RestrictAcceptsKernelSpellingAndEmptyList) {
    auto upper = parse_policy("[bpf]\nrestrict = [\"BPF_PROG_LOAD\", \"map_create\"]\n", "r.toml");
    ASSERT_OK(upper);
    EXPECT_EQ(upper->bpf.restricted_cmds, bit("prog_load") | bit("map_create"));

    auto empty = parse_policy("[bpf]\nrestrict = []\n", "r.toml");
    ASSERT_OK(empty);
    EXPECT_EQ(empty->bpf.restricted_cmds, 0u);
    EXPECT_TRUE(empty->bpf.restrict_where);
}

TEST(PolicyParse, InlineTablesAreRules) {
    auto policy = parse_policy("file = [{ path = \"/etc/shadow\", action = \"deny\" }]\n", "i.toml");
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 1u);
    EXPECT_EQ(policy->rules[0].action, RuleAction::Deny);
    EXPECT_EQ(policy->rules[0].where.line, 1);
}

TEST(PolicyParse, LongestPathAccepted) {
    std::string path = "/" + std::string(kMaxPolicyPathLength - 1, 'a');
    auto policy = parse_policy("[[file]]\npath = \"" + path + "\"\naction = \"deny\"\n", "long.toml");
    ASSERT_OK(policy);
    EXPECT_EQ(policy->rules.at(0).path.size(), static_cast<std::size_t>(PATH_MAX - 1));
}

TEST(PolicyParse, SamePathTwiceStricterWins) {
    // audit first, deny later: the deny rule's location is kept.
    auto upgraded = parse_policy(R"([[file]]
path = "/etc/shadow"
action = "audit"
[[file]]
path = "/etc/shadow"
action = "deny"
)",
                                 "s.toml");
    ASSERT_OK(upgraded);
    ASSERT_EQ(upgraded->rules.size(), 1u);
    EXPECT_EQ(upgraded->rules[0].action, RuleAction::Deny);
    EXPECT_EQ(upgraded->rules[0].where.line, 5);

    // deny first: a later audit does not weaken it.
    auto kept = parse_policy(R"([[exec]]
path = "/usr/bin/nc"
action = "deny"
[[exec]]
path = "/usr/bin/nc"
action = "audit"
[[exec]]
path = "/usr/bin/nc"
action = "deny"
)",
                             "s.toml");
    ASSERT_OK(kept);
    ASSERT_EQ(kept->rules.size(), 1u);
    EXPECT_EQ(kept->rules[0].action, RuleAction::Deny);
    EXPECT_EQ(kept->rules[0].where.line, 2);
}

TEST(PolicyParse, SamePathDifferentKindsAreDifferentRules) {
    auto policy = parse_policy(R"([[file]]
path = "/usr/bin/nc"
action = "audit"
[[exec]]
path = "/usr/bin/nc"
action = "deny"
)",
                               "k.toml");
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 2u);
    EXPECT_EQ(policy->rules[0].kind, RuleKind::FileOpen);
    EXPECT_EQ(policy->rules[0].action, RuleAction::Audit);
    EXPECT_EQ(policy->rules[1].kind, RuleKind::Exec);
    EXPECT_EQ(policy->rules[1].action, RuleAction::Deny);
}

TEST(PolicyParse, DuplicateAllowEntriesCollapse) {
    auto policy = parse_policy("[bpf]\nallow = [\"/usr/sbin/a\", \"/usr/sbin/b\", \"/usr/sbin/a\"]\n", "d.toml");
    ASSERT_OK(policy);
    ASSERT_EQ(policy->bpf.allow.size(), 2u);
    EXPECT_EQ(policy->bpf.allow[0].path, "/usr/sbin/a");
    EXPECT_EQ(policy->bpf.allow[1].path, "/usr/sbin/b");
}

TEST(PolicyParse, TopLevelOptions) {
    constexpr std::string_view kText = R"(# options
protect = false
deny_anonymous_exec = true

deny_write_exec = true
audit_bpf_reads = true
redact_paths = ["/home/", "/root/"]
[[file]]
path = "/etc/shadow"
action = "deny"
)";
    auto policy = parse_policy(kText, "00-options.toml");
    ASSERT_OK(policy);
    EXPECT_FALSE(policy->options.protect.value);
    EXPECT_EQ(policy->options.protect.where, (SourceLocation{"00-options.toml", 2}));
    EXPECT_TRUE(policy->options.deny_anonymous_exec.value);
    EXPECT_EQ(policy->options.deny_anonymous_exec.where, (SourceLocation{"00-options.toml", 3}));
    EXPECT_TRUE(policy->options.deny_write_exec.value);
    EXPECT_EQ(policy->options.deny_write_exec.where, (SourceLocation{"00-options.toml", 5}));
    EXPECT_TRUE(policy->options.audit_bpf_reads.value);
    EXPECT_EQ(policy->options.audit_bpf_reads.where, (SourceLocation{"00-options.toml", 6}));
    EXPECT_EQ(policy->options.redact_paths.value, (std::vector<std::string>{"/home/", "/root/"}));
    EXPECT_EQ(policy->options.redact_paths.where, (SourceLocation{"00-options.toml", 7}));
    EXPECT_EQ(policy->rules.size(), 1u);
    EXPECT_EQ(policy->source_texts, std::vector<std::string>{std::string(kText)});

    // Set to its default value, an option is still set (and placed).
    auto explicit_default = parse_policy("protect = true\n", "p.toml");
    ASSERT_OK(explicit_default);
    EXPECT_TRUE(explicit_default->options.protect.value);
    EXPECT_EQ(explicit_default->options.protect.where, (SourceLocation{"p.toml", 1}));
    EXPECT_FALSE(explicit_default->options.deny_write_exec.where);
}

TEST(PolicyParse, MaxRulesIsAWholeNumberAndWhereItWasSet) {
    auto unset = parse_policy("protect = true\n", "p.toml");
    ASSERT_OK(unset);
    EXPECT_EQ(unset->options.max_rules.value, 100000u);
    EXPECT_FALSE(unset->options.max_rules.where);

    auto set = parse_policy("# ceiling\n\nmax_rules = 200\n", "00-default.toml");
    ASSERT_OK(set);
    EXPECT_EQ(set->options.max_rules.value, 200u);
    EXPECT_EQ(set->options.max_rules.where, (SourceLocation{"00-default.toml", 3}));

    // Both ends of the range, and TOML's digit separators.
    struct Case {
        const char* text;
        uint32_t value;
    };
    for (auto [text, value] : {Case{"max_rules = 1\n", 1}, Case{"max_rules = 131008\n", 131008},
                               Case{"max_rules = 100_000\n", 100000}, Case{"max_rules = +7\n", 7}}) {
        auto parsed = parse_policy(text, "p.toml");
        ASSERT_OK(parsed);
        EXPECT_EQ(parsed->options.max_rules.value, value) << text;
    }
}

TEST(PolicyParse, TrailingSlashAsksForTheSubtree) {
    auto policy = parse_policy(R"([[file]]
path = "/srv/secret/"
action = "deny"
[[exec]]
path = "/opt/tools//"
action = "audit"
[[file]]
path = "/etc/shadow"
action = "audit"
)",
                               "t.toml");
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 3u);
    EXPECT_EQ(policy->rules[0].path, "/srv/secret");
    EXPECT_TRUE(policy->rules[0].subtree);
    EXPECT_EQ(policy->rules[0].where, (SourceLocation{"t.toml", 2}));
    EXPECT_EQ(policy->rules[1].path, "/opt/tools");
    EXPECT_TRUE(policy->rules[1].subtree);
    EXPECT_EQ(policy->rules[1].kind, RuleKind::Exec);
    EXPECT_EQ(policy->rules[2].path, "/etc/shadow");
    EXPECT_FALSE(policy->rules[2].subtree);
    for (const PathRule& rule : policy->rules)
        EXPECT_FALSE(rule.pid1_only);
}

TEST(PolicyParse, RecursiveTrueIsTheSameAsATrailingSlash) {
    auto policy = parse_policy(R"([[file]]
path = "/srv/secret"
recursive = true
action = "audit"
[[file]]
path = "/srv/secret/"
action = "deny"
[[exec]]
path = "/opt/tools"
action = "deny"
recursive = false
)",
                               "r.toml");
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 2u) << "\"/srv/secret\" recursive and \"/srv/secret/\" are one rule";
    EXPECT_EQ(policy->rules[0].path, "/srv/secret");
    EXPECT_TRUE(policy->rules[0].subtree);
    EXPECT_EQ(policy->rules[0].action, RuleAction::Deny);
    EXPECT_EQ(policy->rules[0].where.line, 6);
    EXPECT_EQ(policy->rules[1].path, "/opt/tools");
    EXPECT_FALSE(policy->rules[1].subtree);
}

TEST(PolicyParse, SamePathAsSubtreeAndAsPlainRuleAreTwoRules) {
    auto policy = parse_policy(R"([[file]]
path = "/srv/secret"
action = "deny"
[[file]]
path = "/srv/secret/"
action = "audit"
)",
                               "s.toml");
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 2u);
    EXPECT_EQ(policy->rules[0].path, "/srv/secret");
    EXPECT_FALSE(policy->rules[0].subtree);
    EXPECT_EQ(policy->rules[0].action, RuleAction::Deny);
    EXPECT_EQ(policy->rules[1].path, "/srv/secret");
    EXPECT_TRUE(policy->rules[1].subtree);
    EXPECT_EQ(policy->rules[1].action, RuleAction::Audit) << "the plain rule's deny does not spill over";

    // Across files too.
    auto plain = parse_policy("[[exec]]\npath = \"/opt/x\"\naction = \"audit\"\n", "a.toml");
    auto tree = parse_policy("[[exec]]\npath = \"/opt/x\"\naction = \"deny\"\nrecursive = true\n", "b.toml");
    ASSERT_OK(plain);
    ASSERT_OK(tree);
    Policy merged = *plain;
    ASSERT_OK(merge_policy(merged, *tree));
    ASSERT_EQ(merged.rules.size(), 2u);
    EXPECT_EQ(merged.rules[0].action, RuleAction::Audit);
    EXPECT_EQ(merged.rules[1].action, RuleAction::Deny);
}

TEST(PolicyParse, AllowEntriesMayBeTablesWithPid1) {
    auto policy = parse_policy(R"([bpf]
allow = [
  { path = "/usr/lib/systemd/systemd", pid1 = true },
  "/usr/sbin/bpftool",
  { path = "/usr/bin/tool", pid1 = false },
  { path = "/usr/bin/other" },
]
)",
                               "a.toml");
    ASSERT_OK(policy);
    ASSERT_EQ(policy->bpf.allow.size(), 4u);
    EXPECT_EQ(policy->bpf.allow[0].path, "/usr/lib/systemd/systemd");
    EXPECT_TRUE(policy->bpf.allow[0].pid1_only);
    EXPECT_EQ(policy->bpf.allow[0].where, (SourceLocation{"a.toml", 3}));
    EXPECT_EQ(policy->bpf.allow[0].kind, RuleKind::Exec);
    EXPECT_EQ(policy->bpf.allow[0].action, RuleAction::Audit);
    EXPECT_EQ(policy->bpf.allow[1].path, "/usr/sbin/bpftool");
    EXPECT_FALSE(policy->bpf.allow[1].pid1_only);
    EXPECT_EQ(policy->bpf.allow[1].where.line, 4);
    EXPECT_EQ(policy->bpf.allow[2].path, "/usr/bin/tool");
    EXPECT_FALSE(policy->bpf.allow[2].pid1_only);
    EXPECT_EQ(policy->bpf.allow[3].path, "/usr/bin/other");
    EXPECT_FALSE(policy->bpf.allow[3].pid1_only);
    for (const PathRule& entry : policy->bpf.allow)
        EXPECT_FALSE(entry.subtree);
}

TEST(PolicyParse, AllowEntryWithoutPid1WinsWithinAFile) {
    for (const char* text : {"[bpf]\nallow = [{ path = \"/s\", pid1 = true }, \"/s\"]\n",
                             "[bpf]\nallow = [\"/s\", { path = \"/s\", pid1 = true }]\n"}) {
        auto policy = parse_policy(text, "p.toml");
        ASSERT_OK(policy);
        ASSERT_EQ(policy->bpf.allow.size(), 1u) << text;
        EXPECT_FALSE(policy->bpf.allow[0].pid1_only) << text;
    }
    auto both =
        parse_policy("[bpf]\nallow = [{ path = \"/s\", pid1 = true }, { path = \"/s\", pid1 = true }]\n", "p.toml");
    ASSERT_OK(both);
    ASSERT_EQ(both->bpf.allow.size(), 1u);
    EXPECT_TRUE(both->bpf.allow[0].pid1_only);
}

// Every malformed input: EINVAL, "<file>:<line>: <reason>".
struct BadInput {
    const char* name;
    std::string text;
    int line;
    std::string reason;
};

void PrintTo(const BadInput& input, std::ostream* os) { *os << input.name; }

class PolicyParseError : public testing::TestWithParam<BadInput> {};

TEST_P(PolicyParseError, NamesFileLineAndReason) {
    const BadInput& input = GetParam();
    auto policy = parse_policy(input.text, "bad.toml");
    ASSERT_FALSE(policy.has_value()) << "accepted:\n" << input.text;
    EXPECT_EQ(policy.error().errnum(), EINVAL) << policy.error().message();
    const std::string prefix = "bad.toml:" + std::to_string(input.line) + ":";
    const std::string& context = policy.error().context();
    ASSERT_TRUE(context.starts_with(prefix)) << "expected prefix '" << prefix << "', got: " << context;
    // TOML syntax errors add the column ("bad.toml:3:8: ..."), the others
    // name the line only ("bad.toml:3: ...").
    std::string_view rest = std::string_view(context).substr(prefix.size());
    if (std::string_view(input.name).starts_with("Syntax")) {
        size_t digits = rest.find_first_not_of("0123456789");
        EXPECT_TRUE(digits > 0 && digits != std::string_view::npos && rest.substr(digits).starts_with(": "))
            << "expected a column after the line, got: " << context;
    } else {
        EXPECT_TRUE(rest.starts_with(" ")) << context;
    }
    EXPECT_NE(policy.error().context().find(input.reason), std::string::npos)
        << "expected reason '" << input.reason << "', got: " << policy.error().context();
}

const std::string kLongPath = "/" + std::string(PATH_MAX, 'x');

INSTANTIATE_TEST_SUITE_P(
    PolicyParseErrors, PolicyParseError,
    testing::Values(
        // Syntax: toml++'s description, with the line.
        BadInput{"SyntaxUnterminatedString", "[[file]]\npath = \"/etc/shadow\naction = \"deny\"\n", 2,
                 "Error while parsing"},
        BadInput{"SyntaxBadHeader", "\n\n[[file]\n", 3, "Error while parsing table header"},
        BadInput{"SyntaxDuplicateKey", "[bpf]\nmode = \"deny\"\nmode = \"audit\"\n", 3, "cannot redefine"},
        BadInput{"SyntaxInvalidUtf8", "[[file]]\npath = \"/etc/\xff\"\n", 2, "invalid utf-8"},
        // Found by policy_fuzz: toml++ 3.3.0 asserts on it when built with assertions.
        BadInput{"SyntaxCutTableHeader", "[\n", 1, "expected bare key starting character"},
        // Found by policy_fuzz: toml++ quotes control characters as they are.
        BadInput{"SyntaxControlCharactersInTheErrorAreEscaped", "x = tr\nue\ny = fals\x1b[31m\n", 1,
                 "expected 'true', saw 'tr\\x0a'"},
        // Structure.
        BadInput{"UnknownTable", "# x\n[files]\npath = \"/etc/shadow\"\n", 2,
                 "unknown table 'files' (expected [[file]], [[exec]], [[allowlist]], [bpf], [scope.NAME], mode, "
                 "protect, deny_anonymous_exec, deny_write_exec, audit_bpf_reads, redact_paths or max_rules)"},
        BadInput{"RedactPathsNotAnArray", "redact_paths = \"/home/\"\n", 1,
                 "'redact_paths' must be an array of path prefixes"},
        BadInput{"RedactPathRelative", "redact_paths = [\"/root/\",\n  \"home/\"]\n", 2,
                 "redact_paths entries must be absolute path prefixes"},
        BadInput{"RedactPathTooLong", "redact_paths = [\"/" + std::string(63, 'a') + "\"]\n", 1,
                 "is 64 bytes; the kernel compares at most 63"},
        BadInput{"RedactPathsTooMany", "redact_paths = [\"/a\", \"/b\", \"/c\", \"/d\", \"/e\"]\n", 1,
                 "redact_paths has 5 entries; at most 4 are supported"},
        BadInput{"UnknownArrayOfTables", "[[bpf]]\nmode = \"deny\"\n", 1, "'bpf' must be a table ([bpf])"},
        BadInput{"UnknownTopLevelKey", "\nversion = 2\n", 2, "unknown key 'version'"},
        BadInput{"FileAsTable", "[file]\npath = \"/etc/shadow\"\naction = \"deny\"\n", 1,
                 "'file' must be an array of tables: write [[file]], not [file]"},
        BadInput{"ExecAsString", "exec = \"/usr/bin/nc\"\n", 1,
                 "'exec' must be an array of tables: write [[exec]], not [exec]"},
        BadInput{"FileArrayOfStrings", "file = [\n  \"/etc/shadow\"]\n", 2, "each 'file' entry must be a table"},
        BadInput{"BpfAsString", "bpf = \"deny\"\n", 1, "'bpf' must be a table ([bpf])"},
        BadInput{"UnknownKeyInFile", "[[file]]\npath = \"/etc/shadow\"\naction = \"deny\"\nmode = \"x\"\n", 4,
                 "unknown key 'mode' in [[file]] (expected \"path\", \"action\", \"recursive\" or \"scope\")"},
        BadInput{"UnknownKeyInExec", "[[exec]]\npaths = \"/usr/bin/nc\"\naction = \"deny\"\n", 2,
                 "unknown key 'paths' in [[exec]]"},
        BadInput{"UnknownKeyInBpf", "[bpf]\nmode = \"deny\"\nmdoe = \"deny\"\n", 3,
                 "unknown key 'mdoe' in [bpf] (expected \"mode\", \"allow\" or \"restrict\")"},
        BadInput{"UnknownSubtableInBpf", "[bpf.extra]\nx = 1\n", 1, "unknown key 'extra' in [bpf]"},
        BadInput{"MissingPath", "\n[[exec]]\naction = \"deny\"\n", 2, "[[exec]] entry has no 'path'"},
        BadInput{"MissingAction", "[[file]]\npath = \"/etc/shadow\"\n", 1,
                 "[[file]] entry for '/etc/shadow' has no 'action'"},
        // Types and values.
        BadInput{"PathNotString", "[[file]]\npath = 42\naction = \"deny\"\n", 2, "'path' must be a string"},
        BadInput{"PathArray", "[[file]]\npath = [\"/a\"]\naction = \"deny\"\n", 2, "'path' must be a string"},
        BadInput{"ActionNotString", "[[file]]\npath = \"/etc/shadow\"\naction = true\n", 3, "action must be a string"},
        BadInput{"UnknownAction", "# base policy\n\n[[file]]\npath = \"/etc/shadow\"\naction = \"denyy\"\n", 5,
                 "unknown action 'denyy' (expected \"deny\" or \"audit\")"},
        BadInput{"ActionIsCaseSensitive", "[[exec]]\npath = \"/usr/bin/nc\"\naction = \"Deny\"\n", 3,
                 "unknown action 'Deny'"},
        BadInput{"RelativePath", "[[file]]\npath = \"etc/shadow\"\naction = \"deny\"\n", 2,
                 "relative path 'etc/shadow' in 'path' (paths must be absolute)"},
        BadInput{"DotRelativePath", "[[exec]]\naction = \"deny\"\npath = \"./nc\"\n", 3, "relative path './nc'"},
        BadInput{"EmptyPath", "[[file]]\npath = \"\"\naction = \"deny\"\n", 2, "empty path in 'path'"},
        BadInput{"NulInPath", "[[file]]\npath = \"/etc/\\u0000shadow\"\naction = \"deny\"\n", 2,
                 "path '/etc/\\x00shadow' contains a NUL byte"},
        BadInput{"PathTooLong", "[[file]]\naction = \"deny\"\npath = \"" + kLongPath + "\"\n", 3,
                 "is longer than PATH_MAX"},
        BadInput{"ControlCharacterEscaped", "[[file]]\npath = \"x\\ny\"\naction = \"deny\"\n", 2,
                 "relative path 'x\\x0ay'"},
        BadInput{"UnknownMode", "[bpf]\nmode = \"enforce\"\n", 2,
                 "unknown bpf mode 'enforce' (expected \"deny\", \"audit\" or \"off\")"},
        BadInput{"ModeNotString", "[bpf]\nmode = 1\n", 2, "bpf.mode must be a string"},
        BadInput{"AllowNotArray", "[bpf]\nallow = \"/usr/lib/systemd/systemd\"\n", 2,
                 "bpf.allow must be an array of executable paths"},
        BadInput{"AllowEntryNotString", "[bpf]\nallow = [\"/usr/sbin/a\",\n  3]\n", 3,
                 "bpf.allow entry must be a string"},
        BadInput{"AllowRelativePath", "[bpf]\nallow = [\"systemd\"]\n", 2,
                 "relative path 'systemd' in bpf.allow entry"},
        BadInput{"AllowEmptyPath", "[bpf]\nallow = [\"\"]\n", 2, "empty path in bpf.allow entry"},
        BadInput{"AllowPathTooLong", "[bpf]\nallow = [\"" + kLongPath + "\"]\n", 2, "is longer than PATH_MAX"},
        BadInput{"RestrictNotArray", "[bpf]\nrestrict = \"prog_load\"\n", 2,
                 "bpf.restrict must be an array of bpf command names"},
        BadInput{"RestrictEntryNotString", "[bpf]\nrestrict = [\n  \"prog_load\",\n  5,\n]\n", 4,
                 "bpf.restrict entries must be bpf command names"},
        BadInput{"UnknownBpfCommand", "[bpf]\nrestrict = [\"prog_load\",\n            \"prog_lod\"]\n", 3,
                 "unknown bpf command 'prog_lod' in bpf.restrict"},
        // Top-level options.
        BadInput{"ProtectNotBoolean", "\nprotect = \"yes\"\n", 2, "'protect' must be true or false"},
        BadInput{"DenyAnonymousExecNotBoolean", "deny_anonymous_exec = 1\n", 1,
                 "'deny_anonymous_exec' must be true or false"},
        BadInput{"DenyWriteExecNotBoolean", "# w^x\ndeny_write_exec = [true]\n", 2,
                 "'deny_write_exec' must be true or false"},
        BadInput{"OptionAsTable", "[protect]\nvalue = true\n", 1, "'protect' must be true or false"},
        BadInput{"OptionMisspelt", "protection = true\n", 1, "unknown key 'protection'"},
        BadInput{"MaxRulesZero", "max_rules = 0\n", 1,
                 "max_rules = 0 is out of range (from 1 to 131008, the most the rule maps hold)"},
        BadInput{"MaxRulesNegative", "\nmax_rules = -100000\n", 2, "max_rules = -100000 is out of range"},
        BadInput{"MaxRulesAboveTheMaps", "max_rules = 131009\n", 1, "max_rules = 131009 is out of range (from 1 to"},
        BadInput{"MaxRulesHuge", "max_rules = 9223372036854775807\n", 1,
                 "max_rules = 9223372036854775807 is out of range"},
        BadInput{"MaxRulesString", "max_rules = \"100000\"\n", 1,
                 "'max_rules' must be a whole number from 1 to 131008, the most the rule maps hold"},
        BadInput{"MaxRulesFloat", "max_rules = 1e5\n", 1, "'max_rules' must be a whole number"},
        BadInput{"MaxRulesBoolean", "max_rules = true\n", 1, "'max_rules' must be a whole number"},
        BadInput{"MaxRulesAsTable", "[max_rules]\nvalue = 5\n", 1, "'max_rules' must be a whole number"},
        // Subtree rules.
        BadInput{"RecursiveNotBoolean", "[[file]]\npath = \"/srv\"\naction = \"deny\"\nrecursive = \"yes\"\n", 4,
                 "'recursive' must be true or false"},
        BadInput{"RecursiveNotBooleanInExec", "[[exec]]\npath = \"/opt\"\nrecursive = 1\naction = \"deny\"\n", 3,
                 "'recursive' must be true or false"},
        BadInput{"RuleOnRoot", "[[file]]\npath = \"/\"\naction = \"audit\"\n", 1,
                 "[[file]] entry on \"/\" would cover every file: name a directory"},
        BadInput{"RuleOnRootWithSlashes", "\n[[exec]]\npath = \"//\"\naction = \"deny\"\n", 2,
                 "[[exec]] entry on \"/\""},
        BadInput{"RecursiveRuleOnRoot", "[[exec]]\npath = \"/\"\naction = \"deny\"\nrecursive = true\n", 1,
                 "[[exec]] entry on \"/\" would cover every file"},
        // bpf.allow entries as tables.
        BadInput{"AllowTableWithoutPath", "[bpf]\nallow = [{ pid1 = true }]\n", 2, "bpf.allow entry has no 'path'"},
        BadInput{"AllowTableUnknownKey", "[bpf]\nallow = [{ path = \"/usr/lib/systemd/systemd\", pid2 = true }]\n", 2,
                 "unknown key 'pid2' in a bpf.allow entry (expected \"path\", \"pid1\" or \"scope\")"},
        BadInput{"AllowTablePid1NotBoolean",
                 "[bpf]\nallow = [\n  { path = \"/usr/lib/systemd/systemd\", pid1 = \"yes\" }]\n", 3,
                 "'pid1' must be true or false"},
        BadInput{"AllowTablePathNotString", "[bpf]\nallow = [{ path = 5 }]\n", 2, "bpf.allow entry must be a string"},
        BadInput{"AllowTableRelativePath", "[bpf]\nallow = [{ path = \"systemd\", pid1 = true }]\n", 2,
                 "relative path 'systemd' in bpf.allow entry"},
        BadInput{"AllowNestedArray", "[bpf]\nallow = [[\"/usr/sbin/bpftool\"]]\n", 2,
                 "bpf.allow entry must be a string"}),
    [](const testing::TestParamInfo<BadInput>& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------
// Merging

TEST(PolicyMerge, RulesAndAllowListsAddUp) {
    auto first = parse_policy("[[file]]\npath = \"/a\"\naction = \"audit\"\n[bpf]\nallow = [\"/x\"]\n", "1.toml");
    auto second =
        parse_policy("[[exec]]\npath = \"/b\"\naction = \"deny\"\n[bpf]\nallow = [\"/y\", \"/x\"]\n", "2.toml");
    ASSERT_OK(first);
    ASSERT_OK(second);
    Policy merged = *first;
    ASSERT_OK(merge_policy(merged, *second));
    ASSERT_EQ(merged.rules.size(), 2u);
    EXPECT_EQ(merged.rules[0].path, "/a");
    EXPECT_EQ(merged.rules[1].path, "/b");
    ASSERT_EQ(merged.bpf.allow.size(), 2u);
    EXPECT_EQ(merged.bpf.allow[0].path, "/x");
    EXPECT_EQ(merged.bpf.allow[0].where.file, "1.toml");
    EXPECT_EQ(merged.bpf.allow[1].path, "/y");
    EXPECT_EQ(merged.sources, (std::vector<std::string>{"1.toml", "2.toml"}));
}

TEST(PolicyMerge, StricterActionWinsAcrossFiles) {
    auto base = parse_policy("[[file]]\npath = \"/etc/shadow\"\naction = \"audit\"\n", "00-base.toml");
    auto local = parse_policy("\n[[file]]\npath = \"/etc/shadow\"\naction = \"deny\"\n", "50-local.toml");
    auto weaker = parse_policy("[[file]]\npath = \"/etc/shadow\"\naction = \"audit\"\n", "90-weak.toml");
    ASSERT_OK(base);
    ASSERT_OK(local);
    ASSERT_OK(weaker);
    Policy merged = *base;
    ASSERT_OK(merge_policy(merged, *local));
    ASSERT_OK(merge_policy(merged, *weaker));
    ASSERT_EQ(merged.rules.size(), 1u);
    EXPECT_EQ(merged.rules[0].action, RuleAction::Deny);
    EXPECT_EQ(merged.rules[0].where, (SourceLocation{"50-local.toml", 3}));
}

TEST(PolicyMerge, ModeSetInTwoFilesNamesBoth) {
    auto first = parse_policy("[bpf]\nmode = \"deny\"\n", "00-default.toml");
    auto second = parse_policy("# local\n[bpf]\nmode = \"audit\"\n", "50-local.toml");
    ASSERT_OK(first);
    ASSERT_OK(second);
    Policy merged = *first;
    auto result = merge_policy(merged, *second);
    EXPECT_ERRNO(result, EINVAL);
    EXPECT_ERROR_MENTIONS(result, "50-local.toml:3: bpf.mode is already set in 00-default.toml:2");
    // A refused merge changes nothing.
    EXPECT_EQ(merged.bpf.mode, BpfGuardMode::Deny);
    EXPECT_EQ(merged.sources, std::vector<std::string>{"00-default.toml"});
}

TEST(PolicyMerge, RestrictSetInTwoFilesNamesBoth) {
    auto first = parse_policy("[bpf]\nrestrict = [\"prog_load\"]\n", "a.toml");
    auto second = parse_policy("[bpf]\nmode = \"deny\"\nrestrict = [\"link_create\"]\n", "b.toml");
    ASSERT_OK(first);
    ASSERT_OK(second);
    Policy merged = *first;
    auto result = merge_policy(merged, *second);
    EXPECT_ERRNO(result, EINVAL);
    EXPECT_ERROR_MENTIONS(result, "b.toml:3: bpf.restrict is already set in a.toml:2");
    EXPECT_EQ(merged.bpf.mode, BpfGuardMode::Audit) << "mode must not be applied from a refused file";
    EXPECT_EQ(merged.bpf.restricted_cmds, bit("prog_load"));
}

TEST(PolicyMerge, ModeAndRestrictFromDifferentFiles) {
    auto first = parse_policy("[bpf]\nrestrict = [\"prog_load\"]\n", "a.toml");
    auto second = parse_policy("[bpf]\nmode = \"off\"\n", "b.toml");
    ASSERT_OK(first);
    ASSERT_OK(second);
    Policy merged;
    merged.sources.clear();
    ASSERT_OK(merge_policy(merged, *first));
    ASSERT_OK(merge_policy(merged, *second));
    EXPECT_EQ(merged.bpf.mode, BpfGuardMode::Off);
    EXPECT_EQ(merged.bpf.restricted_cmds, bit("prog_load"));
    EXPECT_EQ(merged.bpf.mode_where, (SourceLocation{"b.toml", 2}));
    EXPECT_EQ(merged.bpf.restrict_where, (SourceLocation{"a.toml", 2}));
}

TEST(PolicyMerge, EachOptionSetInTwoFilesNamesBoth) {
    for (const char* option : {"protect", "deny_anonymous_exec", "deny_write_exec", "audit_bpf_reads"}) {
        auto first = parse_policy(std::string(option) + " = true\n", "00-default.toml");
        auto second = parse_policy("# local\n\n" + std::string(option) + " = false\n", "50-local.toml");
        ASSERT_OK(first);
        ASSERT_OK(second);
        Policy merged = *first;
        auto result = merge_policy(merged, *second);
        EXPECT_ERRNO(result, EINVAL);
        EXPECT_ERROR_MENTIONS(result, "50-local.toml:3: " + std::string(option) +
                                          " is already set in 00-default.toml:1 (set it in one file only)");
        EXPECT_EQ(result.error().kind(), ErrorKind::PolicyInvalid);
        // A refused merge changes nothing.
        EXPECT_EQ(merged.sources, std::vector<std::string>{"00-default.toml"});
        EXPECT_EQ(merged.source_texts.size(), 1u);
    }
}

TEST(PolicyMerge, MaxRulesSetInTwoFilesNamesBothAndOneFileSetsIt) {
    auto first = parse_policy("max_rules = 1000\n", "00-default.toml");
    auto second = parse_policy("# local\nmax_rules = 2000\n", "50-local.toml");
    auto rules = parse_policy("[[file]]\npath = \"/x\"\naction = \"deny\"\n", "60-rules.toml");
    ASSERT_OK(first);
    ASSERT_OK(second);
    ASSERT_OK(rules);
    Policy merged;
    ASSERT_OK(merge_policy(merged, *first));
    auto refused = merge_policy(merged, *second);
    EXPECT_ERRNO(refused, EINVAL);
    EXPECT_ERROR_MENTIONS(refused,
                          "50-local.toml:2: max_rules is already set in 00-default.toml:1 (set it in one file only)");
    // A file that does not set it leaves it as it was.
    ASSERT_OK(merge_policy(merged, *rules));
    EXPECT_EQ(merged.options.max_rules.value, 1000u);
    EXPECT_EQ(merged.options.max_rules.where, (SourceLocation{"00-default.toml", 1}));
}

TEST(PolicyMerge, RefusedOptionLeavesEveryOptionAsItWas) {
    auto first = parse_policy("deny_write_exec = false\n", "a.toml");
    auto second = parse_policy("protect = false\ndeny_anonymous_exec = true\ndeny_write_exec = true\n", "b.toml");
    ASSERT_OK(first);
    ASSERT_OK(second);
    Policy merged = *first;
    EXPECT_ERROR_MENTIONS(merge_policy(merged, *second), "b.toml:3: deny_write_exec is already set in a.toml:1");
    EXPECT_TRUE(merged.options.protect.value);
    EXPECT_FALSE(merged.options.protect.where);
    EXPECT_FALSE(merged.options.deny_anonymous_exec.value);
    EXPECT_FALSE(merged.options.deny_write_exec.value);
}

TEST(PolicyMerge, OptionsFromDifferentFilesAddUp) {
    auto first = parse_policy("protect = false\n", "a.toml");
    auto second = parse_policy("\ndeny_write_exec = true\n", "b.toml");
    auto third = parse_policy("[[file]]\npath = \"/x\"\naction = \"deny\"\n", "c.toml");
    ASSERT_OK(first);
    ASSERT_OK(second);
    ASSERT_OK(third);
    Policy merged;
    ASSERT_OK(merge_policy(merged, *first));
    ASSERT_OK(merge_policy(merged, *second));
    ASSERT_OK(merge_policy(merged, *third));
    EXPECT_FALSE(merged.options.protect.value);
    EXPECT_EQ(merged.options.protect.where, (SourceLocation{"a.toml", 1}));
    EXPECT_TRUE(merged.options.deny_write_exec.value);
    EXPECT_EQ(merged.options.deny_write_exec.where, (SourceLocation{"b.toml", 2}));
    EXPECT_FALSE(merged.options.deny_anonymous_exec.value);
    EXPECT_FALSE(merged.options.deny_anonymous_exec.where) << "a file that does not set it keeps the default";
    EXPECT_EQ(merged.source_texts.size(), 3u);
    EXPECT_EQ(merged.source_texts[1], "\ndeny_write_exec = true\n");
}

TEST(PolicyMerge, AllowEntryWithoutPid1WinsAcrossFiles) {
    auto pid1 = parse_policy("[bpf]\nallow = [{ path = \"/usr/lib/systemd/systemd\", pid1 = true }]\n", "00.toml");
    auto plain = parse_policy("[bpf]\nallow = [\"/usr/lib/systemd/systemd\"]\n", "50.toml");
    ASSERT_OK(pid1);
    ASSERT_OK(plain);

    Policy narrow_first = *pid1;
    ASSERT_OK(merge_policy(narrow_first, *plain));
    ASSERT_EQ(narrow_first.bpf.allow.size(), 1u);
    EXPECT_FALSE(narrow_first.bpf.allow[0].pid1_only);

    Policy broad_first = *plain;
    ASSERT_OK(merge_policy(broad_first, *pid1));
    ASSERT_EQ(broad_first.bpf.allow.size(), 1u);
    EXPECT_FALSE(broad_first.bpf.allow[0].pid1_only);
    EXPECT_EQ(broad_first.bpf.allow[0].where.file, "50.toml");

    Policy both = *pid1;
    ASSERT_OK(merge_policy(both, *pid1));
    ASSERT_EQ(both.bpf.allow.size(), 1u);
    EXPECT_TRUE(both.bpf.allow[0].pid1_only) << "only PID 1 was ever asked for";
}

// ---------------------------------------------------------------------------
// Files and directories

TEST(PolicyLoadFile, ReadsFileAndNamesItInLocations) {
    TempDir dir;
    fs::path file = dir.write("10-base.toml", "[[file]]\npath = \"/etc/shadow\"\naction = \"deny\"\n");
    auto policy = load_policy_file(file);
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 1u);
    EXPECT_EQ(policy->rules[0].where, (SourceLocation{file.string(), 2}));
    EXPECT_EQ(policy->sources, std::vector<std::string>{file.string()});
}

TEST(PolicyLoadFile, ErrorsNameThePath) {
    TempDir dir;
    fs::path file = dir.write("10-base.toml", "[[file]]\npath = \"/etc/shadow\"\naction = \"denyy\"\n");
    auto policy = load_policy_file(file);
    EXPECT_ERRNO(policy, EINVAL);
    EXPECT_ERROR_MENTIONS(policy, file.string() + ":3: unknown action 'denyy'");
}

TEST(PolicyLoadFile, EmptyFileIsEmptyPolicy) {
    TempDir dir;
    auto policy = load_policy_file(dir.write("empty.toml", ""));
    ASSERT_OK(policy);
    EXPECT_TRUE(policy->rules.empty());
    EXPECT_EQ(policy->bpf.mode, BpfGuardMode::Audit);
}

TEST(PolicyLoadFile, MissingFileIsENOENT) {
    TempDir dir;
    auto policy = load_policy_file(dir.path() / "nope.toml");
    EXPECT_ERRNO(policy, ENOENT);
    EXPECT_ERROR_MENTIONS(policy, (dir.path() / "nope.toml").string());
}

TEST(PolicyLoadFile, DirectoryIsEISDIR) {
    TempDir dir;
    fs::create_directory(dir.path() / "sub.toml");
    auto policy = load_policy_file(dir.path() / "sub.toml");
    EXPECT_ERRNO(policy, EISDIR);
    EXPECT_ERROR_MENTIONS(policy, (dir.path() / "sub.toml").string());
}

TEST(PolicyLoadFile, FifoIsRefusedWithoutBlocking) {
    TempDir dir;
    fs::path fifo = dir.path() / "pipe.toml";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
    auto policy = load_policy_file(fifo);
    EXPECT_ERRNO(policy, EINVAL);
    EXPECT_ERROR_MENTIONS(policy, "is not a regular file");
}

// Runs `check` (returning 0 on success, another code naming the failed
// step) as an unprivileged user: in a child dropped to nobody when the tests
// run as root, since root reads mode 000 files. Returns -1 if that is impossible.
int run_unprivileged(const std::function<int()>& check) {
    if (::geteuid() != 0)
        return check();
    pid_t pid = ::fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        constexpr uid_t kNobody = 65534;
        if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)
            ::_exit(255);
        ::_exit(check());
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) == 255)
        return -1;
    return WEXITSTATUS(status);
}

// 0 if `result` failed with `errnum` and mentions `needle`; 1, 2, 3 otherwise.
template <typename T>
int expect_failure(const Result<T>& result, int errnum, const std::string& needle) {
    if (result)
        return 1;
    if (result.error().errnum() != errnum)
        return 2;
    return result.error().message().find(needle) == std::string::npos ? 3 : 0;
}

TEST(PolicyLoadFile, UnreadableFileIsEACCES) {
    TempDir dir;
    fs::path file = dir.write("secret.toml", "");
    ASSERT_EQ(::chmod(file.c_str(), 0), 0);
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);  // only the file is unreadable
    int code = run_unprivileged([&] { return expect_failure(load_policy_file(file), EACCES, file.string()); });
    if (code < 0)
        GTEST_SKIP() << "cannot drop privileges";
    EXPECT_EQ(code, 0) << "1: loaded, 2: other errno, 3: path not named";
}

TEST(PolicyLoadDir, UnreadableDirectoryIsEACCES) {
    TempDir dir;
    fs::path policy_d = dir.path() / "policy.d";
    fs::create_directory(policy_d);
    ASSERT_EQ(::chmod(policy_d.c_str(), 0), 0);
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
    int code = run_unprivileged([&] { return expect_failure(load_policy_dir(policy_d), EACCES, policy_d.string()); });
    ::chmod(policy_d.c_str(), 0700);  // so that the temp directory can be removed
    if (code < 0)
        GTEST_SKIP() << "cannot drop privileges";
    EXPECT_EQ(code, 0) << "1: loaded, 2: other errno, 3: path not named";
}

TEST(PolicyLoadDir, MissingDirectoryIsENOENT) {
    TempDir dir;
    auto policy = load_policy_dir(dir.path() / "policy.d");
    EXPECT_ERRNO(policy, ENOENT);
    EXPECT_ERROR_MENTIONS(policy, (dir.path() / "policy.d").string());
}

TEST(PolicyLoadDir, FileInsteadOfDirectoryIsENOTDIR) {
    TempDir dir;
    fs::path file = dir.write("policy.d", "");
    auto policy = load_policy_dir(file);
    EXPECT_ERRNO(policy, ENOTDIR);
    EXPECT_ERROR_MENTIONS(policy, file.string());
}

TEST(PolicyLoadDir, EmptyDirectoryIsEmptyPolicy) {
    TempDir dir;
    auto policy = load_policy_dir(dir.path());
    ASSERT_OK(policy);
    EXPECT_TRUE(policy->rules.empty());
    EXPECT_TRUE(policy->bpf.allow.empty());
    EXPECT_TRUE(policy->sources.empty());
    EXPECT_EQ(policy->bpf.mode, BpfGuardMode::Audit);
    EXPECT_EQ(policy->bpf.restricted_cmds, default_restricted_bpf_commands());
}

TEST(PolicyLoadDir, OnlyVisibleTomlFilesAreRead) {
    TempDir dir;
    const std::string broken = "this is [not toml\n";
    dir.write("10-base.toml", "[[file]]\npath = \"/etc/shadow\"\naction = \"audit\"\n");
    for (const char* ignored :
         {"README", "10-base.toml~", "10-base.toml.bak", "10-base.toml.dpkg-old", ".10-base.toml.swp", ".hidden.toml",
          "#10-base.toml#", ".toml", "notes.txt", "policy.TOML"})
        dir.write(ignored, broken);
    fs::create_directory(dir.path() / "subdir");
    dir.write("subdir/20-nested.toml", broken);

    auto policy = load_policy_dir(dir.path());
    ASSERT_OK(policy);
    EXPECT_EQ(policy->sources, std::vector<std::string>{(dir.path() / "10-base.toml").string()});
    ASSERT_EQ(policy->rules.size(), 1u);
}

TEST(PolicyLoadDir, FilesAreReadInLexicalOrder) {
    TempDir dir;
    // Written out of order; "9" sorts after "50" byte-wise, as in ls -U | sort.
    dir.write("9-late.toml", "[bpf]\nallow = [\"/usr/bin/c\"]\n");
    dir.write("00-first.toml", "[bpf]\nallow = [\"/usr/bin/a\"]\n");
    dir.write("50-middle.toml", "[bpf]\nallow = [\"/usr/bin/b\"]\n");
    auto policy = load_policy_dir(dir.path());
    ASSERT_OK(policy);
    EXPECT_EQ(policy->sources, (std::vector<std::string>{(dir.path() / "00-first.toml").string(),
                                                         (dir.path() / "50-middle.toml").string(),
                                                         (dir.path() / "9-late.toml").string()}));
    ASSERT_EQ(policy->bpf.allow.size(), 3u);
    EXPECT_EQ(policy->bpf.allow[0].path, "/usr/bin/a");
    EXPECT_EQ(policy->bpf.allow[1].path, "/usr/bin/b");
    EXPECT_EQ(policy->bpf.allow[2].path, "/usr/bin/c");
}

TEST(PolicyLoadDir, MergesFiles) {
    TempDir dir;
    dir.write("00-default.toml", R"([[file]]
path = "/etc/shadow"
action = "audit"
[bpf]
mode = "deny"
allow = ["/usr/lib/systemd/systemd"]
)");
    dir.write("50-local.toml", R"([[file]]
path = "/etc/shadow"
action = "deny"
[[exec]]
path = "/usr/bin/nc.openbsd"
action = "deny"
[bpf]
allow = ["/usr/sbin/bpftool"]
restrict = ["prog_load"]
)");
    auto policy = load_policy_dir(dir.path());
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 2u);
    EXPECT_EQ(policy->rules[0].path, "/etc/shadow");
    EXPECT_EQ(policy->rules[0].action, RuleAction::Deny);
    EXPECT_EQ(policy->rules[0].where, (SourceLocation{(dir.path() / "50-local.toml").string(), 2}));
    EXPECT_EQ(policy->rules[1].kind, RuleKind::Exec);
    EXPECT_EQ(policy->bpf.mode, BpfGuardMode::Deny);
    EXPECT_EQ(policy->bpf.restricted_cmds, bit("prog_load"));
    ASSERT_EQ(policy->bpf.allow.size(), 2u);
    EXPECT_EQ(policy->bpf.allow[1].path, "/usr/sbin/bpftool");
}

TEST(PolicyLoadDir, ErrorNamesFileAndLine) {
    TempDir dir;
    dir.write("00-ok.toml", "[[file]]\npath = \"/etc/shadow\"\naction = \"audit\"\n");
    dir.write("10-base.toml", "\n\n[[exec]]\npath = \"/usr/bin/nc\"\n\n\naction = \"denyy\"\n");
    auto policy = load_policy_dir(dir.path());
    EXPECT_ERRNO(policy, EINVAL);
    EXPECT_ERROR_MENTIONS(
        policy, (dir.path() / "10-base.toml").string() + ":7: unknown action 'denyy' (expected \"deny\" or \"audit\")");
}

TEST(PolicyLoadDir, SyntaxErrorNamesFileLineAndColumn) {
    TempDir dir;
    dir.write("10-base.toml", "[[file]]\npath = \"/etc/shadow\"\naction = deny\n");
    auto policy = load_policy_dir(dir.path());
    EXPECT_ERRNO(policy, EINVAL);
    EXPECT_ERROR_MENTIONS(policy, (dir.path() / "10-base.toml").string() + ":3:10: ");
}

// The policy decides what the kernel enforces: a file or directory others
// may write is refused, naming it, its mode and the fix.
TEST(PolicyLoadDir, FileWritableByOthersIsRefused) {
    TempDir dir;
    dir.write("10-base.toml", "[[file]]\npath = \"/etc/shadow\"\naction = \"deny\"\n");
    ASSERT_EQ(::chmod((dir.path() / "10-base.toml").c_str(), 0666), 0);
    auto policy = load_policy_dir(dir.path());
    EXPECT_ERRNO(policy, EPERM);
    EXPECT_ERROR_MENTIONS(
        policy, "policy file '" + (dir.path() / "10-base.toml").string() + "' is writable by everyone (mode 0666)");
    EXPECT_ERROR_MENTIONS(policy, "chmod go-w");
    EXPECT_EQ(policy.error().kind(), ErrorKind::PolicyInvalid);
}

TEST(PolicyLoadDir, DirectoryWritableByItsGroupIsRefused) {
    TempDir dir;
    dir.write("10-base.toml", "[[file]]\npath = \"/etc/shadow\"\naction = \"deny\"\n");
    ASSERT_EQ(::chmod(dir.path().c_str(), 0770), 0);
    auto policy = load_policy_dir(dir.path());
    EXPECT_ERRNO(policy, EPERM);
    EXPECT_ERROR_MENTIONS(policy,
                          "policy directory '" + dir.path().string() + "' is writable by its group (mode 0770)");
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
    EXPECT_OK(load_policy_dir(dir.path()));  // the same directory once only its owner may write it
}

TEST(PolicyLoadDir, ModeInTwoFilesNamesBothFiles) {
    TempDir dir;
    dir.write("00-default.toml", "[bpf]\nmode = \"deny\"\n");
    dir.write("50-local.toml", "[bpf]\nmode = \"audit\"\n");
    auto policy = load_policy_dir(dir.path());
    EXPECT_ERRNO(policy, EINVAL);
    EXPECT_ERROR_MENTIONS(policy, (dir.path() / "50-local.toml").string() + ":2: bpf.mode is already set in " +
                                      (dir.path() / "00-default.toml").string() + ":2");
}

TEST(PolicyLoadDir, OptionInTwoFilesNamesBothFiles) {
    TempDir dir;
    dir.write("00-default.toml", "# defaults\nprotect = true\n");
    dir.write("50-local.toml", "protect = false\n");
    auto policy = load_policy_dir(dir.path());
    EXPECT_ERRNO(policy, EINVAL);
    EXPECT_ERROR_MENTIONS(policy, (dir.path() / "50-local.toml").string() + ":1: protect is already set in " +
                                      (dir.path() / "00-default.toml").string() + ":2");
}

TEST(PolicyLoadDir, SourceTextsFollowTheSourcesAndTheOverride) {
    TempDir dir;
    const std::string base = "[[file]]\npath = \"/etc/shadow\"\naction = \"audit\"\n";
    const std::string local = "deny_anonymous_exec = true\n";
    dir.write("10-base.toml", base);
    dir.write("50-local.toml", local);
    auto policy = load_policy_dir(dir.path());
    ASSERT_OK(policy);
    EXPECT_EQ(policy->sources, (std::vector<std::string>{(dir.path() / "10-base.toml").string(),
                                                         (dir.path() / "50-local.toml").string()}));
    EXPECT_EQ(policy->source_texts, (std::vector<std::string>{base, local}));

    // An edit in place of 50-local.toml, and a new file.
    const std::string edited = "deny_write_exec = true\n";
    PolicyFileOverride replace{"50-local.toml", edited};
    auto replaced = load_policy_dir(dir.path(), &replace);
    ASSERT_OK(replaced);
    EXPECT_EQ(replaced->source_texts, (std::vector<std::string>{base, edited}));
    EXPECT_TRUE(replaced->options.deny_write_exec.value);
    EXPECT_FALSE(replaced->options.deny_anonymous_exec.value);

    PolicyFileOverride removed{"10-base.toml", std::nullopt};
    auto without = load_policy_dir(dir.path(), &removed);
    ASSERT_OK(without);
    EXPECT_EQ(without->source_texts, (std::vector<std::string>{local}));
    EXPECT_TRUE(without->rules.empty());
}

TEST(PolicyLoadDir, SubtreeAndPlainRulesFromTwoFiles) {
    TempDir dir;
    dir.write("10-a.toml", "[[file]]\npath = \"/srv/data/\"\naction = \"audit\"\n");
    dir.write("20-b.toml",
              "[[file]]\npath = \"/srv/data\"\naction = \"deny\"\n[[file]]\npath = \"/srv/data\"\n"
              "recursive = true\naction = \"deny\"\n");
    auto policy = load_policy_dir(dir.path());
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 2u);
    EXPECT_TRUE(policy->rules[0].subtree);
    EXPECT_EQ(policy->rules[0].action, RuleAction::Deny);
    EXPECT_EQ(policy->rules[0].where, (SourceLocation{(dir.path() / "20-b.toml").string(), 5}));
    EXPECT_FALSE(policy->rules[1].subtree);
    EXPECT_EQ(policy->rules[1].action, RuleAction::Deny);
}

TEST(PolicyLoadDir, SymlinkedFileIsRead) {
    TempDir dir;
    fs::path target = dir.write("shared.conf", "[[exec]]\npath = \"/usr/bin/nc\"\naction = \"deny\"\n");
    fs::create_symlink(target, dir.path() / "20-link.toml");
    auto policy = load_policy_dir(dir.path());
    ASSERT_OK(policy);
    ASSERT_EQ(policy->rules.size(), 1u);
    EXPECT_EQ(policy->rules[0].where.file, (dir.path() / "20-link.toml").string());
}

TEST(PolicyLoadDir, DanglingSymlinkIsAnError) {
    TempDir dir;
    fs::create_symlink(dir.path() / "gone", dir.path() / "20-link.toml");
    auto policy = load_policy_dir(dir.path());
    EXPECT_ERRNO(policy, ENOENT);
    EXPECT_ERROR_MENTIONS(policy, (dir.path() / "20-link.toml").string());
}

// ---------------------------------------------------------------------------
// The policy the service ships

fs::path shipped_default_policy() {
    return fs::path(__FILE__).parent_path().parent_path().parent_path() / "policy" / "default.toml";
}

TEST(PolicyDefault, ShippedDefaultParses) {
    auto policy = load_policy_file(shipped_default_policy());
    ASSERT_OK(policy);

    ASSERT_EQ(policy->rules.size(), 4u);
    auto expect_rule = [&](std::size_t i, RuleKind kind, const char* path) {
        EXPECT_EQ(policy->rules[i].kind, kind) << path;
        EXPECT_EQ(policy->rules[i].path, path);
        EXPECT_EQ(policy->rules[i].action, RuleAction::Audit) << path;
    };
    expect_rule(0, RuleKind::FileOpen, "/etc/shadow");
    expect_rule(1, RuleKind::FileOpen, "/etc/gshadow");
    expect_rule(2, RuleKind::FileOpen, "/etc/sudoers");
    expect_rule(3, RuleKind::Exec, "/usr/sbin/bpftool");

    EXPECT_EQ(policy->bpf.mode, BpfGuardMode::Deny);
    ASSERT_EQ(policy->bpf.allow.size(), 1u);
    EXPECT_EQ(policy->bpf.allow[0].path, "/usr/lib/systemd/systemd");
    EXPECT_TRUE(policy->bpf.allow[0].pid1_only) << "systemd is allowed as PID 1 only";
    EXPECT_EQ(policy->bpf.restricted_cmds, default_restricted_bpf_commands());
    // Self-protection is on, and said so in the file (so no other file can turn it off).
    EXPECT_TRUE(policy->options.protect.value);
    EXPECT_TRUE(policy->options.protect.where);
    EXPECT_FALSE(policy->options.deny_anonymous_exec.value);
    EXPECT_FALSE(policy->options.deny_anonymous_exec.where);
    EXPECT_FALSE(policy->options.deny_write_exec.where);
    for (const PathRule& rule : policy->rules)
        EXPECT_FALSE(rule.subtree) << rule.path;
    // restrict is left to the administrator's own files.
    EXPECT_FALSE(policy->bpf.restrict_where);
}

TEST(PolicyDefault, DocumentedRestrictListIsTheDefaultSet) {
    // The shipped file shows the default restrict list as a comment; keep it
    // honest by uncommenting it and comparing with the built-in default.
    std::istringstream lines(read_text(shipped_default_policy()));
    std::string line, block;
    bool inside = false;
    while (std::getline(lines, line)) {
        if (line.starts_with("# restrict = ["))
            inside = true;
        if (inside)
            block += line.substr(std::min<std::size_t>(2, line.size())) + "\n";
        if (inside && line.starts_with("# ]"))
            break;
    }
    ASSERT_FALSE(block.empty()) << "no commented restrict list in default.toml";
    auto policy = parse_policy("[bpf]\n" + block, "default.toml restrict comment");
    ASSERT_OK(policy);
    EXPECT_EQ(policy->bpf.restricted_cmds, default_restricted_bpf_commands());
}

}  // namespace
}  // namespace bpfwarden
