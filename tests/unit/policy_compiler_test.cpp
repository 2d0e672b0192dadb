#include "policy/policy_compiler.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "temp_dir.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

// Resolves from a table; paths not in it are ENOENT, or the errno given.
class FakeFs {
public:
    FakeFs& file(const std::string& path, uint64_t dev, uint64_t ino) {
        files_[path] = FileIdentity{dev, ino};
        return *this;
    }
    FakeFs& error(const std::string& path, int errnum) {
        errors_[path] = errnum;
        return *this;
    }
    PathResolver resolver() const {
        return [this](const std::string& path) -> Result<FileIdentity> {
            ++calls_[path];
            if (auto it = errors_.find(path); it != errors_.end())
                return fail(it->second, "stat '" + path + "'");
            if (auto it = files_.find(path); it != files_.end())
                return it->second;
            return fail(ENOENT, "stat '" + path + "'");
        };
    }
    int calls(const std::string& path) const {
        auto it = calls_.find(path);
        return it == calls_.end() ? 0 : it->second;
    }

private:
    std::map<std::string, FileIdentity> files_;
    std::map<std::string, int> errors_;
    mutable std::map<std::string, int> calls_;
};

PathRule rule(RuleKind kind, std::string path, RuleAction action, int line) {
    return PathRule{kind, std::move(path), action, SourceLocation{"10-base.toml", line}};
}

PathRule allow(std::string path, int line) {
    return PathRule{RuleKind::Exec, std::move(path), RuleAction::Audit, SourceLocation{"10-base.toml", line}};
}

Policy policy_of(std::vector<PathRule> rules, std::vector<PathRule> allowed = {},
                 BpfGuardMode mode = BpfGuardMode::Audit) {
    Policy policy;
    policy.rules = std::move(rules);
    policy.bpf.allow = std::move(allowed);
    policy.bpf.mode = mode;
    return policy;
}

bool same_key(const bw_inode_key& key, uint64_t dev, uint64_t ino) { return key.dev == dev && key.ino == ino; }

// ---------------------------------------------------------------------------

TEST(PolicyCompiler, KernelDevEncoding) {
    EXPECT_EQ(kernel_dev(makedev(8, 1)), (uint64_t{8} << 20) | 1);
    EXPECT_EQ(kernel_dev(makedev(259, 3)), (uint64_t{259} << 20) | 3);
    EXPECT_EQ(kernel_dev(makedev(0, 0)), 0u);
    // Minors above 255 live in different bits of the glibc dev_t; the kernel
    // keeps 20 bits of minor.
    EXPECT_EQ(kernel_dev(makedev(0, 0x12345)), uint64_t{0x12345});
    EXPECT_EQ(kernel_dev(makedev(4095, 0xfffff)), (uint64_t{4095} << 20) | 0xfffff);
}

