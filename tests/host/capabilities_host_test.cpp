#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "support/capabilities.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

std::string status_field(const std::string& name) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with(name + ":"))
            return line.substr(name.size() + 1);
    return {};
}

// Runs in a child so the test process keeps its privileges.
TEST(CapabilitiesHost, DropKeepsOnlyTheRequestedSet) {
    if (geteuid() != 0)
        GTEST_FAIL() << "needs root";
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (!drop_capabilities_except({CAP_BPF, CAP_DAC_READ_SEARCH}))
            _exit(10);
        const std::string expected = "\t0000008000000004";  // bits 39 (BPF) and 2 (DAC_READ_SEARCH)
        if (status_field("CapEff") != expected || status_field("CapPrm") != expected)
            _exit(11);
        if (status_field("CapBnd") != expected)
            _exit(12);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10: drop failed, 11: effective/permitted set wrong, 12: bounding set wrong";
}

}  // namespace
}  // namespace bpfwarden
