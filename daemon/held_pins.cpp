#include "held_pins.h"

#include <bpf/bpf.h>

#include "loading/bpf_objects.h"

namespace bpfwarden {
namespace {

uint32_t object_id(int fd, bool link) {
    if (link) {
        bpf_link_info info{};
        uint32_t length = sizeof(info);
        return bpf_obj_get_info_by_fd(fd, &info, &length) == 0 ? info.id : 0;
    }
    bpf_map_info info{};
    uint32_t length = sizeof(info);
    return bpf_obj_get_info_by_fd(fd, &info, &length) == 0 ? info.id : 0;
}

}  // namespace

void HeldPins::take(const std::filesystem::path& path, bool link, HeldByPath& held, std::vector<std::string>& changed) {
    // Read-only for maps: holding needs no more.
    auto fd = link ? PinLayout::open_pin(path) : PinLayout::open_pin_read_only(path);
    if (!fd)
        return;  // gone: keep what we hold
    uint32_t id = object_id(fd->get(), link);
    Held& slot = held[path.string()];
    if (slot.fd && slot.id == id)
        return;
    slot = Held{std::move(*fd), id};
    changed.push_back(path.filename().string());
}

std::vector<std::string> HeldPins::refresh(const PinLayout& pins) {
    std::vector<std::string> changed;
    OwnPinNames names = own_pin_names();
    for (const auto& name : names.links)
        take(pins.link_pin(name), true, links_, changed);
    for (const auto& name : names.maps)
        take(pins.map_pin(name), false, maps_, changed);
    return changed;
}

}  // namespace bpfwarden
