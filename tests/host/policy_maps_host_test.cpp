// PolicyMaps::apply on this kernel's real maps (pinned under a private pin
// root): an apply is all or nothing. A policy a map cannot hold changes
// nothing, a write that fails part way puts every map back, and two disjoint
// policies that each fit alone replace each other in a map too small for both.
#include <bpf/bpf.h>

#include <map>

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
        desired.tables.file_rules[file_key(first + i)] = bw_rule{BW_ACTION_DENY, id + uint32_t(i), 0, 0};
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
    Result<void> apply(const DesiredMaps& desired) {
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
    next.tables.exec_rules[file_key(9)] = bw_rule{BW_ACTION_DENY, 90, 0, 0};
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

}  // namespace
}  // namespace bpfwarden
