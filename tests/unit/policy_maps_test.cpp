// What the policy maps must hold beyond the policy itself: the canary,
// self-protection of bpfwarden's own directories and executables (or, with
// protection off, its executables in bpf.allow), who may become bpfwarden,
// the directory filter and the settings; and what a pinned protection lets
// a new daemon or watchdog do. On real temp files: no kernel, no privileges.
#include "policy/policy_maps.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>

#include "loading/self_state.h"
#include "support/installed_paths.h"
#include "temp_dir.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

// A map value as (action, rule_id, flags): printable, comparable.
using RuleFields = std::tuple<uint32_t, uint32_t, uint32_t>;
RuleFields fields(const bw_rule& rule) { return {rule.action, rule.rule_id, rule.flags}; }
const RuleFields kNoRule{BW_ACTION_NONE, 0, 0};
const RuleFields kCanary{BW_ACTION_DENY, kCanaryRuleId, BW_RULE_ALWAYS_ENFORCE};
const RuleFields kProtectedFiles{BW_ACTION_DENY, kProtectedFilesRuleId, BW_RULE_MODIFY_ONLY | BW_RULE_SELF_EXEMPT};
const RuleFields kProtectedImages{BW_ACTION_DENY, kProtectedFilesRuleId,
                                  BW_RULE_MODIFY_ONLY | BW_RULE_SELF_EXEMPT | BW_RULE_PKG_EXEMPT};
const RuleFields kProtectedExes{BW_ACTION_DENY, kProtectedExesRuleId, BW_RULE_MODIFY_ONLY | BW_RULE_PKG_EXEMPT};

template <typename Map, typename Key>
const typename Map::mapped_type* lookup(const Map& map, const Key& key) {
    auto it = map.find(key);
    return it == map.end() ? nullptr : &it->second;
}

