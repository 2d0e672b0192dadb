#include "support/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/unique_fd.h"

namespace bpfwarden {

Result<std::vector<unsigned char>> read_regular_file(const std::filesystem::path& path, size_t max_bytes,
                                                     const std::string& what, bool allow_empty) {
    const std::string where = what + " '" + path.string() + "'";
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd)
        return fail_errno(errno == ELOOP ? where + " is a symlink, refusing it" : "open " + where);
    struct stat st {};
    if (fstat(fd.get(), &st) != 0)
        return fail_errno("stat " + where);
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, where + " is not a regular file");
    if (st.st_size == 0 && !allow_empty)
        return fail(EINVAL, where + " is empty");
    if (static_cast<uintmax_t>(st.st_size) > max_bytes)
        return fail(EFBIG, where + " is larger than " + std::to_string(max_bytes) + " bytes");

    std::vector<unsigned char> bytes(static_cast<size_t>(st.st_size));
    if (auto filled = read_exactly(fd.get(), std::span<unsigned char>(bytes), where); !filled)
        return std::unexpected(filled.error());
    return bytes;
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
