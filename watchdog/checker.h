// One read-only look at bpfwarden's kernel objects against the expected
// state: what is wrong, as typed findings, and how each program looks.
#pragma once

#include <filesystem>
#include <vector>

#include "expected_state.h"
#include "findings.h"
#include "inspection/watchdog_status.h"
#include "watchdog_kernel.h"

namespace bpfwarden {

struct CheckOptions {
    bool digest_maps = true;         // false: the policy maps cannot have changed (nothing to read)
    bool expect_enforcement = true;  // try the canary
    std::filesystem::path canary;
    std::string mode_reason;  // why enforcement is expected, for a canary finding
};

struct CheckResult {
    std::vector<Finding> findings;  // empty: everything is as expected
    std::vector<WatchdogProgram> programs;
    bool maps_intact = true;  // every policy map was found holding exactly the desired policy
};

// Never changes anything. Foreign programs are not looked for here (see
// find_foreign_programs): they are reported, never healed.
CheckResult check_state(const ExpectedState& expected, WatchdogKernel& kernel, const CheckOptions& options);

// Someone else's programs on the LSM hooks we enforce on, described
// ("foreign program 'restrict_filesystems' (id 12) attached to lsm/file_open");
// an error when the links cannot be listed.
Result<std::vector<std::string>> find_foreign_programs(const ExpectedState& expected, WatchdogKernel& kernel,
                                                       const std::vector<WatchdogProgram>& ours);

}  // namespace bpfwarden
