#include "loading/bpf_objects.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <string_view>

// The skeletons name struct bw_counters: declare it first.
#include "bpfwarden/abi.h"
#include "loading/skeleton.h"

#include "bpf_audit.skel.h"
#include "exec_audit.skel.h"
#include "exec_guard.skel.h"
#include "file_guard.skel.h"
#include "policy_maps.skel.h"
#include "rule_audit.skel.h"
#include "self_guard.skel.h"

namespace bpfwarden {

BPFWARDEN_SKELETON_TRAITS(bpfw_policy_maps);
BPFWARDEN_SKELETON_TRAITS(bpfw_file_guard);
BPFWARDEN_SKELETON_TRAITS(bpfw_exec_guard);
BPFWARDEN_SKELETON_TRAITS(bpfw_self_guard);
BPFWARDEN_SKELETON_TRAITS(bpfw_bpf_audit);
BPFWARDEN_SKELETON_TRAITS(bpfw_exec_audit);
BPFWARDEN_SKELETON_TRAITS(bpfw_rule_audit);

namespace {

bool is_internal_map(const bpf_map* map) {
    // .rodata, .bss, .data, .kconfig: per-object globals, never shared.
    return std::strchr(bpf_map__name(map), '.') != nullptr;
}

bool is_bss(const bpf_map* map) {
    const char* name = bpf_map__name(map);
    size_t len = std::strlen(name);
    return len >= 4 && std::strcmp(name + len - 4, ".bss") == 0;
}

// Before load: a map that is already pinned becomes this object's map.
Result<void> reuse_pinned_maps(bpf_object* obj, const PinLayout& pins) {
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
        if (is_internal_map(map))
            continue;
        auto pinned = PinLayout::open_pin(pins.map_pin(bpf_map__name(map)));
        if (!pinned) {
            if (pinned.error().errnum() == ENOENT)
                continue;
            return std::unexpected(pinned.error());
        }
        if (int err = bpf_map__reuse_fd(map, pinned->get()); err)
            return std::unexpected(
                Error::from_libbpf(err, std::string("reuse pinned map '") + bpf_map__name(map) + "'"));
    }
    return {};
}

// After load: pin every map this load created, and the object's counters.
Result<void> pin_maps(bpf_object* obj, const ObjectSpec& spec, const PinLayout& pins) {
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
        std::filesystem::path path;
        if (is_bss(map))
            path = pins.counters_pin(spec.name);
        else if (is_internal_map(map))
            continue;
        else
            path = pins.map_pin(bpf_map__name(map));
        if (!is_bss(map) && std::filesystem::exists(path))
            continue;  // reused: already pinned
        if (auto pinned = pins.pin_replacing(bpf_map__fd(map), path); !pinned)
            return pinned;
    }
    return {};
}

// Programs this kernel does not run are not loaded at all.
void choose_programs(bpf_object* obj, const ObjectSpec& spec, bool bpf_lsm) {
    for (const auto& program : spec.programs)
        if (bpf_program* prog = bpf_object__find_program_by_name(obj, program.name))
            bpf_program__set_autoload(prog, is_available(program, bpf_lsm));
}

Result<void> attach_and_pin(bpf_object* obj, const ProgramSpec& program, const PinLayout& pins) {
    bpf_program* prog = bpf_object__find_program_by_name(obj, program.name);
    if (!prog)
        return fail(ENOENT, std::string("program '") + program.name + "' not found in image");
    // Our handle goes when this returns: by then the pin holds the attachment.
    std::unique_ptr<bpf_link, decltype(&bpf_link__destroy)> link(bpf_program__attach(prog), &bpf_link__destroy);
    if (!link)
        return fail_errno(std::string("attach ") + program.name + " to " + program.hook);
    return pins.pin_replacing(bpf_link__fd(link.get()), pins.link_pin(program.name));
}

template <typename Skel>
Result<void> load_with(const ObjectSpec& spec, const BpfImage& image, const PinLayout& pins, const LoadConfig& config) {
    auto skel = Skeleton<Skel>::open(image);
    if (!skel)
        return std::unexpected(skel.error());
    if constexpr (requires { (*skel)->rodata->rate_limit_burst; }) {
        (*skel)->rodata->rate_limit_burst = config.rate_limit_burst;
        (*skel)->rodata->trail_limit_burst = config.trail_limit_burst;
        (*skel)->rodata->rate_limit_window_ns = config.rate_limit_window_ns;
    }
    choose_programs(skel->object(), spec, config.bpf_lsm);
    if (auto reused = reuse_pinned_maps(skel->object(), pins); !reused)
        return reused;
    if (auto loaded = skel->load(std::string(spec.name) + " (" + spec.what + ")"); !loaded)
        return loaded;
    if (auto pinned = pin_maps(skel->object(), spec, pins); !pinned)
        return pinned;
    if (config.before_attach)
        if (auto ready = config.before_attach(spec); !ready)
            return ready;
    for (const ProgramSpec* program : available_programs(spec, config.bpf_lsm))
        if (auto attached = attach_and_pin(skel->object(), *program, pins); !attached)
            return attached;
    return {};
}