TEST(PolicyCompiler, FakeResolverGivesExactMapContents) {
    FakeFs fs;
    fs.file("/etc/shadow", 0x800001, 100)
        .file("/usr/bin/nc", 0x800001, 200)
        .file("/usr/lib/systemd/systemd", 0x10300002, 300);
    Policy policy = policy_of({rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Audit, 2),
                               rule(RuleKind::Exec, "/usr/bin/nc", RuleAction::Deny, 6)},
                              {allow("/usr/lib/systemd/systemd", 10)}, BpfGuardMode::Deny);
    policy.bpf.restricted_cmds = 0x21;

    auto compiled = compile_policy(policy, fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->warnings.empty());

    ASSERT_EQ(compiled->file_rules.size(), 1u);
    EXPECT_TRUE(same_key(compiled->file_rules[0].key, 0x800001, 100));
    EXPECT_EQ(compiled->file_rules[0].value.action, static_cast<uint32_t>(BW_ACTION_AUDIT));
    EXPECT_EQ(compiled->file_rules[0].value.rule_id, 0u);

    ASSERT_EQ(compiled->exec_rules.size(), 1u);
    EXPECT_TRUE(same_key(compiled->exec_rules[0].key, 0x800001, 200));
    EXPECT_EQ(compiled->exec_rules[0].value.action, static_cast<uint32_t>(BW_ACTION_DENY));
    EXPECT_EQ(compiled->exec_rules[0].value.rule_id, 1u);

    ASSERT_EQ(compiled->bpf_allow.size(), 1u);
    EXPECT_TRUE(same_key(compiled->bpf_allow[0].first, 0x10300002, 300));
    EXPECT_EQ(compiled->bpf_allow[0].second.rule_id, 2u);
    EXPECT_EQ(compiled->bpf_allow[0].second.pad, 0u);

    EXPECT_EQ(compiled->bpf_policy.action, static_cast<uint32_t>(BW_ACTION_DENY));
    EXPECT_EQ(compiled->bpf_policy.pad, 0u);
    EXPECT_EQ(compiled->bpf_policy.restricted_cmds, 0x21u);

    // Every id maps to its RuleInfo, bpf.allow entries continuing the id space.
    ASSERT_EQ(compiled->rules.size(), 3u);
    for (uint32_t id = 0; id < compiled->rules.size(); ++id)
        EXPECT_EQ(compiled->rules[id].id, id);
    const RuleInfo* shadow = compiled->rule(0);
    ASSERT_NE(shadow, nullptr);
    EXPECT_EQ(shadow->kind, RuleKind::FileOpen);
    EXPECT_EQ(shadow->path, "/etc/shadow");
    EXPECT_EQ(shadow->action, RuleAction::Audit);
    EXPECT_EQ(shadow->where, (SourceLocation{"10-base.toml", 2}));
    EXPECT_FALSE(shadow->bpf_allow);
    EXPECT_EQ(shadow->identity, (FileIdentity{0x800001, 100}));
    const RuleInfo* systemd = compiled->rule(2);
    ASSERT_NE(systemd, nullptr);
    EXPECT_TRUE(systemd->bpf_allow);
    EXPECT_EQ(systemd->path, "/usr/lib/systemd/systemd");
    EXPECT_EQ(systemd->where.line, 10);
}

TEST(PolicyCompiler, SamePolicyComparesMapsAndRules) {
    FakeFs fs;
    fs.file("/etc/shadow", 1, 100).file("/usr/bin/nc", 1, 200).file("/usr/bin/nc.new", 1, 201);
    auto compile = [&](std::vector<PathRule> rules, BpfGuardMode mode = BpfGuardMode::Audit) {
        auto compiled = compile_policy(policy_of(std::move(rules), {}, mode), fs.resolver());
        EXPECT_TRUE(compiled.has_value());
        return *compiled;
    };
    auto base = [] {
        return std::vector<PathRule>{rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Deny, 2),
                                     rule(RuleKind::Exec, "/usr/bin/nc", RuleAction::Audit, 6)};
    };
    CompiledPolicy running = compile(base());
    EXPECT_TRUE(same_policy(running, compile(base())));

    auto stricter = base();
    stricter[1].action = RuleAction::Deny;
    EXPECT_FALSE(same_policy(running, compile(stricter))) << "action";
    auto moved = base();
    moved[1].where.line = 7;  // ListRules shows where a rule is defined
    EXPECT_FALSE(same_policy(running, compile(moved))) << "source line";
    auto fewer = base();
    fewer.pop_back();
    EXPECT_FALSE(same_policy(running, compile(fewer))) << "rule removed";
    EXPECT_FALSE(same_policy(running, compile(base(), BpfGuardMode::Deny))) << "bpf mode";

    // The same path now naming another file (a package update): new map key.
    fs.file("/usr/bin/nc", 1, 202);
    EXPECT_FALSE(same_policy(running, compile(base()))) << "re-resolved inode";
}

TEST(PolicyCompiler, RuleLookupOutOfRangeIsNull) {
    FakeFs fs;
    fs.file("/a", 1, 1);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/a", RuleAction::Deny, 1)}), fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_NE(compiled->rule(0), nullptr);
    EXPECT_EQ(compiled->rule(1), nullptr);
    EXPECT_EQ(compiled->rule(kSelfRuleId), nullptr);
    EXPECT_EQ(kSelfRuleId, 0xFFFFFFFFu);
}

TEST(PolicyCompiler, BpfModeMapsToAction) {
    FakeFs fs;
    for (auto [mode, action] :
         {std::pair{BpfGuardMode::Off, BW_ACTION_NONE}, std::pair{BpfGuardMode::Audit, BW_ACTION_AUDIT},
          std::pair{BpfGuardMode::Deny, BW_ACTION_DENY}}) {
        auto compiled = compile_policy(policy_of({}, {}, mode), fs.resolver());
        ASSERT_OK(compiled);
        EXPECT_EQ(compiled->bpf_policy.action, static_cast<uint32_t>(action)) << to_string(mode);
        EXPECT_EQ(compiled->bpf_policy.restricted_cmds, default_restricted_bpf_commands());
    }
}

