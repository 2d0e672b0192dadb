#include "policy/policy_compiler.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "temp_dir.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

// A filesystem in a table: directories and files by path, symlinks, and
// paths that cannot be resolved. Resolves the way resolve_path() does: the
// file (if any), and the directory its name is in (if that exists).
class FakeFs {
public:
    FakeFs& dir(const std::string& path, uint64_t dev, uint64_t ino) {
        nodes_[path] = FileIdentity{dev, ino, 0, true};
        return *this;
    }
    FakeFs& file(const std::string& path, uint64_t dev, uint64_t ino, uint32_t gen = 0) {
        nodes_[path] = FileIdentity{dev, ino, gen, false};
        return *this;
    }
    // `path` is a symlink to `target` (an absolute path).
    FakeFs& symlink(const std::string& path, const std::string& target) {
        links_[path] = target;
        return *this;
    }
    // Resolving `path` fails with `errnum`, for the file and its directory.
    FakeFs& error(const std::string& path, int errnum) {
        errors_[path] = errnum;
        return *this;
    }
    PathResolver resolver() const {
        return [this](const std::string& path) { return resolve(path); };
    }
    int calls(const std::string& path) const {
        auto it = calls_.find(path);
        return it == calls_.end() ? 0 : it->second;
    }

private:
    std::string follow(std::string path) const {
        // Symlinks anywhere in the path: replace the longest linked prefix.
        for (int hops = 0; hops < 40; ++hops) {
            bool replaced = false;
            for (const auto& [link, target] : links_)
                if (path == link || path.starts_with(link + "/")) {
                    path = target + path.substr(link.size());
                    replaced = true;
                    break;
                }
            if (!replaced)
                break;
        }
        return path;
    }

    PathTarget resolve(const std::string& written) const {
        ++calls_[written];
        PathTarget target;
        std::string path = follow(written);
        fs::path as_path(path);
        target.name = as_path.filename().string();
        if (auto it = errors_.find(path); it != errors_.end()) {
            target.file_error = target.dir_error = it->second;
            return target;
        }
        auto dir = nodes_.find(as_path.parent_path().string());
        if (dir != nodes_.end() && dir->second.is_dir) {
            target.dir = dir->second;
            target.canonical = path;
        } else {
            target.dir_error = ENOENT;
        }
        if (auto it = nodes_.find(path); it != nodes_.end())
            target.file = it->second;
        else
            target.file_error = ENOENT;
        return target;
    }

    std::map<std::string, FileIdentity> nodes_;
    std::map<std::string, std::string> links_;
    std::map<std::string, int> errors_;
    mutable std::map<std::string, int> calls_;
};

PathRule rule(RuleKind kind, std::string path, RuleAction action, int line, bool subtree = false) {
    PathRule out{kind, std::move(path), action, SourceLocation{"10-base.toml", line}};
    out.subtree = subtree;
    return out;
}

PathRule subtree(RuleKind kind, std::string path, RuleAction action, int line) {
    return rule(kind, std::move(path), action, line, true);
}

PathRule allow(std::string path, int line, bool pid1_only = false) {
    PathRule out{RuleKind::Exec, std::move(path), RuleAction::Audit, SourceLocation{"10-base.toml", line}};
    out.pid1_only = pid1_only;
    return out;
}

Policy policy_of(std::vector<PathRule> rules, std::vector<PathRule> allowed = {},
                 BpfGuardMode mode = BpfGuardMode::Audit) {
    Policy policy;
    policy.rules = std::move(rules);
    policy.bpf.allow = std::move(allowed);
    policy.bpf.mode = mode;
    return policy;
}

bw_inode_key key(uint64_t dev, uint64_t ino, uint32_t gen = 0) {
    bw_inode_key out{};
    out.dev = dev;
    out.ino = ino;
    out.gen = gen;
    return out;
}

// A directory's key: marked as one, as the programs see it.
bw_inode_key dir_key(uint64_t dev, uint64_t ino) {
    bw_inode_key out = key(dev, ino);
    out.is_dir = 1;
    return out;
}

// The entry `name` in the directory `dir` (marked as a directory here).
bw_dirent_key dirent(const bw_inode_key& dir, std::string_view name) {
    bw_dirent_key out{};
    out.dir = dir;
    out.dir.is_dir = 1;
    out.name_hash = bw_name_hash(reinterpret_cast<const unsigned char*>(name.data()), static_cast<__u32>(name.size()));
    return out;
}

// A map value as (action, rule_id, flags): printable, comparable.
using RuleFields = std::tuple<uint32_t, uint32_t, uint32_t>;
RuleFields fields(const bw_rule& rule) { return {rule.action, rule.rule_id, rule.flags}; }
RuleFields deny(uint32_t id) { return {BW_ACTION_DENY, id, 0}; }
RuleFields audit(uint32_t id) { return {BW_ACTION_AUDIT, id, 0}; }
const RuleFields kNoRule{BW_ACTION_NONE, 0, 0};

template <typename Map, typename Key>
const typename Map::mapped_type* lookup(const Map& map, const Key& key) {
    auto it = map.find(key);
    return it == map.end() ? nullptr : &it->second;
}

constexpr uint64_t kDev = 0x800001;  // 8:1

// ---------------------------------------------------------------------------
// With a fake resolver: exact map contents

TEST(PolicyCompiler, NameHashIsFnv1a64OverAtMost255Bytes) {
    auto hash = [](std::string_view name) {
        return bw_name_hash(reinterpret_cast<const unsigned char*>(name.data()), static_cast<__u32>(name.size()));
    };
    // The published FNV-1a 64 test vectors.
    EXPECT_EQ(hash(""), 0xcbf29ce484222325ULL);
    EXPECT_EQ(hash("a"), 0xaf63dc4c8601ec8cULL);
    EXPECT_EQ(hash("foobar"), 0x85944171f73967e8ULL);
    EXPECT_EQ(hash(std::string(256, 'x')), hash(std::string(255, 'x')));
    EXPECT_NE(hash(std::string(255, 'x')), hash(std::string(254, 'x')));
}

TEST(PolicyCompiler, FileRuleYieldsAnInodeAndANameEntry) {
    FakeFs fs;
    fs.dir("/etc", kDev, 2).file("/etc/shadow", kDev, 100, 7).dir("/usr/bin", kDev, 3).file("/usr/bin/nc", kDev, 200);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Audit, 2),
                                              rule(RuleKind::Exec, "/usr/bin/nc", RuleAction::Deny, 6)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    const RuleTables& tables = compiled->tables;
    EXPECT_TRUE(compiled->warnings.empty());

    // The file itself, generation included.
    ASSERT_EQ(tables.file_rules.size(), 1u);
    ASSERT_NE(lookup(tables.file_rules, key(kDev, 100, 7)), nullptr);
    EXPECT_EQ(fields(*lookup(tables.file_rules, key(kDev, 100, 7))), audit(0));
    ASSERT_EQ(tables.exec_rules.size(), 1u);
    ASSERT_NE(lookup(tables.exec_rules, key(kDev, 200)), nullptr);
    EXPECT_EQ(fields(*lookup(tables.exec_rules, key(kDev, 200))), deny(1));

    // Its name in its directory, in the slot of its kind.
    ASSERT_EQ(tables.dirents.size(), 2u);
    const bw_name_rules* shadow = lookup(tables.dirents, dirent(key(kDev, 2), "shadow"));
    ASSERT_NE(shadow, nullptr);
    EXPECT_EQ(fields(shadow->file), audit(0));
    EXPECT_EQ(fields(shadow->exec), kNoRule);
    const bw_name_rules* nc = lookup(tables.dirents, dirent(key(kDev, 3), "nc"));
    ASSERT_NE(nc, nullptr);
    EXPECT_EQ(fields(nc->file), kNoRule);
    EXPECT_EQ(fields(nc->exec), deny(1));

    // Both directories are marked as having named entries, and nothing more.
    ASSERT_EQ(tables.dir_rules.size(), 2u);
    for (const bw_inode_key& dir : {dir_key(kDev, 2), dir_key(kDev, 3)}) {
        const bw_dir_rules* rules = lookup(tables.dir_rules, dir);
        ASSERT_NE(rules, nullptr) << dir.ino;
        EXPECT_EQ(rules->flags, static_cast<uint32_t>(BW_DIR_HAS_ENTRIES));
        EXPECT_EQ(fields(rules->file), kNoRule);
        EXPECT_EQ(fields(rules->exec), kNoRule);
    }
    EXPECT_TRUE(tables.dir_rules.begin()->first.is_dir == 1 && tables.dirents.begin()->first.dir.is_dir == 1);

    // Every id maps to its RuleInfo, with what the path named.
    ASSERT_EQ(compiled->rules.size(), 2u);
    const RuleInfo* info = compiled->rule(0);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->id, 0u);
    EXPECT_EQ(info->kind, RuleKind::FileOpen);
    EXPECT_EQ(info->path, "/etc/shadow");
    EXPECT_EQ(info->action, RuleAction::Audit);
    EXPECT_EQ(info->where, (SourceLocation{"10-base.toml", 2}));
    EXPECT_FALSE(info->subtree);
    EXPECT_FALSE(info->bpf_allow);
    EXPECT_TRUE(info->active());
    EXPECT_EQ(info->target, fs.resolver()("/etc/shadow"));
    EXPECT_EQ(compiled->rule(1)->target.name, "nc");
}

