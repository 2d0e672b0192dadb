#include "support/error.h"

#include <cstring>

namespace bpfwarden {

std::string_view to_string(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::Failed: return "failed";
    case ErrorKind::InvalidArgument: return "invalid-argument";
    case ErrorKind::PolicyInvalid: return "policy-invalid";
    case ErrorKind::NotFound: return "not-found";
    case ErrorKind::PermissionDenied: return "permission-denied";
    case ErrorKind::KernelRefused: return "kernel-refused";
    case ErrorKind::Integrity: return "integrity";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::LimitExceeded: return "limit-exceeded";
    }
    return "failed";
}

ErrorKind Error::kind_of_errno(int errnum) {
    switch (errnum) {
    case EINVAL: return ErrorKind::InvalidArgument;
    case ENOENT:
    case ENOTDIR:
    case ESRCH: return ErrorKind::NotFound;
    case EPERM:
    case EACCES: return ErrorKind::PermissionDenied;
    case EBADMSG:
    case EKEYREJECTED:
    case ENOKEY: return ErrorKind::Integrity;
    case ENOTSUP:
    case ENOSYS: return ErrorKind::Unsupported;
    case E2BIG:
    case EFBIG:
    case ENOSPC:
    case ENOMEM: return ErrorKind::LimitExceeded;
    default: return ErrorKind::Failed;
    }
}

std::string Error::message() const {
    if (!from_system_ || errnum_ == 0)
        return context_ + note_;
    return context_ + ": " + std::strerror(errnum_) + note_;
}

}  // namespace bpfwarden