TEST(PolicyCompiler, EmptyPolicyCompilesToEmptyMaps) {
    FakeFs fs;
    auto compiled = compile_policy(Policy{}, fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->file_rules.empty());
    EXPECT_TRUE(compiled->exec_rules.empty());
    EXPECT_TRUE(compiled->bpf_allow.empty());
    EXPECT_TRUE(compiled->rules.empty());
    EXPECT_TRUE(compiled->warnings.empty());
    EXPECT_EQ(compiled->bpf_policy.action, static_cast<uint32_t>(BW_ACTION_AUDIT));
}

TEST(PolicyCompiler, MissingPathIsWarningAndRuleKept) {
    FakeFs fs;
    fs.file("/etc/shadow", 1, 10).error("/opt/x/bin/tool", ENOTDIR);
    Policy policy = policy_of({rule(RuleKind::FileOpen, "/opt/x", RuleAction::Deny, 3),
                               rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Audit, 7),
                               rule(RuleKind::Exec, "/opt/x/bin/tool", RuleAction::Deny, 11)},
                              {allow("/usr/sbin/missing", 14)});
    auto compiled = compile_policy(policy, fs.resolver());
    ASSERT_OK(compiled);

    ASSERT_EQ(compiled->rules.size(), 4u);
    EXPECT_EQ(compiled->rules[0].path, "/opt/x");
    EXPECT_FALSE(compiled->rules[0].identity);
    EXPECT_TRUE(compiled->rules[1].identity);
    EXPECT_FALSE(compiled->rules[2].identity);
    EXPECT_FALSE(compiled->rules[3].identity);

    ASSERT_EQ(compiled->file_rules.size(), 1u);
    EXPECT_EQ(compiled->file_rules[0].value.rule_id, 1u);
    EXPECT_TRUE(compiled->exec_rules.empty());
    EXPECT_TRUE(compiled->bpf_allow.empty());

    ASSERT_EQ(compiled->warnings.size(), 3u);
    EXPECT_EQ(compiled->warnings[0],
              "10-base.toml:3: '/opt/x' does not exist yet: rule inactive until it does (file rule)");
    EXPECT_EQ(compiled->warnings[1],
              "10-base.toml:11: '/opt/x/bin/tool' does not exist yet: rule inactive until it does "
              "(exec rule)");
    EXPECT_EQ(compiled->warnings[2],
              "10-base.toml:14: '/usr/sbin/missing' does not exist yet: rule inactive until it does "
              "(bpf allow entry)");
}

TEST(PolicyCompiler, OtherResolveErrorsAreWarningsWithTheReason) {
    FakeFs fs;
    fs.error("/secret/file", EACCES).error("/loop", ELOOP);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/secret/file", RuleAction::Deny, 4),
                                              rule(RuleKind::Exec, "/loop", RuleAction::Audit, 8)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->rules.size(), 2u);
    EXPECT_TRUE(compiled->file_rules.empty());
    ASSERT_EQ(compiled->warnings.size(), 2u);
    EXPECT_EQ(compiled->warnings[0], std::string("10-base.toml:4: cannot resolve '/secret/file': ") +
                                         std::strerror(EACCES) + ": rule inactive (file rule)");
    EXPECT_EQ(compiled->warnings[1], std::string("10-base.toml:8: cannot resolve '/loop': ") + std::strerror(ELOOP) +
                                         ": rule inactive (exec rule)");
}

