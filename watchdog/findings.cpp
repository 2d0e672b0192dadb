#include "findings.h"

#include "support/text.h"

namespace bpfwarden {

std::string_view to_string(FindingKind kind) {
    switch (kind) {
    case FindingKind::PinDirectory: return "pin-directory";
    case FindingKind::MapPinMoved: return "map-pin-moved";
    case FindingKind::LinkBroken: return "link-broken";
    case FindingKind::PolicyMapMissing: return "policy-map-missing";
    case FindingKind::PolicyMapFrozen: return "policy-map-frozen";
    case FindingKind::PolicyMapDrifted: return "policy-map-drifted";
    case FindingKind::PolicyMapUnreadable: return "policy-map-unreadable";
    case FindingKind::CanaryOpened: return "canary-opened";
    case FindingKind::CanaryError: return "canary-error";
    }
    return "unknown";
}

std::vector<std::string> details(const std::vector<Finding>& findings) {
    std::vector<std::string> out;
    out.reserve(findings.size());
    for (const auto& finding : findings)
        out.push_back(finding.detail);
    return out;
}

std::string describe(const std::vector<Finding>& findings) { return join(details(findings), "; "); }

}  // namespace bpfwarden
