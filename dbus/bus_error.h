// What a D-Bus method call can fail with, as the caller sees it: the one
// table from an error's kind (lib's ErrorKind) to bpfwarden's named errors
// (names.h), with the error's message, which says what to fix.
//
// Backends (the daemon, the watchdog) return Result<T>; only the vtable code
// here turns an Error into the error reply. Nothing here logs.
#pragma once

#include <systemd/sd-bus.h>

#include "support/error.h"

namespace bpfwarden::dbus {

// "org.bpfwarden.Error.PolicyInvalid", ...
const char* error_name(ErrorKind kind);

// Sets `ret_error` from `error` and returns the negative value sd-bus
// handlers return for an error reply.
int set_bus_error(sd_bus_error* ret_error, const Error& error);

}  // namespace bpfwarden::dbus
