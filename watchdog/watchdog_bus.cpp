#include "watchdog_bus.h"

#include "support/log.h"

namespace bpfwarden {

WatchdogBus::WatchdogBus(dbus::BusConnection& bus, Supervisor& supervisor, CheckScheduler& scheduler)
    : supervisor_(supervisor), scheduler_(scheduler), object_(bus, *this) {
    scheduler_.on_checked([this] { object_.publish(); });
}

Result<WatchdogStatus> WatchdogBus::check_now(const dbus::Caller& caller) {
    std::string why = "CheckNow by " + caller.describe();
    log_info("check: " + why);
    scheduler_.check(why);
    return status();
}

}  // namespace bpfwarden