TEST(PolicyCompiler, MissingFileInAnExistingDirectoryIsActiveByName) {
    FakeFs fs;
    fs.dir("/etc/sudoers.d", kDev, 40);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/etc/sudoers.d/local", RuleAction::Deny, 3)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->warnings.empty()) << compiled->warnings.front();
    EXPECT_TRUE(compiled->tables.file_rules.empty());
    ASSERT_EQ(compiled->tables.dirents.size(), 1u);
    const bw_name_rules* entry = lookup(compiled->tables.dirents, dirent(key(kDev, 40), "local"));
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(fields(entry->file), deny(0));
    ASSERT_NE(lookup(compiled->tables.dir_rules, dir_key(kDev, 40)), nullptr);
    EXPECT_EQ(lookup(compiled->tables.dir_rules, dir_key(kDev, 40))->flags, static_cast<uint32_t>(BW_DIR_HAS_ENTRIES));
    const RuleInfo& info = compiled->rules.at(0);
    EXPECT_TRUE(info.active());
    EXPECT_FALSE(info.target.file);
    EXPECT_EQ(info.target.file_error, ENOENT);
}

TEST(PolicyCompiler, MissingDirectoryIsInactiveWithAWarning) {
    FakeFs fs;
    fs.dir("/etc", kDev, 2).file("/etc/shadow", kDev, 10);
    Policy policy = policy_of({rule(RuleKind::FileOpen, "/opt/x/secret", RuleAction::Deny, 3),
                               rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Audit, 7),
                               rule(RuleKind::Exec, "/opt/x/bin/tool", RuleAction::Deny, 11),
                               subtree(RuleKind::FileOpen, "/srv/missing", RuleAction::Deny, 13)},
                              {allow("/usr/sbin/missing", 14)});
    auto compiled = compile_policy(policy, fs.resolver());
    ASSERT_OK(compiled);

    ASSERT_EQ(compiled->rules.size(), 5u);
    EXPECT_FALSE(compiled->rules[0].active());
    EXPECT_TRUE(compiled->rules[1].active());
    EXPECT_FALSE(compiled->rules[2].active());
    EXPECT_FALSE(compiled->rules[3].active());
    EXPECT_FALSE(compiled->rules[4].active());
    EXPECT_EQ(compiled->rules[2].target.dir_error, ENOENT);

    // Only the resolvable rule has entries.
    ASSERT_EQ(compiled->tables.file_rules.size(), 1u);
    EXPECT_EQ(compiled->tables.file_rules.begin()->second.rule_id, 1u);
    EXPECT_TRUE(compiled->tables.exec_rules.empty());
    EXPECT_EQ(compiled->tables.dirents.size(), 1u);
    EXPECT_EQ(compiled->tables.dir_rules.size(), 1u);
    EXPECT_TRUE(compiled->tables.bpf_allow.empty());

    ASSERT_EQ(compiled->warnings.size(), 4u);
    struct Expected {
        const char* prefix;
        const char* path;
        const char* suffix;
    };
    const Expected expected[] = {{"10-base.toml:3: ", "/opt/x/secret", "(file rule)"},
                                 {"10-base.toml:11: ", "/opt/x/bin/tool", "(exec rule)"},
                                 {"10-base.toml:13: ", "/srv/missing", "(file subtree rule)"},
                                 {"10-base.toml:14: ", "/usr/sbin/missing", "(bpf allow entry)"}};
    for (std::size_t i = 0; i < 4; ++i) {
        const std::string& warning = compiled->warnings[i];
        EXPECT_TRUE(warning.starts_with(expected[i].prefix)) << warning;
        EXPECT_NE(warning.find(expected[i].path), std::string::npos) << warning;
        EXPECT_NE(warning.find("does not exist yet: rule inactive until it does"), std::string::npos) << warning;
        EXPECT_TRUE(warning.ends_with(expected[i].suffix)) << warning;
    }
}

TEST(PolicyCompiler, OtherResolveErrorsAreWarningsWithTheReason) {
    FakeFs fs;
    fs.error("/secret/file", EACCES).error("/loop", ELOOP);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/secret/file", RuleAction::Deny, 4),
                                              rule(RuleKind::Exec, "/loop", RuleAction::Audit, 8)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->rules.size(), 2u);
    EXPECT_TRUE(compiled->tables.file_rules.empty());
    EXPECT_TRUE(compiled->tables.dirents.empty());
    ASSERT_EQ(compiled->warnings.size(), 2u);
    EXPECT_EQ(compiled->warnings[0], std::string("10-base.toml:4: cannot resolve '/secret/file': ") +
                                         std::strerror(EACCES) + ": rule inactive (file rule)");
    EXPECT_EQ(compiled->warnings[1], std::string("10-base.toml:8: cannot resolve '/loop': ") + std::strerror(ELOOP) +
                                         ": rule inactive (exec rule)");
}

TEST(PolicyCompiler, FileSubtreeRuleKeysTheDirectoryAndItsInode) {
    FakeFs fs;
    fs.dir("/srv", kDev, 5).dir("/srv/secret", kDev, 50);
    auto compiled =
        compile_policy(policy_of({subtree(RuleKind::FileOpen, "/srv/secret", RuleAction::Deny, 2)}), fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->warnings.empty());
    const RuleTables& tables = compiled->tables;
    ASSERT_EQ(tables.dir_rules.size(), 1u) << "the parent gets nothing";
    const bw_dir_rules* dir = lookup(tables.dir_rules, dir_key(kDev, 50));
    ASSERT_NE(dir, nullptr);
    EXPECT_EQ(dir->flags, static_cast<uint32_t>(BW_DIR_SUBTREE));
    EXPECT_EQ(fields(dir->file), deny(0));
    EXPECT_EQ(fields(dir->exec), kNoRule);
    // The directory itself: listing, renaming or removing it.
    ASSERT_EQ(tables.file_rules.size(), 1u);
    ASSERT_NE(lookup(tables.file_rules, dir_key(kDev, 50)), nullptr);
    EXPECT_EQ(fields(*lookup(tables.file_rules, dir_key(kDev, 50))), deny(0));
    EXPECT_TRUE(tables.dirents.empty());
    EXPECT_TRUE(tables.exec_rules.empty());
    EXPECT_TRUE(compiled->rules.at(0).subtree);
    EXPECT_TRUE(compiled->rules.at(0).active());
}

