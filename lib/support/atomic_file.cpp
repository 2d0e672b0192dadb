#include "support/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "support/unique_fd.h"

namespace bpfwarden {
namespace {

Result<void> write_all(int fd, std::string_view content, const std::string& where) {
    while (!content.empty()) {
        ssize_t n = ::write(fd, content.data(), content.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("write '" + where + "'");
        content.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

// Whether the file now at `path` may be replaced (absent counts as yes).
Result<void> check_replaceable(const std::filesystem::path& path, const ReplaceCheck& may_replace) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT)
            return {};
        if (errno == ELOOP)
            return fail(EEXIST, "'" + path.string() + "' is a symbolic link: refusing to replace it");
        return fail_errno("open '" + path.string() + "'");
    }
    struct stat st{};
    if (fstat(fd.get(), &st) != 0)
        return fail_errno("stat '" + path.string() + "'");
    if (!S_ISREG(st.st_mode))
        return fail(EEXIST, "'" + path.string() + "' is not a regular file: refusing to replace it");
    if (!may_replace)
        return {};
    std::string existing(64 * 1024, '\0');
    ssize_t n = ::read(fd.get(), existing.data(), existing.size());
    if (n < 0)
        return fail_errno("read '" + path.string() + "'");
    existing.resize(static_cast<size_t>(n));
    if (!may_replace(existing))
        return fail(EEXIST, "'" + path.string() + "' exists and was not written by bpfwarden: refusing to replace it");
    return {};
}

}  // namespace

Result<void> write_file_atomically(const std::filesystem::path& path, std::string_view content, mode_t mode,
                                   const ReplaceCheck& may_replace) {
    if (auto ok = check_replaceable(path, may_replace); !ok)
        return ok;
    std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
    std::string staging = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
    UniqueFd fd(mkostemp(staging.data(), O_CLOEXEC));
    if (!fd)
        return fail_errno("create a temporary file in '" + dir.string() + "'");
    auto discard = [&](Error error) {
        ::unlink(staging.c_str());
        return std::unexpected(std::move(error));
    };
    if (auto written = write_all(fd.get(), content, staging); !written)
        return discard(written.error());
    if (fchmod(fd.get(), mode) != 0 || fsync(fd.get()) != 0)
        return discard(Error::from_errno("write '" + staging + "'"));
    fd.reset();
    if (::rename(staging.c_str(), path.c_str()) != 0)
        return discard(Error::from_errno("rename '" + staging + "' to '" + path.string() + "'"));
    UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd || fsync(dir_fd.get()) != 0)
        return fail_errno("sync directory '" + dir.string() + "'");
    return {};
}

}  // namespace bpfwarden
