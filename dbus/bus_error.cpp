#include "bus_error.h"

#include <cerrno>

#include "names.h"

namespace bpfwarden::dbus {

const char* error_name(BusErrorCode code) {
    switch (code) {
    case BusErrorCode::InvalidArgument: return kErrorInvalidArgument;
    case BusErrorCode::PolicyInvalid: return kErrorPolicyInvalid;
    case BusErrorCode::NotFound: return kErrorNotFound;
    case BusErrorCode::AccessDenied: return kErrorAccessDenied;
    case BusErrorCode::Failed: return kErrorFailed;
    }
    return kErrorFailed;
}

int set_bus_error(sd_bus_error* ret_error, const BusError& error) {
    // sd_bus_error_set() copies both strings; it returns the negative errno
    // sd-bus maps the name to (EIO for names it does not know).
    int r = sd_bus_error_set(ret_error, error_name(error.code), error.message.c_str());
    return r < 0 ? r : -EIO;
}

}  // namespace bpfwarden::dbus
