// The inventory as a watch: the watchdog takes bpfwardenctl inventory's view
// of the host's BPF programs periodically and soon after any program load,
// and reports each program that is neither bpfwarden's, the kernel's,
// systemd's nor allowlisted, once per program (journal and the D-Bus
// UnknownProgram signal). It reports; containing is the admin's decision.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "inspection/bpf_inventory.h"
#include "support/service_loop.h"

namespace bpfwarden {

class InventoryWatch {
public:
    using Reporter = std::function<void(const ProgramRecord& program, const std::string& why)>;

    // `interval` zero: only on loads. The allowlist file may be missing.
    InventoryWatch(boost::asio::io_context& io, OwnSide own, std::filesystem::path allowlist,
                   std::chrono::steady_clock::duration interval, Reporter report);

    // A program was loaded: scan once the burst has settled.
    void scan_soon(const std::string& why);
    void scan(const std::string& why);

private:
    OwnSide own_;
    std::filesystem::path allowlist_;
    Reporter report_;
    std::set<std::pair<uint32_t, std::string>> reported_;  // (id, tag): ids are reused after a program goes
    boost::asio::steady_timer soon_;
    bool soon_pending_ = false;
    std::string soon_why_;
    std::unique_ptr<RepeatingTimer> periodic_;
};

}  // namespace bpfwarden
