#include "loading/self_state.h"

#include <bpf/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>

#include "loading/bpf_objects.h"
#include "support/unique_fd.h"

namespace bpfwarden {
namespace {

UniqueFd open_own_pidfd() { return UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0))); }

template <typename Value>
bool read_single(const PinLayout& pins, const char* map, Value& out) {
    auto fd = PinLayout::open_pin_read_only(pins.map_pin(map));
    uint32_t zero = 0;
    return fd && bpf_map_lookup_elem(fd->get(), &zero, &out) == 0;
}

}  // namespace

uint64_t monotonic_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
}

Result<SelfState> read_self_state(const PinLayout& pins) {
    SelfState state;
    auto settings = PinLayout::open_pin_read_only(pins.map_pin(kSettingsMap));
    if (!settings) {
        if (settings.error().errnum() == ENOENT)
            return state;
        return fail(settings.error());
    }
    state.store = true;
    std::error_code ignored;
    state.guarded = std::filesystem::exists(pins.link_pin(kSelfGuardLink), ignored);
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(settings->get(), &zero, &state.settings) == 0)
        state.protect = state.settings.protect != 0;
    bw_lift lift{};
    if (read_single(pins, kLiftMap, lift)) {
        state.lifted_until_ns = lift.until_ns;
        state.lifted = lift.until_ns > monotonic_ns();
    }
    auto tasks = PinLayout::open_pin_read_only(pins.map_pin(kTasksMap));
    UniqueFd pidfd = open_own_pidfd();
    bw_task task{};
    if (tasks && pidfd) {
        int key = pidfd.get();
        if (bpf_map_lookup_elem(tasks->get(), &key, &task) == 0) {
            state.self = (task.flags & BW_TASK_SELF) != 0;
            state.role = task.role;
        }
    }
    return state;
}

Result<void> mark_self(const PinLayout& pins, uint32_t role) {
    auto tasks = PinLayout::open_pin(pins.map_pin(kTasksMap));
    if (!tasks)
        return fail(tasks.error().wrap("mark this process as bpfwarden"));
    UniqueFd pidfd = open_own_pidfd();
    if (!pidfd)
        return fail_errno("mark this process as bpfwarden: pidfd_open");
    int key = pidfd.get();
    bw_task task{BW_TASK_SELF, role};
    if (int err = bpf_map_update_elem(tasks->get(), &key, &task, BPF_ANY); err)
        return fail(Error::from_libbpf(err, "mark this process as bpfwarden"));
    return {};
}

std::string refusal_message(const std::string& who) {
    return "self-protection is on and this " + who +
           " is not the bpfwarden service: it was not started by systemd from its unit (or its code was changed "
           "at start: LD_PRELOAD, ptrace), so it may not change bpfwarden's programs, maps or pins. Start it with "
           "systemctl, or lift protection first (bpfwardenctl unlock)";
}

}  // namespace bpfwarden
