// digest_of_entries: the definition the watchdog compares live maps against.
// (map_digest of real maps is checked against it in the host tests.)
#include "inspection/map_digest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace bpfwarden {
namespace {

using Entries = std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>;

std::vector<uint8_t> bytes(std::initializer_list<uint8_t> list) { return list; }

// 100 policy-like entries: 16-byte keys, 8-byte values.
Entries sample_entries() {
    Entries entries;
    for (uint8_t i = 0; i < 100; ++i) {
        std::vector<uint8_t> key(16, 0), value(8, 0);
        key[0] = i;
        key[15] = static_cast<uint8_t>(255 - i);
        value[3] = static_cast<uint8_t>(i * 7);
        entries.emplace_back(std::move(key), std::move(value));
    }
    return entries;
}

TEST(MapDigest, DigestDoesNotDependOnEntryOrder) {
    Entries entries = sample_entries();
    Digest sorted = digest_of_entries(16, 8, entries);
    std::mt19937 rng(42);
    for (int round = 0; round < 5; ++round) {
        std::shuffle(entries.begin(), entries.end(), rng);
        EXPECT_EQ(digest_of_entries(16, 8, entries), sorted) << "round " << round;
    }
    std::reverse(entries.begin(), entries.end());
    EXPECT_EQ(digest_of_entries(16, 8, entries), sorted);
}

TEST(MapDigest, OneFlippedBitInAnyKeyOrValueChangesTheDigest) {
    const Entries entries = sample_entries();
    const Digest original = digest_of_entries(16, 8, entries);
    // Every bit of a few entries, keys and values.
    for (size_t entry : {size_t(0), size_t(42), size_t(99)}) {
        for (size_t byte = 0; byte < 16; ++byte)
            for (int bit = 0; bit < 8; ++bit) {
                Entries changed = entries;
                changed[entry].first[byte] ^= uint8_t(1u << bit);
                EXPECT_NE(digest_of_entries(16, 8, changed), original)
                    << "key bit " << bit << " of byte " << byte << " in entry " << entry;
            }
        for (size_t byte = 0; byte < 8; ++byte)
            for (int bit = 0; bit < 8; ++bit) {
                Entries changed = entries;
                changed[entry].second[byte] ^= uint8_t(1u << bit);
                EXPECT_NE(digest_of_entries(16, 8, changed), original)
                    << "value bit " << bit << " of byte " << byte << " in entry " << entry;
            }
    }
}

TEST(MapDigest, EmptyMapDigestIsStableAndPinned) {
    const Digest empty = digest_of_entries(16, 8, {});
    EXPECT_EQ(digest_of_entries(16, 8, {}), empty);
    // Pinned value: a change of the definition must be deliberate (it makes
    // every stored expectation stale), so it has to change this line too.
    EXPECT_EQ(digest_hex(empty), "bfde193110791b7c98f1399f38d6b34a9c291d4ed1a2ba41f2eeb5b525762036");
    // The layout is part of the contents: an empty map of other sizes differs.
    EXPECT_NE(digest_of_entries(4, 8, {}), empty);
    EXPECT_NE(digest_of_entries(16, 4, {}), empty);
}

TEST(MapDigest, MatchesTheDocumentedDefinition) {
    // Computed independently (Python hashlib) from the definition in
    // map_digest.h: header, then entries sorted by key bytes.
    Digest digest = digest_of_entries(2, 1, {{bytes({2, 1}), bytes({0xff})}, {bytes({1, 2}), bytes({0})}});
    EXPECT_EQ(digest_hex(digest), "22da4543af28b47fa9eac0b5ba336edfd7890ba476cb016d64b8d777121d5bea");
}

TEST(MapDigest, AddingOrRemovingAnEntryChangesTheDigest) {
    Entries entries = sample_entries();
    const Digest original = digest_of_entries(16, 8, entries);
    Entries fewer(entries.begin(), entries.end() - 1);
    EXPECT_NE(digest_of_entries(16, 8, fewer), original);
    Entries more = entries;
    more.emplace_back(std::vector<uint8_t>(16, 0xee), std::vector<uint8_t>(8, 0));
    EXPECT_NE(digest_of_entries(16, 8, more), original);
    // A zero value is still an entry: present-with-zero differs from absent.
    EXPECT_NE(digest_of_entries(4, 4, {{bytes({1, 0, 0, 0}), bytes({0, 0, 0, 0})}}), digest_of_entries(4, 4, {}));
}

TEST(MapDigest, KeyValueBoundaryIsPartOfTheLayout) {
    // The same bytes split differently between key and value are different
    // contents.
    Digest a = digest_of_entries(2, 2, {{bytes({1, 2}), bytes({3, 4})}});
    Digest b = digest_of_entries(1, 3, {{bytes({1}), bytes({2, 3, 4})}});
    EXPECT_NE(a, b);
}

TEST(MapDigest, EntriesOfTheWrongSizeMatchNoWellFormedContents) {
    Digest good = digest_of_entries(4, 4, {{bytes({1, 0, 0, 0}), bytes({9, 9, 9, 9})}});
    // Same bytes in total, but the key is short and the value long.
    Digest bad = digest_of_entries(4, 4, {{bytes({1, 0, 0}), bytes({0, 9, 9, 9, 9})}});
    EXPECT_NE(good, bad);
}

TEST(MapDigest, HexIsLowerCaseAndFull) {
    Digest digest{};
    digest[0] = 0xAB;
    digest[31] = 0x01;
    std::string hex = digest_hex(digest);
    ASSERT_EQ(hex.size(), 64u);
    EXPECT_EQ(hex.substr(0, 2), "ab");
    EXPECT_EQ(hex.substr(62), "01");
}

}  // namespace
}  // namespace bpfwarden
