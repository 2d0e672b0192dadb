#include "expected_state.h"

#include "inspection/program_identity.h"

namespace bpfwarden {
namespace {

template <typename T>
std::vector<uint8_t> bytes_of(const T& value) {
    const auto* raw = reinterpret_cast<const uint8_t*>(&value);
    return {raw, raw + sizeof(T)};
}

template <typename Value>
Digest digest_of_hash(const std::map<bw_inode_key, Value, InodeKeyLess>& entries) {
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> raw;
    for (const auto& [key, value] : entries)
        raw.emplace_back(bytes_of(key), bytes_of(value));
    return digest_of_entries(sizeof(bw_inode_key), sizeof(Value), std::move(raw));
}

// "lsm/file_open" -> "file_open"
std::string lsm_hook_name(const char* hook) {
    std::string_view view = hook;
    return std::string(view.substr(view.find('/') + 1));
}

Result<ExpectedProgram> expected_program(const ObjectSpec& spec, const VerifiedImageSet& images,
                                         const PinLayout& pins) {
    auto image = images.image(spec.name);
    if (!image)
        return std::unexpected(image.error());
    auto identities = derive_identities(**image);
    if (!identities)
        return std::unexpected(identities.error().wrap(std::string("derive identity of ") + spec.program));
    for (const auto& identity : *identities)
        if (identity.name == spec.program)
            return ExpectedProgram{pins.link_pin(spec.program).string(), identity, spec.hook};
    return fail(ENOENT, std::string("signed image '") + spec.name + "' has no program " + spec.program);
}

}  // namespace

std::vector<MapCheck> map_checks_of(const DesiredMaps& desired) {
    uint32_t zero = 0;
    return {
        {kFileRulesMap, digest_of_hash(desired.file_rules)},
        {kExecRulesMap, digest_of_hash(desired.exec_rules)},
        {kBpfAllowMap, digest_of_hash(desired.bpf_allow)},
        {kBpfPolicyMap,
         digest_of_entries(sizeof(zero), sizeof(bw_bpf_policy), {{bytes_of(zero), bytes_of(desired.bpf_policy)}})},
    };
}

Result<ExpectedState> ExpectedState::derive(const VerifiedImageSet& images, bool enforcement, const PinLayout& pins) {
    ExpectedState state;
    for (const auto& spec : managed_objects()) {
        if (spec.role == ObjectRole::Enforcement && !enforcement)
            continue;
        ExpectedObject object{&spec, std::nullopt};
        if (spec.program) {
            auto program = expected_program(spec, images, pins);
            if (!program)
                return std::unexpected(program.error());
            object.program = std::move(*program);
            if (spec.role == ObjectRole::Enforcement)
                state.lsm_hooks_.push_back(lsm_hook_name(spec.hook));
        }
        state.objects_.push_back(std::move(object));
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
