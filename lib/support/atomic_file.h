// Replacing a small file so that readers see the old or the new content,
// never a mix, and so that nothing bpfwarden does not own gets overwritten.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string_view>

#include "support/error.h"

namespace bpfwarden {

// Decides whether an existing file at the target may be replaced, from its
// content (at most 64 KiB of it); refusing names the file.
using ReplaceCheck = std::function<bool(std::string_view existing)>;

// Writes `content` to a new hidden file beside `path` (".<name>.XXXXXX":
// created, never truncated), syncs it, and renames it over `path`, then syncs
// the directory. An existing `path` is replaced only if it is a regular file
// and `may_replace` (when given) accepts its content; otherwise EEXIST and
// nothing changes.
Result<void> write_file_atomically(const std::filesystem::path& path, std::string_view content, mode_t mode,
                                   const ReplaceCheck& may_replace = {});

}  // namespace bpfwarden
