#include "trust/rollback_state.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "temp_dir.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

class RollbackStateTest : public ::testing::Test {
protected:
    TempDir temp_{"bpfwarden-rollback"};
    const std::filesystem::path& dir_ = temp_.path();
};

TEST_F(RollbackStateTest, NothingAcceptedYetMeansFloorZero) {
    RollbackState state(dir_);
    auto floor = state.highest_accepted();
    ASSERT_OK(floor);
    EXPECT_EQ(*floor, 0u);
    EXPECT_OK(state.check(1));
}

// A mistyped state directory must not silently skip the check.
TEST_F(RollbackStateTest, MissingStateDirectoryIsAnErrorNamingIt) {
    RollbackState state(dir_ / "typo");
    EXPECT_ERRNO(state.highest_accepted(), ENOENT);
    EXPECT_ERROR_MENTIONS(state.check(1), (dir_ / "typo").string() + "' does not exist");
    EXPECT_ERROR_MENTIONS(state.check(1), "create it");
}

TEST_F(RollbackStateTest, AcceptRaisesTheFloorAndOlderIsRefused) {
    RollbackState state(dir_);
    ASSERT_OK(state.accept(5));
    EXPECT_OK(state.check(5));
    EXPECT_OK(state.check(6));
    EXPECT_ERRNO(state.check(4), EKEYREJECTED);
    EXPECT_ERROR_MENTIONS(state.check(4), "manifest version 4 is older than the highest accepted version 5");
    EXPECT_ERROR_MENTIONS(state.check(4), "bpfwardenctl allow-downgrade 4");
}

TEST_F(RollbackStateTest, AcceptNeverLowersTheFloor) {
    RollbackState state(dir_);
    ASSERT_OK(state.accept(7));
    ASSERT_OK(state.accept(3));
    EXPECT_EQ(*state.highest_accepted(), 7u);
}

TEST_F(RollbackStateTest, ExplicitDowngradeLowersTheFloor) {
    RollbackState state(dir_);
    ASSERT_OK(state.accept(7));
    ASSERT_OK(state.allow_downgrade_to(3));
    EXPECT_OK(state.check(3));
    EXPECT_EQ(*state.highest_accepted(), 3u);
}

TEST_F(RollbackStateTest, StateFileIsRootOnly) {
    RollbackState state(dir_);
    ASSERT_OK(state.accept(2));
    struct stat st{};
    ASSERT_EQ(stat(state.file().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(RollbackStateTest, LooseStateFileIsRefusedNotIgnored) {
    RollbackState state(dir_);
    ASSERT_OK(state.accept(2));
    ASSERT_EQ(chmod(state.file().c_str(), 0644), 0);
    EXPECT_ERRNO(state.check(9), EPERM);
    EXPECT_ERROR_MENTIONS(state.check(9), "with mode 0600");
}

TEST_F(RollbackStateTest, CorruptStateFileIsAnError) {
    RollbackState state(dir_);
    std::ofstream(state.file()) << "seven\n";
    ASSERT_EQ(chmod(state.file().c_str(), 0600), 0);
    EXPECT_ERROR_MENTIONS(state.check(1), "is corrupt: expected one decimal version number");
}

}  // namespace
}  // namespace bpfwarden