TEST(PolicyCompiler, SameFileCollapsesAndStricterWins) {
    FakeFs fs;
    // Three names of one file (hard links / symlinks), one unrelated file.
    fs.file("/bin/nc", 5, 42).file("/usr/bin/nc", 5, 42).file("/usr/bin/netcat", 5, 42).file("/usr/bin/ls", 5, 7);
    Policy policy = policy_of({rule(RuleKind::Exec, "/bin/nc", RuleAction::Audit, 1),
                               rule(RuleKind::Exec, "/usr/bin/ls", RuleAction::Audit, 2),
                               rule(RuleKind::Exec, "/usr/bin/nc", RuleAction::Deny, 3),
                               rule(RuleKind::Exec, "/usr/bin/netcat", RuleAction::Deny, 4),
                               rule(RuleKind::Exec, "/usr/bin/netcat", RuleAction::Audit, 5)});
    auto compiled = compile_policy(policy, fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->rules.size(), 5u) << "every rule keeps its RuleInfo";
    ASSERT_EQ(compiled->exec_rules.size(), 2u);
    // Sorted by (dev, ino): ls (7) before nc (42).
    EXPECT_TRUE(same_key(compiled->exec_rules[0].key, 5, 7));
    EXPECT_EQ(compiled->exec_rules[0].value.rule_id, 1u);
    EXPECT_TRUE(same_key(compiled->exec_rules[1].key, 5, 42));
    EXPECT_EQ(compiled->exec_rules[1].value.action, static_cast<uint32_t>(BW_ACTION_DENY));
    EXPECT_EQ(compiled->exec_rules[1].value.rule_id, 2u) << "the first deny rule owns the entry";
    EXPECT_TRUE(compiled->warnings.empty());
}

TEST(PolicyCompiler, DenyFirstIsNotWeakenedByLaterAudit) {
    FakeFs fs;
    fs.file("/a", 1, 1).file("/b", 1, 1);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/a", RuleAction::Deny, 1),
                                              rule(RuleKind::FileOpen, "/b", RuleAction::Audit, 2)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->file_rules.size(), 1u);
    EXPECT_EQ(compiled->file_rules[0].value.action, static_cast<uint32_t>(BW_ACTION_DENY));
    EXPECT_EQ(compiled->file_rules[0].value.rule_id, 0u);
}

TEST(PolicyCompiler, SameFileInDifferentKindsGetsBothEntries) {
    FakeFs fs;
    fs.file("/usr/bin/nc", 1, 9);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/usr/bin/nc", RuleAction::Audit, 1),
                                              rule(RuleKind::Exec, "/usr/bin/nc", RuleAction::Deny, 2)},
                                             {allow("/usr/bin/nc", 3)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->file_rules.size(), 1u);
    ASSERT_EQ(compiled->exec_rules.size(), 1u);
    ASSERT_EQ(compiled->bpf_allow.size(), 1u);
    EXPECT_EQ(compiled->file_rules[0].value.rule_id, 0u);
    EXPECT_EQ(compiled->exec_rules[0].value.rule_id, 1u);
    EXPECT_EQ(compiled->bpf_allow[0].second.rule_id, 2u);
}

TEST(PolicyCompiler, AllowEntriesForOneFileCollapseToTheFirst) {
    FakeFs fs;
    fs.file("/usr/lib/systemd/systemd", 1, 5).file("/sbin/init", 1, 5);
    auto compiled =
        compile_policy(policy_of({}, {allow("/usr/lib/systemd/systemd", 1), allow("/sbin/init", 2)}), fs.resolver());
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->rules.size(), 2u);
    ASSERT_EQ(compiled->bpf_allow.size(), 1u);
    EXPECT_EQ(compiled->bpf_allow[0].second.rule_id, 0u);
}

TEST(PolicyCompiler, MapContentsAreSortedAndUnique) {
    FakeFs fs;
    std::vector<PathRule> rules;
    // Deliberately out of order, with dev differences dominating ino.
    const std::vector<std::tuple<std::string, uint64_t, uint64_t>> files = {
        {"/f1", 3, 1}, {"/f2", 1, 9}, {"/f3", 2, 0}, {"/f4", 1, 2}, {"/f5", 1, 9}};
    int line = 1;
    for (const auto& [path, dev, ino] : files) {
        fs.file(path, dev, ino);
        rules.push_back(rule(RuleKind::FileOpen, path, RuleAction::Audit, line++));
    }
    auto compiled = compile_policy(policy_of(rules), fs.resolver());
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->file_rules.size(), 4u);
    EXPECT_TRUE(same_key(compiled->file_rules[0].key, 1, 2));
    EXPECT_TRUE(same_key(compiled->file_rules[1].key, 1, 9));
    EXPECT_TRUE(same_key(compiled->file_rules[2].key, 2, 0));
    EXPECT_TRUE(same_key(compiled->file_rules[3].key, 3, 1));
}

