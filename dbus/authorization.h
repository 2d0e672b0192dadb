// Who may change state over D-Bus: the one place that decides.
//
// Reading (properties, ListRules, Introspect) is open to every local user.
// Every method that changes state (policy reloads and edits, a watchdog
// check that may heal) requires the caller to be root (effective uid 0) or
// to hold CAP_SYS_ADMIN in its effective set. The credentials come from the
// bus (sd_bus_query_sender_creds with SD_BUS_CREDS_EUID |
// SD_BUS_CREDS_EFFECTIVE_CAPS | SD_BUS_CREDS_AUGMENT): dbus-daemon vouches
// for the uid of the connection (SO_PEERCRED at connect time); the
// capabilities are read from /proc/<pid>/status of the connection's process
// (augmented). Because a pid may be reused, an augmented capability set only
// counts when /proc agrees with the bus on the caller's uid, and only for a
// caller in the service's own user namespace (capabilities inside another
// user namespace, `unshare -Ur`, grant nothing here: told apart by uid_map). Anything that cannot be
// established is a refusal, never a grant.
//
// The busconfig (units/org.bpfwarden.conf) lets anyone send to the
// interfaces on purpose: the decision is made here, with the credentials,
// so that refusals carry org.bpfwarden.Error.AccessDenied and say why.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <systemd/sd-bus.h>

#include "bus_error.h"

namespace bpfwarden::dbus {

struct Caller {
    std::string sender;           // unique bus name, ":1.42"
    std::optional<uint32_t> uid;  // effective uid as the bus reports it; empty when it did not
    std::optional<uint32_t> pid;
    bool cap_sys_admin = false;
    // For logs: "uid 0 pid 812 (:1.42)".
    std::string describe() const;
};

// The caller of `message`, as far as the bus and /proc tell.
Result<Caller> query_caller(sd_bus_message* message);

// Refuses with AccessDenied unless the caller is uid 0 or has CAP_SYS_ADMIN.
// `action` names what was asked for in the refusal ("AddRule").
Result<Caller> require_privileged(sd_bus_message* message, std::string_view action);

}  // namespace bpfwarden::dbus
