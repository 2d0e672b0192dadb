#include "loading/bpf_objects.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>

// The skeletons name struct bw_counters: declare it first.
#include "bpfwarden/abi.h"
#include "loading/skeleton.h"

#include "bpf_audit.skel.h"
#include "bpf_guard.skel.h"
#include "exec_audit.skel.h"
#include "exec_guard.skel.h"
#include "file_guard.skel.h"
#include "policy_maps.skel.h"

namespace bpfwarden {

BPFWARDEN_SKELETON_TRAITS(policy_maps);
BPFWARDEN_SKELETON_TRAITS(file_guard);
BPFWARDEN_SKELETON_TRAITS(exec_guard);
BPFWARDEN_SKELETON_TRAITS(bpf_guard);
BPFWARDEN_SKELETON_TRAITS(bpf_audit);
BPFWARDEN_SKELETON_TRAITS(exec_audit);

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

Result<void> attach_and_pin(bpf_object* obj, const ObjectSpec& spec, const PinLayout& pins) {
    bpf_program* prog = bpf_object__find_program_by_name(obj, spec.program);
    if (!prog)
        return fail(ENOENT, std::string("program '") + spec.program + "' not found in image");
    // Our handle goes when this returns: by then the pin holds the attachment.
    std::unique_ptr<bpf_link, decltype(&bpf_link__destroy)> link(bpf_program__attach(prog), &bpf_link__destroy);
    if (!link)
        return fail_errno(std::string("attach ") + spec.program + " to " + spec.hook);
    return pins.pin_replacing(bpf_link__fd(link.get()), pins.link_pin(spec.program));
}

template <typename Skel>
Result<void> load_with(const ObjectSpec& spec, const BpfImage& image, const PinLayout& pins, const LoadConfig& config) {
    auto skel = Skeleton<Skel>::open(image);
    if (!skel)
        return std::unexpected(skel.error());
    if constexpr (requires { (*skel)->rodata->rate_limit_burst; }) {
        (*skel)->rodata->rate_limit_burst = config.rate_limit_burst;
        (*skel)->rodata->rate_limit_window_ns = config.rate_limit_window_ns;
    }
    if (auto reused = reuse_pinned_maps(skel->object(), pins); !reused)
        return reused;
    if (auto loaded = skel->load(std::string(spec.program ? spec.program : spec.name) + " (" + spec.hook + ")");
        !loaded)
        return loaded;
    if (auto pinned = pin_maps(skel->object(), spec, pins); !pinned)
        return pinned;
    if (!spec.program)
        return {};
    return attach_and_pin(skel->object(), spec, pins);
}

constexpr std::array kObjects = {
    ObjectSpec{"policy_maps", nullptr, "policy maps", ObjectRole::Store, load_with<policy_maps>},
    ObjectSpec{"bpf_audit", "bw_tp_bpf", "tracepoint/syscalls/sys_enter_bpf", ObjectRole::Audit, load_with<bpf_audit>},
    ObjectSpec{"exec_audit", "bw_tp_exec", "tracepoint/sched/sched_process_exec", ObjectRole::Audit,
               load_with<exec_audit>},
    ObjectSpec{"file_guard", "bw_file_open", "lsm/file_open", ObjectRole::Enforcement, load_with<file_guard>},
    ObjectSpec{"exec_guard", "bw_bprm_check", "lsm/bprm_check_security", ObjectRole::Enforcement,
               load_with<exec_guard>},
    ObjectSpec{"bpf_guard", "bw_bpf", "lsm/bpf", ObjectRole::Enforcement, load_with<bpf_guard>},
};

}  // namespace

std::span<const ObjectSpec> managed_objects() { return kObjects; }

const ObjectSpec* find_object(std::string_view name) {
    for (const auto& spec : kObjects)
        if (spec.name == name)
            return &spec;
    return nullptr;
}

OwnPinNames own_pin_names() {
    OwnPinNames names;
    names.maps = {kEventsMap, kRateLimitMap, kFileRulesMap, kExecRulesMap, kBpfAllowMap, kBpfPolicyMap};
    for (const auto& spec : kObjects) {
        if (spec.program)
            names.links.emplace_back(spec.program);
        names.maps.push_back(PinLayout().counters_pin(spec.name).filename().string());
    }
    return names;
}

bool is_pinned(const ObjectSpec& spec, const PinLayout& pins) {
    if (spec.program)
        return PinLayout::open_pin(pins.link_pin(spec.program)).has_value();
    for (const char* map : {kFileRulesMap, kExecRulesMap, kBpfAllowMap, kBpfPolicyMap})
        if (!PinLayout::open_pin(pins.map_pin(map)))
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