TEST(PolicyCompiler, MatchingRuleFindsTheRuleOwningAnEntry) {
    FakeFs fs;
    fs.file("/etc/shadow", 8, 100).file("/etc/shadow-link", 8, 100).file("/usr/bin/nc", 8, 200).file("/sd", 8, 300);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Audit, 1),
                                              rule(RuleKind::FileOpen, "/etc/shadow-link", RuleAction::Deny, 2),
                                              rule(RuleKind::Exec, "/usr/bin/nc", RuleAction::Deny, 3)},
                                             {allow("/sd", 4)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    const RuleInfo* file = compiled->matching_rule(RuleKind::FileOpen, 8, 100);
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(file->path, "/etc/shadow-link");
    EXPECT_EQ(file->id, 1u);
    const RuleInfo* exec = compiled->matching_rule(RuleKind::Exec, 8, 200);
    ASSERT_NE(exec, nullptr);
    EXPECT_EQ(exec->path, "/usr/bin/nc");
    EXPECT_EQ(compiled->matching_rule(RuleKind::Exec, 8, 100), nullptr);
    EXPECT_EQ(compiled->matching_rule(RuleKind::FileOpen, 8, 200), nullptr);
    EXPECT_EQ(compiled->matching_rule(RuleKind::FileOpen, 9, 100), nullptr);
    const RuleInfo* allowed = compiled->matching_bpf_allow(8, 300);
    ASSERT_NE(allowed, nullptr);
    EXPECT_EQ(allowed->path, "/sd");
    EXPECT_EQ(compiled->matching_bpf_allow(8, 200), nullptr);
}

TEST(PolicyCompiler, EachPathIsResolvedOnce) {
    FakeFs fs;
    fs.file("/a", 1, 1);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/a", RuleAction::Deny, 1)}), fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(fs.calls("/a"), 1);
}

TEST(PolicyCompiler, InvalidPolicyIsRefused) {
    FakeFs fs;
    auto relative =
        compile_policy(policy_of({rule(RuleKind::FileOpen, "etc/shadow", RuleAction::Deny, 9)}), fs.resolver());
    EXPECT_ERRNO(relative, EINVAL);
    EXPECT_ERROR_MENTIONS(relative, "10-base.toml:9: 'etc/shadow' is not a valid absolute path");

    auto empty_allow = compile_policy(policy_of({}, {allow("", 4)}), fs.resolver());
    EXPECT_ERRNO(empty_allow, EINVAL);
    EXPECT_ERROR_MENTIONS(empty_allow, "10-base.toml:4:");

    auto no_resolver = compile_policy(Policy{}, PathResolver{});
    EXPECT_ERRNO(no_resolver, EINVAL);
}

TEST(PolicyCompiler, TooManyAllowEntriesIsE2BIG) {
    FakeFs fs;
    std::vector<PathRule> allowed;
    for (std::size_t i = 0; i <= kBpfAllowCapacity; ++i) {
        std::string path = "/usr/bin/tool" + std::to_string(i);
        fs.file(path, 1, i + 1);
        allowed.push_back(allow(path, static_cast<int>(i + 1)));
    }
    auto compiled = compile_policy(policy_of({}, allowed), fs.resolver());
    EXPECT_ERRNO(compiled, E2BIG);
    EXPECT_ERROR_MENTIONS(compiled, "bpf.allow");

    // One fewer fits; the remaining slots are bpfwarden's own.
    allowed.pop_back();
    EXPECT_OK(compile_policy(policy_of({}, allowed), fs.resolver()));
}

// ---------------------------------------------------------------------------
// The real resolver, on real files

TEST(PolicyCompiler, StatResolverUsesKernelDeviceEncoding) {
    TempDir dir;
    fs::path file = dir.touch("target");
    struct stat st{};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    auto identity = stat_resolver()(file.string());
    ASSERT_OK(identity);
    EXPECT_EQ(identity->dev, kernel_dev(st.st_dev));
    EXPECT_EQ(identity->ino, static_cast<uint64_t>(st.st_ino));
    EXPECT_EQ(identity->dev >> 20, major(st.st_dev));
    EXPECT_EQ(identity->dev & 0xfffff, minor(st.st_dev));
}

TEST(PolicyCompiler, StatResolverReportsErrno) {
    TempDir dir;
    auto missing = stat_resolver()((dir.path() / "missing").string());
    EXPECT_ERRNO(missing, ENOENT);
    EXPECT_ERROR_MENTIONS(missing, (dir.path() / "missing").string());

    fs::path file = dir.touch("plain");
    auto not_dir = stat_resolver()((file / "below").string());
    EXPECT_ERRNO(not_dir, ENOTDIR);

    fs::create_symlink(dir.path() / "loop", dir.path() / "loop");
    auto loop = stat_resolver()((dir.path() / "loop").string());
    EXPECT_ERRNO(loop, ELOOP);
}

