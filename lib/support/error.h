// Error and Result types shared by every bpfwarden component.
//
// Library code never logs and never throws across module boundaries: it
// returns Result<T>, whose Error says what kind of failure it is (callers
// steer on kind(), never on the text), carries an errno value, and the
// context a person needs to act ("open '/etc/bpfwarden/keys': Permission
// denied").
//
// Two sources of errors, told apart because their messages differ:
//   - the system (a syscall, libbpf, the filesystem): the errno is real and
//     its strerror text is part of the message;
//   - our own findings (a bad option, a policy line, a signature that does
//     not verify): the context says everything, and the errno only lets
//     callers and tests steer ("EINVAL: the input is wrong").
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace bpfwarden {

enum class ErrorKind {
    Failed,            // an operation did not succeed; nothing more specific is known
    InvalidArgument,   // the caller's input is wrong (an option, a D-Bus argument)
    PolicyInvalid,     // a policy file (or the merged policy) is not valid
    NotFound,          // a file, directory, pin or rule does not exist
    PermissionDenied,  // not allowed to the caller (or to us)
    KernelRefused,     // the kernel refused a BPF operation (load, attach, map update)
    Integrity,         // a signature, hash, manifest or version check failed
    Unsupported,       // this kernel or filesystem cannot do it
    LimitExceeded,     // a size or capacity limit was reached
};

// "invalid-argument", "policy-invalid", ... (stable, for JSON and logs).
std::string_view to_string(ErrorKind kind);

class Error {
public:
    // A finding of our own: the message is the context alone; `errnum`
    // classifies it (see kind_of_errno) unless a kind is given.
    Error(int errnum, std::string context) : Error(errnum, std::move(context), kind_of_errno(errnum), false) {}
    Error(ErrorKind kind, int errnum, std::string context) : Error(errnum, std::move(context), kind, false) {}

    // A real errno from the system: strerror is part of the message.
    static Error system(int errnum, std::string context) {
        return Error(errnum, std::move(context), kind_of_errno(errnum), true);
    }
    // Error from the current errno, read at construction.
    static Error from_errno(std::string context) { return system(errno, std::move(context)); }

    // libbpf returns -errno; convert exactly once, here. What the kernel
    // refuses is KernelRefused whatever the errno.
    static Error from_libbpf(long ret, std::string context) {
        int errnum = ret < 0 ? static_cast<int>(-ret) : EINVAL;
        return Error(errnum, std::move(context), errnum == ENOENT ? ErrorKind::NotFound : ErrorKind::KernelRefused,
                     true);
    }

    ErrorKind kind() const { return kind_; }
    int errnum() const { return errnum_; }
    const std::string& context() const { return context_; }
    bool from_system() const { return from_system_; }

    // "context: strerror" for system errors, the context alone for our own
    // findings: the form every process logs.
    std::string message() const;

    // Prefix more context, outermost first: "load file_guard: open: ...".
    Error wrap(const std::string& outer) const& {
        Error wrapped(errnum_, outer + ": " + context_, kind_, from_system_);
        wrapped.note_ = note_;
        return wrapped;
    }
    // Append what follows from it: "x.toml:2: unknown key; nothing was changed".
    // For a system error the note follows the strerror text.
    Error note(const std::string& consequence) const& {
        Error noted = *this;
        noted.note_ += "; " + consequence;
        return noted;
    }
    // The same error, classified as `kind` (e.g. a parse error is PolicyInvalid).
    Error as(ErrorKind kind) const& {
        Error classified = *this;
        classified.kind_ = kind;
        return classified;
    }

    // The kind an errno means when nothing more specific is known.
    static ErrorKind kind_of_errno(int errnum);

private:
    Error(int errnum, std::string context, ErrorKind kind, bool from_system)
        : kind_(kind), errnum_(errnum), from_system_(from_system), context_(std::move(context)) {}

    ErrorKind kind_;
    int errnum_;
    bool from_system_;
    std::string context_;
    std::string note_;  // "; ..." after the message
};

template <typename T>
using Result = std::expected<T, Error>;

// Our own finding (no strerror in the message).
inline std::unexpected<Error> fail(int errnum, std::string context) {
    return std::unexpected(Error(errnum, std::move(context)));
}
inline std::unexpected<Error> fail(ErrorKind kind, int errnum, std::string context) {
    return std::unexpected(Error(kind, errnum, std::move(context)));
}

// A system error: the current errno, or an explicit one (std::error_code).
inline std::unexpected<Error> fail_errno(std::string context) {
    return std::unexpected(Error::from_errno(std::move(context)));
}
inline std::unexpected<Error> fail_system(int errnum, std::string context) {
    return std::unexpected(Error::system(errnum, std::move(context)));
}

inline std::unexpected<Error> fail(Error error) { return std::unexpected(std::move(error)); }

}  // namespace bpfwarden
