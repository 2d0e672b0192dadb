// What the watchdog trusts: the state bpfwarden's kernel objects must be in.
//
// It comes only from sources the watchdog trusts: the signed image set, the
// program identities derived by loading those images (derive()), and the
// desired contents of the policy maps compiled from the policy directory.
// Nothing is read back from the objects being checked to decide what they
// should be.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "inspection/map_digest.h"
#include "inspection/pin_inspector.h"
#include "loading/bpf_objects.h"
#include "loading/pin_layout.h"
#include "policy/policy_maps.h"
#include "support/error.h"
#include "trust/image_set.h"

namespace bpfwarden {

struct ExpectedObject {
    const ObjectSpec* spec;
    // The programs this kernel runs, each with its link pin; none for the
    // map-only store.
    std::vector<ExpectedProgram> programs;
};

// One policy map and the digest of what it must hold.
struct MapCheck {
    std::string name;
    Digest desired;

    friend bool operator==(const MapCheck&, const MapCheck&) = default;
};

// The digest of each policy map's exact desired contents.
std::vector<MapCheck> map_checks_of(const DesiredMaps& desired);

class ExpectedState {
public:
    ExpectedState() = default;
    // For tests: objects and hooks given as they are.
    ExpectedState(std::vector<ExpectedObject> objects, std::vector<std::string> lsm_hooks)
        : objects_(std::move(objects)), lsm_hooks_(std::move(lsm_hooks)) {}

    // The objects to expect: every managed object, LSM programs only when
    // enforcement is expected (and only those this kernel has hooks for);
    // each program's identity derived by loading its signed image (without
    // attaching it).
    // `bpf_lsm`: BPF LSM is usable, so the daemon loads the LSM form of a
    // program that has a tracepoint fallback (BpfLsmUse).
    static Result<ExpectedState> derive(const VerifiedImageSet& images, bool enforcement, bool bpf_lsm,
                                        const PinLayout& pins);

    const std::vector<ExpectedObject>& objects() const { return objects_; }
    std::vector<ExpectedObject>& objects() { return objects_; }
    // "file_open", ...: the hooks on which another program is a finding.
    const std::vector<std::string>& lsm_hooks() const { return lsm_hooks_; }
    // The map-only object holding the policy maps.
    const ObjectSpec* store() const;
    // The enforcing (BPF LSM) objects: reloaded when enforcement silently broke.
    std::vector<const ObjectSpec*> enforcement() const;
    // Every object whose programs read the store's maps (the LSM objects'
    // policy, the tracepoints' settings): reloaded with a new store.
    std::vector<const ObjectSpec*> store_readers() const;

    // The desired policy maps. Replacing them returns false when nothing
    // changes; otherwise the previous digests are kept as `superseded()`
    // until take_superseded(): maps still holding them are not tampered with,
    // only not updated yet.
    bool set_desired(DesiredMaps desired);
    const DesiredMaps& desired() const { return desired_; }
    const std::vector<MapCheck>& map_checks() const { return map_checks_; }
    bool has_superseded() const { return !superseded_.empty(); }
    std::vector<MapCheck> take_superseded();

private:
    std::vector<ExpectedObject> objects_;
    std::vector<std::string> lsm_hooks_;
    DesiredMaps desired_;
    std::vector<MapCheck> map_checks_;
    std::vector<MapCheck> superseded_;
};

}  // namespace bpfwarden
