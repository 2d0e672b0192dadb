// PolicyMaps::apply on this kernel's real maps (pinned under a private pin
// root): an apply is all or nothing. A policy a map cannot hold changes
// nothing, a write that fails part way puts every map back, and two disjoint
// policies that each fit alone replace each other in a map too small for both.
// On the store object's own maps: their sizes, 100 000 file and 10 000 exec
// rules applied and replaced, and a policy over max_rules or over a map's
// size refused with the maps unchanged.
#include <bpf/bpf.h>

#include <cstdio>
#include <map>
#include <string>

#include "host_fixture.h"
#include "inspection/map_digest.h"
#include "policy/map_transaction.h"
#include "policy/policy_maps.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

constexpr uint32_t kRuleCapacity = 8;

bw_inode_key file_key(uint64_t ino) {
    bw_inode_key key{};
    key.dev = 0x800001;
    key.ino = ino;
    return key;
}

// Inode rules for inodes first..first+count-1, rule ids from `id`.
DesiredMaps policy_of(uint64_t first, size_t count, uint32_t id = 1) {
    DesiredMaps desired;
    for (size_t i = 0; i < count; ++i)
        desired.tables.file_rules[file_key(first + i)] = plain_rule(BW_ACTION_DENY, id + uint32_t(i));
    desired.tables.settings.protect = 0;
    return desired;
}

class PolicyMapsHostTest : public HostPinsTest {
protected:
    void SetUp() override {
        HostPinsTest::SetUp();
        pin(kFileRulesMap, BPF_MAP_TYPE_HASH, sizeof(bw_inode_key), sizeof(bw_rule), kRuleCapacity);
        pin(kExecRulesMap, BPF_MAP_TYPE_HASH, sizeof(bw_inode_key), sizeof(bw_rule), kRuleCapacity);
        pin(kDirentsMap, BPF_MAP_TYPE_HASH, sizeof(bw_dirent_key), sizeof(bw_name_rules), kRuleCapacity);
        pin(kDirRulesMap, BPF_MAP_TYPE_HASH, sizeof(bw_inode_key), sizeof(bw_dir_rules), kRuleCapacity);
        pin(kDirBloomMap, BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(uint64_t), BW_DIR_BLOOM_WORDS);
        pin(kBpfAllowMap, BPF_MAP_TYPE_HASH, sizeof(bw_inode_key), sizeof(bw_bpf_allow), kRuleCapacity);
        pin(kBpfPolicyMap, BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(bw_bpf_policy), 1);
        pin(kSettingsMap, BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(bw_settings), 1);
        pin(kSelfExesMap, BPF_MAP_TYPE_HASH, sizeof(bw_dirent_key), sizeof(bw_self_exe), kRuleCapacity);
        pin(kScopesMap, BPF_MAP_TYPE_HASH, sizeof(uint64_t), sizeof(bw_scope), kRuleCapacity);
        pin(kExecAllowedMap, BPF_MAP_TYPE_HASH, sizeof(bw_allowed_key), sizeof(uint32_t), kRuleCapacity);
    }
    void pin(const char* name, bpf_map_type type, uint32_t key, uint32_t value, uint32_t entries) {
        UniqueFd fd(bpf_map_create(type, name, key, value, entries, nullptr));
        ASSERT_TRUE(fd) << name << ": " << strerror(errno);
        ASSERT_OK(pins_.pin_replacing(fd.get(), pins_.map_pin(name)));
    }
    UniqueFd open_map(const char* name) {
        auto fd = PinLayout::open_pin(pins_.map_pin(name));
        EXPECT_OK(fd);
        return fd ? std::move(*fd) : UniqueFd();
    }
    // The file rules map as inode -> rule id.
    std::map<uint64_t, uint32_t> file_rules() {
        std::map<uint64_t, uint32_t> out;
        UniqueFd fd = open_map(kFileRulesMap);
        auto entries = read_map_entries(fd.get());
        EXPECT_OK(entries);
        for (uint32_t i = 0; entries && i < entries->count; ++i) {
            bw_inode_key key{};
            bw_rule rule{};
            std::memcpy(&key, entries->key(i), sizeof(key));
            std::memcpy(&rule, entries->value(i), sizeof(rule));
            out[key.ino] = rule.rule_id;
        }
        return out;
    }
    static std::map<uint64_t, uint32_t> expected(uint64_t first, size_t count, uint32_t id = 1) {
        std::map<uint64_t, uint32_t> out;
        for (size_t i = 0; i < count; ++i)
            out[first + i] = id + uint32_t(i);
        return out;
    }
    Result<MapWrites> apply(const DesiredMaps& desired) {
        auto maps = PolicyMaps::open(pins_);
        if (!maps)
            return fail(maps.error());
        return maps->apply(desired);
    }
};