bool same_key(const bw_inode_key& a, const bw_inode_key& b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

class DesiredMapsTest : public ::testing::Test {
protected:
    DesiredMapsTest() {
        for (const char* dir :
             {"sbin", "usr/bin", "etc/keys", "lib/images", "var/state", "run", "pins/links", "pins/maps", "srv/data"})
            fs::create_directories(dir_ / dir);
        service_.daemon_exe = dir_.touch("sbin/bpfwardend");
        service_.watchdog_exe = dir_.touch("sbin/bpfwarden-watchdog");
        service_.packager = dir_.touch("usr/bin/dpkg");
        service_.canary = dir_.touch("run/canary");
        service_.pin_root = dir_ / "pins";
        service_.image_dir = dir_ / "lib/images";
        service_.keys_dir = dir_ / "etc/keys";
        service_.state_dir = dir_ / "var/state";
    }

    static CompiledPolicy compiled(const Policy& policy) {
        auto out = compile_policy(policy, filesystem_resolver());
        EXPECT_TRUE(out.has_value()) << out.error().message();
        return out ? *out : CompiledPolicy{};
    }
    static Policy protecting(bool protect) {
        Policy policy;
        policy.options.protect.value = protect;
        return policy;
    }
    DesiredMaps desired(bool protect = true) const { return desired_maps(compiled(protecting(protect)), service_); }

    static bw_inode_key key_of(const fs::path& path) {
        auto identity = identity_of(path);
        EXPECT_TRUE(identity.has_value()) << path;
        return identity ? to_key(*identity) : bw_inode_key{};
    }
    // The directory entry of `path`: its directory's key and its name's hash.
    static bw_dirent_key name_of(const fs::path& path) {
        bw_dirent_key key{};
        key.dir = key_of(path.parent_path());
        std::string name = path.filename().string();
        key.name_hash =
            bw_name_hash(reinterpret_cast<const unsigned char*>(name.data()), static_cast<__u32>(name.size()));
        return key;
    }
    std::vector<fs::path> protected_dirs() const {
        return {service_.pin_root, service_.pin_root / "links", service_.pin_root / "maps", service_.keys_dir,
                service_.state_dir};
    }

    TempDir dir_;
    ServiceIdentity service_;
};

TEST_F(DesiredMapsTest, CanaryIsDeniedByInodeAndByName) {
    for (bool protect : {true, false}) {
        SCOPED_TRACE(protect ? "protect on" : "protect off");
        DesiredMaps maps = desired(protect);
        const bw_rule* inode = lookup(maps.tables.file_rules, key_of(service_.canary));
        ASSERT_NE(inode, nullptr);
        EXPECT_EQ(fields(*inode), kCanary);
        const bw_name_rules* name = lookup(maps.tables.dirents, name_of(service_.canary));
        ASSERT_NE(name, nullptr);
        EXPECT_EQ(fields(name->file), kCanary);
        EXPECT_EQ(fields(name->exec), kNoRule);
        EXPECT_TRUE(lookup(maps.tables.exec_rules, key_of(service_.canary)) == nullptr);
        const bw_dir_rules* dir = lookup(maps.tables.dir_rules, key_of(dir_ / "run"));
        ASSERT_NE(dir, nullptr);
        EXPECT_TRUE(dir->flags & BW_DIR_HAS_ENTRIES);
    }
}

TEST_F(DesiredMapsTest, MissingCanaryIsDeniedByNameFromItsCreation) {
    fs::remove(service_.canary);
    DesiredMaps maps = desired();
    const bw_name_rules* name = lookup(maps.tables.dirents, name_of(service_.canary));
    ASSERT_NE(name, nullptr);
    EXPECT_EQ(fields(name->file), kCanary);
    for (const auto& [file, rule] : maps.tables.file_rules)
        EXPECT_NE(rule.rule_id, kCanaryRuleId);
}

TEST_F(DesiredMapsTest, ProtectionGuardsOurDirectories) {
    DesiredMaps maps = desired(true);
    for (const fs::path& dir : protected_dirs()) {
        SCOPED_TRACE(dir.string());
        const bw_dir_rules* rules = lookup(maps.tables.dir_rules, key_of(dir));
        ASSERT_NE(rules, nullptr);
        EXPECT_EQ(rules->flags & (BW_DIR_PROTECT | BW_DIR_SUBTREE),
                  static_cast<uint32_t>(BW_DIR_PROTECT | BW_DIR_SUBTREE));
        EXPECT_EQ(fields(rules->file), kProtectedFiles);
        EXPECT_EQ(fields(rules->exec), kNoRule);
        // The directory itself, and its name in its parent (renaming it away).
        ASSERT_NE(lookup(maps.tables.file_rules, key_of(dir)), nullptr);
        EXPECT_EQ(fields(*lookup(maps.tables.file_rules, key_of(dir))), kProtectedFiles);
        ASSERT_NE(lookup(maps.tables.dirents, name_of(dir)), nullptr);
        EXPECT_EQ(fields(lookup(maps.tables.dirents, name_of(dir))->file), kProtectedFiles);
    }
    // The images may also be replaced by the package manager.
    const bw_dir_rules* images = lookup(maps.tables.dir_rules, key_of(service_.image_dir));
    ASSERT_NE(images, nullptr);
    EXPECT_EQ(images->flags & (BW_DIR_PROTECT | BW_DIR_SUBTREE),
              static_cast<uint32_t>(BW_DIR_PROTECT | BW_DIR_SUBTREE));
    EXPECT_EQ(fields(images->file), kProtectedImages);
    EXPECT_EQ(fields(*lookup(maps.tables.file_rules, key_of(service_.image_dir))), kProtectedImages);
    // Nothing else is protected.
    std::size_t protected_count = 0;
    for (const auto& [dir, rules] : maps.tables.dir_rules)
        protected_count += (rules.flags & BW_DIR_PROTECT) != 0;
    EXPECT_EQ(protected_count, protected_dirs().size() + 1);
    EXPECT_EQ(lookup(maps.tables.dir_rules, key_of(dir_ / "srv/data")), nullptr);
}

TEST_F(DesiredMapsTest, ProtectionGuardsOurExecutablesAndThePackager) {
    DesiredMaps maps = desired(true);
    for (const fs::path& exe : {service_.daemon_exe, service_.watchdog_exe, service_.packager}) {
        SCOPED_TRACE(exe.string());
        ASSERT_NE(lookup(maps.tables.file_rules, key_of(exe)), nullptr);
        EXPECT_EQ(fields(*lookup(maps.tables.file_rules, key_of(exe))), kProtectedExes);
        const bw_name_rules* name = lookup(maps.tables.dirents, name_of(exe));
        ASSERT_NE(name, nullptr);
        EXPECT_EQ(fields(name->file), kProtectedExes);
        EXPECT_EQ(fields(name->exec), kNoRule) << "running them is not refused";
        EXPECT_EQ(lookup(maps.tables.exec_rules, key_of(exe)), nullptr);
        EXPECT_EQ(lookup(maps.tables.bpf_allow, key_of(exe)), nullptr) << "no bpf() allowance while protected";
    }
    EXPECT_TRUE(maps.tables.bpf_allow.empty());
    EXPECT_EQ(maps.tables.settings.protect, 1u);
}

TEST_F(DesiredMapsTest, SelfExesAdmitOurExecutablesByNameWithTheirUnits) {
    DesiredMaps maps = desired(true);
    ASSERT_EQ(maps.self_exes.size(), 3u);
    struct Expected {
        fs::path exe;
        uint32_t role;
        std::string unit;
    };
    for (const Expected& expected : {Expected{service_.daemon_exe, BW_ROLE_DAEMON, "bpfwardend.service"},
                                     Expected{service_.watchdog_exe, BW_ROLE_WATCHDOG, "bpfwarden-watchdog.service"},
                                     Expected{service_.packager, BW_ROLE_PACKAGER, ""}}) {
        SCOPED_TRACE(expected.exe.string());
        const bw_self_exe* exe = lookup(maps.self_exes, name_of(expected.exe));
        ASSERT_NE(exe, nullptr);
        EXPECT_EQ(exe->role, expected.role);
        EXPECT_EQ(std::string(exe->unit, strnlen(exe->unit, sizeof(exe->unit))), expected.unit);
        EXPECT_EQ(exe->pad, 0u);
    }
    EXPECT_EQ(std::string(installed::kDaemonUnit), "bpfwardend.service");
    EXPECT_EQ(std::string(installed::kWatchdogUnit), "bpfwarden-watchdog.service");
}

TEST_F(DesiredMapsTest, ProtectionOffAllowsOurExecutablesInsteadOfGuardingThem) {
    DesiredMaps maps = desired(false);
    ASSERT_EQ(maps.tables.bpf_allow.size(), 2u);
    const bw_bpf_allow* daemon = lookup(maps.tables.bpf_allow, key_of(service_.daemon_exe));
    ASSERT_NE(daemon, nullptr);
    EXPECT_EQ(daemon->rule_id, kSelfRuleId);
    EXPECT_EQ(daemon->flags, 0u);
    const bw_bpf_allow* watchdog = lookup(maps.tables.bpf_allow, key_of(service_.watchdog_exe));
    ASSERT_NE(watchdog, nullptr);
    EXPECT_EQ(watchdog->rule_id, kWatchdogRuleId);
    EXPECT_EQ(watchdog->flags, 0u);

    for (const auto& [dir, rules] : maps.tables.dir_rules) {
        EXPECT_EQ(rules.flags & BW_DIR_PROTECT, 0u);
        EXPECT_NE(rules.file.rule_id, kProtectedFilesRuleId);
    }
    for (const auto& [file, rule] : maps.tables.file_rules) {
        EXPECT_NE(rule.rule_id, kProtectedFilesRuleId);
        EXPECT_NE(rule.rule_id, kProtectedExesRuleId);
    }
    for (const auto& [name, rules] : maps.tables.dirents) {
        EXPECT_NE(rules.file.rule_id, kProtectedFilesRuleId);
        EXPECT_NE(rules.file.rule_id, kProtectedExesRuleId);
    }
    // Only the canary is left of the implicit rules.
    EXPECT_EQ(maps.tables.file_rules.size(), 1u);
    EXPECT_EQ(maps.tables.dirents.size(), 1u);
    EXPECT_EQ(maps.tables.settings.protect, 0u);
}

TEST_F(DesiredMapsTest, PolicyEntriesAreKeptAndProtectionWinsOnOurDirectories) {
    fs::path secret = dir_.touch("srv/data/secret");
    Policy policy;
    policy.rules.push_back(PathRule{RuleKind::FileOpen, secret.string(), RuleAction::Audit, {"p.toml", 1}});
    PathRule tree{RuleKind::FileOpen, service_.state_dir.string(), RuleAction::Audit, {"p.toml", 4}};
    tree.subtree = true;
    policy.rules.push_back(tree);
    PathRule exec_tree{RuleKind::Exec, service_.state_dir.string(), RuleAction::Deny, {"p.toml", 7}};
    exec_tree.subtree = true;
    policy.rules.push_back(exec_tree);
    CompiledPolicy compiled_policy = compiled(policy);
    DesiredMaps maps = desired_maps(compiled_policy, service_);

    // The policy's own entry, untouched.
    ASSERT_NE(lookup(maps.tables.file_rules, key_of(secret)), nullptr);
    EXPECT_EQ(fields(*lookup(maps.tables.file_rules, key_of(secret))), (RuleFields{BW_ACTION_AUDIT, 0, 0}));
    EXPECT_EQ(fields(lookup(maps.tables.dirents, name_of(secret))->file), (RuleFields{BW_ACTION_AUDIT, 0, 0}));
    // On our state directory, protection replaces the administrator's file
    // rule; the exec subtree rule stays.
    const bw_dir_rules* state = lookup(maps.tables.dir_rules, key_of(service_.state_dir));
    ASSERT_NE(state, nullptr);
    EXPECT_EQ(fields(state->file), kProtectedFiles);
    EXPECT_EQ(fields(state->exec), (RuleFields{BW_ACTION_DENY, 2, 0}));
    EXPECT_EQ(state->flags & (BW_DIR_PROTECT | BW_DIR_SUBTREE), static_cast<uint32_t>(BW_DIR_PROTECT | BW_DIR_SUBTREE));
    // The compiled policy is not modified.
    EXPECT_EQ(lookup(compiled_policy.tables.dir_rules, key_of(service_.state_dir))->file.rule_id, 1u);
    EXPECT_EQ(compiled_policy.tables.file_rules.size(), 2u);
}

// protect_directory() says "Protection wins over an administrator's rule
// there", for the directory's bpfw_dir_rules entry and for its own inode
// entry alike. The programs look the inode up first: were an
// administrator's deny (without SELF_EXEMPT) kept there, with `[[file]] path
// = "/var/lib/bpfwarden/" action = "deny"` bpfwarden itself would be refused
// opening its own state (or keys) directory.
TEST_F(DesiredMapsTest, ProtectionAlsoWinsOnTheInodeOfOurDirectories) {
    Policy policy = protecting(true);
    PathRule tree{RuleKind::FileOpen, service_.state_dir.string(), RuleAction::Deny, {"p.toml", 1}};
    tree.subtree = true;
    policy.rules.push_back(tree);
    DesiredMaps maps = desired_maps(compiled(policy), service_);
    EXPECT_EQ(fields(lookup(maps.tables.dir_rules, key_of(service_.state_dir))->file), kProtectedFiles);
    ASSERT_NE(lookup(maps.tables.file_rules, key_of(service_.state_dir)), nullptr);
    EXPECT_TRUE(lookup(maps.tables.file_rules, key_of(service_.state_dir))->flags & BW_RULE_SELF_EXEMPT);
}

TEST_F(DesiredMapsTest, DirectoryFilterHasExactlyTheBitsOfTheDirectories) {
    Policy policy = protecting(true);
    PathRule tree{RuleKind::Exec, (dir_ / "srv/data").string(), RuleAction::Deny, {"p.toml", 1}};
    tree.subtree = true;
    policy.rules.push_back(tree);
    DesiredMaps maps = desired_maps(compiled(policy), service_);
    ASSERT_NE(lookup(maps.tables.dir_rules, key_of(dir_ / "srv/data")), nullptr);

    std::array<uint64_t, BW_DIR_BLOOM_WORDS> expected{};
    for (const auto& [dir, rules] : maps.tables.dir_rules) {
        uint32_t bit = bw_dir_bloom_bit(dir.dev, dir.ino);
        expected[bit / 64] |= uint64_t{1} << (bit % 64);
    }
    EXPECT_EQ(maps.dir_bloom, expected);
    std::size_t bits = 0;
    for (uint64_t word : maps.dir_bloom)
        bits += static_cast<std::size_t>(__builtin_popcountll(word));
    EXPECT_GT(bits, 0u);
    EXPECT_LE(bits, maps.tables.dir_rules.size());

    // A directory without rules is not in the filter (unless its bit collides).
    bw_inode_key unrelated = key_of(dir_ / "usr");
    ASSERT_EQ(lookup(maps.tables.dir_rules, unrelated), nullptr);
    uint32_t bit = bw_dir_bloom_bit(unrelated.dev, unrelated.ino);
    bool collides = false;
    for (const auto& [dir, rules] : maps.tables.dir_rules)
        collides = collides || bw_dir_bloom_bit(dir.dev, dir.ino) == bit;
    if (!collides) {
        EXPECT_EQ(maps.dir_bloom[bit / 64] & (uint64_t{1} << (bit % 64)), 0u);
    }
}

TEST_F(DesiredMapsTest, SettingsCountTheDirectoriesAndAnchorOurs) {
    Policy policy = protecting(true);
    policy.options.deny_write_exec.value = true;
    DesiredMaps maps = desired_maps(compiled(policy), service_);
    const bw_settings& settings = maps.tables.settings;
    EXPECT_EQ(settings.dir_rules, maps.tables.dir_rules.size());
    EXPECT_GT(settings.dir_rules, 0u);
    EXPECT_TRUE(same_key(settings.keys_dir, key_of(service_.keys_dir)));
    EXPECT_TRUE(same_key(settings.image_dir, key_of(service_.image_dir)));
    EXPECT_TRUE(same_key(settings.state_dir, key_of(service_.state_dir)));
    struct stat st{};
    ASSERT_EQ(::stat(service_.pin_root.c_str(), &st), 0);
    EXPECT_EQ(settings.pin_sb_dev, kernel_dev(st.st_dev));
    // The policy's settings are kept.
    EXPECT_EQ(settings.protect, 1u);
    EXPECT_EQ(settings.exec_options, static_cast<uint32_t>(BW_EXEC_DENY_WRITE_EXEC));
    EXPECT_EQ(settings.subtree_depth, static_cast<uint32_t>(BW_MAX_SUBTREE_DEPTH));
}

TEST_F(DesiredMapsTest, PathsThatDoNotExistAreLeftOut) {
    ServiceIdentity service = service_;
    service.keys_dir = dir_ / "etc/no-keys";
    service.daemon_exe = dir_ / "sbin/not-installed";
    service.packager.clear();
    service.pin_root = dir_ / "no-pins";
    DesiredMaps maps = desired_maps(compiled(protecting(true)), service);
    EXPECT_TRUE(same_key(maps.tables.settings.keys_dir, bw_inode_key{}));
    EXPECT_EQ(maps.tables.settings.pin_sb_dev, 0u);
    EXPECT_TRUE(same_key(maps.tables.settings.state_dir, key_of(service.state_dir)));
    EXPECT_EQ(maps.self_exes.size(), 1u) << "only the watchdog is installed";
    EXPECT_NE(lookup(maps.self_exes, name_of(service.watchdog_exe)), nullptr);
    for (const auto& [dir, rules] : maps.tables.dir_rules)
        EXPECT_FALSE(same_key(dir, bw_inode_key{}));
    std::size_t protected_count = 0;
    for (const auto& [dir, rules] : maps.tables.dir_rules)
        protected_count += (rules.flags & BW_DIR_PROTECT) != 0;
    EXPECT_EQ(protected_count, 2u) << "the image and state directories";
}

// ---------------------------------------------------------------------------
// check_against_protection

class ProtectionCheckTest : public DesiredMapsTest {
protected:
    // Protection as pinned by a daemon started with service_.
    SelfState pinned() const {
        SelfState state;
        state.store = true;
        state.protect = true;
        state.guarded = true;
        state.settings = desired(true).tables.settings;
        return state;
    }
    DesiredMaps next_with(const std::function<void(ServiceIdentity&)>& change, bool protect = true) const {
        ServiceIdentity service = service_;
        change(service);
        return desired_maps(compiled(protecting(protect)), service);
    }
};

TEST_F(ProtectionCheckTest, SameDirectoriesAreAccepted) {
    EXPECT_OK(check_against_protection(pinned(), desired(true)));
    // Other executables and canary do not matter: only the anchors do.
    EXPECT_OK(check_against_protection(pinned(), next_with([&](ServiceIdentity& s) {
                                           s.canary = dir_ / "run/other-canary";
                                           s.packager.clear();
                                       })));
}

TEST_F(ProtectionCheckTest, TurningProtectionOffIsRefused) {
    auto refused = check_against_protection(pinned(), desired(false));
    EXPECT_ERRNO(refused, EPERM);
    EXPECT_EQ(refused.error().kind(), ErrorKind::PermissionDenied);
    EXPECT_ERROR_MENTIONS(refused, "protect = false");
}

TEST_F(ProtectionCheckTest, OtherDirectoriesAreRefusedByName) {
    fs::create_directories(dir_ / "other/keys");
    fs::create_directories(dir_ / "other/images");
    fs::create_directories(dir_ / "other/state");
    struct Case {
        std::function<void(ServiceIdentity&)> change;
        const char* what;
    };
    for (const Case& c : {Case{[&](ServiceIdentity& s) { s.keys_dir = dir_ / "other/keys"; }, "trusted keys directory"},
                          Case{[&](ServiceIdentity& s) { s.image_dir = dir_ / "other/images"; }, "image directory"},
                          Case{[&](ServiceIdentity& s) { s.state_dir = dir_ / "other/state"; }, "state directory"}}) {
        SCOPED_TRACE(c.what);
        auto refused = check_against_protection(pinned(), next_with(c.change));
        EXPECT_ERRNO(refused, EPERM);
        EXPECT_EQ(refused.error().kind(), ErrorKind::PermissionDenied);
        EXPECT_ERROR_MENTIONS(refused, std::string("the ") + c.what + " is not the one");
    }
}

TEST_F(ProtectionCheckTest, ADirectoryReplacedUnderTheSamePathIsRefused) {
    SelfState state = pinned();
    fs::rename(service_.keys_dir, dir_ / "etc/keys.old");  // keeps its inode in use
    fs::create_directory(service_.keys_dir);
    EXPECT_ERROR_MENTIONS(check_against_protection(state, desired(true)), "trusted keys directory");
}

TEST_F(ProtectionCheckTest, NothingToCheckWithoutProtection) {
    DesiredMaps off_elsewhere = next_with(
        [&](ServiceIdentity& s) {
            s.keys_dir = dir_ / "srv";
            s.state_dir = dir_ / "srv/data";
        },
        false);
    EXPECT_OK(check_against_protection(SelfState{}, off_elsewhere));  // no store pinned
    SelfState unprotected = pinned();
    unprotected.protect = false;
    EXPECT_OK(check_against_protection(unprotected, off_elsewhere));
    SelfState lifted = pinned();
    lifted.lifted = true;
    lifted.lifted_until_ns = monotonic_ns() + 60'000'000'000ULL;
    EXPECT_OK(check_against_protection(lifted, off_elsewhere));  // a lift allows any change
    // The same, protected and not lifted, is refused.
    EXPECT_ERRNO(check_against_protection(pinned(), off_elsewhere), EPERM);
}

TEST_F(ProtectionCheckTest, UnsetPinnedAnchorsAreNotChecked) {
    SelfState state = pinned();
    state.settings.keys_dir = bw_inode_key{};
    state.settings.image_dir = bw_inode_key{};
    state.settings.state_dir = bw_inode_key{};
    fs::create_directories(dir_ / "other/keys");
    EXPECT_OK(check_against_protection(state, next_with([&](ServiceIdentity& s) {
                                           s.keys_dir = dir_ / "other/keys";
                                           s.image_dir = dir_ / "srv";
                                       })));
    // One anchor set: only that one is checked.
    state.settings.state_dir = pinned().settings.state_dir;
    EXPECT_OK(check_against_protection(state, next_with([&](ServiceIdentity& s) { s.image_dir = dir_ / "srv"; })));
    EXPECT_ERROR_MENTIONS(
        check_against_protection(state, next_with([&](ServiceIdentity& s) { s.state_dir = dir_ / "srv/data"; })),
        "state directory");
}

// ---------------------------------------------------------------------------
// ensure_canary

TEST(EnsureCanary, CreatesTheFileAndItsDirectoriesOnce) {
    TempDir dir;
    fs::path canary = dir / "run/bpfwarden/canary";
    ASSERT_OK(ensure_canary(canary));
    struct stat st{};
    ASSERT_EQ(::stat(canary.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_GT(st.st_size, 0);
    auto before = identity_of(canary);
    ASSERT_OK(before);
    ASSERT_OK(ensure_canary(canary));
    auto after = identity_of(canary);
    ASSERT_OK(after);
    EXPECT_EQ(*before, *after) << "an existing canary is left alone";
}

}  // namespace
}  // namespace bpfwarden
