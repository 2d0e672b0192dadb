#include "loading/pin_removal.h"

#include <bpf/bpf.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "loading/bpf_objects.h"
#include "support/unique_fd.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

std::string filesystem_name(long type) {
    switch (type) {
    case BPF_FS_MAGIC: return "bpf";
    case TMPFS_MAGIC: return "tmpfs";
    case EXT4_SUPER_MAGIC: return "ext4";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case XFS_SUPER_MAGIC: return "xfs";
    case SYSFS_MAGIC: return "sysfs";
    case PROC_SUPER_MAGIC: return "proc";
    default: {
        char hex[32];
        snprintf(hex, sizeof(hex), "0x%lx", type);
        return std::string("filesystem type ") + hex;
    }
    }
}

bool listed(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// Whether the object pinned at `pin` is what bpfwarden pins under that
// name: a link running the program of that name, or a map of that name (a
// .bss map for "<object>_counters"). Another tool's pin that merely shares a
// name is not ours. Fills in the link's id.
bool is_own_object(OwnPin& pin, const std::string& name) {
    // Read-only: all an inspection needs, and all self-protection lets others have.
    LIBBPF_OPTS(bpf_obj_get_opts, read_only, .file_flags = pin.link ? 0u : static_cast<unsigned>(BPF_F_RDONLY));
    UniqueFd fd(bpf_obj_get_opts(pin.path.c_str(), &read_only));
    if (!fd)
        return false;
    if (pin.link) {
        bpf_link_info info{};
        uint32_t length = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0)
            return false;
        pin.link_id = info.id;
        pin.prog_id = info.prog_id;
        UniqueFd prog(bpf_prog_get_fd_by_id(info.prog_id));
        bpf_prog_info prog_info{};
        uint32_t prog_length = sizeof(prog_info);
        if (!prog || bpf_obj_get_info_by_fd(prog.get(), &prog_info, &prog_length) != 0)
            return false;
        return name.compare(0, BPF_OBJ_NAME_LEN - 1, prog_info.name) == 0;
    }
    bpf_map_info info{};
    uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0)
        return false;
    std::string map_name = info.name;
    if (name.ends_with("_counters"))
        return map_name.ends_with(".bss");
    return name.compare(0, BPF_OBJ_NAME_LEN - 1, map_name) == 0;
}

// Sorts the entries of one of our directories into own pins and foreign ones.
void inventory_dir(const fs::path& dir, const std::vector<std::string>& own_names, bool links, PinInventory& out) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        std::string name = entry.path().filename().string();
        std::string base = name.ends_with("__staging") ? name.substr(0, name.size() - 9) : name;
        OwnPin pin{entry.path(), links, 0, 0, links ? base : std::string()};
        if (!entry.is_directory(ec) && listed(own_names, base) && is_own_object(pin, base))
            out.own.push_back(std::move(pin));
        else
            out.foreign.push_back(entry.path());
    }
}

}  // namespace

Result<PinInventory> take_pin_inventory(const PinLayout& pins) {
    const fs::path& root = pins.root();
    struct stat st{};
    if (lstat(root.c_str(), &st) != 0)
        return fail_errno("pin root '" + root.string() + "'");
    struct statfs fsinfo{};
    if (statfs(root.c_str(), &fsinfo) != 0)
        return fail_errno("statfs '" + root.string() + "'");
    if (fsinfo.f_type != BPF_FS_MAGIC)
        return fail(EINVAL, "'" + root.string() + "' is on " + filesystem_name(static_cast<long>(fsinfo.f_type)) +
                                ", not on a bpf filesystem: it is not a bpfwarden pin root");
    if (!S_ISDIR(st.st_mode))
        return fail(EINVAL, "'" + root.string() + "' is not a directory: it is not a bpfwarden pin root");

    PinInventory inventory{pins, {}, {}};
    OwnPinNames names = own_pin_names();
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root, ec)) {
        std::string name = entry.path().filename().string();
        if (name == "links" && entry.is_directory(ec))
            inventory_dir(entry.path(), names.links, true, inventory);
        else if (name == "maps" && entry.is_directory(ec))
            inventory_dir(entry.path(), names.maps, false, inventory);
        else
            inventory.foreign.push_back(entry.path());
    }
    if (ec)
        return fail_system(ec.value(), "list '" + root.string() + "'");
    if (inventory.own.empty())
        return fail(EINVAL, "'" + root.string() + "' holds no bpfwarden pins (" +
                                (inventory.foreign.empty()
                                     ? std::string("it is empty")
                                     : std::to_string(inventory.foreign.size()) + " other entries, such as '" +
                                           inventory.foreign.front().filename().string() + "'") +
                                "): it is not a bpfwarden pin root");
    return inventory;
}

bool has_own_pins(const PinLayout& pins) { return take_pin_inventory(pins).has_value(); }

std::vector<AttachedProgram> attached_programs(const PinInventory& inventory) {
    std::vector<AttachedProgram> attached;
    std::vector<uint32_t> ids;
    for (const auto& pin : inventory.own) {
        if (!pin.link || pin.link_id == 0)
            continue;
        UniqueFd fd(bpf_link_get_fd_by_id(pin.link_id));
        if (!fd) {
            // The link is gone; its program stays attached until the kernel's
            // deferred release has run.
            if (pin.prog_id && UniqueFd(bpf_prog_get_fd_by_id(pin.prog_id)))
                attached.push_back({pin.program, pin.link_id, {}, true});
            continue;
        }
        attached.push_back({pin.program, pin.link_id, {}});
        ids.push_back(pin.link_id);
    }
    auto holders = find_bpf_holders(BpfObjectType::Link, ids);
    for (auto& program : attached)
        program.held_by = holders[program.link_id];
    return attached;
}

PinRemovalReport remove_own_pins(const PinInventory& inventory) {
    PinRemovalReport report;
    for (const auto& pin : inventory.own) {
        if (unlink(pin.path.c_str()) == 0)
            report.removed.push_back(pin.path);
        else if (errno != ENOENT)
            report.left.push_back(pin.path.string() + ": " + Error::from_errno("unlink").message());
    }
    for (const auto& entry : inventory.foreign)
        report.left.push_back(entry.string() + ": not bpfwarden's, left in place");
    const PinLayout& pins = inventory.pins;
    for (const auto& dir : {pins.links_dir(), pins.maps_dir(), pins.root()})
        if (rmdir(dir.c_str()) == 0 && dir == pins.root())
            report.root_removed = true;
    // A link without any other reference is released after its pin goes, and
    // the kernel detaches its program asynchronously (a trampoline update per
    // LSM hook, seconds for all of ours): wait for that, up to a limit.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
        report.still_attached = attached_programs(inventory);
        bool only_held = std::all_of(report.still_attached.begin(), report.still_attached.end(),
                                     [](const AttachedProgram& p) { return !p.held_by.empty(); });
        if (only_held || std::chrono::steady_clock::now() > deadline)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return report;
}

}  // namespace bpfwarden
