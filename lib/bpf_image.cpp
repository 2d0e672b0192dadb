#include "bpf_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unique_fd.h"

namespace bpfwarden {

Result<BpfImage> read_image(const std::filesystem::path& dir, const std::string& name) {
    BpfImage image{name, dir / (name + ".bpf.o"), {}};
    const std::string where = "BPF image '" + image.source.string() + "'";

    UniqueFd fd(open(image.source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd)
        return fail_errno(errno == ELOOP ? where + " is a symlink, refusing it" : "open " + where);
    struct stat st {};
    if (fstat(fd.get(), &st) != 0)
        return fail_errno("stat " + where);
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, where + " is not a regular file");
    if (st.st_size == 0)
        return fail(EINVAL, where + " is empty");
    if (static_cast<std::uintmax_t>(st.st_size) > kMaxImageBytes)
        return fail(EFBIG, where + " is larger than " + std::to_string(kMaxImageBytes) + " bytes");

    image.bytes.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < image.bytes.size()) {
        ssize_t n = read(fd.get(), image.bytes.data() + done, image.bytes.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("read " + where);
        if (n == 0)
            return fail(EIO, where + " shrank while being read");
        done += static_cast<size_t>(n);
    }
    return image;
}

}  // namespace bpfwarden
