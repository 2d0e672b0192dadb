// Where bpfwarden pins its kernel objects in bpffs.
//
//   <root>/links/<program>   one pinned link per attached program
//   <root>/maps/<map>        shared and policy maps
//   <root>/maps/<object>_counters  each object's .bss (its counters)
//
// bpffs refuses names containing '.', hence the underscores.
//
// The root and its subdirectories are 0700 root: only root may reach the pins.
// Pins are replaced by pinning beside the old one and renaming over it, so a
// pin path never stops naming a live object ("pin then rename", never
// "unpin then pin").
#pragma once

#include <filesystem>
#include <string>

#include "support/error.h"
#include "support/unique_fd.h"

namespace bpfwarden {

class PinLayout {
public:
    static constexpr const char* kDefaultRoot = "/sys/fs/bpf/bpfwarden";

    explicit PinLayout(std::filesystem::path root = kDefaultRoot) : root_(std::move(root)) {}

    const std::filesystem::path& root() const { return root_; }
    std::filesystem::path links_dir() const { return root_ / "links"; }
    std::filesystem::path maps_dir() const { return root_ / "maps"; }
    std::filesystem::path link_pin(const std::string& program) const { return links_dir() / program; }
    std::filesystem::path map_pin(const std::string& map) const { return maps_dir() / map; }
    std::filesystem::path counters_pin(const std::string& object) const { return maps_dir() / (object + "_counters"); }

    // Creates root, links/ and maps/ with mode 0700; refuses a root that is
    // not on bpffs.
    Result<void> create() const;

    // Pins `fd` at `path`, atomically replacing whatever was pinned there.
    Result<void> pin_replacing(int fd, const std::filesystem::path& path) const;

    // bpf_obj_get() of a pin; ENOENT when it does not exist. Read-write for
    // maps: with self-protection on, only bpfwarden itself gets that.
    static Result<UniqueFd> open_pin(const std::filesystem::path& path);
    // The same read-only (maps): what anyone may inspect.
    static Result<UniqueFd> open_pin_read_only(const std::filesystem::path& path);

private:
    std::filesystem::path root_;
};

// True when `path` is on a bpf filesystem.
bool is_bpffs(const std::filesystem::path& path);

}  // namespace bpfwarden
