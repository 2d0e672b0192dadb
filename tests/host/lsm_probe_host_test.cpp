// probe_bpf_lsm() against an independent oracle: plain libbpf loading the
// same probe image. Whatever the kernel does, the probe must report it.
#include <bpf/libbpf.h>

#include <fstream>

#include "loading/lsm_probe.h"
#include "test_helpers.h"
#include "trust/bpf_image.h"

namespace bpfwarden {
namespace {

// 0 when the kernel loads an LSM program, else the positive errno.
int raw_lsm_load_errno(const BpfImage& image) {
    bpf_object* obj = bpf_object__open_mem(image.bytes.data(), image.bytes.size(), nullptr);
    if (!obj)
        return errno;
    int err = bpf_object__load(obj);
    bpf_object__close(obj);
    return err < 0 ? -err : 0;
}

TEST(LsmProbeHost, ReportsWhatTheKernelReallyDoes) {
    auto image = read_image(BPFWARDEN_TEST_IMAGE_DIR, "lsm_probe");
    ASSERT_OK(image);
    int load_errno = raw_lsm_load_errno(*image);
    LsmStatus status = probe_bpf_lsm(*image);

    if (load_errno == EPERM) {
        EXPECT_FALSE(status.usable);
        EXPECT_NE(status.reason.find("kernel refused to load a BPF LSM program: Operation not permitted "
                                     "(BPF trampolines unavailable on this kernel)"),
                  std::string::npos)
            << status.reason;
    } else if (load_errno != 0) {
        EXPECT_FALSE(status.usable);
        EXPECT_NE(status.reason.find("kernel refused to load a BPF LSM program"), std::string::npos) << status.reason;
    } else {
        // Loads: usable exactly when `bpf` is an active LSM.
        std::ifstream lsm("/sys/kernel/security/lsm");
        std::string list;
        std::getline(lsm, list);
        bool listed = ("," + list + ",").find(",bpf,") != std::string::npos;
        EXPECT_EQ(status.usable, listed) << status.reason;
    }
    if (!status.usable) {
        EXPECT_NE(status.reason.find("active LSM"), std::string::npos) << "the reason names the LSM list";
    }
}

TEST(LsmProbeHost, UnreadableLsmListIsNamedInTheReason) {
    auto image = read_image(BPFWARDEN_TEST_IMAGE_DIR, "lsm_probe");
    ASSERT_OK(image);
    LsmStatus status = probe_bpf_lsm(*image, "/nonexistent/lsm");
    if (!status.usable) {
        EXPECT_NE(status.reason.find("active LSM list unreadable at /nonexistent/lsm"), std::string::npos)
            << status.reason;
    }
    EXPECT_TRUE(status.active_lsms.empty());
}

}  // namespace
}  // namespace bpfwarden
