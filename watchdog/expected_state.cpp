#include "expected_state.h"

#include <algorithm>

#include "inspection/program_identity.h"

namespace bpfwarden {
namespace {

template <typename T>
std::vector<uint8_t> bytes_of(const T& value) {
    const auto* raw = reinterpret_cast<const uint8_t*>(&value);
    return {raw, raw + sizeof(T)};
}

template <typename Map>
Digest digest_of_map(const Map& entries) {
    using Key = typename Map::key_type;
    using Value = typename Map::mapped_type;
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> raw;
    for (const auto& [key, value] : entries)
        raw.emplace_back(bytes_of(key), bytes_of(value));
    return digest_of_entries(sizeof(Key), sizeof(Value), std::move(raw));
}

// An array map of one entry (key 0).
template <typename Value>
Digest digest_of_single(const Value& value) {
    uint32_t zero = 0;
    return digest_of_entries(sizeof(zero), sizeof(Value), {{bytes_of(zero), bytes_of(value)}});
}

Digest digest_of_bloom(const std::array<uint64_t, BW_DIR_BLOOM_WORDS>& words) {
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> raw;
    for (uint32_t index = 0; index < words.size(); ++index)
        raw.emplace_back(bytes_of(index), bytes_of(words[index]));
    return digest_of_entries(sizeof(uint32_t), sizeof(uint64_t), std::move(raw));
}

// "lsm/file_open" -> "file_open"
std::string lsm_hook_name(const char* hook) {
    std::string_view view = hook;
    return std::string(view.substr(view.find('/') + 1));
}

Result<std::vector<ExpectedProgram>> expected_programs(const ObjectSpec& spec, const VerifiedImageSet& images,
                                                       const PinLayout& pins, bool bpf_lsm) {
    if (spec.programs.empty())
        return std::vector<ExpectedProgram>{};  // the map-only store
    auto image = images.image(spec.name);
    if (!image)
        return fail(image.error());
    std::vector<const ProgramSpec*> available = available_programs(spec, bpf_lsm);
    auto identities = derive_identities(**image, [&](std::string_view name) {
        return std::any_of(available.begin(), available.end(),
                           [&](const ProgramSpec* program) { return name == program->name; });
    });
    if (!identities)
        return fail(identities.error().wrap(std::string("derive the program identities of ") + spec.name));
    std::vector<ExpectedProgram> programs;
    for (const ProgramSpec* program : available) {
        auto found = std::find_if(identities->begin(), identities->end(),
                                  [&](const ProgramIdentity& identity) { return identity.name == program->name; });
        if (found == identities->end())
            return fail(ENOENT, std::string("signed image '") + spec.name + "' has no program " + program->name);
        programs.push_back(ExpectedProgram{pins.link_pin(program->name).string(), *found, program->hook});
    }
    return programs;
}

}  // namespace

std::vector<MapCheck> map_checks_of(const DesiredMaps& desired) {
    const RuleTables& tables = desired.tables;
    return {
        {kFileRulesMap, digest_of_map(tables.file_rules)},     {kExecRulesMap, digest_of_map(tables.exec_rules)},
        {kDirentsMap, digest_of_map(tables.dirents)},          {kDirRulesMap, digest_of_map(tables.dir_rules)},
        {kDirBloomMap, digest_of_bloom(desired.dir_bloom)},    {kBpfAllowMap, digest_of_map(tables.bpf_allow)},
        {kBpfPolicyMap, digest_of_single(tables.bpf_policy)},  {kSettingsMap, digest_of_single(tables.settings)},
        {kSelfExesMap, digest_of_map(desired.self_exes)},      {kScopesMap, digest_of_map(tables.scopes)},
        {kExecAllowedMap, digest_of_map(tables.exec_allowed)},
    };
}

Result<ExpectedState> ExpectedState::derive(const VerifiedImageSet& images, bool enforcement, bool bpf_lsm,
                                            const PinLayout& pins) {
    ExpectedState state;
    for (const auto& spec : managed_objects()) {
        if ((spec.role == ObjectRole::Enforcement && !enforcement) || !is_needed(spec, bpf_lsm))
            continue;
        auto programs = expected_programs(spec, images, pins, bpf_lsm);
        if (!programs)
            return fail(programs.error());
        if (spec.role == ObjectRole::Enforcement)
            for (const auto& program : *programs)
                state.lsm_hooks_.push_back(lsm_hook_name(program.hook.c_str()));
        state.objects_.push_back(ExpectedObject{&spec, std::move(*programs)});
    }
    return state;
}

const ObjectSpec* ExpectedState::store() const {
    for (const auto& object : objects_)
        if (object.spec->role == ObjectRole::Store)
            return object.spec;
    return nullptr;
}

std::vector<const ObjectSpec*> ExpectedState::enforcement() const {
    std::vector<const ObjectSpec*> specs;
    for (const auto& object : objects_)
        if (object.spec->role == ObjectRole::Enforcement)
            specs.push_back(object.spec);
    return specs;
}

std::vector<const ObjectSpec*> ExpectedState::store_readers() const {
    std::vector<const ObjectSpec*> specs;
    for (const auto& object : objects_)
        if (object.spec->role != ObjectRole::Store)
            specs.push_back(object.spec);
    return specs;
}

bool ExpectedState::set_desired(DesiredMaps desired) {
    std::vector<MapCheck> checks = map_checks_of(desired);
    if (checks == map_checks_)
        return false;  // e.g. an editor's swap file: nothing to enforce differently
    desired_ = std::move(desired);
    if (superseded_.empty())  // several edits before a check: the maps may hold the oldest
        superseded_ = std::move(map_checks_);
    map_checks_ = std::move(checks);
    return true;
}

std::vector<MapCheck> ExpectedState::take_superseded() { return std::exchange(superseded_, {}); }

}  // namespace bpfwarden
