#include "inspection/bpf_holders.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <memory>
#include <optional>

namespace bpfwarden {
namespace {

struct DirClose {
    void operator()(DIR* dir) const { closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirClose>;

// What /proc/<pid>/fd/<n> points to for an fd of `type`. A link created by
// BPF_LINK_CREATE is "bpf_link", one opened from a pin or by id "bpf-link".
bool is_fd_of(BpfObjectType type, const std::string& target) {
    switch (type) {
    case BpfObjectType::Program: return target == "anon_inode:bpf-prog";
    case BpfObjectType::Map: return target == "anon_inode:bpf-map";
    case BpfObjectType::Link: return target == "anon_inode:bpf_link" || target == "anon_inode:bpf-link";
    }
    return false;
}

const char* fdinfo_key(BpfObjectType type) {
    switch (type) {
    case BpfObjectType::Program: return "prog_id:";
    case BpfObjectType::Map: return "map_id:";
    case BpfObjectType::Link: return "link_id:";
    }
    return "";
}

std::optional<uint32_t> id_in_fdinfo(const std::string& path, const char* key) {
    std::ifstream info(path);
    std::string line;
    while (std::getline(info, line)) {
        if (!line.starts_with(key))
            continue;
        std::string_view value(line);
        value.remove_prefix(std::string_view(key).size());
        while (!value.empty() && (value.front() == '\t' || value.front() == ' '))
            value.remove_prefix(1);
        uint32_t id = 0;
        if (std::from_chars(value.data(), value.data() + value.size(), id).ec == std::errc())
            return id;
    }
    return std::nullopt;
}

std::string read_link(const std::string& path) {
    char target[256];
    ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    return n < 0 ? std::string() : std::string(target, static_cast<size_t>(n));
}

std::string first_line(const std::string& path) {
    std::ifstream file(path);
    std::string line;
    std::getline(file, line);
    return line;
}

// The ids of `type` that process `pid` holds open, among `wanted`.
std::vector<uint32_t> held_by(const std::string& pid, BpfObjectType type, const std::vector<uint32_t>& wanted) {
    std::vector<uint32_t> found;
    std::string fd_dir = "/proc/" + pid + "/fd";
    DirPtr fds(opendir(fd_dir.c_str()));
    if (!fds)
        return found;
    while (dirent* fd = readdir(fds.get())) {
        if (fd->d_name[0] == '.')
            continue;
        if (!is_fd_of(type, read_link(fd_dir + "/" + fd->d_name)))
            continue;
        auto id = id_in_fdinfo("/proc/" + pid + "/fdinfo/" + fd->d_name, fdinfo_key(type));
        if (id && std::find(wanted.begin(), wanted.end(), *id) != wanted.end() &&
            std::find(found.begin(), found.end(), *id) == found.end())
            found.push_back(*id);
    }
    return found;
}

}  // namespace

std::string BpfHolder::describe() const { return "pid " + std::to_string(pid) + " (" + comm + ")"; }

std::map<uint32_t, std::vector<BpfHolder>> find_bpf_holders(BpfObjectType type, const std::vector<uint32_t>& ids) {
    std::map<uint32_t, std::vector<BpfHolder>> holders;
    if (ids.empty())
        return holders;
    DirPtr proc(opendir("/proc"));
    if (!proc)
        return holders;
    while (dirent* entry = readdir(proc.get())) {
        std::string pid = entry->d_name;
        if (pid.empty() || !std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        auto found = held_by(pid, type, ids);
        if (found.empty())
            continue;
        BpfHolder holder{std::stoi(pid), first_line("/proc/" + pid + "/comm"), read_link("/proc/" + pid + "/exe")};
        for (uint32_t id : found)
            holders[id].push_back(holder);
    }
    return holders;
}

}  // namespace bpfwarden
