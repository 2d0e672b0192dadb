#include "policy/scope.h"

#include <sys/stat.h>

#include <array>
#include <filesystem>

#include "bpfwarden/abi.h"

namespace bpfwarden {
namespace {

// Unit types that own a cgroup.
constexpr std::array<std::string_view, 6> kCgroupUnitSuffixes = {".service", ".scope", ".slice",
                                                                 ".socket",  ".mount", ".swap"};

constexpr std::array<std::string_view, 5> kUnitDirectories = {"/etc/systemd/system", "/run/systemd/system",
                                                              "/run/systemd/transient", "/usr/lib/systemd/system",
                                                              "/lib/systemd/system"};

bool unit_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '-' ||
           c == '_' || c == '.' || c == '@' || c == '\\';
}

bool file_exists(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0;
}

// "getty@tty1.service" → "getty@.service"; "" for a name with no instance.
std::string template_of(std::string_view unit) {
    auto at = unit.find('@');
    auto dot = unit.rfind('.');
    if (at == std::string_view::npos || dot == std::string_view::npos || dot < at)
        return {};
    return std::string(unit.substr(0, at + 1)) + std::string(unit.substr(dot));
}

}  // namespace

std::optional<std::string> unit_name_problem(std::string_view name) {
    if (name.empty())
        return "an empty unit name";
    if (name.size() > kMaxScopeUnitName)
        return "longer than " + std::to_string(kMaxScopeUnitName) + " bytes";
    for (char c : name)
        if (!unit_name_char(c))
            return "the character " + quote_for_message(std::string(1, c)) +
                   " is not allowed in unit names (letters, digits, \":-_.@\\\")";
    for (std::string_view suffix : kCgroupUnitSuffixes)
        if (name.size() > suffix.size() && name.ends_with(suffix))
            return std::nullopt;
    return "not a unit with a cgroup (expected a name ending in .service, .scope, .slice, .socket, .mount or .swap)";
}

std::optional<std::string> cgroup_path_problem(std::string_view path) {
    std::string root(kCgroupRoot);
    if (!path.starts_with(root + "/") || path.size() == root.size() + 1)
        return "outside the cgroup filesystem: name a cgroup below " + root + "/ (such as " + root +
               "/system.slice/nginx.service)";
    if (path.find("/../") != std::string_view::npos || path.ends_with("/..") ||
        path.find("/./") != std::string_view::npos || path.find("//") != std::string_view::npos)
        return "not a plain path (no \".\", \"..\" or empty components)";
    return std::nullopt;
}

uint64_t scope_key(std::string_view selector) {
    uint64_t key = bw_name_hash(reinterpret_cast<const unsigned char*>(selector.data()),
                                static_cast<__u32>(std::min<std::size_t>(selector.size(), 255)));
    // FNV over at most 255 bytes: mix in the length and the tail beyond it.
    for (std::size_t i = 255; i < selector.size(); ++i)
        key = (key ^ static_cast<unsigned char>(selector[i])) * 0x100000001b3ULL;
    key ^= selector.size();
    return key ? key : 1;
}

std::string default_slice_of(std::string_view unit) {
    if (!unit.ends_with(".slice"))
        return "system.slice";
    std::string_view stem = unit.substr(0, unit.size() - std::string_view(".slice").size());
    auto dash = stem.rfind('-');
    if (dash == std::string_view::npos || dash == 0)
        return "";
    return std::string(stem.substr(0, dash)) + ".slice";
}

bool unit_known(std::string_view unit) {
    if (unit == "-.slice" || unit == "system.slice" || unit == "user.slice" || unit == "machine.slice" ||
        unit == "init.scope")
        return true;
    std::string templ = template_of(unit);
    for (std::string_view dir : kUnitDirectories) {
        std::string base = std::string(dir) + "/";
        if (file_exists(base + std::string(unit)) || (!templ.empty() && file_exists(base + templ)))
            return true;
    }
    return false;
}

std::string ScopeSpec::selector() const {
    switch (kind) {
    case ScopeKind::Unit: return "unit=" + value + " slice=" + slice;
    case ScopeKind::Cgroup: return "cgroup=" + value;
    case ScopeKind::Uid: return "uid=" + std::to_string(id);
    case ScopeKind::Gid: return "gid=" + std::to_string(id);
    case ScopeKind::Exe: return "exe=" + value;
    }
    return "unknown";
}

std::string_view to_string(ScopeKind kind) {
    switch (kind) {
    case ScopeKind::Unit: return "unit";
    case ScopeKind::Cgroup: return "cgroup";
    case ScopeKind::Uid: return "uid";
    case ScopeKind::Gid: return "gid";
    case ScopeKind::Exe: return "exe";
    }
    return "unknown";
}

std::string_view to_string(PolicyMode mode) { return mode == PolicyMode::Audit ? "audit" : "enforce"; }

}  // namespace bpfwarden
