// What a path names, as the BPF programs will see it: the file's identity
// (device in the kernel's encoding, inode number, and generation where the
// filesystem reuses inode numbers), and the directory and name it sits at.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "bpfwarden/abi.h"
#include "support/error.h"

namespace bpfwarden {

// stat()'s dev_t in the kernel's internal encoding, (major << 20) | minor,
// which is what the BPF programs read from inode->i_sb->s_dev.
uint64_t kernel_dev(dev_t dev);

struct FileIdentity {
    uint64_t dev = 0;  // kernel encoding (kernel_dev())
    uint64_t ino = 0;
    uint32_t gen = 0;  // i_generation on ext4, xfs, btrfs and f2fs; 0 elsewhere (as the programs read it)
    bool is_dir = false;

    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

bw_inode_key to_key(const FileIdentity& identity);

// The identity of the file `path` names, symlinks followed. ENOENT/ENOTDIR:
// nothing there.
Result<FileIdentity> identity_of(const std::filesystem::path& path);

// What a rule path stands for: the file there now (if any), and the
// directory its name is in together with that name. Symlinks are resolved,
// the last one too: the programs see the real file's entry.
struct PathTarget {
    std::optional<FileIdentity> file;
    std::optional<FileIdentity> dir;
    std::string name;       // the file's name in `dir`
    std::string canonical;  // the path with every symlink resolved
    int file_error = 0;     // why `file` is empty (errno)
    int dir_error = 0;      // why `dir` is empty (errno)

    friend bool operator==(const PathTarget&, const PathTarget&) = default;
};

// Resolves an absolute path now.
PathTarget resolve_path(const std::string& path);

}  // namespace bpfwarden
