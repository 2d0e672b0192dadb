#include <bpf/bpf.h>
#include <unistd.h>

#include "host_fixture.h"
#include "inspection/held_maps.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

class HeldMapsHostTest : public HostPinsTest {
protected:
    // A fresh 4-entry hash map pinned as maps/<name>; returns its id.
    uint32_t pin_new_map(const std::string& name) {
        UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_HASH, "bw_test", 4, 4, 4, nullptr));
        EXPECT_TRUE(fd) << "bpf_map_create: " << strerror(errno);
        EXPECT_OK(pins_.pin_replacing(fd.get(), pins_.map_pin(name)));
        auto id = map_id_of(fd.get());
        EXPECT_OK(id);
        return id ? *id : 0;
    }
    uint32_t pinned_id(const std::string& name) {
        auto fd = PinLayout::open_pin(pins_.map_pin(name));
        if (!fd)
            return 0;
        auto id = map_id_of(fd->get());
        return id ? *id : 0;
    }
};

TEST_F(HeldMapsHostTest, HoldsOnlyPinsThatExistAndReportsNothingWhileIntact) {
    uint32_t id = pin_new_map("policy");
    HeldMaps held;
    held.hold(pins_, {"policy", "never_pinned"});
    EXPECT_EQ(held.id("policy"), id);
    EXPECT_FALSE(held.id("never_pinned"));
    EXPECT_GE(held.fd("policy"), 0);
    EXPECT_EQ(held.fd("never_pinned"), -1);
    EXPECT_TRUE(held.check(pins_).empty());
    auto repinned = held.repin(pins_);
    ASSERT_OK(repinned);
    EXPECT_TRUE(repinned->empty()) << "nothing to re-pin while the pin is ours";
}

TEST_F(HeldMapsHostTest, ARemovedPinIsReportedAndPinnedAgainWithTheSameMap) {
    uint32_t id = pin_new_map("events");
    HeldMaps held;
    held.hold(pins_, {"events"});
    ASSERT_EQ(unlink(pins_.map_pin("events").c_str()), 0);

    auto problems = held.check(pins_);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("maps/events"), std::string::npos) << problems[0];
    EXPECT_NE(problems[0].find("No such file"), std::string::npos) << problems[0];

    auto repinned = held.repin(pins_);
    ASSERT_OK(repinned);
    EXPECT_EQ(*repinned, std::vector<std::string>{"re-pinned the held map events"});
    EXPECT_EQ(pinned_id("events"), id);
    EXPECT_TRUE(held.check(pins_).empty());
}

TEST_F(HeldMapsHostTest, AReplacedPinNamesBothIdsAndOursIsPutBack) {
    uint32_t ours = pin_new_map("file_rules");
    HeldMaps held;
    held.hold(pins_, {"file_rules"});
    uint32_t theirs = pin_new_map("file_rules");
    ASSERT_NE(ours, theirs);

    auto problems = held.check(pins_);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("names map id " + std::to_string(theirs) + ", not ours (id " + std::to_string(ours)),
              std::string::npos)
        << problems[0];
    ASSERT_OK(held.repin(pins_));
    EXPECT_EQ(pinned_id("file_rules"), ours);
}

TEST_F(HeldMapsHostTest, FrozenIsReadFromFdinfo) {
    pin_new_map("frozen");
    auto fd = PinLayout::open_pin(pins_.map_pin("frozen"));
    ASSERT_OK(fd);
    auto before = map_is_frozen(fd->get());
    ASSERT_OK(before);
    EXPECT_FALSE(*before);
    ASSERT_EQ(bpf_map_freeze(fd->get()), 0) << strerror(errno);
    auto after = map_is_frozen(fd->get());
    ASSERT_OK(after);
    EXPECT_TRUE(*after);
    EXPECT_ERRNO(map_is_frozen(-1), ENOENT);
}

}  // namespace
}  // namespace bpfwarden
