// From findings to a heal, and the heal itself. Heals never open a gap: a
// pin is put back with the very same (held) object where possible; otherwise
// the new program is attached and pinned before the old one is dropped, and
// new policy maps are filled before any program that reads them attaches.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "expected_state.h"
#include "findings.h"
#include "watchdog_kernel.h"

namespace bpfwarden {

// What the findings call for.
struct HealPlan {
    // Objects whose link pin must be restored: by re-pinning the held link
    // when possible, else by reloading them.
    std::set<const ObjectSpec*> broken;
    bool new_store = false;     // a policy map is gone or frozen: fresh maps, and the programs that read them
    bool rewrite_maps = false;  // the policy maps must get the desired contents
};

HealPlan plan_heal(const std::vector<Finding>& findings, const ExpectedState& expected);

struct HealOutcome {
    std::vector<std::string> done;      // "re-pinned the held link of bw_bpf", "rewrote policy maps", ...
    std::vector<std::string> failures;  // what could not be done, and why
    bool aborted = false;               // nothing was changed: the pin tree could not be restored
};

// Carries out the plan. What fails is in the outcome; whatever could be done
// is done (a failed reload keeps the current program).
HealOutcome heal(const HealPlan& plan, const ExpectedState& expected, WatchdogKernel& kernel);

}  // namespace bpfwarden
