#include "inventory_watch.h"

#include "support/log.h"

namespace bpfwarden {
namespace {

constexpr auto kLoadSettle = std::chrono::milliseconds(300);  // a loader makes several programs in a row

}  // namespace

InventoryWatch::InventoryWatch(boost::asio::io_context& io, OwnSide own, std::filesystem::path allowlist,
                               std::chrono::steady_clock::duration interval, Reporter report)
    : own_(std::move(own)), allowlist_(std::move(allowlist)), report_(std::move(report)), soon_(io) {
    periodic_ = std::make_unique<RepeatingTimer>(io, interval, [this] { scan("periodic inventory"); });
}

void InventoryWatch::scan_soon(const std::string& why) {
    if (soon_pending_)
        return;
    soon_pending_ = true;
    soon_why_ = why;
    soon_.expires_after(kLoadSettle);
    soon_.async_wait([this](const boost::system::error_code& ec) {
        soon_pending_ = false;
        if (!ec)
            scan(soon_why_);
    });
}

void InventoryWatch::scan(const std::string& why) {
    auto inventory = take_bpf_inventory();
    if (!inventory) {
        log_warning("inventory: " + inventory.error().message());
        return;
    }
    Allowlist allowlist;
    std::error_code missing;
    if (std::filesystem::exists(allowlist_, missing)) {
        auto loaded = load_allowlist(allowlist_);
        if (!loaded)
            log_warning("inventory: " + loaded.error().message() + "; checking without the allowlist");
        else
            allowlist = std::move(*loaded);
    }
    classify(*inventory, own_, allowlist);
    std::set<std::pair<uint32_t, std::string>> present;
    for (const ProgramRecord& program : inventory->programs) {
        if (program.owner.owner != ObjectOwner::Unknown)
            continue;
        auto key = std::make_pair(program.id, program.tag);
        present.insert(key);
        if (reported_.insert(key).second)
            report_(program, why);
    }
    // Forget the programs that are gone: an id the kernel reuses is a new program.
    std::erase_if(reported_, [&](const auto& key) { return !present.contains(key); });
}

}  // namespace bpfwarden
