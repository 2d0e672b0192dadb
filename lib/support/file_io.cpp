#include "support/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "support/unique_fd.h"

namespace bpfwarden {

namespace {

struct OpenedFile {
    UniqueFd fd;
    struct stat st;  // of the opened file: st_size is what to read
};

// Opens `path` read-only without blocking (a FIFO must not hang us) and
// checks it is a regular file of at most `max_bytes`.
Result<OpenedFile> open_regular(const std::filesystem::path& path, size_t max_bytes, const std::string& where,
                                bool follow_symlinks, bool allow_empty) {
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (follow_symlinks ? 0 : O_NOFOLLOW);
    UniqueFd fd(open(path.c_str(), flags));
    if (!fd)
        return fail_errno(errno == ELOOP && !follow_symlinks ? where + " is a symlink, refusing it" : "open " + where);
    struct stat st{};
    if (fstat(fd.get(), &st) != 0)
        return fail_errno("stat " + where);
    if (S_ISDIR(st.st_mode))
        return fail(EISDIR, where + " is a directory, not a file");
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, where + " is not a regular file");
    if (st.st_size == 0 && !allow_empty)
        return fail(EINVAL, where + " is empty");
    if (static_cast<uintmax_t>(st.st_size) > max_bytes)
        return fail(EFBIG, where + " is larger than " + std::to_string(max_bytes) + " bytes");
    return OpenedFile{std::move(fd), st};
}

}  // namespace

Result<std::vector<unsigned char>> read_regular_file(const std::filesystem::path& path, size_t max_bytes,
                                                     const std::string& what, bool allow_empty) {
    const std::string where = what + " '" + path.string() + "'";
    auto opened = open_regular(path, max_bytes, where, false, allow_empty);
    if (!opened)
        return std::unexpected(opened.error());
    std::vector<unsigned char> bytes(static_cast<size_t>(opened->st.st_size));
    if (auto filled = read_exactly(opened->fd.get(), std::span<unsigned char>(bytes), where); !filled)
        return std::unexpected(filled.error());
    return bytes;
}

namespace {

Result<std::string> read_config(const std::filesystem::path& path, size_t max_bytes, const std::string& what,
                                bool trusted_only) {
    const std::string where = what + " '" + path.string() + "'";
    auto opened = open_regular(path, max_bytes, where, true, true);
    if (!opened)
        return std::unexpected(opened.error());
    if (trusted_only)
        if (auto trusted = check_written_only_by_owner(opened->st, where); !trusted)
            return std::unexpected(trusted.error());
    std::string text(static_cast<size_t>(opened->st.st_size), '\0');
    if (auto filled = read_exactly(opened->fd.get(), std::span<char>(text), where); !filled)
        return std::unexpected(filled.error());
    return text;
}

}  // namespace

Result<std::string> read_config_file(const std::filesystem::path& path, size_t max_bytes, const std::string& what) {
    return read_config(path, max_bytes, what, false);
}

Result<std::string> read_trusted_config_file(const std::filesystem::path& path, size_t max_bytes,
                                             const std::string& what) {
    return read_config(path, max_bytes, what, true);
}

Result<void> check_written_only_by_owner(const struct stat& st, const std::string& where) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return fail(ErrorKind::PermissionDenied, EPERM,
                    where + " is owned by uid " + std::to_string(st.st_uid) +
                        ", neither root nor this process's user: whoever owns it decides what the kernel enforces; "
                        "refusing it (chown root)");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return fail(ErrorKind::PermissionDenied, EPERM,
                    where + " is writable by " + ((st.st_mode & S_IWOTH) ? "everyone" : "its group") + " (mode " +
                        mode + "): whoever can write it decides what the kernel enforces; refusing it (chmod go-w)");
    return {};
}

Result<void> read_exactly(int fd, std::span<char> buffer, const std::string& where) {
    size_t done = 0;
    while (done < buffer.size()) {
        ssize_t n = read(fd, buffer.data() + done, buffer.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("read " + where);
        if (n == 0)
            return fail(EIO, where + " shrank while being read");
        done += static_cast<size_t>(n);
    }
    return {};
}

}  // namespace bpfwarden
