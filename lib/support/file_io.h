// Reading a file that decides what runs in the kernel: exactly once, never
// through a symlink, only if it is a regular file of bounded size.
#pragma once

#include <sys/stat.h>

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

// Whether a file or directory that decides what the kernel enforces can only
// have been written by someone trusted: its owner is root or this process's
// user, and neither its group nor others may write it (EPERM otherwise,
// naming `where`, the owner and mode, and the fix).
Result<void> check_written_only_by_owner(const struct stat& st, const std::string& where);

// read_config_file, for a file that must also pass check_written_only_by_owner
// (checked on the opened file, the symlink's target when it is one).
Result<std::string> read_trusted_config_file(const std::filesystem::path& path, size_t max_bytes,
                                             const std::string& what);

}  // namespace bpfwarden
