// Error and Result types shared by every bpfwarden component.
//
// Library code never logs and never throws across module boundaries: it
// returns Result<T>, whose Error carries an errno value and the context a
// person needs to act ("open '/etc/bpfwarden/keys': Permission denied").
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <utility>

namespace bpfwarden {

class Error {
public:
    Error(int errnum, std::string context) : errnum_(errnum), context_(std::move(context)) {}

    // Error from the current errno, read at construction.
    static Error from_errno(std::string context) { return Error(errno, std::move(context)); }

    // libbpf returns -errno; convert exactly once, here.
    static Error from_libbpf(long ret, std::string context) {
        return Error(ret < 0 ? static_cast<int>(-ret) : EINVAL, std::move(context));
    }

    int errnum() const { return errnum_; }
    const std::string& context() const { return context_; }

    // "context: strerror" — the form every process logs; errnum 0 means no
    // system error is behind it, and the message is the context alone.
    std::string message() const;

    // Prefix more context, outermost first: "load file_guard: open: ...".
    Error wrap(const std::string& outer) const& { return Error(errnum_, outer + ": " + context_); }

private:
    int errnum_;
    std::string context_;
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(int errnum, std::string context) {
    return std::unexpected(Error(errnum, std::move(context)));
}

inline std::unexpected<Error> fail_errno(std::string context) {
    return std::unexpected(Error::from_errno(std::move(context)));
}

inline std::unexpected<Error> fail(Error error) { return std::unexpected(std::move(error)); }

}  // namespace bpfwarden
