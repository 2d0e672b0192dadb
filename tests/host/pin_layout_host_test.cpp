#include <sys/stat.h>

#include "host_fixture.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

using PinLayoutHostTest = HostPinsTest;

mode_t mode_of(const std::filesystem::path& path) {
    struct stat st{};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

TEST_F(PinLayoutHostTest, DirectoriesAreRootOnly) {
    EXPECT_EQ(mode_of(pins_.root()), 0700u);
    EXPECT_EQ(mode_of(pins_.links_dir()), 0700u);
    EXPECT_EQ(mode_of(pins_.maps_dir()), 0700u);
}

TEST_F(PinLayoutHostTest, CreateTightensALooserExistingDirectory) {
    ASSERT_EQ(chmod(pins_.maps_dir().c_str(), 0755), 0);
    ASSERT_OK(pins_.create());
    EXPECT_EQ(mode_of(pins_.maps_dir()), 0700u);
}

TEST_F(PinLayoutHostTest, OpenMissingPinIsENOENT) {
    EXPECT_ERRNO(PinLayout::open_pin(pins_.link_pin("nothing")), ENOENT);
}

TEST(PinLayoutHost, RefusesARootOutsideBpffs) {
    PinLayout pins("/tmp/bpfwarden-not-bpffs/pins");
    EXPECT_ERROR_MENTIONS(pins.create(), "is not a bpf filesystem");
}

}  // namespace
}  // namespace bpfwarden