TEST(PolicyCompiler, HardLinksCollapseToOneEntry) {
    TempDir dir;
    fs::path original = dir.touch("original");
    fs::path linked = dir.path() / "linked";
    ASSERT_EQ(::link(original.c_str(), linked.c_str()), 0) << std::strerror(errno);
    fs::path other = dir.touch("other");

    Policy policy = policy_of({rule(RuleKind::FileOpen, original.string(), RuleAction::Audit, 1),
                               rule(RuleKind::FileOpen, linked.string(), RuleAction::Deny, 2),
                               rule(RuleKind::FileOpen, other.string(), RuleAction::Audit, 3)});
    auto compiled = compile_policy(policy, stat_resolver());
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->warnings.empty());
    ASSERT_EQ(compiled->file_rules.size(), 2u);

    struct stat st{};
    ASSERT_EQ(::stat(original.c_str(), &st), 0);
    const RuleInfo* owner = compiled->matching_rule(RuleKind::FileOpen, kernel_dev(st.st_dev), st.st_ino);
    ASSERT_NE(owner, nullptr);
    EXPECT_EQ(owner->path, linked.string());
    EXPECT_EQ(owner->action, RuleAction::Deny);
    EXPECT_EQ(compiled->rules[0].identity, compiled->rules[1].identity);
    EXPECT_NE(compiled->rules[0].identity, compiled->rules[2].identity);
}

TEST(PolicyCompiler, SymlinkRuleProtectsItsTarget) {
    TempDir dir;
    fs::path target = dir.touch("nc.openbsd");
    fs::create_directory(dir.path() / "alternatives");
    fs::create_symlink(target, dir.path() / "alternatives" / "nc");
    fs::create_symlink(dir.path() / "alternatives" / "nc", dir.path() / "nc");  // two hops

    Policy policy = policy_of({rule(RuleKind::Exec, (dir.path() / "nc").string(), RuleAction::Deny, 5)});
    auto compiled = compile_policy(policy, stat_resolver());
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->exec_rules.size(), 1u);

    struct stat target_st{}, link_st{};
    ASSERT_EQ(::stat(target.c_str(), &target_st), 0);
    ASSERT_EQ(::lstat((dir.path() / "nc").c_str(), &link_st), 0);
    EXPECT_TRUE(same_key(compiled->exec_rules[0].key, kernel_dev(target_st.st_dev), target_st.st_ino));
    EXPECT_NE(compiled->exec_rules[0].key.ino, static_cast<uint64_t>(link_st.st_ino));
}

TEST(PolicyCompiler, DanglingSymlinkIsAWarning) {
    TempDir dir;
    fs::create_symlink(dir.path() / "not-installed", dir.path() / "tool");
    std::string path = (dir.path() / "tool").string();
    auto compiled = compile_policy(policy_of({rule(RuleKind::Exec, path, RuleAction::Deny, 2)}), stat_resolver());
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->exec_rules.empty());
    ASSERT_EQ(compiled->rules.size(), 1u);
    ASSERT_EQ(compiled->warnings.size(), 1u);
    EXPECT_EQ(compiled->warnings[0],
              "10-base.toml:2: '" + path + "' does not exist yet: rule inactive until it does (exec rule)");
}

TEST(PolicyCompiler, ShippedDefaultPolicyCompiles) {
    fs::path file = fs::path(__FILE__).parent_path().parent_path().parent_path() / "policy" / "default.toml";
    auto policy = load_policy_file(file);
    ASSERT_OK(policy);
    auto compiled = compile_policy(*policy, stat_resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->rules.size(), 5u);
    EXPECT_EQ(compiled->bpf_policy.action, static_cast<uint32_t>(BW_ACTION_DENY));
    EXPECT_EQ(compiled->bpf_policy.restricted_cmds, default_restricted_bpf_commands());
    // Whatever this host lacks is a warning, never dropped silently.
    std::size_t resolved = 0;
    for (const RuleInfo& info : compiled->rules)
        resolved += info.identity.has_value();
    EXPECT_EQ(resolved + compiled->warnings.size(), compiled->rules.size());
}

}  // namespace
}  // namespace bpfwarden