TEST_F(PolicyMapsHostTest, DisjointPoliciesThatEachFitReplaceEachOther) {
    ASSERT_OK(apply(policy_of(100, 6)));
    ASSERT_EQ(file_rules(), expected(100, 6));
    // 6 old + 6 new do not fit in 8: the stale ones make room first.
    ASSERT_OK(apply(policy_of(200, 6, 50)));
    EXPECT_EQ(file_rules(), expected(200, 6, 50));
}

// Every daemon start applies the policy the maps already hold: not one entry
// may be written again (a rewritten hash element can be handed to the next
// update while a program still reads it). A changed rule is the only write.
TEST_F(PolicyMapsHostTest, ReapplyingThePolicyWritesOnlyWhatChanged) {
    DesiredMaps policy = policy_of(100, 6);
    auto first = apply(policy);
    ASSERT_OK(first);
    EXPECT_EQ(first->written, 6u);
    auto again = apply(policy);
    ASSERT_OK(again);
    EXPECT_EQ(again->written, 0u);
    EXPECT_EQ(again->removed, 0u);
    policy.tables.file_rules[file_key(102)] = plain_rule(BW_ACTION_AUDIT, 77);
    policy.tables.file_rules.erase(file_key(105));
    auto changed = apply(policy);
    ASSERT_OK(changed);
    EXPECT_EQ(changed->written, 1u);
    EXPECT_EQ(changed->removed, 1u);
    auto want = expected(100, 5);
    want[102] = 77;
    EXPECT_EQ(file_rules(), want);
}

TEST_F(PolicyMapsHostTest, APolicyTheMapCannotHoldChangesNothingAndSaysWhy) {
    ASSERT_OK(apply(policy_of(100, 6)));
    auto refused = apply(policy_of(200, kRuleCapacity + 1));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().errnum(), E2BIG);
    EXPECT_NE(refused.error().message().find("holds at most 8 entries and this policy needs 9"), std::string::npos)
        << refused.error().message();
    EXPECT_NE(refused.error().message().find("nothing was changed"), std::string::npos);
    EXPECT_EQ(file_rules(), expected(100, 6));
}

// A kernel refusal part way: the bpf() policy map is frozen, so its write
// fails after the rules of the new policy were already written.
TEST_F(PolicyMapsHostTest, AWriteThatFailsPartWayPutsEveryMapBack) {
    ASSERT_OK(apply(policy_of(100, 4)));
    UniqueFd bpf_policy = open_map(kBpfPolicyMap);
    ASSERT_EQ(bpf_map_freeze(bpf_policy.get()), 0) << strerror(errno);
    DesiredMaps next = policy_of(102, 5, 70);  // keeps 102 and 103, drops 100 and 101, adds 104..106
    next.tables.exec_rules[file_key(9)] = plain_rule(BW_ACTION_DENY, 90);
    next.tables.bpf_policy.action = BW_ACTION_DENY;  // a change, so the frozen map is written
    auto failed = apply(next);
    ASSERT_FALSE(failed);
    EXPECT_NE(failed.error().message().find("every policy map holds the previous policy again"), std::string::npos)
        << failed.error().message();
    EXPECT_EQ(file_rules(), expected(100, 4));
    UniqueFd exec_rules = open_map(kExecRulesMap);
    auto exec_entries = read_map_entries(exec_rules.get());
    ASSERT_OK(exec_entries);
    EXPECT_EQ(exec_entries->count, 0u);
}

