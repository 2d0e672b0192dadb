// org.bpfwarden.Watchdog1 at /org/bpfwarden/Watchdog1, served by
// bpfwarden-watchdog. The API is documented in docs/DBUS.md.
//
// The vtable (watchdog_interface.cpp) knows nothing of the supervisor: it
// reads a WatchdogStatus snapshot from a WatchdogBackend.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "authorization.h"
#include "bus_connection.h"
#include "bus_error.h"

namespace bpfwarden::dbus {

struct WatchdogProgram {
    std::string program;  // "bw_file_open"
    std::string hook;     // "lsm/file_open"
    uint32_t prog_id = 0;
    std::string tag;
    std::string status;  // "ok" or what is wrong
};

struct WatchdogStatus {
    bool healthy = false;
    std::vector<std::string> reasons;  // why not healthy
    std::string mode;                  // what the watchdog expects: "enforcing" | "audit-only"
    std::string mode_reason;
    uint64_t image_set_version = 0;
    uint64_t check_interval_usec = 0;
    uint64_t checks = 0;
    uint64_t last_check_usec = 0;  // CLOCK_REALTIME, microseconds since the epoch; 0: never
    std::string last_trigger;
    uint64_t heal_count = 0;
    std::string last_heal_reason;
    uint64_t last_heal_usec = 0;  // how long the last heal took
    std::vector<WatchdogProgram> programs;
};

class WatchdogBackend {
public:
    virtual ~WatchdogBackend() = default;
    virtual std::string version() const = 0;
    virtual WatchdogStatus status() const = 0;
    // Runs one check (healing if needed) now; called only for an authorized caller.
    virtual Result<WatchdogStatus> check_now(const Caller& caller) = 0;
};

// The object, registered on `bus` at construction (before BusConnection::start()).
class WatchdogObject {
public:
    WatchdogObject(BusConnection& bus, WatchdogBackend& backend);

    // After every check: PropertiesChanged for what changed since the last
    // call, and Healed when a heal happened.
    void publish();

    WatchdogBackend& backend() { return backend_; }

private:
    BusConnection& bus_;
    WatchdogBackend& backend_;
    WatchdogStatus published_;
};

}  // namespace bpfwarden::dbus
