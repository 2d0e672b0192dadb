#include "inspection/bpf_inventory.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <toml++/toml.h>
#include <unordered_map>

#include "support/file_io.h"
#include "support/text.h"
#include "support/unique_fd.h"

namespace bpfwarden {

// ---- Names ------------------------------------------------------------------

std::string_view to_string(ObjectOwner owner) {
    switch (owner) {
    case ObjectOwner::Bpfwarden: return "bpfwarden";
    case ObjectOwner::Kernel: return "kernel";
    case ObjectOwner::Systemd: return "systemd";
    case ObjectOwner::Allowlisted: return "allowlisted";
    case ObjectOwner::Unknown: return "unknown";
    }
    return "unknown";
}

std::string HolderProcess::describe() const {
    std::string out = "pid " + std::to_string(process.pid) + " (" + process.comm;
    if (!process.exe.empty())
        out += ", " + process.exe;
    if (!unit.empty())
        out += ", " + unit;
    return out + ")";
}

namespace {

// libbpf 1.1 names the types of 6.1; later ones are named here or by number.
std::string type_name(const char* known, uint32_t type, const char* const* later, uint32_t first_later,
                      size_t later_count) {
    if (known)
        return known;
    if (type >= first_later && type - first_later < later_count)
        return later[type - first_later];
    return "type " + std::to_string(type);
}

constexpr const char* kLaterLinkTypes[] = {"netfilter", "tcx", "uprobe_multi", "netkit", "sockmap"};
constexpr uint32_t kFirstLaterLinkType = 10;

}  // namespace

std::string program_type_name(uint32_t type) {
    return type_name(libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(type)), type, nullptr, 0, 0);
}

std::string map_type_name(uint32_t type) {
    static constexpr const char* kLater[] = {"user_ringbuf", "cgrp_storage", "arena"};
    return type_name(libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type)), type, kLater, 31, std::size(kLater));
}

std::string link_type_name(uint32_t type) {
    return type_name(libbpf_bpf_link_type_str(static_cast<bpf_link_type>(type)), type, kLaterLinkTypes,
                     kFirstLaterLinkType, std::size(kLaterLinkTypes));
}

namespace {

std::string attach_type_name(uint32_t type) {
    const char* known = libbpf_bpf_attach_type_str(static_cast<bpf_attach_type>(type));
    return known ? known : "attach type " + std::to_string(type);
}

}  // namespace

// ---- Time, units ------------------------------------------------------------

int64_t boot_time_to_wall_ns(uint64_t since_boot_ns, int64_t realtime_now_ns, int64_t boottime_now_ns) {
    return realtime_now_ns - (boottime_now_ns - static_cast<int64_t>(since_boot_ns));
}

