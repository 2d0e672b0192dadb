#include "trust/rollback_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <string>

#include "support/atomic_file.h"
#include "support/unique_fd.h"

namespace bpfwarden {
namespace {

std::string octal_mode(mode_t mode) {
    char text[8];
    snprintf(text, sizeof(text), "0%o", mode & 07777);
    return text;
}

}  // namespace

Result<uint64_t> RollbackState::highest_accepted() const {
    const std::string where = "rollback state '" + file_.string() + "'";
    UniqueFd fd(open(file_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno != ENOENT)
            return fail_errno("open " + where);
        // No floor yet (a fresh host) is fine; a state directory that does
        // not exist is a mistake that would silently skip the check.
        struct stat dir{};
        if (stat(file_.parent_path().c_str(), &dir) != 0 || !S_ISDIR(dir.st_mode))
            return fail(ENOENT, "state directory '" + file_.parent_path().string() +
                                    "' does not exist, so the anti-rollback floor cannot be read: create it "
                                    "(bpfwardenctl verify can skip the check with --no-rollback-check)");
        return uint64_t{0};
    }
    struct stat st{};
    if (fstat(fd.get(), &st) != 0)
        return fail_errno("stat " + where);
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)
        return fail(EPERM, where + " must be a regular file owned by uid " + std::to_string(geteuid()) +
                               " with mode 0600 (it is owned by uid " + std::to_string(st.st_uid) + ", mode " +
                               octal_mode(st.st_mode) + ")");
    char buffer[32] = {};
    ssize_t n = read(fd.get(), buffer, sizeof(buffer) - 1);
    if (n < 0)
        return fail_errno("read " + where);
    std::string_view text(buffer, static_cast<size_t>(n));
    if (!text.empty() && text.back() == '\n')
        text.remove_suffix(1);
    uint64_t version = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        return fail(EINVAL, where + " is corrupt: expected one decimal version number");
    return version;
}

Result<void> RollbackState::check(uint64_t version) const {
    auto floor = highest_accepted();
    if (!floor)
        return std::unexpected(floor.error());
    if (version < *floor) {
        const bool image_set = kind_ == SignedKind::ImageSet;
        return fail(EKEYREJECTED, std::string(image_set ? "manifest" : "policy bundle") + " version " +
                                      std::to_string(version) + " is older than the highest accepted version " +
                                      std::to_string(*floor) +
                                      " (rollback refused; an admin may allow it with "
                                      "'bpfwardenctl allow-downgrade " +
                                      (image_set ? "" : "--policy ") + std::to_string(version) + "')");
    }
    return {};
}

Result<void> RollbackState::accept(uint64_t version) const {
    auto floor = highest_accepted();
    if (!floor)
        return std::unexpected(floor.error());
    if (version <= *floor)
        return {};
    return store(version);
}

Result<void> RollbackState::allow_downgrade_to(uint64_t version) const { return store(version); }

Result<void> RollbackState::store(uint64_t version) const {
    // The floor file holds one number: anything else there is not ours to replace.
    auto is_floor = [](std::string_view existing) {
        return existing.find_first_not_of("0123456789\n") == std::string_view::npos;
    };
    return write_file_atomically(file_, std::to_string(version) + "\n", 0600, is_floor);
}

}  // namespace bpfwarden