// On overlayfs over different filesystems a directory's inode number is the
// mount's counter and a file's its layer's: one (dev, ino) can name both, and
// a rule on the directory must not reach the file.
TEST(PolicyCompiler, DirectoryAndFileSharingAnInodeNumberStayApart) {
    FakeFs fs;
    fs.dir("/srv", kDev, 5).dir("/srv/secret", kDev, 50).dir("/etc", kDev, 2).file("/etc/motd", kDev, 50);
    auto compiled = compile_policy(policy_of({subtree(RuleKind::FileOpen, "/srv/secret", RuleAction::Deny, 1),
                                              rule(RuleKind::FileOpen, "/etc/motd", RuleAction::Audit, 2)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    const RuleTables& tables = compiled->tables;
    ASSERT_EQ(tables.file_rules.size(), 2u);
    EXPECT_EQ(fields(*lookup(tables.file_rules, dir_key(kDev, 50))), deny(0));
    EXPECT_EQ(fields(*lookup(tables.file_rules, key(kDev, 50))), audit(1));
}

TEST(PolicyCompiler, ExecSubtreeRuleKeysOnlyTheDirectory) {
    FakeFs fs;
    fs.dir("/opt", kDev, 6).dir("/opt/tools", kDev, 60);
    auto compiled =
        compile_policy(policy_of({subtree(RuleKind::Exec, "/opt/tools", RuleAction::Audit, 4)}), fs.resolver());
    ASSERT_OK(compiled);
    const RuleTables& tables = compiled->tables;
    ASSERT_EQ(tables.dir_rules.size(), 1u);
    const bw_dir_rules* dir = lookup(tables.dir_rules, dir_key(kDev, 60));
    ASSERT_NE(dir, nullptr);
    EXPECT_EQ(dir->flags, static_cast<uint32_t>(BW_DIR_SUBTREE));
    EXPECT_EQ(fields(dir->exec), audit(0));
    EXPECT_EQ(fields(dir->file), kNoRule);
    EXPECT_TRUE(tables.exec_rules.empty());
    EXPECT_TRUE(tables.file_rules.empty());
    EXPECT_TRUE(tables.dirents.empty());
    EXPECT_TRUE(compiled->warnings.empty());
}

TEST(PolicyCompiler, SubtreeRuleOnAFileIsInactive) {
    FakeFs fs;
    fs.dir("/etc", kDev, 2).file("/etc/shadow", kDev, 10);
    auto compiled =
        compile_policy(policy_of({subtree(RuleKind::Exec, "/etc/shadow", RuleAction::Deny, 9)}), fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_FALSE(compiled->rules.at(0).active());
    EXPECT_TRUE(compiled->tables.dir_rules.empty());
    EXPECT_TRUE(compiled->tables.exec_rules.empty());
    ASSERT_EQ(compiled->warnings.size(), 1u);
    EXPECT_EQ(compiled->warnings[0],
              "10-base.toml:9: '/etc/shadow' is not a directory: subtree rule inactive (exec subtree rule)");
}

// RuleInfo::active() is documented as "covers something in the kernel now".
// A file subtree rule on a regular file is reported inactive (with a
// warning), so its inode must not get a file rule carrying the rule's id.
TEST(PolicyCompiler, InactiveFileSubtreeRuleHasNoEntries) {
    FakeFs fs;
    fs.dir("/etc", kDev, 2).file("/etc/shadow", kDev, 10);
    auto compiled =
        compile_policy(policy_of({subtree(RuleKind::FileOpen, "/etc/shadow", RuleAction::Deny, 9)}), fs.resolver());
    ASSERT_OK(compiled);
    ASSERT_FALSE(compiled->rules.at(0).active());
    EXPECT_TRUE(compiled->tables.file_rules.empty()) << "an inactive rule must not match anything";
}

TEST(PolicyCompiler, SubtreeAndNameRulesShareTheDirectoryEntry) {
    FakeFs fs;
    fs.dir("/srv", kDev, 5).dir("/srv/secret", kDev, 50).file("/srv/secret/key", kDev, 51);
    auto compiled = compile_policy(policy_of({subtree(RuleKind::FileOpen, "/srv/secret", RuleAction::Audit, 1),
                                              rule(RuleKind::Exec, "/srv/secret/key", RuleAction::Deny, 2)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    const bw_dir_rules* dir = lookup(compiled->tables.dir_rules, dir_key(kDev, 50));
    ASSERT_NE(dir, nullptr);
    EXPECT_EQ(dir->flags, static_cast<uint32_t>(BW_DIR_SUBTREE | BW_DIR_HAS_ENTRIES));
    EXPECT_EQ(fields(dir->file), audit(0));
    EXPECT_EQ(fields(dir->exec), kNoRule) << "a name rule is not a subtree rule";
    const bw_name_rules* name = lookup(compiled->tables.dirents, dirent(key(kDev, 50), "key"));
    ASSERT_NE(name, nullptr);
    EXPECT_EQ(fields(name->exec), deny(1));
}

TEST(PolicyCompiler, StricterWinsOnOneInode) {
    FakeFs fs;
    // Three names of one file (hard links), one unrelated file.
    fs.dir("/bin", 5, 1).dir("/usr/bin", 5, 2);
    fs.file("/bin/nc", 5, 42).file("/usr/bin/nc", 5, 42).file("/usr/bin/netcat", 5, 42).file("/usr/bin/ls", 5, 7);
    Policy policy = policy_of({rule(RuleKind::Exec, "/bin/nc", RuleAction::Audit, 1),
                               rule(RuleKind::Exec, "/usr/bin/ls", RuleAction::Audit, 2),
                               rule(RuleKind::Exec, "/usr/bin/nc", RuleAction::Deny, 3),
                               rule(RuleKind::Exec, "/usr/bin/netcat", RuleAction::Deny, 4),
                               rule(RuleKind::Exec, "/usr/bin/netcat", RuleAction::Audit, 5)});
    auto compiled = compile_policy(policy, fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->rules.size(), 5u) << "every rule keeps its RuleInfo";
    const RuleTables& tables = compiled->tables;
    ASSERT_EQ(tables.exec_rules.size(), 2u);
    EXPECT_EQ(fields(*lookup(tables.exec_rules, key(5, 7))), audit(1));
    EXPECT_EQ(fields(*lookup(tables.exec_rules, key(5, 42))), deny(2)) << "the first deny rule owns the entry";
    // Each name keeps its own rule; /usr/bin/netcat named twice: deny first stays.
    ASSERT_EQ(tables.dirents.size(), 4u);
    EXPECT_EQ(fields(lookup(tables.dirents, dirent(key(5, 1), "nc"))->exec), audit(0));
    EXPECT_EQ(fields(lookup(tables.dirents, dirent(key(5, 2), "nc"))->exec), deny(2));
    EXPECT_EQ(fields(lookup(tables.dirents, dirent(key(5, 2), "netcat"))->exec), deny(3));
    EXPECT_TRUE(compiled->warnings.empty());
}

TEST(PolicyCompiler, DenyFirstIsNotWeakenedByALaterAudit) {
    FakeFs fs;
    fs.dir("/d", 1, 1).file("/d/a", 1, 9).file("/d/b", 1, 9);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/d/a", RuleAction::Deny, 1),
                                              rule(RuleKind::FileOpen, "/d/b", RuleAction::Audit, 2)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->tables.file_rules.size(), 1u);
    EXPECT_EQ(fields(compiled->tables.file_rules.begin()->second), deny(0));
}

TEST(PolicyCompiler, StricterWinsOnOneName) {
    FakeFs fs;
    // /etc-link is a symlink to /etc: both paths name one directory entry.
    fs.dir("/etc", kDev, 2).file("/etc/shadow", kDev, 100).symlink("/etc-link", "/etc");
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Audit, 1),
                                              rule(RuleKind::FileOpen, "/etc-link/shadow", RuleAction::Deny, 2),
                                              rule(RuleKind::FileOpen, "/etc-link/gshadow", RuleAction::Deny, 3),
                                              rule(RuleKind::FileOpen, "/etc/gshadow", RuleAction::Audit, 4)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    const RuleTables& tables = compiled->tables;
    ASSERT_EQ(tables.dirents.size(), 2u);
    EXPECT_EQ(fields(lookup(tables.dirents, dirent(key(kDev, 2), "shadow"))->file), deny(1));
    EXPECT_EQ(fields(lookup(tables.dirents, dirent(key(kDev, 2), "gshadow"))->file), deny(2));
    ASSERT_EQ(tables.file_rules.size(), 1u);
    EXPECT_EQ(fields(tables.file_rules.begin()->second), deny(1));
    EXPECT_EQ(compiled->rules[1].target.canonical, "/etc/shadow");
}

TEST(PolicyCompiler, StricterWinsOnOneDirectory) {
    FakeFs fs;
    fs.dir("/srv", kDev, 5).dir("/srv/secret", kDev, 50).symlink("/data", "/srv/secret");
    auto compiled = compile_policy(policy_of({subtree(RuleKind::Exec, "/srv/secret", RuleAction::Audit, 1),
                                              subtree(RuleKind::Exec, "/data", RuleAction::Deny, 2),
                                              subtree(RuleKind::FileOpen, "/data", RuleAction::Deny, 3),
                                              subtree(RuleKind::FileOpen, "/srv/secret", RuleAction::Deny, 4),
                                              subtree(RuleKind::FileOpen, "/srv/secret", RuleAction::Audit, 5)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->tables.dir_rules.size(), 1u);
    const bw_dir_rules& dir = compiled->tables.dir_rules.begin()->second;
    EXPECT_EQ(fields(dir.exec), deny(1));
    EXPECT_EQ(fields(dir.file), deny(2)) << "on a tie the first rule keeps the entry";
    EXPECT_EQ(fields(*lookup(compiled->tables.file_rules, dir_key(kDev, 50))), deny(2));
}

TEST(PolicyCompiler, SameFileInDifferentKindsGetsBothEntries) {
    FakeFs fs;
    fs.dir("/usr/bin", 1, 1).file("/usr/bin/nc", 1, 9);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/usr/bin/nc", RuleAction::Audit, 1),
                                              rule(RuleKind::Exec, "/usr/bin/nc", RuleAction::Deny, 2)},
                                             {allow("/usr/bin/nc", 3)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    const RuleTables& tables = compiled->tables;
    ASSERT_EQ(tables.file_rules.size(), 1u);
    ASSERT_EQ(tables.exec_rules.size(), 1u);
    ASSERT_EQ(tables.bpf_allow.size(), 1u);
    EXPECT_EQ(tables.file_rules.begin()->second.rule_id, 0u);
    EXPECT_EQ(tables.exec_rules.begin()->second.rule_id, 1u);
    EXPECT_EQ(tables.bpf_allow.begin()->second.rule_id, 2u);
    const bw_name_rules* name = lookup(tables.dirents, dirent(key(1, 1), "nc"));
    ASSERT_NE(name, nullptr);
    EXPECT_EQ(fields(name->file), audit(0));
    EXPECT_EQ(fields(name->exec), deny(1));
}

TEST(PolicyCompiler, BpfAllowEntriesCarryThePid1Flag) {
    FakeFs fs;
    fs.dir("/usr/lib/systemd", 0x10300002, 1).file("/usr/lib/systemd/systemd", 0x10300002, 300);
    fs.dir("/usr/sbin", kDev, 3).file("/usr/sbin/bpftool", kDev, 301);
    fs.dir("/etc", kDev, 2).file("/etc/shadow", kDev, 100);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Audit, 1)},
                                             {allow("/usr/lib/systemd/systemd", 10, true),
                                              allow("/usr/sbin/bpftool", 11), allow("/usr/sbin/gone", 12, true)},
                                             BpfGuardMode::Deny),
                                   fs.resolver());
    ASSERT_OK(compiled);
    const RuleTables& tables = compiled->tables;
    ASSERT_EQ(tables.bpf_allow.size(), 2u);
    const bw_bpf_allow* systemd = lookup(tables.bpf_allow, key(0x10300002, 300));
    ASSERT_NE(systemd, nullptr);
    EXPECT_EQ(systemd->rule_id, 1u) << "bpf.allow ids follow the policy rules";
    EXPECT_EQ(systemd->flags, static_cast<uint32_t>(BW_ALLOW_PID1_ONLY));
    const bw_bpf_allow* bpftool = lookup(tables.bpf_allow, key(kDev, 301));
    ASSERT_NE(bpftool, nullptr);
    EXPECT_EQ(bpftool->rule_id, 2u);
    EXPECT_EQ(bpftool->flags, 0u);
    // Allow entries are by inode only: no name or rule entries.
    EXPECT_TRUE(tables.exec_rules.empty());
    EXPECT_EQ(tables.dirents.size(), 1u);

    const RuleInfo* info = compiled->matching_bpf_allow(key(0x10300002, 300));
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->path, "/usr/lib/systemd/systemd");
    EXPECT_TRUE(info->bpf_allow);
    EXPECT_TRUE(info->pid1_only);
    EXPECT_TRUE(info->active());
    EXPECT_EQ(info->where.line, 10);
    EXPECT_FALSE(compiled->matching_bpf_allow(key(kDev, 301))->pid1_only);
    EXPECT_EQ(compiled->matching_bpf_allow(key(kDev, 100)), nullptr);
    ASSERT_EQ(compiled->rules.size(), 4u);
    EXPECT_FALSE(compiled->rules[3].active());
    ASSERT_EQ(compiled->warnings.size(), 1u);
    EXPECT_TRUE(compiled->warnings[0].ends_with("(bpf allow entry)")) << compiled->warnings[0];
    EXPECT_EQ(tables.bpf_policy.action, static_cast<uint32_t>(BW_ACTION_DENY));
}

TEST(PolicyCompiler, AllowEntriesForOneFileCollapseToTheFirst) {
    FakeFs fs;
    fs.dir("/usr/lib/systemd", 1, 1)
        .file("/usr/lib/systemd/systemd", 1, 5)
        .symlink("/sbin/init", "/usr/lib/systemd/systemd");
    auto compiled =
        compile_policy(policy_of({}, {allow("/usr/lib/systemd/systemd", 1), allow("/sbin/init", 2)}), fs.resolver());
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->rules.size(), 2u);
    ASSERT_EQ(compiled->tables.bpf_allow.size(), 1u);
    EXPECT_EQ(compiled->tables.bpf_allow.begin()->second.rule_id, 0u);
}

// merge_policy() lets an entry without the PID 1 condition win over one with
// it for the same path ("the broader allowance was asked for"); two paths
// naming the same executable collapse to the first entry, and the entry
// without the condition wins there too.
TEST(PolicyCompiler, AllowWithoutPid1WinsForOneExecutable) {
    FakeFs fs;
    fs.dir("/usr/lib/systemd", 1, 1)
        .file("/usr/lib/systemd/systemd", 1, 5)
        .symlink("/sbin/init", "/usr/lib/systemd/systemd");
    auto compiled = compile_policy(
        policy_of({}, {allow("/usr/lib/systemd/systemd", 1, true), allow("/sbin/init", 2, false)}), fs.resolver());
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->tables.bpf_allow.size(), 1u);
    EXPECT_EQ(compiled->tables.bpf_allow.begin()->second.flags, 0u);
}