constexpr ProgramSpec kBpfAudit[] = {
    {"bw_tp_bpf", "tracepoint/syscalls/sys_enter_bpf", Availability::Always, 0, BpfLsmUse::OnlyWithout},
    {"bw_bpf_audit", "lsm/bpf", Availability::Always, 0, BpfLsmUse::OnlyWith},
};
constexpr ProgramSpec kExecAudit[] = {{"bw_tp_exec", "tracepoint/sched/sched_process_exec"}};
// Only without BPF LSM: with it, file_guard and exec_guard see (and refuse) more.
constexpr ProgramSpec kRuleAudit[] = {
    {"bw_ra_open", "tracepoint/syscalls/sys_exit_open", Availability::Always, 0, BpfLsmUse::OnlyWithout},
    {"bw_ra_openat", "tracepoint/syscalls/sys_exit_openat", Availability::Always, 0, BpfLsmUse::OnlyWithout},
    {"bw_ra_openat2", "tracepoint/syscalls/sys_exit_openat2", Availability::Always, 0, BpfLsmUse::OnlyWithout},
    {"bw_ra_creat", "tracepoint/syscalls/sys_exit_creat", Availability::Always, 0, BpfLsmUse::OnlyWithout},
    {"bw_ra_exec", "tracepoint/sched/sched_process_exec", Availability::Always, 0, BpfLsmUse::OnlyWithout},
};
constexpr ProgramSpec kFileGuard[] = {
    {"bw_file_open", "lsm/file_open"},
    {"bw_path_trunc", "lsm/path_truncate"},
    {"bw_ftruncate", "lsm/file_truncate", Availability::IfHookExists},
    {"bw_inode_unlink", "lsm/inode_unlink"},
    {"bw_inode_rmdir", "lsm/inode_rmdir"},
    {"bw_inode_rename", "lsm/inode_rename"},
    {"bw_inode_link", "lsm/inode_link"},
    {"bw_inode_create", "lsm/inode_create"},
    {"bw_inode_mkdir", "lsm/inode_mkdir"},
    {"bw_inode_mknod", "lsm/inode_mknod"},
    {"bw_symlink", "lsm/inode_symlink"},
    {"bw_setattr_2arg", "lsm/inode_setattr", Availability::IfHookArgs, 2},
    {"bw_setattr_3arg", "lsm/inode_setattr", Availability::IfHookArgs, 3},
    {"bw_setxattr", "lsm/inode_setxattr"},
    {"bw_removexattr", "lsm/inode_removexattr"},
    {"bw_set_acl", "lsm/inode_set_acl", Availability::IfHookExists},
    {"bw_remove_acl", "lsm/inode_remove_acl", Availability::IfHookExists},
};
constexpr ProgramSpec kExecGuard[] = {
    {"bw_bprm_check", "lsm/bprm_check_security"},
    {"bw_mmap_file", "lsm/mmap_file"},
    {"bw_mprotect", "lsm/file_mprotect"},
};
// Marking first (who is bpfwarden), so that the checks after it know.
constexpr ProgramSpec kSelfGuard[] = {
    {"bw_task_alloc", "lsm/task_alloc"},
    {"bw_bprm_commit", "lsm/bprm_committed_creds"},
    {"bw_bpf", "lsm/bpf"},
    {"bw_bpf_map", "lsm/bpf_map"},
    {"bw_bpf_prog", "lsm/bpf_prog"},
    {"bw_task_kill", "lsm/task_kill"},
    {"bw_ptrace_check", "lsm/ptrace_access_check"},
    {"bw_traceme", "lsm/ptrace_traceme"},
    {"bw_sb_umount", "lsm/sb_umount"},
    {"bw_sb_mount", "lsm/sb_mount"},
    {"bw_move_mount", "lsm/move_mount"},
};

