// A private pin root on the host's bpffs, removed after each test even when
// the test fails, so tests never touch /sys/fs/bpf/bpfwarden.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "loading/bpf_objects.h"
#include "loading/pin_layout.h"

namespace bpfwarden {

// The managed object of that name; a typo in a test is a test bug.
inline const ObjectSpec& spec_named(const std::string& name) {
    const ObjectSpec* spec = find_object(name);
    if (!spec)
        throw std::runtime_error("no object " + name);
    return *spec;
}

// Removes a pin root a test made itself, and only such a root: on bpffs and
// named like the tests' own ("/sys/fs/bpf/bpfwarden-test-<pid>...").
inline void remove_test_pin_root(const PinLayout& pins) {
    const std::filesystem::path& root = pins.root();
    std::string prefix = "/sys/fs/bpf/bpfwarden-test-" + std::to_string(getpid());
    if (!root.string().starts_with(prefix) || !is_bpffs(root.parent_path()))
        throw std::runtime_error("refusing to remove '" + root.string() + "': not a pin root this test made");
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
}

class HostPinsTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0)
            GTEST_FAIL() << "host integration tests need root (run scripts/test.sh as root)";
        ASSERT_TRUE(is_bpffs("/sys/fs/bpf")) << "/sys/fs/bpf is not bpffs: run scripts/host-prep.sh";
        auto made = pins_.create();
        ASSERT_TRUE(made.has_value()) << made.error().message();
    }
    void TearDown() override { remove_test_pin_root(pins_); }

    PinLayout pins_{"/sys/fs/bpf/bpfwarden-test-" + std::to_string(getpid())};
};

}  // namespace bpfwarden
