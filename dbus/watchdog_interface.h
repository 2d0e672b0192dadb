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
#include "inspection/watchdog_status.h"

namespace bpfwarden::dbus {

using bpfwarden::WatchdogProgram;
using bpfwarden::WatchdogStatus;

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
    // UnknownProgram: a BPF program neither bpfwarden's, the kernel's,
    // systemd's nor allowlisted (watchdog/inventory_watch.h).
    void unknown_program(uint32_t id, const std::string& name, const std::string& type, const std::string& tag,
                         const std::string& detail);

    WatchdogBackend& backend() { return backend_; }

private:
    BusConnection& bus_;
    WatchdogBackend& backend_;
    WatchdogStatus published_;
};

}  // namespace bpfwarden::dbus
