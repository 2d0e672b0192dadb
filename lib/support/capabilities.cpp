#include "support/capabilities.h"

#include <linux/capability.h>

#include <cap-ng.h>
#include <cstdlib>

namespace bpfwarden {

Result<void> drop_capabilities_except(std::initializer_list<int> keep) {
    // The bounding set too where we may change it (CAP_SETPCAP): nothing
    // exec'd later can regain what was dropped. The units give no
    // CAP_SETPCAP: their CapabilityBoundingSet= and NoNewPrivileges= do that.
    capng_get_caps_process();
    bool bounding = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP) != 0;
    capng_select_t select = bounding ? CAPNG_SELECT_ALL : CAPNG_SELECT_CAPS;
    capng_clear(select);
    for (int cap : keep)
        if (capng_update(CAPNG_ADD, static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET),
                         cap) != 0)
            return fail(EINVAL, "keep capability " + std::to_string(cap));
    if (int err = capng_apply(select); err != 0)
        return fail(EPERM, "apply reduced capability set (capng_apply: " + std::to_string(err) + ")");
    return {};
}

std::string effective_capabilities() {
    capng_get_caps_process();
    char* text = capng_print_caps_text(CAPNG_PRINT_BUFFER, CAPNG_EFFECTIVE);
    std::string out = text ? text : "";
    free(text);
    return out;
}

}  // namespace bpfwarden