// MapTransaction alone: a hash map loses what was added and gets back what
// was changed or deleted; an array gets its values back.
TEST_F(PolicyMapsHostTest, RollBackRestoresHashAndArrayContents) {
    UniqueFd hash(bpf_map_create(BPF_MAP_TYPE_HASH, "bw_tx_hash", 8, 8, 4, nullptr));
    UniqueFd array(bpf_map_create(BPF_MAP_TYPE_ARRAY, "bw_tx_array", 4, 8, 2, nullptr));
    ASSERT_TRUE(hash && array) << strerror(errno);
    uint64_t k1 = 1, k2 = 2, k3 = 3, v10 = 10, v20 = 20, v99 = 99;
    uint32_t i0 = 0, i1 = 1;
    ASSERT_EQ(bpf_map_update_elem(hash.get(), &k1, &v10, BPF_ANY), 0);
    ASSERT_EQ(bpf_map_update_elem(hash.get(), &k2, &v20, BPF_ANY), 0);
    ASSERT_EQ(bpf_map_update_elem(array.get(), &i1, &v20, BPF_ANY), 0);
    MapTransaction transaction;
    ASSERT_OK(transaction.track(hash.get(), "hash"));
    ASSERT_OK(transaction.track(array.get(), "array"));
    ASSERT_EQ(bpf_map_update_elem(hash.get(), &k3, &v99, BPF_ANY), 0);
    ASSERT_EQ(bpf_map_delete_elem(hash.get(), &k1), 0);
    ASSERT_EQ(bpf_map_update_elem(hash.get(), &k2, &v99, BPF_ANY), 0);
    ASSERT_EQ(bpf_map_update_elem(array.get(), &i0, &v99, BPF_ANY), 0);
    ASSERT_OK(transaction.roll_back());
    uint64_t value = 0;
    EXPECT_EQ(bpf_map_lookup_elem(hash.get(), &k1, &value), 0);
    EXPECT_EQ(value, v10);
    EXPECT_EQ(bpf_map_lookup_elem(hash.get(), &k2, &value), 0);
    EXPECT_EQ(value, v20);
    EXPECT_NE(bpf_map_lookup_elem(hash.get(), &k3, &value), 0) << "the added key is gone";
    EXPECT_EQ(bpf_map_lookup_elem(array.get(), &i0, &value), 0);
    EXPECT_EQ(value, 0u);
    EXPECT_EQ(bpf_map_lookup_elem(array.get(), &i1, &value), 0);
    EXPECT_EQ(value, v20);
}

// ---------------------------------------------------------------------------
// The store's own maps (policy_maps.bpf.o from the build, loaded into the
// private pin root as the daemon loads it), written the daemon's way:
// compile_policy(), desired_maps(), PolicyMaps::apply().

// Rule paths "/many/<set>/<f|x>/<i>" name made-up files with distinct inodes
// (none shared between sets or kinds), a thousand to a directory: 100 000
// rules without 100 000 files.
PathTarget numbered_file(const std::string& path) {
    unsigned set = 0, index = 0;
    char kind = 0;
    std::sscanf(path.c_str(), "/many/%u/%c/%u", &set, &kind, &index);
    const uint64_t base = uint64_t{set} << 32 | (kind == 'x' ? uint64_t{1} << 28 : 0);
    PathTarget target;
    target.dir = FileIdentity{0x800002, base | uint64_t{1} << 24 | index / 1000, 0, true};
    target.file = FileIdentity{0x800002, base | index, 0, false};
    target.name = std::to_string(index);
    target.canonical = path;
    return target;
}