constexpr std::array kObjects = {
    ObjectSpec{"policy_maps", "policy maps", ObjectRole::Store, {}, load_with<bpfw_policy_maps>},
    ObjectSpec{"bpf_audit", "bpf() audit", ObjectRole::Audit, kBpfAudit, load_with<bpfw_bpf_audit>},
    ObjectSpec{"exec_audit", "exec audit", ObjectRole::Audit, kExecAudit, load_with<bpfw_exec_audit>},
    ObjectSpec{"rule_audit", "file and exec rules, reported without BPF LSM", ObjectRole::Audit, kRuleAudit,
               load_with<bpfw_rule_audit>},
    ObjectSpec{"self_guard", "bpf() guard and self-protection", ObjectRole::Enforcement, kSelfGuard,
               load_with<bpfw_self_guard>},
    ObjectSpec{"file_guard", "file rules", ObjectRole::Enforcement, kFileGuard, load_with<bpfw_file_guard>},
    ObjectSpec{"exec_guard", "exec rules", ObjectRole::Enforcement, kExecGuard, load_with<bpfw_exec_guard>},
};

// Argument counts of the kernel's bpf_lsm_<hook> functions, read once from
// its BTF (immutable while the process runs).
const std::map<std::string, int>& lsm_hook_args() {
    static const std::map<std::string, int> args = [] {
        std::map<std::string, int> out;
        std::unique_ptr<btf, decltype(&btf__free)> vmlinux(btf__load_vmlinux_btf(), &btf__free);
        if (!vmlinux)
            return out;
        constexpr std::string_view kPrefix = "bpf_lsm_";
        for (uint32_t id = 1; id < btf__type_cnt(vmlinux.get()); ++id) {
            const btf_type* type = btf__type_by_id(vmlinux.get(), id);
            if (!type || !btf_is_func(type))
                continue;
            std::string_view name = btf__name_by_offset(vmlinux.get(), type->name_off);
            if (!name.starts_with(kPrefix))
                continue;
            const btf_type* proto = btf__type_by_id(vmlinux.get(), type->type);
            out.emplace(std::string(name.substr(kPrefix.size())), proto ? btf_vlen(proto) : -1);
        }
        return out;
    }();
    return args;
}

}  // namespace

std::span<const ObjectSpec> managed_objects() { return kObjects; }

const ObjectSpec* find_object(std::string_view name) {
    for (const auto& spec : kObjects)
        if (spec.name == name)
            return &spec;
    return nullptr;
}

bool is_available(const ProgramSpec& program, bool bpf_lsm) {
    if ((program.bpf_lsm == BpfLsmUse::OnlyWith && !bpf_lsm) || (program.bpf_lsm == BpfLsmUse::OnlyWithout && bpf_lsm))
        return false;
    if (program.availability == Availability::Always)
        return true;
    std::string_view hook = program.hook;
    if (!hook.starts_with("lsm/"))
        return true;
    const auto& args = lsm_hook_args();
    auto found = args.find(std::string(hook.substr(4)));
    if (found == args.end())
        return false;
    return program.availability == Availability::IfHookExists || found->second == program.hook_args;
}

bool is_needed(const ObjectSpec& spec, bool bpf_lsm) {
    return spec.programs.empty() || !available_programs(spec, bpf_lsm).empty();
}

std::vector<const ProgramSpec*> available_programs(const ObjectSpec& spec, bool bpf_lsm) {
    std::vector<const ProgramSpec*> out;
    for (const auto& program : spec.programs)
        if (is_available(program, bpf_lsm))
            out.push_back(&program);
    return out;
}

OwnPinNames own_pin_names() {
    OwnPinNames names;
    names.maps.assign(kPolicyMaps.begin(), kPolicyMaps.end());
    for (const char* map :
         {kEventsMap, kAlertsMap, kRateLimitMap, kTrailLimitMap, kTasksMap, kLiftMap, kRuleHitsMap, kEnvScratchMap})
        names.maps.emplace_back(map);
    for (const auto& spec : kObjects) {
        for (const auto& program : spec.programs)
            names.links.emplace_back(program.name);
        names.maps.push_back(PinLayout().counters_pin(spec.name).filename().string());
    }
    return names;
}

bool is_pinned(const ObjectSpec& spec, const PinLayout& pins, bool bpf_lsm) {
    if (!spec.programs.empty()) {
        for (const ProgramSpec* program : available_programs(spec, bpf_lsm))
            if (!PinLayout::open_pin(pins.link_pin(program->name)))
                return false;
        return true;
    }
    for (const char* map : kPolicyMaps)
        if (!PinLayout::open_pin_read_only(pins.map_pin(map)))
            return false;
    return true;
}

Result<void> load_attach_pin(const ObjectSpec& spec, const BpfImage& image, const PinLayout& pins,
                             const LoadConfig& config) {
    auto result = spec.load(spec, image, pins, config);
    if (!result)
        return std::unexpected(result.error().wrap(spec.name));
    return {};
}

}  // namespace bpfwarden
