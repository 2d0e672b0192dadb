// Reading a file that decides what runs in the kernel: exactly once, never
// through a symlink, only if it is a regular file of bounded size.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "error.h"

namespace bpfwarden {

// `what` names the file in errors ("BPF image", "manifest"). Empty files are
// refused unless `allow_empty`.
Result<std::vector<unsigned char>> read_regular_file(const std::filesystem::path& path, size_t max_bytes,
                                                     const std::string& what, bool allow_empty = false);

}  // namespace bpfwarden
