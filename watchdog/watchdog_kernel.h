// Everything the watchdog asks of, and does to, the kernel and bpffs, behind
// one narrow interface: the check and heal decisions (checker, healer,
// supervisor) use only this, so that unit tests drive them with a fake
// kernel, and LiveKernel (live_kernel.h) is the real thing.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "expected_state.h"
#include "inspection/map_digest.h"
#include "inspection/pin_inspector.h"
#include "loading/self_state.h"
#include "support/error.h"

namespace bpfwarden {

// A pin directory as lstat() sees it.
struct PinDirFacts {
    std::filesystem::path dir;
    int error = 0;  // errno of lstat(); the rest is meaningless when set
    bool is_dir = false;
    unsigned mode = 0;  // permission bits
    uid_t uid = 0;
};

// A policy map as the programs see it: the held map, else the pinned one.
struct PolicyMapFacts {
    std::optional<Error> missing;  // set: neither held nor pinned (why)
    bool frozen = false;
    Result<Digest> digest = Digest{};  // asked for: the digest or why it failed
};

class WatchdogKernel {
public:
    virtual ~WatchdogKernel() = default;

    // The images verified at start, which every reload loads.
    virtual void use_images(std::shared_ptr<const VerifiedImageSet> images) { (void)images; }
    // Self-protection as pinned, and the watchdog's standing.
    virtual Result<SelfState> self_state() = 0;

    // ---- What is.
    virtual std::vector<PinDirFacts> pin_directories() = 0;
    // Held maps whose pin is gone or names another map, one problem each.
    virtual std::vector<std::string> moved_map_pins() = 0;
    // The link pin of one of `object`'s programs against what is expected
    // (and our maps).
    virtual LinkStatus inspect(const ExpectedObject& object, const ExpectedProgram& program) = 0;
    virtual PolicyMapFacts policy_map(const std::string& name, bool want_digest) = 0;
    // 0 when opening the canary succeeded, else the errno (EPERM: denied).
    virtual int try_canary(const std::filesystem::path& canary) = 0;
    virtual Result<std::vector<ForeignProgram>> foreign_programs(const std::vector<std::string>& hooks,
                                                                 const std::vector<uint32_t>& our_prog_ids) = 0;

    // ---- What a heal does.
    // The pin directories (0700), and every held map pinned again.
    virtual Result<std::vector<std::string>> restore_pin_tree() = 0;
    // Pins the held links of `object` again; true when all are back and ours.
    virtual bool repin_held_links(const ExpectedObject& object) = 0;
    // Loads, attaches and pins `spec` from the images verified at start
    // (kept in memory: whatever is on disk now does not matter). The new
    // links are pinned over the old ones, whose held references are then
    // dropped.
    virtual Result<void> reload(const ObjectSpec& spec) = 0;
    // Removes the policy map pins so that reloading the store creates new maps.
    virtual void unpin_policy_maps() = 0;
    virtual Result<void> write_policy_maps(const DesiredMaps& desired) = 0;
    // Whether reloads take an object's BPF LSM forms (LoadConfig::bpf_lsm).
    virtual void use_bpf_lsm(bool /*usable*/) {}
    // Takes references to what was just verified: every verified link, and
    // the maps too when everything checked out.
    virtual void hold_verified(const std::vector<ExpectedObject>& objects, bool maps_too) = 0;
    virtual bool holds_links() const = 0;
    virtual bool holds_maps() const = 0;
};

}  // namespace bpfwarden
