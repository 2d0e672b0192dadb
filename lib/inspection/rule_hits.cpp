#include "inspection/rule_hits.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <vector>

#include "loading/bpf_objects.h"

namespace bpfwarden {
namespace {

// Every key, read before anything is deleted (deleting while walking with
// get_next_key restarts the walk).
Result<std::vector<uint32_t>> all_ids(int fd) {
    std::vector<uint32_t> ids;
    uint32_t key = 0, next = 0;
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
        ids.push_back(next);
        key = next;
        first = false;
    }
    if (errno != ENOENT)
        return fail_errno(std::string("walk ") + kRuleHitsMap);
    return ids;
}

}  // namespace

Result<std::map<uint32_t, uint64_t>> read_rule_hits(const PinLayout& pins) {
    auto fd = PinLayout::open_pin_read_only(pins.map_pin(kRuleHitsMap));
    if (!fd)
        return std::unexpected(fd.error());
    auto ids = all_ids(fd->get());
    if (!ids)
        return std::unexpected(ids.error());
    std::map<uint32_t, uint64_t> hits;
    for (uint32_t id : *ids) {
        uint64_t count = 0;
        if (bpf_map_lookup_elem(fd->get(), &id, &count) == 0)
            hits[id] = count;
    }
    return hits;
}

Result<void> clear_rule_hits(const PinLayout& pins) {
    auto fd = PinLayout::open_pin(pins.map_pin(kRuleHitsMap));
    if (!fd)
        return std::unexpected(fd.error());
    auto ids = all_ids(fd->get());
    if (!ids)
        return std::unexpected(ids.error());
    for (uint32_t id : *ids)
        if (bpf_map_delete_elem(fd->get(), &id) != 0 && errno != ENOENT)
            return fail_errno(std::string("clear ") + kRuleHitsMap);
    return {};
}

}  // namespace bpfwarden