TEST(PolicyCompiler, SettingsFollowTheOptions) {
    FakeFs fs;
    auto settings_for = [&](bool protect, bool anonymous, bool write_exec) {
        Policy policy;
        policy.options.protect.value = protect;
        policy.options.deny_anonymous_exec.value = anonymous;
        policy.options.deny_write_exec.value = write_exec;
        auto compiled = compile_policy(policy, fs.resolver());
        EXPECT_TRUE(compiled.has_value());
        return compiled ? compiled->tables.settings : bw_settings{};
    };
    // Defaults: protection on, no exec options.
    auto defaults = compile_policy(Policy{}, fs.resolver());
    ASSERT_OK(defaults);
    EXPECT_EQ(defaults->tables.settings.protect, 1u);
    EXPECT_EQ(defaults->tables.settings.exec_options, 0u);
    EXPECT_EQ(defaults->tables.settings.subtree_depth, static_cast<uint32_t>(BW_MAX_SUBTREE_DEPTH));

    EXPECT_EQ(settings_for(false, false, false).protect, 0u);
    EXPECT_EQ(settings_for(true, true, false).exec_options, static_cast<uint32_t>(BW_EXEC_DENY_ANONYMOUS));
    EXPECT_EQ(settings_for(true, false, true).exec_options, static_cast<uint32_t>(BW_EXEC_DENY_WRITE_EXEC));
    EXPECT_EQ(settings_for(false, true, true).exec_options,
              static_cast<uint32_t>(BW_EXEC_DENY_ANONYMOUS | BW_EXEC_DENY_WRITE_EXEC));
    EXPECT_EQ(settings_for(false, true, true).subtree_depth, static_cast<uint32_t>(BW_MAX_SUBTREE_DEPTH));

    EXPECT_EQ(defaults->tables.settings.audit_bpf_reads, 0u);
    Policy reads;
    reads.options.audit_bpf_reads.value = true;
    auto with_reads = compile_policy(reads, fs.resolver());
    ASSERT_OK(with_reads);
    EXPECT_EQ(with_reads->tables.settings.audit_bpf_reads, 1u);

    Policy redacting;
    redacting.options.redact_paths.value = {"/home/", "/root/secret"};
    auto redacted = compile_policy(redacting, fs.resolver());
    ASSERT_OK(redacted);
    const bw_settings& settings = redacted->tables.settings;
    ASSERT_EQ(settings.redact_count, 2u);
    EXPECT_EQ(std::string(settings.redact[0].prefix, settings.redact[0].len), "/home/");
    EXPECT_EQ(std::string(settings.redact[1].prefix, settings.redact[1].len), "/root/secret");
    EXPECT_EQ(settings.redact[1].prefix[settings.redact[1].len], '\0');
}

