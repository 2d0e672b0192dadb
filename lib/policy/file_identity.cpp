#include "policy/file_identity.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <utility>

namespace bpfwarden {
namespace {

constexpr long kF2fsMagic = 0xF2F52010;

// The filesystems whose deleted inode numbers come back for new files: the
// same list the programs check (bw_fs_reuses_inode_numbers).
bool reuses_inode_numbers(long magic) {
    return magic == EXT4_SUPER_MAGIC || magic == XFS_SUPER_MAGIC || magic == BTRFS_SUPER_MAGIC || magic == kF2fsMagic;
}

template <typename T>
T read_at(const unsigned char* bytes, size_t offset) {
    T value;
    std::memcpy(&value, bytes + offset, sizeof(T));
    return value;
}

// The generation out of a file handle, per filesystem layout (the kernel's
// export operations: ext4/f2fs/xfs "ino32 + gen", xfs "ino64 + gen", btrfs
// "objectid, root, gen").
Result<uint32_t> generation_in_handle(long magic, int type, const unsigned char* fh, unsigned bytes) {
    constexpr int kIno32Gen = 1, kIno32GenParent = 2, kXfsIno64Gen = 0x81, kXfsIno64GenParent = 0x82;
    constexpr int kBtrfsWithoutParent = 0x4d, kBtrfsWithParent = 0x4e, kBtrfsWithParentRoot = 0x4f;
    if ((type == kIno32Gen || type == kIno32GenParent) && bytes >= 8)
        return read_at<uint32_t>(fh, 4);
    if (magic == XFS_SUPER_MAGIC && (type == kXfsIno64Gen || type == kXfsIno64GenParent) && bytes >= 12)
        return read_at<uint32_t>(fh, 8);
    if (magic == BTRFS_SUPER_MAGIC &&
        (type == kBtrfsWithoutParent || type == kBtrfsWithParent || type == kBtrfsWithParentRoot) && bytes >= 20)
        return read_at<uint32_t>(fh, 16);
    return fail(ENOTSUP, "unknown file handle type " + std::to_string(type));
}

Result<uint32_t> generation_of(const std::filesystem::path& path) {
    struct statfs fs{};
    if (statfs(path.c_str(), &fs) != 0)
        return fail_errno("statfs '" + path.string() + "'");
    if (!reuses_inode_numbers(static_cast<long>(fs.f_type)))
        return 0u;
    struct {
        file_handle head;
        unsigned char bytes[MAX_HANDLE_SZ];
    } handle{};
    handle.head.handle_bytes = MAX_HANDLE_SZ;
    int mount_id = 0;
    if (name_to_handle_at(AT_FDCWD, path.c_str(), &handle.head, &mount_id, AT_SYMLINK_FOLLOW) != 0)
        return fail_errno("read the generation of '" + path.string() + "' (name_to_handle_at)");
    auto gen = generation_in_handle(static_cast<long>(fs.f_type), handle.head.handle_type, handle.head.f_handle,
                                    handle.head.handle_bytes);
    if (!gen)
        return fail(gen.error().wrap("read the generation of '" + path.string() + "'"));
    return gen;
}

}  // namespace

uint64_t kernel_dev(dev_t dev) { return (static_cast<uint64_t>(major(dev)) << 20) | static_cast<uint64_t>(minor(dev)); }

bw_inode_key to_key(const FileIdentity& identity) {
    bw_inode_key key{};
    key.dev = identity.dev;
    key.ino = identity.ino;
    key.gen = identity.gen;
    key.is_dir = identity.is_dir ? 1 : 0;
    return key;
}

Result<FileIdentity> identity_of(const std::filesystem::path& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0)
        return fail_errno("stat '" + path.string() + "'");
    auto gen = generation_of(path);
    if (!gen)
        return fail(gen.error());
    return FileIdentity{kernel_dev(st.st_dev), static_cast<uint64_t>(st.st_ino), *gen, S_ISDIR(st.st_mode)};
}

namespace {

// realpath(3), or the errno.
std::pair<std::string, int> real_path(const std::string& path) {
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (!resolved)
        return {{}, errno};
    std::string out(resolved);
    free(resolved);
    return {std::move(out), 0};
}

// A name can only ever exist in a directory: below a regular file
// ("/etc/shadow/x") there is none, and keying the file would cover nothing.
void take_directory(PathTarget& target, const std::filesystem::path& dir) {
    auto identity = identity_of(dir);
    if (!identity)
        target.dir_error = identity.error().errnum();
    else if (!identity->is_dir)
        target.dir_error = ENOTDIR;
    else
        target.dir = *identity;
}

// Where a dangling symlink's target will be created: its chain followed
// (a relative target is relative to the link's directory) to the first name
// that is not a symlink. `path` itself when it is no symlink; ELOOP after
// as many links as the kernel follows.
std::pair<std::filesystem::path, int> dangling_target(std::filesystem::path path) {
    constexpr int kMaxSymlinks = 40;  // the kernel's MAXSYMLINKS
    for (int hops = 0; hops <= kMaxSymlinks; ++hops) {
        struct stat st{};
        if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode))
            return {std::move(path), 0};
        std::error_code ec;
        std::filesystem::path link = std::filesystem::read_symlink(path, ec);
        if (ec || link.empty())
            return {std::move(path), 0};
        // "dir/" names "dir": without the slash, lstat() sees the link itself.
        if (!link.has_filename() && link.has_relative_path())
            link = link.parent_path();
        path = link.is_absolute() ? link : path.parent_path() / link;
    }
    return {std::move(path), ELOOP};
}

}  // namespace

PathTarget resolve_path(const std::string& path) {
    PathTarget target;
    auto [real, err] = real_path(path);
    if (!err) {
        std::filesystem::path canonical(real);
        target.canonical = real;
        target.name = canonical.filename().string();
        if (auto identity = identity_of(canonical))
            target.file = *identity;
        else
            target.file_error = identity.error().errnum();
        take_directory(target, canonical.parent_path());
        return target;
    }
    // Nothing there (yet): the name in the real directory it would be created
    // in; for a dangling symlink, where its target will be.
    target.file_error = err;
    std::filesystem::path written(path);
    if (auto [landing, loop_err] = dangling_target(written); loop_err)
        target.file_error = loop_err;
    else
        written = std::move(landing);
    auto [dir, dir_err] = real_path(written.parent_path().string());
    target.name = written.filename().string();
    if (dir_err) {
        target.dir_error = dir_err;
        return target;
    }
    target.canonical = (std::filesystem::path(dir) / target.name).string();
    take_directory(target, dir);
    return target;
}

}  // namespace bpfwarden
