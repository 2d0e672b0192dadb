#include "error.h"

#include <cstring>

namespace bpfwarden {

std::string Error::message() const {
    if (errnum_ == 0)
        return context_;
    return context_ + ": " + std::strerror(errnum_);
}

}  // namespace bpfwarden
