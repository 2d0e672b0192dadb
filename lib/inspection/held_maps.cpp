#include "inspection/held_maps.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace bpfwarden {

Result<uint32_t> map_id_of(int fd) {
    bpf_map_info info{};
    uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &length) != 0)
        return fail_errno("read map info");
    return info.id;
}

Result<bool> map_is_frozen(int fd) {
    // Only fdinfo tells (bpf_map_info has no such field): "frozen:\t1".
    std::string path = "/proc/self/fdinfo/" + std::to_string(fd);
    UniqueFd info(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!info)
        return fail_errno("open '" + path + "'");
    char text[1024];
    ssize_t n = read(info.get(), text, sizeof(text) - 1);
    if (n < 0)
        return fail_errno("read '" + path + "'");
    text[n] = '\0';
    const char* frozen = std::strstr(text, "\nfrozen:\t");
    return frozen && frozen[std::strlen("\nfrozen:\t")] == '1';
}

void HeldMaps::hold(const PinLayout& pins, const std::vector<std::string>& names) {
    held_.clear();
    for (const auto& name : names) {
        auto fd = PinLayout::open_pin(pins.map_pin(name));
        if (!fd)
            continue;
        if (auto id = map_id_of(fd->get()))
            held_.emplace(name, Held{std::move(*fd), *id});
    }
}

int HeldMaps::fd(const std::string& name) const {
    auto it = held_.find(name);
    return it == held_.end() ? -1 : it->second.fd.get();
}

std::optional<uint32_t> HeldMaps::id(const std::string& name) const {
    auto it = held_.find(name);
    if (it == held_.end())
        return std::nullopt;
    return it->second.id;
}

std::string HeldMaps::pin_problem(const PinLayout& pins, const std::string& name, const Held& held) const {
    std::string path = pins.map_pin(name).string();
    auto fd = PinLayout::open_pin(path);
    if (!fd)
        return "map pin '" + path + "': " + fd.error().message();
    auto id = map_id_of(fd->get());
    if (!id)
        return "map pin '" + path + "': " + id.error().message();
    if (*id != held.id)
        return "map pin '" + path + "' names map id " + std::to_string(*id) + ", not ours (id " +
               std::to_string(held.id) + ")";
    return "";
}

std::vector<std::string> HeldMaps::check(const PinLayout& pins) const {
    std::vector<std::string> problems;
    for (const auto& [name, held] : held_)
        if (auto problem = pin_problem(pins, name, held); !problem.empty())
            problems.push_back(std::move(problem));
    return problems;
}

Result<std::vector<std::string>> HeldMaps::repin(const PinLayout& pins) const {
    std::vector<std::string> done;
    for (const auto& [name, held] : held_) {
        if (pin_problem(pins, name, held).empty())
            continue;
        if (auto pinned = pins.pin_replacing(held.fd.get(), pins.map_pin(name)); !pinned)
            return std::unexpected(pinned.error());
        done.push_back("re-pinned the held map " + name);
    }
    return done;
}

}  // namespace bpfwarden
