// Removing bpfwarden's pins removes exactly those: a foreign pin in our
// directories, a foreign object under one of our names, and a bpffs directory
// without our layout are left alone; a link someone still holds is reported
// with its holder.
#include <bpf/bpf.h>
#include <unistd.h>

#include "host_fixture.h"
#include "loading/pin_removal.h"
#include "support/unique_fd.h"
#include "test_helpers.h"
#include "trust/bpf_image.h"

namespace bpfwarden {
namespace {

class PinRemovalHostTest : public HostPinsTest {
protected:
    void load(const std::string& name) {
        auto image = read_image(BPFWARDEN_TEST_IMAGE_DIR, name);
        ASSERT_OK(image);
        ASSERT_OK(load_attach_pin(spec_named(name), *image, pins_, {}));
    }
    // A map that is not bpfwarden's, pinned at `path`.
    static void pin_foreign_map(const std::filesystem::path& path, const char* name = "foreign") {
        UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_ARRAY, name, 4, 4, 1, nullptr));
        ASSERT_TRUE(fd) << "bpf_map_create: " << strerror(errno);
        ASSERT_EQ(bpf_obj_pin(fd.get(), path.c_str()), 0) << path << ": " << strerror(errno);
    }
    static bool exists(const std::filesystem::path& path) { return std::filesystem::exists(path); }
};

TEST_F(PinRemovalHostTest, RemovesOwnPinsAndLeavesForeignOnes) {
    load("policy_maps");
    load("bpf_audit");
    pin_foreign_map(pins_.links_dir() / "foreign_pin");
    // A foreign map under one of our map names is not ours either.
    pin_foreign_map(pins_.counters_pin("exec_audit"), "not_counters");
    auto inventory = take_pin_inventory(pins_);
    ASSERT_OK(inventory);
    PinRemovalReport report = remove_own_pins(*inventory);
    EXPECT_FALSE(exists(pins_.link_pin("bw_tp_bpf")));
    EXPECT_FALSE(exists(pins_.map_pin(kFileRulesMap)));
    EXPECT_TRUE(exists(pins_.links_dir() / "foreign_pin"));
    EXPECT_TRUE(exists(pins_.counters_pin("exec_audit")));
    EXPECT_FALSE(report.root_removed);
    EXPECT_EQ(report.left.size(), 2u);
    EXPECT_TRUE(report.still_attached.empty());
}

TEST_F(PinRemovalHostTest, RemovesTheTreeWhenOnlyOwnPinsWereThere) {
    load("policy_maps");
    load("exec_audit");
    auto inventory = take_pin_inventory(pins_);
    ASSERT_OK(inventory);
    PinRemovalReport report = remove_own_pins(*inventory);
    EXPECT_TRUE(report.left.empty());
    EXPECT_TRUE(report.root_removed);
    EXPECT_FALSE(exists(pins_.root()));
}

TEST_F(PinRemovalHostTest, RefusesADirectoryWithoutOwnPins) {
    pin_foreign_map(pins_.links_dir() / "bw_tp_bpf");  // our name, not our object
    auto inventory = take_pin_inventory(pins_);
    ASSERT_FALSE(inventory.has_value());
    EXPECT_EQ(inventory.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_ERROR_MENTIONS(inventory, "holds no bpfwarden pins");
    EXPECT_TRUE(exists(pins_.links_dir() / "bw_tp_bpf"));
}

TEST_F(PinRemovalHostTest, RefusesARootOutsideBpffs) {
    auto inventory = take_pin_inventory(PinLayout("/tmp"));
    ASSERT_FALSE(inventory.has_value());
    EXPECT_ERROR_MENTIONS(inventory, "not on a bpf filesystem");
}

TEST_F(PinRemovalHostTest, ReportsWhoStillHoldsALink) {
    load("bpf_audit");
    UniqueFd held(bpf_obj_get(pins_.link_pin("bw_tp_bpf").c_str()));
    ASSERT_TRUE(held);
    auto inventory = take_pin_inventory(pins_);
    ASSERT_OK(inventory);
    PinRemovalReport report = remove_own_pins(*inventory);
    ASSERT_EQ(report.still_attached.size(), 1u);
    EXPECT_EQ(report.still_attached[0].program, "bw_tp_bpf");
    ASSERT_EQ(report.still_attached[0].held_by.size(), 1u);
    EXPECT_EQ(report.still_attached[0].held_by[0].pid, getpid());
    held.reset();
    EXPECT_TRUE(attached_programs(*inventory).empty() || attached_programs(*inventory)[0].held_by.empty());
}

}  // namespace
}  // namespace bpfwarden
