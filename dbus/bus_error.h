// What a D-Bus method call can fail with, as the caller will see it: one of
// bpfwarden's named errors (names.h) and a message that says what to fix.
//
// Backends (the daemon, the watchdog) return BusResult<T>; the vtable code
// turns a BusError into the error reply. Nothing here logs.
#pragma once

#include <systemd/sd-bus.h>

#include <expected>
#include <string>
#include <utility>

#include "support/error.h"

namespace bpfwarden::dbus {

enum class BusErrorCode {
    InvalidArgument,  // the arguments are wrong (kind, action, path syntax)
    PolicyInvalid,    // the resulting policy would not be valid: nothing changed
    NotFound,         // no such rule
    AccessDenied,     // the caller may not change state
    Failed,           // the service could not do it (I/O, kernel)
};

struct BusError {
    BusErrorCode code;
    std::string message;
};

template <typename T>
using BusResult = std::expected<T, BusError>;

inline std::unexpected<BusError> bus_fail(BusErrorCode code, std::string message) {
    return std::unexpected(BusError{code, std::move(message)});
}

// An Error from the library (errno + context) as a reply: `code` says what
// kind of failure it is for the caller; the message is Error::message().
inline std::unexpected<BusError> bus_fail(BusErrorCode code, const Error& error) {
    return std::unexpected(BusError{code, error.message()});
}

// "org.bpfwarden.Error.PolicyInvalid", ...
const char* error_name(BusErrorCode code);

// Sets `ret_error` from `error` and returns the negative value sd-bus
// handlers return for an error reply.
int set_bus_error(sd_bus_error* ret_error, const BusError& error);

}  // namespace bpfwarden::dbus
