// Every name bpfwarden's D-Bus API is made of, in one place: the services
// (bpfwardend, bpfwarden-watchdog), the client (bpfwardenctl status), the
// busconfig (units/org.bpfwarden.conf) and docs/DBUS.md must agree on them.
#pragma once

namespace bpfwarden::dbus {

// bpfwardend
inline constexpr const char* kEnforcerBusName = "org.bpfwarden.Enforcer1";
inline constexpr const char* kEnforcerPath = "/org/bpfwarden/Enforcer1";
inline constexpr const char* kEnforcerInterface = "org.bpfwarden.Enforcer1";

// bpfwarden-watchdog
inline constexpr const char* kWatchdogBusName = "org.bpfwarden.Watchdog1";
inline constexpr const char* kWatchdogPath = "/org/bpfwarden/Watchdog1";
inline constexpr const char* kWatchdogInterface = "org.bpfwarden.Watchdog1";

// Named errors. Each reply's message says what to fix.
inline constexpr const char* kErrorInvalidArgument = "org.bpfwarden.Error.InvalidArgument";
inline constexpr const char* kErrorPolicyInvalid = "org.bpfwarden.Error.PolicyInvalid";
inline constexpr const char* kErrorLimitExceeded = "org.bpfwarden.Error.LimitExceeded";
inline constexpr const char* kErrorNotFound = "org.bpfwarden.Error.NotFound";
inline constexpr const char* kErrorAccessDenied = "org.bpfwarden.Error.AccessDenied";
inline constexpr const char* kErrorFailed = "org.bpfwarden.Error.Failed";

}  // namespace bpfwarden::dbus
