#include "loading/pin_layout.h"

#include <bpf/bpf.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>

namespace bpfwarden {

bool is_bpffs(const std::filesystem::path& path) {
    struct statfs fs{};
    return statfs(path.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC;
}

namespace {

Result<void> make_private_dir(const std::filesystem::path& dir) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return fail_errno("create pin directory '" + dir.string() + "'");
    // An existing directory may have been created with a looser mode. Only
    // then chmod: a needless one still reports IN_ATTRIB to the watchdog.
    struct stat st{};
    if (stat(dir.c_str(), &st) == 0 && (st.st_mode & 07777) == 0700)
        return {};
    if (chmod(dir.c_str(), 0700) != 0)
        return fail_errno("restrict pin directory '" + dir.string() + "' to 0700");
    return {};
}

}  // namespace

Result<void> PinLayout::create() const {
    if (!is_bpffs(root_.parent_path()))
        return fail(ENOTSUP,
                    "'" + root_.parent_path().string() + "' is not a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)");
    for (const auto& dir : {root_, links_dir(), maps_dir()})
        if (auto made = make_private_dir(dir); !made)
            return made;
    return {};
}

Result<void> PinLayout::pin_replacing(int fd, const std::filesystem::path& path) const {
    std::filesystem::path staging = path;
    staging += "__staging";
    unlink(staging.c_str());  // a leftover from an interrupted swap names nothing we need
    if (int err = bpf_obj_pin(fd, staging.c_str()); err)
        return std::unexpected(Error::from_libbpf(err, "pin '" + staging.string() + "'"));
    if (rename(staging.c_str(), path.c_str()) != 0) {
        auto error = Error::from_errno("rename pin '" + staging.string() + "' to '" + path.string() + "'");
        unlink(staging.c_str());
        return std::unexpected(error);
    }
    return {};
}

Result<UniqueFd> PinLayout::open_pin(const std::filesystem::path& path) {
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0)
        return std::unexpected(Error::from_libbpf(fd, "open pin '" + path.string() + "'"));
    return UniqueFd(fd);
}

Result<UniqueFd> PinLayout::open_pin_read_only(const std::filesystem::path& path) {
    LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
    int fd = bpf_obj_get_opts(path.c_str(), &opts);
    if (fd < 0)
        return std::unexpected(Error::from_libbpf(fd, "open pin '" + path.string() + "' read-only"));
    return UniqueFd(fd);
}

}  // namespace bpfwarden