Policy numbered_policy(unsigned set, size_t file_rules, size_t exec_rules) {
    Policy policy;
    policy.options.protect.value = false;  // no entries for bpfwarden's own files
    policy.rules.reserve(file_rules + exec_rules);
    const auto add = [&](RuleKind kind, char letter, size_t count) {
        for (size_t i = 0; i < count; ++i)
            policy.rules.push_back(
                PathRule{kind, "/many/" + std::to_string(set) + "/" + letter + "/" + std::to_string(i),
                         RuleAction::Deny, SourceLocation{"many.toml", int(policy.rules.size()) + 1}});
    };
    add(RuleKind::FileOpen, 'f', file_rules);
    add(RuleKind::Exec, 'x', exec_rules);
    return policy;
}

using RawEntries = std::map<std::string, std::string>;  // key bytes -> value bytes

template <typename Map>
RawEntries raw(const Map& map) {
    RawEntries out;
    for (const auto& [key, value] : map)
        out.emplace(std::string(reinterpret_cast<const char*>(&key), sizeof key),
                    std::string(reinterpret_cast<const char*>(&value), sizeof value));
    return out;
}

// Empty when equal, else a count of what differs (the maps are too large to print).
std::string difference(const RawEntries& actual, const RawEntries& wanted) {
    if (actual == wanted)
        return {};
    size_t missing = 0, changed = 0, extra = 0;
    for (const auto& [key, value] : wanted) {
        auto it = actual.find(key);
        missing += it == actual.end();
        changed += it != actual.end() && it->second != value;
    }
    for (const auto& [key, value] : actual)
        extra += !wanted.contains(key);
    return std::to_string(actual.size()) + " entries, " + std::to_string(wanted.size()) +
           " wanted: " + std::to_string(missing) + " missing, " + std::to_string(changed) + " changed, " +
           std::to_string(extra) + " extra";
}

class StoreMapsHostTest : public HostPinsTest {
protected:
    void SetUp() override {
        HostPinsTest::SetUp();
        ASSERT_FALSE(HasFatalFailure());
        auto image = read_image(BPFWARDEN_TEST_IMAGE_DIR, "policy_maps");
        ASSERT_OK(image);
        ASSERT_OK(load_attach_pin(spec_named("policy_maps"), *image, pins_, {}));
        service_.canary = "/nonexistent-bpfwarden-host-test/canary";  // no implicit entry
        service_.packager.clear();
    }
    UniqueFd open_map(const char* name) {
        auto fd = PinLayout::open_pin(pins_.map_pin(name));
        EXPECT_OK(fd);
        return fd ? std::move(*fd) : UniqueFd();
    }
    bpf_map_info info_of(const char* name) {
        UniqueFd fd = open_map(name);
        bpf_map_info info{};
        uint32_t length = sizeof(info);
        EXPECT_EQ(bpf_obj_get_info_by_fd(fd.get(), &info, &length), 0) << name << ": " << strerror(errno);
        return info;
    }
    RawEntries contents(const char* name) {
        UniqueFd fd = open_map(name);
        auto entries = read_map_entries(fd.get());
        EXPECT_OK(entries);
        RawEntries out;
        for (uint32_t i = 0; entries && i < entries->count; ++i)
            out.emplace(std::string(reinterpret_cast<const char*>(entries->key(i)), entries->key_size),
                        std::string(reinterpret_cast<const char*>(entries->value(i)), entries->value_size));
        return out;
    }
    // What the daemon does with a policy it has read.
    Result<DesiredMaps> apply_policy(const Policy& policy) {
        auto compiled = compile_policy(policy, numbered_file);
        if (!compiled)
            return fail(compiled.error());
        DesiredMaps desired = desired_maps(*compiled, service_);
        auto maps = PolicyMaps::open(pins_);
        if (!maps)
            return fail(maps.error());
        if (auto applied = maps->apply(desired); !applied)
            return fail(applied.error());
        return desired;
    }
    void expect_maps_hold(const DesiredMaps& desired) {
        EXPECT_EQ(difference(contents(kFileRulesMap), raw(desired.tables.file_rules)), "");
        EXPECT_EQ(difference(contents(kExecRulesMap), raw(desired.tables.exec_rules)), "");
        EXPECT_EQ(difference(contents(kDirentsMap), raw(desired.tables.dirents)), "");
        EXPECT_EQ(difference(contents(kDirRulesMap), raw(desired.tables.dir_rules)), "");
    }

