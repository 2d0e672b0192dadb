// Reading a file that decides what runs in the kernel: exactly once, never
// through a symlink, only if it is a regular file of bounded size.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "support/error.h"

namespace bpfwarden {

// Fills `buffer` from `fd`, retrying short reads; EIO when the file ends
// early ("shrank while being read"). `where` names the file in errors.
Result<void> read_exactly(int fd, std::span<char> buffer, const std::string& where);
inline Result<void> read_exactly(int fd, std::span<unsigned char> buffer, const std::string& where) {
    return read_exactly(fd, {reinterpret_cast<char*>(buffer.data()), buffer.size()}, where);
}

// `what` names the file in errors ("BPF image", "manifest"). Empty files are
// refused unless `allow_empty`.
Result<std::vector<unsigned char>> read_regular_file(const std::filesystem::path& path, size_t max_bytes,
                                                     const std::string& what, bool allow_empty = false);

// A configuration file an admin edits (policy files): symlinks followed,
// empty allowed, never blocking on a FIFO, regular files only (EINVAL
// otherwise, EISDIR for a directory), at most `max_bytes` (EFBIG).
Result<std::string> read_config_file(const std::filesystem::path& path, size_t max_bytes, const std::string& what);

}  // namespace bpfwarden