// A rule whose files' names would reveal a redacted path reports none:
// its path under a prefix, or a subtree that holds one.
TEST(PolicyCompiler, RulesUnderARedactPrefixAreFlaggedRedacted) {
    FakeFs fs;
    fs.dir("/home", kDev, 2).dir("/home/alice", kDev, 3).file("/home/alice/key", kDev, 4);
    fs.dir("/etc", kDev, 5).file("/etc/shadow", kDev, 6);
    Policy policy = policy_of({rule(RuleKind::FileOpen, "/home/alice/key", RuleAction::Deny, 1),
                               rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Audit, 2),
                               subtree(RuleKind::FileOpen, "/home", RuleAction::Audit, 3),
                               rule(RuleKind::Exec, "/home/alice/key", RuleAction::Deny, 4)});
    policy.options.redact_paths.value = {"/home/alice/"};
    auto compiled = compile_policy(policy, fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->rules[0].redacted);
    EXPECT_FALSE(compiled->rules[1].redacted);
    EXPECT_TRUE(compiled->rules[2].redacted) << "the subtree holds the prefix";
    EXPECT_TRUE(compiled->rules[3].redacted);
    auto flags = [](const auto& map, const bw_inode_key& at) {
        const bw_rule* rule = lookup(map, at);
        EXPECT_NE(rule, nullptr);
        return rule ? rule->flags : 0u;
    };
    const RuleTables& tables = compiled->tables;
    EXPECT_TRUE(flags(tables.file_rules, key(kDev, 4)) & BW_RULE_REDACT);
    EXPECT_FALSE(flags(tables.file_rules, key(kDev, 6)) & BW_RULE_REDACT);
    EXPECT_TRUE(flags(tables.exec_rules, key(kDev, 4)) & BW_RULE_REDACT);

    policy.options.redact_paths.value = {};
    auto plain = compile_policy(policy, fs.resolver());
    ASSERT_OK(plain);
    EXPECT_FALSE(plain->rules[0].redacted);
    EXPECT_FALSE(flags(plain->tables.file_rules, key(kDev, 4)) & BW_RULE_REDACT);
}

TEST(PolicyCompiler, BpfModeMapsToAction) {
    FakeFs fs;
    for (auto [mode, action] :
         {std::pair{BpfGuardMode::Off, BW_ACTION_NONE}, std::pair{BpfGuardMode::Audit, BW_ACTION_AUDIT},
          std::pair{BpfGuardMode::Deny, BW_ACTION_DENY}}) {
        auto compiled = compile_policy(policy_of({}, {}, mode), fs.resolver());
        ASSERT_OK(compiled);
        EXPECT_EQ(compiled->tables.bpf_policy.action, static_cast<uint32_t>(action)) << to_string(mode);
        EXPECT_EQ(compiled->tables.bpf_policy.restricted_cmds, default_restricted_bpf_commands());
        EXPECT_EQ(compiled->tables.bpf_policy.pad, 0u);
    }
    Policy restricted = policy_of({}, {}, BpfGuardMode::Deny);
    restricted.bpf.restricted_cmds = 0x21;
    auto compiled = compile_policy(restricted, fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->tables.bpf_policy.restricted_cmds, 0x21u);
}

TEST(PolicyCompiler, EmptyPolicyCompilesToEmptyMaps) {
    FakeFs fs;
    auto compiled = compile_policy(Policy{}, fs.resolver());
    ASSERT_OK(compiled);
    const RuleTables& tables = compiled->tables;
    EXPECT_TRUE(tables.file_rules.empty());
    EXPECT_TRUE(tables.exec_rules.empty());
    EXPECT_TRUE(tables.dirents.empty());
    EXPECT_TRUE(tables.dir_rules.empty());
    EXPECT_TRUE(tables.bpf_allow.empty());
    EXPECT_TRUE(compiled->rules.empty());
    EXPECT_TRUE(compiled->warnings.empty());
    EXPECT_EQ(tables.bpf_policy.action, static_cast<uint32_t>(BW_ACTION_AUDIT));
}

TEST(PolicyCompiler, SourcesAndTheirTextsAreCarried) {
    FakeFs fs;
    Policy policy;
    policy.sources = {"/etc/bpfwarden/policy.d/00-default.toml", "/etc/bpfwarden/policy.d/50-local.toml"};
    policy.source_texts = {"protect = true\n", "[bpf]\nmode = \"off\"\n"};
    auto compiled = compile_policy(policy, fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->sources, policy.sources);
    EXPECT_EQ(compiled->source_texts, policy.source_texts);
}

TEST(PolicyCompiler, ImplicitRuleIdsAreOutsideTheRuleTable) {
    FakeFs fs;
    fs.dir("/d", 1, 1).file("/d/a", 1, 2);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/d/a", RuleAction::Deny, 1)}), fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_NE(compiled->rule(0), nullptr);
    EXPECT_EQ(compiled->rule(1), nullptr);
    const std::vector<uint32_t> implicit = {kSelfRuleId,          kWatchdogRuleId,  kCanaryRuleId,
                                            kAnonymousExecRuleId, kWriteExecRuleId, kProtectedFilesRuleId,
                                            kProtectedExesRuleId};
    for (std::size_t i = 0; i < implicit.size(); ++i) {
        EXPECT_EQ(compiled->rule(implicit[i]), nullptr) << implicit[i];
        for (std::size_t j = i + 1; j < implicit.size(); ++j)
            EXPECT_NE(implicit[i], implicit[j]);
    }
    EXPECT_EQ(kSelfRuleId, 0xFFFFFFFFu);
}

