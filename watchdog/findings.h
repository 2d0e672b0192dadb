// What a check finds wrong, typed: the heal decides from the kind and the
// object, never from the text, which is for people (and the log).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "loading/bpf_objects.h"

namespace bpfwarden {

enum class FindingKind {
    PinDirectory,         // a pin directory is missing, or not 0700 and root's
    MapPinMoved,          // a held map's pin is gone or names another map
    LinkBroken,           // a program's link pin is missing, detached or not ours
    PolicyMapMissing,     // a policy map is gone and not held: only a new store will do
    PolicyMapFrozen,      // a policy map was frozen: only a new store will do
    PolicyMapDrifted,     // a policy map holds other contents than desired
    PolicyMapUnreadable,  // a policy map could not be digested
    CanaryOpened,         // the always-denied canary opened: enforcement silently broken
    CanaryError,          // the canary could not be tried (not EPERM, not opened)
};

std::string_view to_string(FindingKind kind);

struct Finding {
    FindingKind kind;
    const ObjectSpec* object = nullptr;  // the object concerned (LinkBroken), else nullptr
    std::string detail;                  // for people: the whole problem in words

    friend bool operator==(const Finding&, const Finding&) = default;
};

// "a; b; c": the details, as the log shows them.
std::string describe(const std::vector<Finding>& findings);
std::vector<std::string> details(const std::vector<Finding>& findings);

}  // namespace bpfwarden