    ServiceIdentity service_;
};

// The compiler's capacities are the loaded maps' (both come from abi.h), and
// the rule maps take kernel memory per entry, not for max_entries up front.
TEST_F(StoreMapsHostTest, RuleMapsHoldWhatTheCompilerAllowsForAndAllocatePerEntry) {
    struct Expected {
        const char* map;
        size_t capacity;
    };
    for (auto [map, capacity] :
         {Expected{kFileRulesMap, kFileRulesCapacity}, Expected{kExecRulesMap, kExecRulesCapacity},
          Expected{kDirentsMap, kDirentsCapacity}, Expected{kDirRulesMap, kDirRulesCapacity}}) {
        bpf_map_info info = info_of(map);
        EXPECT_EQ(info.max_entries, capacity) << map;
        EXPECT_NE(info.map_flags & BPF_F_NO_PREALLOC, 0u) << map;
    }
    EXPECT_EQ(info_of(kBpfAllowMap).max_entries, kBpfAllowCapacity);
    EXPECT_EQ(info_of(kSelfExesMap).max_entries, kSelfExesCapacity);
}

TEST_F(StoreMapsHostTest, HundredThousandFileAndTenThousandExecRulesApplyAndGiveWayToADisjointPolicy) {
    auto first = apply_policy(numbered_policy(1, 100'000, 10'000));
    ASSERT_OK(first);
    EXPECT_EQ(first->tables.file_rules.size(), 100'000u);
    EXPECT_EQ(first->tables.exec_rules.size(), 10'000u);
    expect_maps_hold(*first);
    // Not one entry in common, and both together would not fit.
    auto second = apply_policy(numbered_policy(2, 100'000, 10'000));
    ASSERT_OK(second);
    expect_maps_hold(*second);
    auto back = apply_policy(numbered_policy(1, 100'000, 10'000));
    ASSERT_OK(back);
    expect_maps_hold(*back);
}

TEST_F(StoreMapsHostTest, APolicyOverMaxRulesIsRefusedAndTheRunningOneStays) {
    auto running = apply_policy(numbered_policy(1, 100'000, 10'000));
    ASSERT_OK(running);
    Policy too_big = numbered_policy(2, 200'000, 0);
    too_big.options.max_rules = {100'000, SourceLocation{"/etc/bpfwarden/policy.d/00-default.toml", 3}};
    auto refused = apply_policy(too_big);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().errnum(), E2BIG);
    EXPECT_EQ(refused.error().kind(), ErrorKind::PolicyInvalid);
    EXPECT_NE(
        refused.error().message().find("policy has 200000 file rules, more than max_rules = 100000 (set in "
                                       "/etc/bpfwarden/policy.d/00-default.toml:3; the maps hold at most 131008)"),
        std::string::npos)
        << refused.error().message();
    expect_maps_hold(*running);
}

// Past the compiler's check (a Policy is a plain struct): the kernel map's
// own limit, checked before anything is written.
TEST_F(StoreMapsHostTest, MoreEntriesThanTheMapHoldsChangeNothing) {
    auto running = apply_policy(numbered_policy(1, 1000, 100));
    ASSERT_OK(running);
    DesiredMaps too_many = *running;
    for (uint64_t i = 0; too_many.tables.file_rules.size() <= kFileRulesCapacity; ++i)
        too_many.tables.file_rules[to_key(*numbered_file("/many/3/f/" + std::to_string(i)).file)] =
            plain_rule(BW_ACTION_DENY, 1);
    auto maps = PolicyMaps::open(pins_);
    ASSERT_OK(maps);
    auto refused = maps->apply(too_many);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().errnum(), E2BIG);
    EXPECT_NE(refused.error().message().find("'bpfw_file_rules' holds at most 131072 entries and this policy needs "
                                             "131073"),
              std::string::npos)
        << refused.error().message();
    expect_maps_hold(*running);
}

}  // namespace
}  // namespace bpfwarden
