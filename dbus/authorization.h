// Who may change state over D-Bus: the one place that decides.
//
// Reading (properties, ListRules, Introspect) is open to every local user.
// Every method that changes state (policy reloads and edits, an unlock, a
// watchdog check that may heal) is allowed for:
//   - root: effective uid 0 as the bus itself vouches for it (dbus-daemon
//     takes it from SO_PEERCRED at connect time). Never from /proc, and
//     never from capabilities: a CAP_SYS_ADMIN that /proc shows may belong
//     to another user namespace (`unshare -Ur`) or to a reused pid;
//   - anyone polkit authorizes for the method's action
//     (units/org.bpfwarden.policy: org.bpfwarden.manage-policy, .unlock,
//     .check; auth_admin_keep by default), asked with the caller's bus name
//     as the subject, so that polkitd itself establishes who is calling.
// polkit is asked without interaction (an authentication prompt would stall
// the service for as long as the admin types): a caller polkit would ask
// for a password is refused, with the way to get through (root, or a polkit
// rule). Where polkitd is not running only root is allowed. Anything that
// cannot be established is a refusal, never a grant.
//
// The busconfig (units/org.bpfwarden.conf) lets anyone send to the
// interfaces on purpose: the decision is made here, so that refusals carry
// org.bpfwarden.Error.AccessDenied and say why.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <systemd/sd-bus.h>

#include "bus_error.h"

namespace bpfwarden::dbus {

// polkit action ids (units/org.bpfwarden.policy).
inline constexpr const char* kManagePolicyAction = "org.bpfwarden.manage-policy";
inline constexpr const char* kUnlockAction = "org.bpfwarden.unlock";
inline constexpr const char* kCheckAction = "org.bpfwarden.check";

struct Caller {
    std::string sender;           // unique bus name, ":1.42"
    std::optional<uint32_t> uid;  // effective uid as the bus reports it; empty when it did not
    std::optional<uint32_t> pid;
    std::string authorized_by;  // "root" or "polkit", once authorized
    // For logs: "uid 0 pid 812 (:1.42)".
    std::string describe() const;
};

// The caller of `message`, as far as the bus tells.
Result<Caller> query_caller(sd_bus_message* message);

// Refuses with AccessDenied unless the caller is uid 0 or polkit authorizes
// it for `polkit_action`. `method` names what was asked for in the refusal.
Result<Caller> require_authorized(sd_bus_message* message, std::string_view method, const char* polkit_action);

}  // namespace bpfwarden::dbus
