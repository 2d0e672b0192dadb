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

const char* const kPolicyMaps[] = {kFileRulesMap, kExecRulesMap, kBpfAllowMap, kBpfPolicyMap};

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
std::vector<uint32_t> LiveKernel::expected_map_ids(const ExpectedObject& object) const {
    std::vector<uint32_t> ids;
    if (!object.program)
        return ids;
    for (const auto& map : object.program->identity.maps) {
        std::string name = map_pin_name(pins_, *object.spec, map);
        if (name.empty())
            continue;
        if (auto held = held_maps_.id(name)) {
            ids.push_back(*held);
            continue;
        }
        auto fd = PinLayout::open_pin(pins_.map_pin(name));
        if (!fd)
            continue;  // a missing map pin is reported by the map checks
        if (auto id = map_id_of(fd->get()))
            ids.push_back(*id);
    }
    return ids;
}

LinkStatus LiveKernel::inspect(const ExpectedObject& object) {
    if (!object.program)
        return LinkStatus{};  // a map-only object has no link
    ExpectedProgram expected = *object.program;
    expected.map_ids = expected_map_ids(object);
    return inspector_.inspect_link(expected);
}

PolicyMapFacts LiveKernel::policy_map(const std::string& name, bool want_digest) {
    PolicyMapFacts facts;
    Result<UniqueFd> pinned = UniqueFd();
    int fd = held_maps_.fd(name);
    if (fd < 0) {
        pinned = PinLayout::open_pin(pins_.map_pin(name));
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

bool LiveKernel::repin_held_link(const ExpectedObject& object) {
    auto held = held_links_.find(object.spec->program);
    if (held == held_links_.end())
        return false;
    if (!pins_.pin_replacing(held->second.get(), pins_.link_pin(object.spec->program)))
        return false;
    return inspect(object).problem == LinkProblem::None;  // else the held link is not ours: reload
}

Result<void> LiveKernel::verify_images() {
    // Never load bytes that are not signed now.
    auto verified = VerifiedImageSet::open(trust_);
    if (!verified)
        return fail(verified.error());
    images_ = std::move(*verified);
    return {};
}

Result<void> LiveKernel::reload(const ObjectSpec& spec) {
    if (!images_)
        return fail(EINVAL, std::string("reload of ") + spec.name + " before the images were verified");
    auto image = images_->image(spec.name);
    if (!image)
        return fail(image.error());
    if (auto loaded = load_attach_pin(spec, **image, pins_, load_); !loaded)
        return loaded;
    if (spec.program)
        held_links_.erase(spec.program);  // the superseded link detaches now that the new one enforces
    held_maps_.clear();                   // the load may have pinned new maps: hold them once verified
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
    return maps->apply(desired);
}

// Every map pin our objects keep: the policy maps, and each map a program uses.
std::vector<std::string> LiveKernel::map_pin_names(const std::vector<ExpectedObject>& objects) const {
    std::set<std::string> names(std::begin(kPolicyMaps), std::end(kPolicyMaps));
    for (const auto& object : objects)
        if (object.program)
            for (const auto& map : object.program->identity.maps)
                if (std::string name = map_pin_name(pins_, *object.spec, map); !name.empty())
                    names.insert(std::move(name));
    return {names.begin(), names.end()};
}

void LiveKernel::hold_verified(const std::vector<ExpectedObject>& objects, bool maps_too) {
    if (maps_too)
        held_maps_.hold(pins_, map_pin_names(objects));
    for (const auto& object : objects) {
        if (!object.program || inspect(object).problem != LinkProblem::None)
            continue;
        if (auto fd = PinLayout::open_pin(object.program->pin))
            held_links_[object.spec->program] = std::move(*fd);
    }
}

}  // namespace bpfwarden
