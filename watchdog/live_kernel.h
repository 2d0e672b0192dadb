// The watchdog's real kernel access (watchdog_kernel.h): bpffs pins, bpf()
// inspection, the canary, and the references that keep verified links and
// maps alive while their pins are tampered with.
#pragma once

#include <map>
#include <optional>

#include "inspection/held_maps.h"
#include "support/unique_fd.h"
#include "watchdog_kernel.h"

namespace bpfwarden {

class LiveKernel final : public WatchdogKernel {
public:
    LiveKernel(PinLayout pins, ImageTrust trust, LoadConfig load)
        : pins_(std::move(pins)), trust_(std::move(trust)), load_(load) {}

    std::vector<PinDirFacts> pin_directories() override;
    std::vector<std::string> moved_map_pins() override;
    LinkStatus inspect(const ExpectedObject& object) override;
    PolicyMapFacts policy_map(const std::string& name, bool want_digest) override;
    int try_canary(const std::filesystem::path& canary) override;
    Result<std::vector<ForeignProgram>> foreign_programs(const std::vector<std::string>& hooks,
                                                         const std::vector<uint32_t>& our_prog_ids) override;

    Result<std::vector<std::string>> restore_pin_tree() override;
    bool repin_held_link(const ExpectedObject& object) override;
    Result<void> verify_images() override;
    Result<void> reload(const ObjectSpec& spec) override;
    void unpin_policy_maps() override;
    Result<void> write_policy_maps(const DesiredMaps& desired) override;
    void hold_verified(const std::vector<ExpectedObject>& objects, bool maps_too) override;
    bool holds_links() const override { return !held_links_.empty(); }
    bool holds_maps() const override { return !held_maps_.empty(); }

private:
    std::vector<uint32_t> expected_map_ids(const ExpectedObject& object) const;
    std::vector<std::string> map_pin_names(const std::vector<ExpectedObject>& objects) const;

    PinLayout pins_;
    ImageTrust trust_;
    LoadConfig load_;
    PinInspector inspector_;
    std::optional<VerifiedImageSet> images_;  // verified for the heal under way
    // A reference to every verified link, so that removing or renaming a pin
    // does not detach it: the very same link is pinned again, and
    // enforcement never lapses.
    std::map<std::string, UniqueFd> held_links_;
    HeldMaps held_maps_;
};

}  // namespace bpfwarden
