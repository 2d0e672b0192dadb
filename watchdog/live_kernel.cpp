#include "live_kernel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

namespace bpfwarden {
namespace {

// The pin name under maps/ of a program's map: its own name, "<object>_counters"
// for the object's .bss, "" for other per-object globals (never pinned).
std::string map_pin_name(const PinLayout& pins, const ObjectSpec& spec, const std::string& map) {
    if (map.ends_with(".bss"))
        return pins.counters_pin(spec.name).filename().string();
    return map.find('.') == std::string::npos ? map : "";
}

}  // namespace

std::vector<PinDirFacts> LiveKernel::pin_directories() {
    std::vector<PinDirFacts> out;
    for (const auto& dir : {pins_.root(), pins_.links_dir(), pins_.maps_dir()}) {
        PinDirFacts facts{dir};
        struct stat st{};
        if (lstat(dir.c_str(), &st) != 0) {
            facts.error = errno;
        } else {
            facts.is_dir = S_ISDIR(st.st_mode);
            facts.mode = st.st_mode & 07777;
            facts.uid = st.st_uid;
        }
        out.push_back(facts);
    }
    return out;
}

std::vector<std::string> LiveKernel::moved_map_pins() { return held_maps_.check(pins_); }

// Ids of the maps a genuine program uses: the ones we hold, else the pinned
// ones. A copy of our own image loaded with someone else's maps has our tag,
// but not these maps.
std::vector<uint32_t> LiveKernel::expected_map_ids(const ExpectedObject& object, const ExpectedProgram& program) const {
    std::vector<uint32_t> ids;
    for (const auto& map : program.identity.maps) {
        std::string name = map_pin_name(pins_, *object.spec, map);
        if (name.empty())
            continue;
        if (auto held = held_maps_.id(name)) {
            ids.push_back(*held);
            continue;
        }
        auto fd = PinLayout::open_pin_read_only(pins_.map_pin(name));
        if (!fd)
            continue;  // a missing map pin is reported by the map checks
        if (auto id = map_id_of(fd->get()))
            ids.push_back(*id);
    }
    return ids;
}

LinkStatus LiveKernel::inspect(const ExpectedObject& object, const ExpectedProgram& program) {
    ExpectedProgram expected = program;
    expected.map_ids = expected_map_ids(object, program);
    return inspector_.inspect_link(expected);
}

PolicyMapFacts LiveKernel::policy_map(const std::string& name, bool want_digest) {
    PolicyMapFacts facts;
    Result<UniqueFd> pinned = UniqueFd();
    int fd = held_maps_.fd(name);
    if (fd < 0) {
        pinned = PinLayout::open_pin_read_only(pins_.map_pin(name));
        if (!pinned) {
            facts.missing = pinned.error();
            return facts;
        }
        fd = pinned->get();
    }
    if (auto frozen = map_is_frozen(fd); frozen && *frozen)
        facts.frozen = true;
    if (want_digest)
        facts.digest = map_digest(fd);
    return facts;
}

int LiveKernel::try_canary(const std::filesystem::path& canary) {
    UniqueFd fd(::open(canary.c_str(), O_RDONLY | O_CLOEXEC));
    return fd ? 0 : errno;
}

Result<std::vector<ForeignProgram>> LiveKernel::foreign_programs(const std::vector<std::string>& hooks,
                                                                 const std::vector<uint32_t>& our_prog_ids) {
    return inspector_.foreign_lsm_programs(hooks, our_prog_ids);
}

Result<std::vector<std::string>> LiveKernel::restore_pin_tree() {
    if (auto created = pins_.create(); !created)
        return fail(created.error().wrap("restoring the pin directories failed"));
    auto repinned = held_maps_.repin(pins_);
    if (!repinned)
        return fail(repinned.error().wrap("re-pinning held maps failed"));
    return repinned;
}

bool LiveKernel::repin_held_links(const ExpectedObject& object) {
    for (const auto& program : object.programs) {
        auto held = held_links_.find(program.pin);
        if (held == held_links_.end() || !pins_.pin_replacing(held->second.get(), program.pin))
            return false;
        if (inspect(object, program).problem != LinkProblem::None)
            return false;  // the held link is not ours: reload
    }
    return true;
}

Result<void> LiveKernel::reload(const ObjectSpec& spec) {
    if (!images_)
        return fail(EINVAL, std::string("reload of ") + spec.name + " without verified images");
    auto image = images_->image(spec.name);
    if (!image)
        return fail(image.error());
    if (auto loaded = load_attach_pin(spec, **image, pins_, load_); !loaded)
        return loaded;
    for (const auto& program : spec.programs)
        held_links_.erase(pins_.link_pin(program.name).string());  // superseded: detaches now the new one enforces
    held_maps_.clear();  // the load may have pinned new maps: hold them once verified
    return {};
}

// Fresh policy maps come only from loading the store with none pinned (it
// reuses pinned maps). The running programs keep the old ones until their
// successors, using the new maps, are attached.
void LiveKernel::unpin_policy_maps() {
    for (const char* name : kPolicyMaps)
        unlink(pins_.map_pin(name).c_str());
}

Result<void> LiveKernel::write_policy_maps(const DesiredMaps& desired) {
    auto maps = PolicyMaps::open(pins_);
    if (!maps)
        return fail(maps.error());
    if (auto applied = maps->apply(desired); !applied)
        return fail(applied.error());
    return {};
}

// Every map pin our objects keep: the policy maps, and each map a program uses.
std::vector<std::string> LiveKernel::map_pin_names(const std::vector<ExpectedObject>& objects) const {
    std::set<std::string> names(kPolicyMaps.begin(), kPolicyMaps.end());
    for (const auto& object : objects)
        for (const auto& program : object.programs)
            for (const auto& map : program.identity.maps)
                if (std::string name = map_pin_name(pins_, *object.spec, map); !name.empty())
                    names.insert(std::move(name));
    return {names.begin(), names.end()};
}

void LiveKernel::hold_verified(const std::vector<ExpectedObject>& objects, bool maps_too) {
    if (maps_too)
        held_maps_.hold(pins_, map_pin_names(objects));
    for (const auto& object : objects)
        for (const auto& program : object.programs) {
            if (inspect(object, program).problem != LinkProblem::None)
                continue;
            if (auto fd = PinLayout::open_pin(program.pin))
                held_links_[program.pin] = std::move(*fd);
        }
}

}  // namespace bpfwarden