TEST(PolicyCompiler, EachRuleResolvesItsPathOnce) {
    FakeFs fs;
    fs.dir("/d", 1, 1).file("/d/a", 1, 2).dir("/d/s", 1, 3);
    auto compiled = compile_policy(policy_of({rule(RuleKind::FileOpen, "/d/a", RuleAction::Deny, 1),
                                              subtree(RuleKind::Exec, "/d/s", RuleAction::Deny, 2)},
                                             {allow("/d/a", 3)}),
                                   fs.resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(fs.calls("/d/a"), 2) << "once as a rule, once as an allow entry";
    EXPECT_EQ(fs.calls("/d/s"), 1);
}

TEST(PolicyCompiler, InvalidPolicyIsRefused) {
    FakeFs fs;
    auto relative =
        compile_policy(policy_of({rule(RuleKind::FileOpen, "etc/shadow", RuleAction::Deny, 9)}), fs.resolver());
    EXPECT_ERRNO(relative, EINVAL);
    EXPECT_ERROR_MENTIONS(relative, "10-base.toml:9: 'etc/shadow' is not a valid absolute path");
    EXPECT_EQ(relative.error().kind(), ErrorKind::PolicyInvalid);

    auto empty_allow = compile_policy(policy_of({}, {allow("", 4)}), fs.resolver());
    EXPECT_ERRNO(empty_allow, EINVAL);
    EXPECT_ERROR_MENTIONS(empty_allow, "10-base.toml:4:");

    auto nul =
        compile_policy(policy_of({rule(RuleKind::Exec, std::string("/a\0b", 4), RuleAction::Deny, 2)}), fs.resolver());
    EXPECT_ERRNO(nul, EINVAL);

    EXPECT_ERRNO(compile_policy(Policy{}, PathResolver{}), EINVAL);
}

TEST(PolicyCompiler, TooManyAllowEntriesIsE2BIG) {
    FakeFs fs;
    fs.dir("/usr/bin", 1, 1);
    const std::size_t fits = kBpfAllowCapacity - kImplicitReserve;
    std::vector<PathRule> allowed;
    for (std::size_t i = 0; i <= fits; ++i) {
        std::string path = "/usr/bin/tool" + std::to_string(i);
        fs.file(path, 1, i + 2);
        allowed.push_back(allow(path, static_cast<int>(i + 1)));
    }
    auto compiled = compile_policy(policy_of({}, allowed), fs.resolver());
    EXPECT_ERRNO(compiled, E2BIG);
    EXPECT_ERROR_MENTIONS(compiled, "policy needs " + std::to_string(fits + 1) + " bpf.allow entries, more than the " +
                                        std::to_string(fits) + " the map holds");
    EXPECT_EQ(compiled.error().kind(), ErrorKind::PolicyInvalid);

    // One fewer fits; the remaining slots are bpfwarden's own.
    allowed.pop_back();
    auto fitting = compile_policy(policy_of({}, allowed), fs.resolver());
    ASSERT_OK(fitting);
    EXPECT_EQ(fitting->tables.bpf_allow.size(), fits);
}

TEST(PolicyCompiler, TooManyDirectoriesIsE2BIG) {
    // "/srv/d<i>" is a directory of its own; no table (FakeFs) of 131 009 of them.
    const PathResolver resolve = [](const std::string& path) {
        PathTarget target;
        target.dir = FileIdentity{1, 1, 0, true};
        target.file = FileIdentity{1, 2 + std::stoull(path.substr(std::string_view("/srv/d").size())), 0, true};
        target.name = path.substr(std::string_view("/srv/").size());
        target.canonical = path;
        return target;
    };
    const std::size_t fits = kDirRulesCapacity - kImplicitReserve;
    std::vector<PathRule> rules;
    for (std::size_t i = 0; i <= fits; ++i) {
        // Both kinds, so that neither has more rules than max_rules allows.
        RuleKind kind = i % 2 ? RuleKind::Exec : RuleKind::FileOpen;
        rules.push_back(subtree(kind, "/srv/d" + std::to_string(i), RuleAction::Audit, static_cast<int>(i + 1)));
    }
    auto compiled = compile_policy(policy_of(rules), resolve);
    EXPECT_ERRNO(compiled, E2BIG);
    EXPECT_ERROR_MENTIONS(compiled, "directory entries, more than the " + std::to_string(fits));
    rules.pop_back();
    EXPECT_OK(compile_policy(policy_of(rules), resolve));
}

// Rule paths "/many/f/<i>" and "/many/x/<i>" (file and exec rules) name
// made-up files with distinct inodes, a thousand to a directory: a table
// (FakeFs) of 100 000 paths would cost more than the compile it tests.
PathTarget numbered_file(const std::string& path) {
    const bool exec = path.starts_with("/many/x/");
    const std::string name = path.substr(path.rfind('/') + 1);
    const uint64_t i = std::stoull(name), kind_base = exec ? 10'000'000 : 0;
    PathTarget target;
    target.dir = FileIdentity{kDev, 1'000'000 + kind_base + i / 1000, 0, true};
    target.file = FileIdentity{kDev, 2'000'000 + kind_base + i, 0, false};
    target.name = name;
    target.canonical = path;
    return target;
}

Policy numbered_policy(std::size_t file_rules, std::size_t exec_rules) {
    Policy policy;
    policy.rules.reserve(file_rules + exec_rules);
    for (std::size_t i = 0; i < file_rules; ++i)
        policy.rules.push_back(
            rule(RuleKind::FileOpen, "/many/f/" + std::to_string(i), RuleAction::Deny, static_cast<int>(i + 1)));
    for (std::size_t i = 0; i < exec_rules; ++i)
        policy.rules.push_back(rule(RuleKind::Exec, "/many/x/" + std::to_string(i), RuleAction::Deny,
                                    static_cast<int>(file_rules + i + 1)));
    return policy;
}

// numbered_file(), counting its calls.
PathResolver counting_resolver(int& calls) {
    return [&calls](const std::string& path) {
        ++calls;
        return numbered_file(path);
    };
}

TEST(PolicyCompiler, HundredThousandFileAndTenThousandExecRulesCompile) {
    auto compiled = compile_policy(numbered_policy(100'000, 10'000), numbered_file);
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->rules.size(), 110'000u);
    EXPECT_EQ(compiled->tables.file_rules.size(), 100'000u);
    EXPECT_EQ(compiled->tables.exec_rules.size(), 10'000u);
    EXPECT_EQ(compiled->tables.dirents.size(), 110'000u);
    EXPECT_EQ(compiled->tables.dir_rules.size(), 110u);
    EXPECT_TRUE(compiled->warnings.empty());
}

TEST(PolicyCompiler, MoreRulesThanMaxRulesIsE2BIGNamingCountLimitAndWhereItWasSet) {
    const PolicySetting<uint32_t> three{3, SourceLocation{"/etc/bpfwarden/policy.d/00-default.toml", 3}};
    int calls = 0;
    Policy files = numbered_policy(4, 3);
    files.options.max_rules = three;
    auto refused = compile_policy(files, counting_resolver(calls));
    EXPECT_ERRNO(refused, E2BIG);
    EXPECT_EQ(refused.error().kind(), ErrorKind::PolicyInvalid);
    EXPECT_ERROR_MENTIONS(refused,
                          "policy has 4 file rules, more than max_rules = 3 (set in "
                          "/etc/bpfwarden/policy.d/00-default.toml:3; the maps hold at most 131008)");
    EXPECT_EQ(calls, 0) << "refused before any path is resolved";

    Policy execs = numbered_policy(3, 4);
    execs.options.max_rules = three;
    EXPECT_ERROR_MENTIONS(compile_policy(execs, numbered_file),
                          "policy has 4 exec rules, more than max_rules = 3 (set in "
                          "/etc/bpfwarden/policy.d/00-default.toml:3; the maps hold at most 32704)");

    // A subtree rule is a rule too; bpf.allow entries are not rules.
    Policy with_subtree = numbered_policy(3, 3);
    with_subtree.options.max_rules = three;
    with_subtree.rules.push_back(subtree(RuleKind::FileOpen, "/many/f/7", RuleAction::Deny, 99));
    EXPECT_ERRNO(compile_policy(with_subtree, numbered_file), E2BIG);

    Policy at_the_ceiling = numbered_policy(3, 3);
    at_the_ceiling.options.max_rules = three;
    for (int i = 10; i < 15; ++i)
        at_the_ceiling.bpf.allow.push_back(allow("/many/x/" + std::to_string(i), i));
    EXPECT_OK(compile_policy(at_the_ceiling, numbered_file));
}

TEST(PolicyCompiler, TwoHundredThousandRulesOverTheDefaultCeilingAreRefusedUnresolved) {
    int calls = 0;
    auto refused = compile_policy(numbered_policy(200'000, 0), counting_resolver(calls));
    EXPECT_ERRNO(refused, E2BIG);
    EXPECT_ERROR_MENTIONS(refused,
                          "policy has 200000 file rules, more than max_rules = 100000 (the default; the "
                          "maps hold at most 131008)");
    EXPECT_EQ(calls, 0);
}

TEST(PolicyCompiler, ExecRulesBeyondTheExecMapAreE2BIGUnderTheCeiling) {
    const std::size_t fits = kExecRulesCapacity - kImplicitReserve;
    auto refused = compile_policy(numbered_policy(0, fits + 1), numbered_file);
    EXPECT_ERRNO(refused, E2BIG);
    EXPECT_ERROR_MENTIONS(refused, "policy needs " + std::to_string(fits + 1) + " exec rule entries, more than the " +
                                       std::to_string(fits) + " the map holds");
    EXPECT_OK(compile_policy(numbered_policy(0, fits), numbered_file));
}

TEST(PolicyCompiler, SamePolicyComparesMapsAndRules) {
    FakeFs fs;
    fs.dir("/etc", 1, 1).file("/etc/shadow", 1, 100).dir("/usr/bin", 1, 2).file("/usr/bin/nc", 1, 200);
    fs.dir("/srv", 1, 3)
        .dir("/srv/data", 1, 300)
        .dir("/usr/lib/systemd", 1, 4)
        .file("/usr/lib/systemd/systemd", 1, 400);
    auto compile = [&](std::vector<PathRule> rules, std::vector<PathRule> allowed = {},
                       BpfGuardMode mode = BpfGuardMode::Audit, bool protect = true) {
        Policy policy = policy_of(std::move(rules), std::move(allowed), mode);
        policy.options.protect.value = protect;
        auto compiled = compile_policy(policy, fs.resolver());
        EXPECT_TRUE(compiled.has_value());
        return compiled ? *compiled : CompiledPolicy{};
    };
    auto base = [] {
        return std::vector<PathRule>{rule(RuleKind::FileOpen, "/etc/shadow", RuleAction::Deny, 2),
                                     rule(RuleKind::Exec, "/usr/bin/nc", RuleAction::Audit, 6),
                                     subtree(RuleKind::FileOpen, "/srv/data", RuleAction::Audit, 8)};
    };
    auto base_allow = [] { return std::vector<PathRule>{allow("/usr/lib/systemd/systemd", 10, true)}; };
    CompiledPolicy running = compile(base(), base_allow());
    EXPECT_TRUE(same_policy(running, compile(base(), base_allow())));

    auto stricter = base();
    stricter[1].action = RuleAction::Deny;
    EXPECT_FALSE(same_policy(running, compile(stricter, base_allow()))) << "action";
    auto moved = base();
    moved[1].where.line = 7;  // ListRules shows where a rule is defined
    EXPECT_FALSE(same_policy(running, compile(moved, base_allow()))) << "source line";
    auto fewer = base();
    fewer.pop_back();
    EXPECT_FALSE(same_policy(running, compile(fewer, base_allow()))) << "rule removed";
    auto plain = base();
    plain[2].subtree = false;
    EXPECT_FALSE(same_policy(running, compile(plain, base_allow()))) << "subtree rule became a plain one";
    EXPECT_FALSE(same_policy(running, compile(base(), {allow("/usr/lib/systemd/systemd", 10, false)}))) << "pid1";
    EXPECT_FALSE(same_policy(running, compile(base(), base_allow(), BpfGuardMode::Deny))) << "bpf mode";
    EXPECT_FALSE(same_policy(running, compile(base(), base_allow(), BpfGuardMode::Audit, false))) << "protect";

    // The same path now naming another file (a package update): new map key.
    fs.file("/usr/bin/nc", 1, 202);
    EXPECT_FALSE(same_policy(running, compile(base(), base_allow()))) << "re-resolved inode";
    fs.file("/usr/bin/nc", 1, 200);
    ASSERT_TRUE(same_policy(running, compile(base(), base_allow())));
    // Only the generation differs: another file that got the same number.
    fs.file("/usr/bin/nc", 1, 200, 1);
    EXPECT_FALSE(same_policy(running, compile(base(), base_allow()))) << "generation";
}

TEST(PolicyCompiler, MapKeysAreSortedAndTheGenerationIsPartOfThem) {
    FakeFs fs;
    fs.dir("/d", 9, 1);
    std::vector<PathRule> rules;
    // Deliberately out of order, with dev differences dominating ino.
    const std::vector<std::tuple<std::string, uint64_t, uint64_t, uint32_t>> files = {
        {"/d/f1", 3, 1, 0}, {"/d/f2", 1, 9, 0}, {"/d/f3", 2, 0, 0},
        {"/d/f4", 1, 2, 0}, {"/d/f5", 1, 9, 0}, {"/d/f6", 1, 9, 4}};
    int line = 1;
    for (const auto& [path, dev, ino, gen] : files) {
        fs.file(path, dev, ino, gen);
        rules.push_back(rule(RuleKind::FileOpen, path, RuleAction::Audit, line++));
    }
    auto compiled = compile_policy(policy_of(rules), fs.resolver());
    ASSERT_OK(compiled);
    std::vector<std::tuple<uint64_t, uint64_t, uint32_t>> keys;
    for (const auto& [file, value] : compiled->tables.file_rules)
        keys.emplace_back(file.dev, file.ino, file.gen);
    EXPECT_EQ(keys, (std::vector<std::tuple<uint64_t, uint64_t, uint32_t>>{
                        {1, 2, 0}, {1, 9, 0}, {1, 9, 4}, {2, 0, 0}, {3, 1, 0}}));
    EXPECT_EQ(compiled->tables.dirents.size(), 6u);
}

// ---------------------------------------------------------------------------
// The real resolver, on real files

class FilesystemCompile : public ::testing::Test {
protected:
    bw_inode_key key_of(const fs::path& path) const {
        auto identity = identity_of(path);
        EXPECT_TRUE(identity.has_value()) << path;
        return identity ? to_key(*identity) : bw_inode_key{};
    }
    Result<CompiledPolicy> compile(std::vector<PathRule> rules) const {
        return compile_policy(policy_of(std::move(rules)), filesystem_resolver());
    }

    TempDir dir_;
};

TEST_F(FilesystemCompile, FileRuleKeysItsInodeAndItsName) {
    fs::path file = dir_.touch("secret");
    auto compiled = compile({rule(RuleKind::FileOpen, file.string(), RuleAction::Deny, 1)});
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->warnings.empty());
    ASSERT_NE(lookup(compiled->tables.file_rules, key_of(file)), nullptr);
    ASSERT_NE(lookup(compiled->tables.dirents, dirent(key_of(dir_.path()), "secret")), nullptr);
    EXPECT_EQ(fields(lookup(compiled->tables.dirents, dirent(key_of(dir_.path()), "secret"))->file), deny(0));
    EXPECT_EQ(lookup(compiled->tables.dir_rules, key_of(dir_.path()))->flags,
              static_cast<uint32_t>(BW_DIR_HAS_ENTRIES));
}

TEST_F(FilesystemCompile, SymlinkRuleKeysTheTargetsNameInTheTargetsDirectory) {
    fs::create_directory(dir_ / "real");
    fs::create_directory(dir_ / "alternatives");
    fs::path target = dir_.touch("real/nc.openbsd");
    fs::create_symlink(target, dir_ / "alternatives" / "nc");
    fs::create_symlink(dir_ / "alternatives" / "nc", dir_ / "nc");  // two hops

    auto compiled = compile({rule(RuleKind::Exec, (dir_ / "nc").string(), RuleAction::Deny, 5)});
    ASSERT_OK(compiled);
    ASSERT_EQ(compiled->tables.exec_rules.size(), 1u);
    EXPECT_NE(lookup(compiled->tables.exec_rules, key_of(target)), nullptr);
    ASSERT_EQ(compiled->tables.dirents.size(), 1u);
    EXPECT_NE(lookup(compiled->tables.dirents, dirent(key_of(dir_ / "real"), "nc.openbsd")), nullptr);
    EXPECT_EQ(lookup(compiled->tables.dirents, dirent(key_of(dir_.path()), "nc")), nullptr);
    struct stat link_st{};
    ASSERT_EQ(::lstat((dir_ / "nc").c_str(), &link_st), 0);
    EXPECT_NE(compiled->tables.exec_rules.begin()->first.ino, static_cast<uint64_t>(link_st.st_ino));
}

TEST_F(FilesystemCompile, MissingFileInAnExistingDirectoryIsActive) {
    fs::path later = dir_ / "created-later";
    auto compiled = compile({rule(RuleKind::FileOpen, later.string(), RuleAction::Deny, 2)});
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->warnings.empty());
    EXPECT_TRUE(compiled->rules.at(0).active());
    EXPECT_TRUE(compiled->tables.file_rules.empty());
    EXPECT_NE(lookup(compiled->tables.dirents, dirent(key_of(dir_.path()), "created-later")), nullptr);
}

TEST_F(FilesystemCompile, MissingDirectoryIsInactiveWithAWarning) {
    std::string path = (dir_ / "opt" / "tool").string();
    auto compiled = compile({rule(RuleKind::Exec, path, RuleAction::Deny, 2)});
    ASSERT_OK(compiled);
    EXPECT_FALSE(compiled->rules.at(0).active());
    EXPECT_TRUE(compiled->tables.dirents.empty());
    EXPECT_TRUE(compiled->tables.dir_rules.empty());
    ASSERT_EQ(compiled->warnings.size(), 1u);
    EXPECT_TRUE(compiled->warnings[0].starts_with("10-base.toml:2: the directory of '" + path + "'"))
        << compiled->warnings[0];
    EXPECT_NE(compiled->warnings[0].find("does not exist yet"), std::string::npos) << compiled->warnings[0];
}

TEST_F(FilesystemCompile, HardLinksShareTheInodeEntryButNotTheName) {
    fs::path original = dir_.touch("original");
    fs::path linked = dir_ / "linked";
    ASSERT_EQ(::link(original.c_str(), linked.c_str()), 0) << std::strerror(errno);
    fs::path other = dir_.touch("other");

    auto compiled = compile({rule(RuleKind::FileOpen, original.string(), RuleAction::Audit, 1),
                             rule(RuleKind::FileOpen, linked.string(), RuleAction::Deny, 2),
                             rule(RuleKind::FileOpen, other.string(), RuleAction::Audit, 3)});
    ASSERT_OK(compiled);
    EXPECT_TRUE(compiled->warnings.empty());
    ASSERT_EQ(compiled->tables.file_rules.size(), 2u);
    EXPECT_EQ(fields(*lookup(compiled->tables.file_rules, key_of(original))), deny(1));
    EXPECT_EQ(compiled->tables.dirents.size(), 3u);
    EXPECT_EQ(fields(lookup(compiled->tables.dirents, dirent(key_of(dir_.path()), "original"))->file), audit(0));
    EXPECT_EQ(compiled->rules[0].target.file, compiled->rules[1].target.file);
    EXPECT_NE(compiled->rules[0].target.file, compiled->rules[2].target.file);
}

TEST_F(FilesystemCompile, SubtreeRuleOnARealDirectory) {
    fs::create_directory(dir_ / "secret");
    auto compiled = compile({subtree(RuleKind::FileOpen, (dir_ / "secret").string(), RuleAction::Deny, 4)});
    ASSERT_OK(compiled);
    const bw_dir_rules* rules = lookup(compiled->tables.dir_rules, key_of(dir_ / "secret"));
    ASSERT_NE(rules, nullptr);
    EXPECT_EQ(rules->flags, static_cast<uint32_t>(BW_DIR_SUBTREE));
    EXPECT_EQ(fields(rules->file), deny(0));
    EXPECT_NE(lookup(compiled->tables.file_rules, key_of(dir_ / "secret")), nullptr);
}

TEST_F(FilesystemCompile, CompilePolicyDirReadsTheDirectoryAndTheOverride) {
    fs::create_directory(dir_ / "policy.d");
    fs::path secret = dir_.touch("secret");
    std::string text = "[[file]]\npath = \"" + secret.string() + "\"\naction = \"deny\"\n";
    dir_.write("policy.d/10-base.toml", text);
    auto compiled = compile_policy_dir(dir_ / "policy.d", filesystem_resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->sources, std::vector<std::string>{(dir_ / "policy.d" / "10-base.toml").string()});
    EXPECT_EQ(compiled->source_texts, std::vector<std::string>{text});
    EXPECT_NE(lookup(compiled->tables.file_rules, key_of(secret)), nullptr);

    PolicyFileOverride broken{"20-edit.toml", std::string("[[file]]\npath = 1\n")};
    auto edited = compile_policy_dir(dir_ / "policy.d", filesystem_resolver(), &broken);
    EXPECT_ERRNO(edited, EINVAL);
    EXPECT_ERROR_MENTIONS(edited, "20-edit.toml:2:");
    EXPECT_EQ(edited.error().kind(), ErrorKind::PolicyInvalid);

    auto missing = compile_policy_dir(dir_ / "nope", filesystem_resolver());
    EXPECT_ERRNO(missing, ENOENT);
    EXPECT_EQ(missing.error().kind(), ErrorKind::PolicyInvalid) << "any failure is PolicyInvalid";
}

TEST(PolicyCompiler, ShippedDefaultPolicyCompiles) {
    fs::path file = fs::path(__FILE__).parent_path().parent_path().parent_path() / "policy" / "default.toml";
    auto policy = load_policy_file(file);
    ASSERT_OK(policy);
    auto compiled = compile_policy(*policy, filesystem_resolver());
    ASSERT_OK(compiled);
    EXPECT_EQ(compiled->rules.size(), 5u);
    EXPECT_EQ(compiled->tables.bpf_policy.action, static_cast<uint32_t>(BW_ACTION_DENY));
    EXPECT_EQ(compiled->tables.bpf_policy.restricted_cmds, default_restricted_bpf_commands());
    EXPECT_EQ(compiled->tables.settings.protect, 1u);
    EXPECT_TRUE(compiled->rules.back().bpf_allow);
    EXPECT_TRUE(compiled->rules.back().pid1_only);
    for (const auto& [exe, value] : compiled->tables.bpf_allow)
        EXPECT_EQ(value.flags, static_cast<uint32_t>(BW_ALLOW_PID1_ONLY));
    // Whatever this host lacks is a warning, never dropped silently.
    std::size_t active = 0;
    for (const RuleInfo& info : compiled->rules)
        active += info.active();
    EXPECT_EQ(active + compiled->warnings.size(), compiled->rules.size());
}

}  // namespace
}  // namespace bpfwarden
