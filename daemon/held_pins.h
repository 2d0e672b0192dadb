// References to every object bpfwarden pins, held by the daemon: enforcement
// never depends on the pins alone (removing them ends nothing while the
// daemon runs), and the daemon notices when the watchdog replaces an object,
// to move its event stream and policy writes to the new one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loading/pin_layout.h"
#include "support/error.h"
#include "support/unique_fd.h"

namespace bpfwarden {

class HeldPins {
public:
    // Holds whatever is pinned now under each of our pin names. A pin that is
    // gone keeps its held object (that is the point); a pin that names
    // another object than the one held replaces it. Returns the pin names
    // whose object changed (all of them the first time).
    std::vector<std::string> refresh(const PinLayout& pins);

    size_t links() const { return links_.size(); }
    size_t maps() const { return maps_.size(); }

private:
    struct Held {
        UniqueFd fd;
        uint32_t id = 0;
    };
    using HeldByPath = std::map<std::string, Held>;
    void take(const std::filesystem::path& path, bool link, HeldByPath& held, std::vector<std::string>& changed);

    HeldByPath links_, maps_;
};

}  // namespace bpfwarden
