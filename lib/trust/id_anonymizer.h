// Process ids in exported events replaced by a salted hash: the same id gives
// the same token under one salt (the events of one process still group), and
// without the salt the id cannot be recovered by trying all 4 million pids.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "support/error.h"

namespace bpfwarden {

class IdAnonymizer {
public:
    static constexpr size_t kSaltBytes = 32;

    explicit IdAnonymizer(std::vector<unsigned char> salt) : salt_(std::move(salt)) {}

    // The salt in `path` (exactly kSaltBytes bytes, a regular file readable
    // only by its owner); created with fresh random bytes, mode 0600, when
    // missing. Errors name the file and the reason.
    static Result<IdAnonymizer> from_salt_file(const std::filesystem::path& path);

    // "h:" and the first 12 hex digits of HMAC-SHA256(salt, decimal id).
    std::string token(uint32_t id) const;

    // An event line as format_event_json() / format_event_text() (support/
    // event.h) writes it, with the values of pid, tgid and target replaced by
    // token(); anything inside a quoted string is left as it is.
    std::string anonymize_json(std::string_view json) const;
    std::string anonymize_text(std::string_view line) const;

private:
    std::string rewrite(std::string_view line, bool json) const;

    std::vector<unsigned char> salt_;
};

}  // namespace bpfwarden
