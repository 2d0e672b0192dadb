// The watchdog's real kernel access (watchdog_kernel.h): bpffs pins, bpf()
// inspection, the canary, and the references that keep verified links and
// maps alive while their pins are tampered with.
#pragma once

#include <map>
#include <memory>
#include <optional>

#include "inspection/held_maps.h"
#include "support/unique_fd.h"
#include "watchdog_kernel.h"

namespace bpfwarden {

class LiveKernel final : public WatchdogKernel {
public:
    LiveKernel(PinLayout pins, LoadConfig load) : pins_(std::move(pins)), load_(std::move(load)) {}

    // The images verified at start: every heal loads these bytes, never the
    // files on disk again (a stray or tampered file there cannot block a heal).
    void use_images(std::shared_ptr<const VerifiedImageSet> images) override { images_ = std::move(images); }
    Result<SelfState> self_state() override { return read_self_state(pins_); }

    std::vector<PinDirFacts> pin_directories() override;
    std::vector<std::string> moved_map_pins() override;
    LinkStatus inspect(const ExpectedObject& object, const ExpectedProgram& program) override;
    PolicyMapFacts policy_map(const std::string& name, bool want_digest) override;
    int try_canary(const std::filesystem::path& canary) override;
    Result<std::vector<ForeignProgram>> foreign_programs(const std::vector<std::string>& hooks,
                                                         const std::vector<uint32_t>& our_prog_ids) override;

    Result<std::vector<std::string>> restore_pin_tree() override;
    bool repin_held_links(const ExpectedObject& object) override;
    Result<void> reload(const ObjectSpec& spec) override;
    void unpin_policy_maps() override;
    Result<void> write_policy_maps(const DesiredMaps& desired) override;
    void use_bpf_lsm(bool usable) override { load_.bpf_lsm = usable; }
    void hold_verified(const std::vector<ExpectedObject>& objects, bool maps_too) override;
    bool holds_links() const override { return !held_links_.empty(); }
    bool holds_maps() const override { return !held_maps_.empty(); }

private:
    std::vector<uint32_t> expected_map_ids(const ExpectedObject& object, const ExpectedProgram& program) const;
    std::vector<std::string> map_pin_names(const std::vector<ExpectedObject>& objects) const;

    PinLayout pins_;
    LoadConfig load_;
    PinInspector inspector_;
    std::shared_ptr<const VerifiedImageSet> images_;
    // A reference to every verified link, so that removing or renaming a pin
    // does not detach it: the very same link is pinned again, and
    // enforcement never lapses.
    std::map<std::string, UniqueFd> held_links_;  // by link pin path
    HeldMaps held_maps_;
};

}  // namespace bpfwarden
