// References the watchdog keeps to the maps it has verified (policy maps, the
// shared event ring buffer and rate limiter, each object's counters), keyed
// by their pin name under maps/. A map pin that is removed or replaced is put
// back with the very same map: its users, contents and counters carry on, and
// nothing is reloaded.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "loading/pin_layout.h"
#include "support/error.h"
#include "support/unique_fd.h"

namespace bpfwarden {

// The kernel's id of the map behind `fd`.
Result<uint32_t> map_id_of(int fd);

// True when the map behind `fd` was frozen (BPF_MAP_FREEZE): bpf() can never
// write it again, so a policy in it can no longer be changed.
Result<bool> map_is_frozen(int fd);

class HeldMaps {
public:
    // Takes a reference to the map behind each named pin that exists, in
    // place of anything held before.
    void hold(const PinLayout& pins, const std::vector<std::string>& names);
    void clear() { held_.clear(); }
    bool empty() const { return held_.empty(); }

    // The held map for pin `name`: its fd (-1 when not held) and id.
    int fd(const std::string& name) const;
    std::optional<uint32_t> id(const std::string& name) const;

    // One problem per held map whose pin is missing or names another map.
    std::vector<std::string> check(const PinLayout& pins) const;

    // Pins each held map again where its pin is missing or names another map;
    // returns what it did, one entry per map.
    Result<std::vector<std::string>> repin(const PinLayout& pins) const;

private:
    struct Held {
        UniqueFd fd;
        uint32_t id;
    };
    // Why the pin of `name` does not hold our map, or "" when it does.
    std::string pin_problem(const PinLayout& pins, const std::string& name, const Held& held) const;

    std::map<std::string, Held> held_;
};

}  // namespace bpfwarden
