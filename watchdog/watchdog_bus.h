// bpfwarden-watchdog's side of org.bpfwarden.Watchdog1: the supervisor's
// state as the backend, CheckNow through the scheduler, and a publish after
// every check.
#pragma once

#include "bus_connection.h"
#include "check_scheduler.h"
#include "supervisor.h"
#include "watchdog_interface.h"

namespace bpfwarden {

class WatchdogBus final : public dbus::WatchdogBackend {
public:
    // Registers the object on `bus` (before bus.start()).
    WatchdogBus(dbus::BusConnection& bus, Supervisor& supervisor, CheckScheduler& scheduler);
    ~WatchdogBus() override { scheduler_.on_checked(nullptr); }
    WatchdogBus(const WatchdogBus&) = delete;
    WatchdogBus& operator=(const WatchdogBus&) = delete;

    std::string version() const override { return supervisor_.state().version; }
    WatchdogStatus status() const override { return supervisor_.state(); }
    Result<WatchdogStatus> check_now(const dbus::Caller& caller) override;
    dbus::WatchdogObject& object() { return object_; }

private:
    Supervisor& supervisor_;
    CheckScheduler& scheduler_;
    dbus::WatchdogObject object_;
};

}  // namespace bpfwarden
