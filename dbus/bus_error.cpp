#include "bus_error.h"

#include <cerrno>

#include "names.h"

namespace bpfwarden::dbus {

const char* error_name(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::InvalidArgument: return kErrorInvalidArgument;
    case ErrorKind::PolicyInvalid: return kErrorPolicyInvalid;
    case ErrorKind::LimitExceeded: return kErrorLimitExceeded;
    case ErrorKind::NotFound: return kErrorNotFound;
    case ErrorKind::PermissionDenied: return kErrorAccessDenied;
    case ErrorKind::Failed:
    case ErrorKind::KernelRefused:
    case ErrorKind::Integrity:
    case ErrorKind::Unsupported: return kErrorFailed;
    }
    return kErrorFailed;
}

int set_bus_error(sd_bus_error* ret_error, const Error& error) {
    // sd_bus_error_set() copies both strings; it returns the negative errno
    // sd-bus maps the name to (EIO for names it does not know).
    int r = sd_bus_error_set(ret_error, error_name(error.kind()), error.message().c_str());
    return r < 0 ? r : -EIO;
}

}  // namespace bpfwarden::dbus