std::string format_utc(int64_t wall_ns) {
    time_t seconds = static_cast<time_t>(wall_ns / 1000000000);
    if (wall_ns < 0 && wall_ns % 1000000000 != 0)
        --seconds;
    tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

std::string unit_of_cgroup(std::string_view proc_cgroup) {
    // cgroup v2 ("0::/system.slice/foo.service"), else systemd's own v1
    // hierarchy ("1:name=systemd:/system.slice/foo.service").
    std::string_view path;
    for (std::string_view rest = proc_cgroup; !rest.empty();) {
        size_t end = rest.find('\n');
        std::string_view line = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        if (line.starts_with("0::"))
            path = line.substr(3);
        else if (path.empty() && line.find(":name=systemd:") != std::string_view::npos)
            path = line.substr(line.find(":name=systemd:") + 14);
    }
    std::string unit;
    for (size_t start = 0; start < path.size();) {
        size_t slash = path.find('/', start);
        std::string_view part =
            path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
        if ((part.size() > 8 && part.ends_with(".service")) || (part.size() > 6 && part.ends_with(".scope")))
            unit = part;
        if (slash == std::string_view::npos)
            break;
        start = slash + 1;
    }
    return unit;
}

// ---- Lookups ----------------------------------------------------------------

const ProgramRecord* Inventory::program(uint32_t id) const {
    auto found = std::find_if(programs.begin(), programs.end(), [id](const auto& p) { return p.id == id; });
    return found == programs.end() ? nullptr : &*found;
}

const LinkRecord* Inventory::link(uint32_t id) const {
    auto found = std::find_if(links.begin(), links.end(), [id](const auto& l) { return l.id == id; });
    return found == links.end() ? nullptr : &*found;
}

const MapRecord* Inventory::map(uint32_t id) const {
    auto found = std::find_if(maps.begin(), maps.end(), [id](const auto& m) { return m.id == id; });
    return found == maps.end() ? nullptr : &*found;
}

namespace {

// ---- Reading the kernel's objects -------------------------------------------

// struct bpf_link_info as the running kernel (6.18) defines the members read
// here: the system's UAPI header (6.1) lacks perf_event, tcx, netfilter and
// later link types. Checked against the header where both have a member.
struct LinkInfo {
    uint32_t type;
    uint32_t id;
    uint32_t prog_id;
    uint32_t reserved;
    union {
        struct {
            uint64_t tp_name;
            uint32_t tp_name_len;
        } raw_tracepoint;
        struct {
            uint32_t attach_type, target_obj_id, target_btf_id;
        } tracing;
        struct {
            uint64_t cgroup_id;
            uint32_t attach_type;
        } cgroup;
        struct {
            uint64_t target_name;
            uint32_t target_name_len;
            uint32_t map_id;
        } iter;
        struct {
            uint32_t netns_ino, attach_type;
        } netns;
        struct {
            uint32_t ifindex;
        } xdp;
        struct {
            uint32_t map_id;
        } struct_ops;
        struct {
            uint64_t addrs;
            uint32_t count, flags;
        } kprobe_multi;
        struct {
            uint32_t pf, hooknum;
            int32_t priority;
            uint32_t flags;
        } netfilter;
        struct {
            uint32_t ifindex, attach_type;  // tcx and netkit
        } device;
        struct {
            uint64_t path, offsets, ref_ctr_offsets, cookies;
            uint32_t path_size, count, flags, pid;
        } uprobe_multi;
        struct {
            uint32_t type, reserved;
            uint64_t name;  // tracepoint: tp_name; kprobe: func_name; uprobe: file_name
            uint32_t name_len;
        } perf_event;
        struct {
            uint32_t map_id, attach_type;
        } sockmap;
        uint8_t bytes[64];
    };
};
static_assert(offsetof(LinkInfo, raw_tracepoint) == offsetof(bpf_link_info, raw_tracepoint));
static_assert(offsetof(LinkInfo, tracing.target_btf_id) == offsetof(bpf_link_info, tracing.target_btf_id));
static_assert(offsetof(LinkInfo, cgroup.attach_type) == offsetof(bpf_link_info, cgroup.attach_type));
static_assert(offsetof(LinkInfo, iter.map_id) == offsetof(bpf_link_info, iter.map.map_id));
static_assert(offsetof(LinkInfo, netns.attach_type) == offsetof(bpf_link_info, netns.attach_type));
static_assert(sizeof(LinkInfo) >= sizeof(bpf_link_info));

enum LinkTypeNumber : uint32_t {
    kRawTracepoint = 1,
    kTracing = 2,
    kCgroup = 3,
    kIter = 4,
    kNetns = 5,
    kXdp = 6,
    kPerfEvent = 7,
    kKprobeMulti = 8,
    kStructOps = 9,
    kNetfilter = 10,
    kTcx = 11,
    kUprobeMulti = 12,
    kNetkit = 13,
    kSockmap = 14,
};

// Reads a link's info, and the name of what it is attached to for the link
// types that have one. The first call passes no buffer: each link type reads
// the union in its own layout, and a pointer offered in one layout is taken
// by another as something else (a kprobe_multi link would read it as an
// address array). Only once the type is known is the buffer offered.
Result<LinkInfo> read_link_info(int fd, std::string& name) {
    LinkInfo info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
        return fail_errno("read link info");
    if (info.type != kRawTracepoint && info.type != kPerfEvent && info.type != kIter)
        return info;
    std::array<char, 512> buffer{};
    LinkInfo named{};
    const auto pointer = reinterpret_cast<uintptr_t>(buffer.data());
    if (info.type == kRawTracepoint) {
        named.raw_tracepoint.tp_name = pointer;
        named.raw_tracepoint.tp_name_len = buffer.size();
    } else if (info.type == kIter) {
        named.iter.target_name = pointer;
        named.iter.target_name_len = buffer.size();
    } else {
        // Before 6.6 the kernel fills nothing for perf_event links: type stays 0.
        named.perf_event.name = pointer;
        named.perf_event.name_len = buffer.size();
    }
    len = sizeof(named);
    if (bpf_obj_get_info_by_fd(fd, &named, &len) != 0)
        return info;  // ENOSPC: a name longer than any there is; left unnamed
    buffer.back() = '\0';
    name = buffer.data();
    return named;
}

// BTF type names, from the kernel's BTF objects (vmlinux and modules), each
// loaded once.
class BtfNames {
public:
    std::string name(uint32_t btf_obj_id, uint32_t type_id) {
        btf* types = load(btf_obj_id);
        if (!types)
            return {};
        const btf_type* type = btf__type_by_id(types, type_id);
        const char* name = type ? btf__name_by_offset(types, type->name_off) : nullptr;
        return name ? name : "";
    }

private:
    using BtfPtr = std::unique_ptr<btf, decltype(&btf__free)>;

    btf* load(uint32_t id) {
        auto found = loaded_.find(id);
        if (found != loaded_.end())
            return found->second.get();
        BtfPtr types(btf__load_from_kernel_by_id(id), &btf__free);
        if (!types) {
            // A module's BTF is split: its type ids continue vmlinux's.
            if (!vmlinux_)
                vmlinux_ = BtfPtr(btf__load_vmlinux_btf(), &btf__free);
            if (vmlinux_)
                types = BtfPtr(btf__load_from_kernel_by_id_split(id, vmlinux_.get()), &btf__free);
        }
        return loaded_.emplace(id, std::move(types)).first->second.get();
    }

    BtfPtr vmlinux_{nullptr, &btf__free};
    std::map<uint32_t, BtfPtr> loaded_;
};

// "lsm/file_open", "tp_btf/sched_switch", or the function name as is.
std::string btf_target_text(uint32_t prog_type, const std::string& btf_name) {
    if (btf_name.empty())
        return {};
    if (prog_type == BPF_PROG_TYPE_LSM && btf_name.starts_with("bpf_lsm_"))
        return "lsm/" + btf_name.substr(8);
    if (btf_name.starts_with("btf_trace_"))
        return "tp_btf/" + btf_name.substr(10);
    return btf_name;
}

struct Clocks {
    int64_t realtime_ns = 0, boottime_ns = 0;

    static Clocks now() {
        auto read = [](clockid_t clock) {
            timespec ts{};
            clock_gettime(clock, &ts);
            return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
        };
        return {read(CLOCK_REALTIME), read(CLOCK_BOOTTIME)};
    }
};

// The id walk of one kind: BPF_*_GET_NEXT_ID. EPERM means "not root".
template <typename NextId>
Result<std::vector<uint32_t>> walk_ids(NextId next_id, const char* what) {
    std::vector<uint32_t> ids;
    for (__u32 id = 0;;) {
        if (next_id(id, &id) == 0) {
            ids.push_back(id);
            continue;
        }
        int err = errno;
        if (err == ENOENT)
            return ids;
        if (err == EPERM || err == EACCES)
            return fail(ErrorKind::PermissionDenied, err,
                        std::string("listing the host's BPF ") + what +
                            " needs root (CAP_SYS_ADMIN): the kernel refused the id walk (" + std::strerror(err) + ")");
        return fail_system(err, std::string("walk the BPF ") + what);
    }
}

// Reads program `id`; nullopt when it went away since it was listed.
Result<std::optional<ProgramRecord>> read_program(uint32_t id, const Clocks& clocks, BtfNames& btf_names) {
    UniqueFd fd(bpf_prog_get_fd_by_id(id));
    if (!fd) {
        if (errno == ENOENT)
            return std::nullopt;
        return fail_errno("open program id " + std::to_string(id));
    }
    std::vector<__u32> map_ids(64);
    bpf_prog_info info{};
    for (;;) {
        info = bpf_prog_info{};
        info.nr_map_ids = map_ids.size();
        info.map_ids = reinterpret_cast<uintptr_t>(map_ids.data());
        __u32 len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
            return fail_errno("read info of program id " + std::to_string(id));
        if (info.nr_map_ids <= map_ids.size())
            break;
        map_ids.resize(info.nr_map_ids);
    }
    ProgramRecord record;
    record.id = info.id;
    record.type = info.type;
    record.name = std::string(info.name, strnlen(info.name, sizeof(info.name)));
    record.tag = hex_encode(std::span<const uint8_t>(info.tag, sizeof(info.tag)));
    record.uid = info.created_by_uid;
    record.load_time_ns = info.load_time;
    record.loaded_at_ns = boot_time_to_wall_ns(info.load_time, clocks.realtime_ns, clocks.boottime_ns);
    record.run_time_ns = info.run_time_ns;
    record.run_count = info.run_cnt;
    record.map_ids.assign(map_ids.begin(), map_ids.begin() + info.nr_map_ids);
    if (info.attach_btf_obj_id && info.attach_btf_id)
        record.btf_target = btf_target_text(info.type, btf_names.name(info.attach_btf_obj_id, info.attach_btf_id));
    return record;
}

Result<std::optional<MapRecord>> read_map(uint32_t id) {
    LIBBPF_OPTS(bpf_get_fd_by_id_opts, read_only, .open_flags = BPF_F_RDONLY);
    UniqueFd fd(bpf_map_get_fd_by_id_opts(id, &read_only));
    if (!fd) {
        if (errno == ENOENT)
            return std::nullopt;
        return fail_errno("open map id " + std::to_string(id));
    }
    bpf_map_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
        return fail_errno("read info of map id " + std::to_string(id));
    MapRecord record;
    record.id = info.id;
    record.type = info.type;
    record.name = std::string(info.name, strnlen(info.name, sizeof(info.name)));
    record.key_size = info.key_size;
    record.value_size = info.value_size;
    record.max_entries = info.max_entries;
    record.flags = info.map_flags;
    return record;
}

// cgroup ids (the inode numbers of cgroup2 directories) to paths, read once.
class CgroupPaths {
public:
    std::string path_of(uint64_t id) {
        if (!walked_)
            walk();
        auto found = paths_.find(id);
        return found == paths_.end() ? "cgroup id " + std::to_string(id) : found->second;
    }

private:
    void walk() {
        walked_ = true;
        std::ifstream mounts("/proc/mounts");
        std::string device, mount_point, type;
        std::string root;
        while (mounts >> device >> mount_point >> type && root.empty()) {
            if (type == "cgroup2")
                root = mount_point;
            mounts.ignore(4096, '\n');
        }
        if (root.empty())
            return;
        std::error_code ec;
        struct stat st{};
        if (stat(root.c_str(), &st) == 0)
            paths_.emplace(st.st_ino, root);
        for (auto it = std::filesystem::recursive_directory_iterator(
                 root, std::filesystem::directory_options::skip_permission_denied, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
            if (it->is_directory(ec) && lstat(it->path().c_str(), &st) == 0)
                paths_.emplace(st.st_ino, it->path().string());
            else
                it.disable_recursion_pending();
        }
    }

    bool walked_ = false;
    std::unordered_map<uint64_t, std::string> paths_;
};

std::string interface_name(uint32_t ifindex) {
    char name[IF_NAMESIZE] = {};
    if (ifindex && if_indextoname(ifindex, name))
        return name;
    return "ifindex " + std::to_string(ifindex);
}

std::string perf_event_target(const LinkInfo& info, const std::string& name) {
    static constexpr const char* kKinds[] = {"", "uprobe", "uretprobe", "kprobe", "kretprobe", "tracepoint", "event"};
    const uint32_t kind = info.perf_event.type;
    if (kind == 0)
        return "perf_event (this kernel does not say which: 6.6 and later do)";
    std::string text = kind < std::size(kKinds) ? kKinds[kind] : "perf_event type " + std::to_string(kind);
    return name.empty() ? text : text + " " + name;
}

// What the program behind a link is, for the parts of a link's target only
// the program knows.
struct LinkedProgram {
    uint32_t type = 0;
    std::string btf_target;
};

std::string tracing_target(const LinkInfo& info, const LinkedProgram& program) {
    switch (info.tracing.attach_type) {
    case BPF_LSM_MAC:
    case BPF_TRACE_FENTRY:
    case BPF_TRACE_FEXIT:
    case BPF_MODIFY_RETURN:
    case BPF_TRACE_RAW_TP: break;
    default:
        return attach_type_name(info.tracing.attach_type) + " (BTF id " + std::to_string(info.tracing.target_btf_id) +
               ")";
    }
    static const std::map<uint32_t, std::string> kPrefix = {
        {BPF_TRACE_FENTRY, "fentry/"}, {BPF_TRACE_FEXIT, "fexit/"}, {BPF_MODIFY_RETURN, "fmod_ret/"}};
    std::string target = program.btf_target;
    if (target.empty())
        target = "BTF id " + std::to_string(info.tracing.target_btf_id);
    auto prefix = kPrefix.find(info.tracing.attach_type);
    return prefix == kPrefix.end() ? target : prefix->second + target;
}

std::string link_target(const LinkInfo& info, const std::string& name, const LinkedProgram& program,
                        CgroupPaths& cgroups) {
    switch (info.type) {
    case kRawTracepoint: return "raw_tracepoint " + name;
    case kTracing: return tracing_target(info, program);
    case kCgroup: {
        std::string text =
            "cgroup " + cgroups.path_of(info.cgroup.cgroup_id) + " (" + attach_type_name(info.cgroup.attach_type);
        if (info.cgroup.attach_type == BPF_LSM_CGROUP && !program.btf_target.empty())
            text += " " + program.btf_target;
        return text + ")";
    }
    case kIter: return "iter " + name + (info.iter.map_id ? " map " + std::to_string(info.iter.map_id) : "");
    case kNetns:
        return "netns inode " + std::to_string(info.netns.netns_ino) + " (" + attach_type_name(info.netns.attach_type) +
               ")";
    case kXdp: return "xdp " + interface_name(info.xdp.ifindex);
    case kPerfEvent: return perf_event_target(info, name);
    case kKprobeMulti: return "kprobe_multi (" + std::to_string(info.kprobe_multi.count) + " functions)";
    case kStructOps: return "struct_ops map " + std::to_string(info.struct_ops.map_id);
    case kNetfilter:
        return "netfilter pf " + std::to_string(info.netfilter.pf) + " hook " + std::to_string(info.netfilter.hooknum) +
               " priority " + std::to_string(info.netfilter.priority);
    case kTcx:
    case kNetkit:
        return link_type_name(info.type) + " " + interface_name(info.device.ifindex) + " (" +
               attach_type_name(info.device.attach_type) + ")";
    case kUprobeMulti:
        return "uprobe_multi (" + std::to_string(info.uprobe_multi.count) + " offsets" +
               (info.uprobe_multi.pid ? ", pid " + std::to_string(info.uprobe_multi.pid) : "") + ")";
    case kSockmap:
        return "sockmap map " + std::to_string(info.sockmap.map_id) + " (" +
               attach_type_name(info.sockmap.attach_type) + ")";
    default: return link_type_name(info.type);
    }
}

Result<std::optional<LinkRecord>> read_link(uint32_t id, const Inventory& so_far, CgroupPaths& cgroups) {
    UniqueFd fd(bpf_link_get_fd_by_id(id));
    if (!fd) {
        if (errno == ENOENT)
            return std::nullopt;
        return fail_errno("open link id " + std::to_string(id));
    }
    std::string name;
    auto info = read_link_info(fd.get(), name);
    if (!info)
        return fail(info.error().wrap("link id " + std::to_string(id)));
    LinkedProgram program;
    if (const ProgramRecord* linked = so_far.program(info->prog_id))
        program = {linked->type, linked->btf_target};
    LinkRecord record;
    record.id = info->id;
    record.type = info->type;
    record.prog_id = info->prog_id;
    record.target = link_target(*info, name, program, cgroups);
    return record;
}

// ---- Pins ---------------------------------------------------------------------

struct Pin {
    std::string path;
    BpfObjectType type;
    uint32_t id;
};

std::vector<std::filesystem::path> bpffs_mount_points() {
    std::vector<std::filesystem::path> mounts;
    std::ifstream table("/proc/mounts");
    std::string device, mount_point, type;
    while (table >> device >> mount_point >> type) {
        table.ignore(4096, '\n');
        if (type != "bpf")
            continue;
        // /proc/mounts writes space, tab, newline and backslash as \ooo.
        std::string decoded;
        for (size_t i = 0; i < mount_point.size(); ++i) {
            const bool escape = mount_point[i] == '\\' && i + 3 < mount_point.size() &&
                                std::all_of(mount_point.begin() + i + 1, mount_point.begin() + i + 4,
                                            [](char c) { return c >= '0' && c <= '7'; });
            if (escape) {
                decoded += static_cast<char>(std::stoi(mount_point.substr(i + 1, 3), nullptr, 8));
                i += 3;
            } else {
                decoded += mount_point[i];
            }
        }
        if (std::find(mounts.begin(), mounts.end(), decoded) == mounts.end())
            mounts.emplace_back(decoded);
    }
    return mounts;
}

// What an fd from bpf_obj_get is, from its anon inode's name.
std::optional<BpfObjectType> object_type_of(int fd) {
    char target[64] = {};
    std::string link = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    std::string_view kind(target, n > 0 ? static_cast<size_t>(n) : 0);
    if (kind == "anon_inode:bpf-prog")
        return BpfObjectType::Program;
    if (kind == "anon_inode:bpf-map")
        return BpfObjectType::Map;
    if (kind == "anon_inode:bpf-link" || kind == "anon_inode:bpf_link")
        return BpfObjectType::Link;
    return std::nullopt;
}

// Opens a pin for inspection: read-only where the kernel allows it (maps;
// programs ignore the flag), read-write for links, which refuse anything else.
UniqueFd open_pin(const std::string& path) {
    LIBBPF_OPTS(bpf_obj_get_opts, read_only, .file_flags = BPF_F_RDONLY);
    UniqueFd fd(bpf_obj_get_opts(path.c_str(), &read_only));
    if (!fd && errno == EINVAL)
        fd = UniqueFd(bpf_obj_get(path.c_str()));
    return fd;
}

struct PinnedObject {
    BpfObjectType type;
    uint32_t id;
};

// Type and id of the object pinned at `path`.
Result<PinnedObject> pinned_object(const std::string& path) {
    UniqueFd fd = open_pin(path);
    if (!fd)
        return fail_errno("open pin " + quote_for_message(path));
    auto type = object_type_of(fd.get());
    if (!type)
        return fail(EINVAL, "pin " + quote_for_message(path) + " is not a BPF program, map or link");
    struct {
        uint32_t type, id;  // the start of bpf_prog_info, bpf_map_info and bpf_link_info alike
    } info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
        return fail_errno("read info of pin " + quote_for_message(path));
    return PinnedObject{*type, info.id};
}

// Every pin under `mount`, staying on that filesystem and never following
// symlinks (bpffs allows them).
void walk_pins(const std::filesystem::path& mount, std::vector<Pin>& pins, std::vector<std::string>& warnings) {
    struct stat root{};
    if (stat(mount.c_str(), &root) != 0)
        return;
    std::error_code ec;
    auto it = std::filesystem::recursive_directory_iterator(mount, ec);
    for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        struct stat st{};
        const std::string path = it->path().string();
        if (lstat(path.c_str(), &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != root.st_dev)
                it.disable_recursion_pending();  // another mount: listed on its own if it is bpffs
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        auto object = pinned_object(path);
        if (object)
            pins.push_back({path, object->type, object->id});
        else if (object.error().errnum() != ENOENT)
            warnings.push_back(object.error().message());
    }
    if (ec)
        warnings.push_back("walk " + quote_for_message(mount.string()) + ": " + ec.message());
}

// ---- Holders ------------------------------------------------------------------

class UnitsOfProcesses {
public:
    std::vector<HolderProcess> holders(const std::vector<BpfHolder>& processes) {
        std::vector<HolderProcess> out;
        for (const BpfHolder& process : processes)
            out.push_back({process, unit_of(process.pid)});
        return out;
    }

private:
    const std::string& unit_of(pid_t pid) {
        auto found = units_.find(pid);
        if (found != units_.end())
            return found->second;
        std::ifstream file("/proc/" + std::to_string(pid) + "/cgroup");
        std::stringstream text;
        text << file.rdbuf();
        return units_.emplace(pid, unit_of_cgroup(text.str())).first->second;
    }

    std::map<pid_t, std::string> units_;
};

template <typename Record>
std::vector<uint32_t> ids_of(const std::vector<Record>& records) {
    std::vector<uint32_t> ids;
    for (const auto& record : records)
        ids.push_back(record.id);
    return ids;
}

template <typename Record>
void add_holders(std::vector<Record>& records, BpfObjectType type, UnitsOfProcesses& units) {
    auto holders = find_bpf_holders(type, ids_of(records));
    for (auto& record : records) {
        auto found = holders.find(record.id);
        if (found != holders.end())
            record.holders = units.holders(found->second);
    }
}

template <typename Record>
Record* find_by_id(std::vector<Record>& records, uint32_t id) {
    auto found = std::find_if(records.begin(), records.end(), [id](const Record& r) { return r.id == id; });
    return found == records.end() ? nullptr : &*found;
}

template <typename Record>
void add_pin(std::vector<Record>& records, const Pin& pin) {
    if (Record* record = find_by_id(records, pin.id))
        record->pins.push_back(pin.path);
}

void add_pins(Inventory& inventory, const std::vector<Pin>& pins) {
    for (const Pin& pin : pins) {
        switch (pin.type) {
        case BpfObjectType::Program: add_pin(inventory.programs, pin); break;
        case BpfObjectType::Link: add_pin(inventory.links, pin); break;
        case BpfObjectType::Map: add_pin(inventory.maps, pin); break;
        }
    }
}

// Cross references: the links holding each program, the programs using each map.
void connect(Inventory& inventory) {
    for (const LinkRecord& link : inventory.links)
        if (ProgramRecord* program = find_by_id(inventory.programs, link.prog_id))
            program->link_ids.push_back(link.id);
    for (const ProgramRecord& program : inventory.programs)
        for (uint32_t map_id : program.map_ids)
            if (MapRecord* map = find_by_id(inventory.maps, map_id))
                map->used_by.push_back(program.id);
}

std::optional<bool> read_stats_enabled() {
    std::ifstream file("/proc/sys/kernel/bpf_stats_enabled");
    int value = 0;
    if (!(file >> value))
        return std::nullopt;
    return value != 0;
}

Result<void> read_programs(Inventory& inventory) {
    auto ids = walk_ids(bpf_prog_get_next_id, "programs");
    if (!ids)
        return fail(ids.error());
    const Clocks clocks = Clocks::now();
    BtfNames btf_names;
    for (uint32_t id : *ids) {
        auto record = read_program(id, clocks, btf_names);
        if (!record)
            return fail(record.error());
        std::optional<ProgramRecord> found = std::move(*record);
        if (found)  // else gone since it was listed
            inventory.programs.push_back(std::move(*found));
    }
    return {};
}

Result<void> read_maps(Inventory& inventory) {
    auto ids = walk_ids(bpf_map_get_next_id, "maps");
    if (!ids)
        return fail(ids.error());
    for (uint32_t id : *ids) {
        auto record = read_map(id);
        if (!record)
            return fail(record.error());
        std::optional<MapRecord> found = std::move(*record);
        if (found)  // else gone since it was listed
            inventory.maps.push_back(std::move(*found));
    }
    return {};
}

Result<void> read_links(Inventory& inventory) {
    auto ids = walk_ids(bpf_link_get_next_id, "links");
    if (!ids)
        return fail(ids.error());
    CgroupPaths cgroups;
    for (uint32_t id : *ids) {
        auto record = read_link(id, inventory, cgroups);
        if (!record)
            return fail(record.error());
        std::optional<LinkRecord> found = std::move(*record);
        if (found)  // else gone since it was listed
            inventory.links.push_back(std::move(*found));
    }
    return {};
}

}  // namespace

Result<Inventory> take_bpf_inventory() {
    Inventory inventory;
    // Programs first: a link's target needs its program's BTF target.
    if (auto ok = read_programs(inventory); !ok)
        return fail(ok.error());
    if (auto ok = read_links(inventory); !ok)
        return fail(ok.error());
    if (auto ok = read_maps(inventory); !ok)
        return fail(ok.error());
    connect(inventory);
    inventory.bpffs_mounts = bpffs_mount_points();
    std::vector<Pin> pins;
    for (const auto& mount : inventory.bpffs_mounts)
        walk_pins(mount, pins, inventory.warnings);
    add_pins(inventory, pins);
    // Every fd of ours is closed by now: the scan must not find this process.
    UnitsOfProcesses units;
    add_holders(inventory.programs, BpfObjectType::Program, units);
    add_holders(inventory.links, BpfObjectType::Link, units);
    add_holders(inventory.maps, BpfObjectType::Map, units);
    inventory.stats_enabled = read_stats_enabled();
    return inventory;
}

// ---- Allowlist ------------------------------------------------------------------

namespace {

constexpr size_t kMaxAllowlistBytes = 1 << 20;
constexpr size_t kMaxProgramName = 15;  // BPF_OBJ_NAME_LEN less the NUL

class AllowlistParser {
public:
    explicit AllowlistParser(const std::string& source) : source_(source) {}

    Result<Allowlist> run(const toml::table& root) {
        Allowlist allowlist{source_, {}};
        for (auto&& [key, node] : root) {
            if (key.str() != "expected")
                return invalid(
                    key.source(),
                    std::string(node.is_table() || node.is_array_of_tables() ? "unknown table " : "unknown key ") +
                        quote_for_message(key.str()) + " (expected [[expected]] entries)");
            if (!node.is_array_of_tables())
                return invalid(key.source(), "'expected' must be a list of tables, written [[expected]]");
            for (const toml::node& element : *node.as_array()) {
                auto entry = parse_entry(*element.as_table());
                if (!entry)
                    return fail(entry.error());
                allowlist.entries.push_back(std::move(*entry));
            }
        }
        return allowlist;
    }

private:
    std::unexpected<Error> invalid(const toml::source_region& where, const std::string& reason) const {
        return fail(ErrorKind::InvalidArgument, EINVAL,
                    source_ + ":" + std::to_string(where.begin.line) + ": " + reason);
    }

    Result<AllowlistEntry> parse_entry(const toml::table& table) const {
        AllowlistEntry entry;
        entry.where = source_ + ":" + std::to_string(table.source().begin.line);
        for (auto&& [key, node] : table) {
            const auto* value = node.as_string();
            std::string* field = key.str() == "name"      ? &entry.name
                                 : key.str() == "tag"     ? &entry.tag
                                 : key.str() == "owner"   ? &entry.owner
                                 : key.str() == "comment" ? &entry.comment
                                                          : nullptr;
            if (!field)
                return invalid(key.source(), "unknown key " + quote_for_message(key.str()) +
                                                 " in [[expected]] (expected name, tag, owner or comment)");
            if (!value)
                return invalid(key.source(), quote_for_message(key.str()) + " must be a string");
            *field = value->get();
            if (auto problem = check_field(key.str(), *field))
                return invalid(key.source(), quote_for_message(key.str()) + ": " + *problem);
        }
        if (entry.name.empty() && entry.tag.empty() && entry.owner.empty())
            return invalid(table.source(),
                           "[[expected]] entry gives none of name, tag and owner: it would match "
                           "every program");
        return entry;
    }

    // Why a value can never match, or nothing.
    static std::optional<std::string> check_field(std::string_view key, std::string& value) {
        if (key == "name")
            return check_name(value);
        if (key == "tag")
            return check_tag(value);
        if (key == "owner")
            return check_owner(value);
        return std::nullopt;
    }

    static std::optional<std::string> check_name(const std::string& name) {
        if (name.empty())
            return "empty name";
        if (name.size() > kMaxProgramName)
            return quote_for_message(name) + " is " + std::to_string(name.size()) +
                   " characters; the kernel keeps at most 15 of a program's name (write the first 15)";
        auto bad = std::find_if_not(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
        });
        if (bad != name.end())
            return quote_for_message(name) + " has " + quote_for_message(std::string(1, *bad)) +
                   ": program names hold only letters, digits, '_' and '.'";
        return std::nullopt;
    }

    static std::optional<std::string> check_tag(std::string& tag) {
        std::transform(tag.begin(), tag.end(), tag.begin(),
                       [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
        const bool hex = std::all_of(tag.begin(), tag.end(),
                                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
        if (tag.size() != 16 || !hex)
            return quote_for_message(tag) + " is not a program tag (16 hex digits, as 'bpftool prog' shows it)";
        return std::nullopt;
    }

    static std::optional<std::string> check_owner(const std::string& owner) {
        if (owner.starts_with("/"))
            return std::nullopt;
        if (owner.find('/') == std::string::npos && (owner.ends_with(".service") || owner.ends_with(".scope")) &&
            owner.size() > 6)
            return std::nullopt;
        return quote_for_message(owner) +
               " is neither an executable's absolute path nor a unit name ending in .service or .scope";
    }

    std::string source_;
};

}  // namespace

Result<Allowlist> parse_allowlist(std::string_view text, const std::string& source) {
    try {
        toml::table root = toml::parse(text, source);
        return AllowlistParser(source).run(root);
    } catch (const toml::parse_error& error) {
        const auto& begin = error.source().begin;
        return fail(ErrorKind::InvalidArgument, EINVAL,
                    source + ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column) + ": " +
                        sanitize_field(error.description()));
    } catch (const std::bad_alloc&) {
        return fail(ENOMEM, "parse " + source);
    }
}

Result<Allowlist> load_allowlist(const std::filesystem::path& file) {
    auto text = read_trusted_config_file(file, kMaxAllowlistBytes, "allowlist");
    if (!text)
        return fail(text.error());
    return parse_allowlist(*text, file.string());
}

// ---- Classification ---------------------------------------------------------------

namespace {

// Programs systemd loads itself (src/core/bpf-*.c, src/core/bpf/*): name as
// the kernel keeps it (15 characters) and program type.
struct SystemdProgram {
    const char* name;
    uint32_t type;
};
constexpr SystemdProgram kSystemdPrograms[] = {
    {"sd_devices", BPF_PROG_TYPE_CGROUP_DEVICE},
    {"sd_fw_egress", BPF_PROG_TYPE_CGROUP_SKB},
    {"sd_fw_ingress", BPF_PROG_TYPE_CGROUP_SKB},
    {"sd_bind4", BPF_PROG_TYPE_CGROUP_SOCK_ADDR},
    {"sd_bind6", BPF_PROG_TYPE_CGROUP_SOCK_ADDR},
    {"sd_restrictif_e", BPF_PROG_TYPE_CGROUP_SKB},
    {"sd_restrictif_i", BPF_PROG_TYPE_CGROUP_SKB},
    {"restrict_filesy", BPF_PROG_TYPE_LSM},  // restrict_filesystems
    {"sysctl_monitor", BPF_PROG_TYPE_CGROUP_SYSCTL},
    {"userns_restrict", BPF_PROG_TYPE_LSM},  // userns_restrict_*, systemd-nsresourced
};

bool is_under(const std::filesystem::path& path, const std::filesystem::path& dir) {
    const auto normal_path = path.lexically_normal();
    const auto normal_dir = dir.lexically_normal();
    auto p = normal_path.begin();
    for (auto d = normal_dir.begin(); d != normal_dir.end(); ++d, ++p) {
        if (d->empty() && std::next(d) == normal_dir.end())
            break;  // "dir/" ends in an empty component
        if (p == normal_path.end() || *p != *d)
            return false;
    }
    return p != normal_path.end();
}

// A running binary replaced on disk (an upgrade) reads "<path> (deleted)".
std::string exe_path(const std::string& exe) {
    constexpr std::string_view kDeleted = " (deleted)";
    return exe.ends_with(kDeleted) ? exe.substr(0, exe.size() - kDeleted.size()) : exe;
}

Classification better(Classification a, Classification b) {
    return static_cast<int>(b.owner) < static_cast<int>(a.owner) ? std::move(b) : std::move(a);
}

class Classifier {
public:
    Classifier(Inventory& inventory, const OwnSide& own, const Allowlist& allowlist)
        : inventory_(inventory), own_(own), allowlist_(allowlist) {}

    void run() {
        std::map<uint32_t, Classification> link_evidence;
        for (const LinkRecord& link : inventory_.links)
            link_evidence[link.id] = evidence(link.pins, link.holders);
        for (ProgramRecord& program : inventory_.programs)
            program.owner = classify_program(program, link_evidence);
        for (LinkRecord& link : inventory_.links)
            link.owner = classify_link(link, link_evidence[link.id]);
        for (MapRecord& map : inventory_.maps)
            map.owner = classify_map(map);
    }

private:
    // What an object's own pins and holders say (Unknown: nothing).
    Classification evidence(const std::vector<std::string>& pins, const std::vector<HolderProcess>& holders) const {
        Classification best;
        for (const std::string& pin : pins)
            best = better(std::move(best), pin_evidence(pin));
        for (const HolderProcess& holder : holders)
            best = better(std::move(best), holder_evidence(holder));
        return best;
    }

    Classification pin_evidence(const std::string& pin) const {
        if (is_under(pin, own_.pin_root))
            return {ObjectOwner::Bpfwarden, "pinned at " + pin + ", under bpfwarden's pin root"};
        if (std::filesystem::path(pin).filename().string().find('.') != std::string::npos)
            return {ObjectOwner::Kernel, "pinned by the kernel at " + pin +
                                             " (only the kernel gives bpffs names "
                                             "with '.')"};
        for (const auto& mount : inventory_.bpffs_mounts)
            if (is_under(pin, mount / "systemd"))
                return {ObjectOwner::Systemd, "pinned at " + pin + ", under systemd's " + (mount / "systemd").string()};
        return {};
    }

    Classification holder_evidence(const HolderProcess& holder) const {
        const std::string exe = exe_path(holder.process.exe);
        for (const auto& ours : own_.executables)
            if (!exe.empty() && exe == ours.string())
                return {ObjectOwner::Bpfwarden, "held by " + holder.describe() + ", a bpfwarden process"};
        if (holder.process.pid == 1)
            return {ObjectOwner::Systemd, "held by PID 1 (" + holder.process.comm + ")"};
        if (exe.starts_with("/usr/lib/systemd/") || exe.starts_with("/lib/systemd/"))
            return {ObjectOwner::Systemd, "held by " + holder.describe() + ", a systemd binary"};
        return {};
    }

    Classification classify_program(const ProgramRecord& program,
                                    const std::map<uint32_t, Classification>& link_evidence) const {
        Classification best = evidence(program.pins, program.holders);
        for (uint32_t link_id : program.link_ids) {
            const Classification& link = link_evidence.at(link_id);
            if (link.owner != ObjectOwner::Unknown)
                best =
                    better(std::move(best), {link.owner, "its link " + std::to_string(link_id) + " is " + link.reason});
        }
        if (best.owner == ObjectOwner::Unknown)
            best = better(std::move(best), systemd_by_name(program));
        if (best.owner == ObjectOwner::Unknown)
            best = better(std::move(best), allowlisted(program));
        if (best.owner == ObjectOwner::Unknown)
            best.reason = "not pinned under " + own_.pin_root.string() +
                          ", held neither by bpfwarden nor by PID 1, and no allowlist entry matches";
        return best;
    }

    // Every process holding the program or one of its links.
    std::vector<const HolderProcess*> all_holders(const ProgramRecord& program) const {
        std::vector<const HolderProcess*> holders;
        for (const auto& holder : program.holders)
            holders.push_back(&holder);
        for (uint32_t link_id : program.link_ids)
            if (const LinkRecord* link = inventory_.link(link_id))
                for (const auto& holder : link->holders)
                    holders.push_back(&holder);
        return holders;
    }

    Classification systemd_by_name(const ProgramRecord& program) const {
        auto known = std::find_if(std::begin(kSystemdPrograms), std::end(kSystemdPrograms), [&](const auto& known) {
            return program.name == known.name && program.type == known.type;
        });
        if (known == std::end(kSystemdPrograms))
            return {};
        auto holders = all_holders(program);
        if (std::any_of(holders.begin(), holders.end(), [](const auto* h) { return h->process.pid != 1; }))
            return {};
        return {ObjectOwner::Systemd, "systemd's program '" + program.name + "' (" + program_type_name(program.type) +
                                          "), held by no process but PID 1"};
    }

    static bool owner_matches(const std::string& owner, const std::vector<const HolderProcess*>& holders) {
        if (owner.empty())
            return true;
        return std::any_of(holders.begin(), holders.end(), [&](const HolderProcess* holder) {
            return owner.starts_with("/") ? exe_path(holder->process.exe) == owner : holder->unit == owner;
        });
    }

    static Classification match_reason(const AllowlistEntry& entry) {
        return {ObjectOwner::Allowlisted,
                "matches the allowlist entry at " + entry.where + (entry.comment.empty() ? "" : ": " + entry.comment)};
    }

    Classification allowlisted(const ProgramRecord& program) const {
        const auto holders = all_holders(program);
        for (const AllowlistEntry& entry : allowlist_.entries) {
            if (!entry.name.empty() && entry.name != program.name)
                continue;
            if (!entry.tag.empty() && entry.tag != program.tag)
                continue;
            if (owner_matches(entry.owner, holders))
                return match_reason(entry);
        }
        return {};
    }

    Classification classify_link(const LinkRecord& link, Classification own) const {
        const ProgramRecord* program = inventory_.program(link.prog_id);
        if (own.owner != ObjectOwner::Unknown || !program)
            return own.owner != ObjectOwner::Unknown ? own
                                                     : Classification{ObjectOwner::Unknown, "its program is gone"};
        const std::string name = "program " + std::to_string(program->id) + " '" + program->name + "'";
        // Someone else's link to our program attaches it where we did not.
        if (program->owner.owner == ObjectOwner::Bpfwarden)
            return {ObjectOwner::Unknown, "attaches bpfwarden's " + name + ", but is neither pinned under " +
                                              own_.pin_root.string() + " nor held by bpfwarden"};
        if (program->owner.owner == ObjectOwner::Unknown)
            return {ObjectOwner::Unknown, "its " + name + " is unknown"};
        return {program->owner.owner,
                "its " + name + " is " + std::string(to_string(program->owner.owner)) + ": " + program->owner.reason};
    }

    Classification classify_map(const MapRecord& map) const {
        Classification best = evidence(map.pins, map.holders);
        for (uint32_t prog_id : map.used_by) {
            const ProgramRecord* program = inventory_.program(prog_id);
            if (program && program->owner.owner != ObjectOwner::Unknown)
                best = better(std::move(best), {program->owner.owner,
                                                "used by program " + std::to_string(prog_id) + " '" + program->name +
                                                    "' (" + std::string(to_string(program->owner.owner)) + ")"});
        }
        if (best.owner == ObjectOwner::Unknown && map.used_by.empty())
            best = better(std::move(best), allowlisted_orphan(map));
        if (best.owner == ObjectOwner::Unknown)
            best.reason = map.used_by.empty() ? "used by no program, and nothing says whose it is"
                                              : "used only by unknown programs";
        return best;
    }

    Classification allowlisted_orphan(const MapRecord& map) const {
        std::vector<const HolderProcess*> holders;
        for (const auto& holder : map.holders)
            holders.push_back(&holder);
        for (const AllowlistEntry& entry : allowlist_.entries) {
            if (!entry.tag.empty() || (!entry.name.empty() && entry.name != map.name))
                continue;
            if (owner_matches(entry.owner, holders))
                return match_reason(entry);
        }
        return {};
    }

    Inventory& inventory_;
    const OwnSide& own_;
    const Allowlist& allowlist_;
};

}  // namespace

void classify(Inventory& inventory, const OwnSide& own, const Allowlist& allowlist) {
    Classifier(inventory, own, allowlist).run();
}

// ---- Containment ------------------------------------------------------------------

namespace {

std::string describe_program(const ProgramRecord& program) {
    return "program " + std::to_string(program.id) + " '" + program.name + "' (" + program_type_name(program.type) +
           ")";
}

bool refused_owner(ObjectOwner owner) {
    return owner == ObjectOwner::Bpfwarden || owner == ObjectOwner::Kernel || owner == ObjectOwner::Systemd;
}

std::string refusal(const ProgramRecord& program) {
    const std::string what = describe_program(program);
    switch (program.owner.owner) {
    case ObjectOwner::Bpfwarden:
        return what + " is bpfwarden's own (" + program.owner.reason +
               "): contain refuses it; 'bpfwardenctl unpin' ends bpfwarden's enforcement on purpose";
    case ObjectOwner::Systemd:
        return what + " is systemd's (" + program.owner.reason + "): contain refuses PID 1's programs";
    case ObjectOwner::Kernel: return what + " is the kernel's own (" + program.owner.reason + "): contain refuses it";
    default: return what + " may not be contained";
    }
}

// Pins of one object, except any under the pin root (never ours to remove).
void plan_pins(ContainmentPlan& plan, const std::vector<std::string>& pins, BpfObjectType type, uint32_t id,
               const std::string& object, const OwnSide& own) {
    for (const std::string& pin : pins) {
        if (is_under(pin, own.pin_root))
            plan.kept.push_back("pin " + pin + " of " + object + ": under bpfwarden's pin root, never removed here");
        else
            plan.pins.push_back({pin, type, id, object});
    }
}

void plan_maps(ContainmentPlan& plan, const Inventory& inventory, const ProgramRecord& program, const OwnSide& own) {
    for (uint32_t map_id : program.map_ids) {
        const MapRecord* map = inventory.map(map_id);
        if (!map || map->pins.empty())
            continue;
        const std::string object = "map " + std::to_string(map->id) + " '" + map->name + "'";
        std::vector<std::string> others;
        for (uint32_t user : map->used_by)
            if (user != program.id)
                others.push_back(std::to_string(user));
        if (!others.empty())
            plan.kept.push_back(object + ": also used by program " + join(others, ", ") + "; its pins are left");
        else if (refused_owner(map->owner.owner))
            plan.kept.push_back(object + ": " + std::string(to_string(map->owner.owner)) + "'s (" + map->owner.reason +
                                "); its pins are left");
        else
            plan_pins(plan, map->pins, BpfObjectType::Map, map->id, object, own);
    }
}

}  // namespace

Result<ContainmentPlan> plan_containment(const Inventory& inventory, uint32_t prog_id, const OwnSide& own) {
    const ProgramRecord* program = inventory.program(prog_id);
    if (!program)
        return fail(ErrorKind::NotFound, ENOENT, "no BPF program has id " + std::to_string(prog_id));
    if (refused_owner(program->owner.owner))
        return fail(ErrorKind::PermissionDenied, EPERM, refusal(*program));
    ContainmentPlan plan;
    plan.prog_id = prog_id;
    const std::string name = "program " + std::to_string(prog_id) + " '" + program->name + "'";
    plan_pins(plan, program->pins, BpfObjectType::Program, prog_id, name, own);
    for (uint32_t link_id : program->link_ids) {
        const LinkRecord* link = inventory.link(link_id);
        if (!link)
            continue;
        if (refused_owner(link->owner.owner)) {
            plan.kept.push_back("link " + std::to_string(link_id) + ": " + std::string(to_string(link->owner.owner)) +
                                "'s (" + link->owner.reason + "); left attached");
            continue;
        }
        plan.links.push_back(link_id);
        plan_pins(plan, link->pins, BpfObjectType::Link, link_id, "link " + std::to_string(link_id), own);
    }
    plan_maps(plan, inventory, *program, own);
    return plan;
}

Result<DetachOutcome> detach_link(uint32_t link_id, uint32_t prog_id) {
    UniqueFd fd(bpf_link_get_fd_by_id(link_id));
    if (!fd) {
        if (errno == ENOENT)
            return DetachOutcome::Gone;
        return fail_errno("open link " + std::to_string(link_id));
    }
    std::string name;
    auto info = read_link_info(fd.get(), name);
    if (!info)
        return fail(info.error().wrap("link " + std::to_string(link_id)));
    if (info->prog_id != prog_id)
        return fail(EEXIST, "link " + std::to_string(link_id) + " now holds program " + std::to_string(info->prog_id) +
                                ", not " + std::to_string(prog_id) + ": left alone");
    if (bpf_link_detach(fd.get()) == 0)
        return DetachOutcome::Detached;
    if (errno == EOPNOTSUPP)
        return DetachOutcome::NotSupported;
    return fail_errno("detach link " + std::to_string(link_id));
}

namespace {

const char* type_word(BpfObjectType type) {
    switch (type) {
    case BpfObjectType::Program: return "program";
    case BpfObjectType::Map: return "map";
    case BpfObjectType::Link: return "link";
    }
    return "object";
}

}  // namespace

Result<void> remove_verified_pin(const PinRemoval& pin) {
    const std::filesystem::path path(pin.path);
    const std::string quoted = quote_for_message(pin.path);
    const std::string name = path.filename().string();
    UniqueFd dir(open(path.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir)
        return fail_errno("open the directory of " + quoted);
    struct statfs fs{};
    if (fstatfs(dir.get(), &fs) != 0)
        return fail_errno("statfs the directory of " + quoted);
    if (static_cast<uint64_t>(fs.f_type) != BPF_FS_MAGIC)
        return fail(EINVAL, quoted + " is not on a bpf filesystem: left alone");
    struct stat st{};
    if (fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fail_errno("stat " + quoted);
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, quoted + " is not a pin (a symlink or directory now): left alone");
    // Through the directory fd: the object checked is the one unlinked below,
    // whatever happens to the path's other components meanwhile.
    const std::string via_fd = "/proc/self/fd/" + std::to_string(dir.get()) + "/" + name;
    auto object = pinned_object(via_fd);
    if (!object)
        return fail(object.error().wrap("check " + quoted + " before removing it"));
    if (object->type != pin.type || object->id != pin.id)
        return fail(EEXIST, quoted + " now names " + type_word(object->type) + " " + std::to_string(object->id) +
                                ", not " + type_word(pin.type) + " " + std::to_string(pin.id) + ": left alone");
    if (unlinkat(dir.get(), name.c_str(), 0) != 0)
        return fail_errno("remove pin " + quoted);
    return {};
}

bool program_exists(uint32_t prog_id) {
    UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
    return fd || errno != ENOENT;
}

}  // namespace bpfwarden
