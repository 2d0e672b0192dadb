#include "policy/map_transaction.h"

#include <linux/bpf.h>

#include <algorithm>
#include <cstring>

namespace bpfwarden {
namespace {

bool is_hash(uint32_t type) { return type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH; }

// Deletes every key of the hash map `fd` that `saved` does not hold.
Result<void> delete_added_keys(int fd, const MapEntries& saved) {
    std::vector<std::vector<uint8_t>> known;
    known.reserve(saved.count);
    for (uint32_t i = 0; i < saved.count; ++i)
        known.emplace_back(saved.key(i), saved.key(i) + saved.key_size);
    std::sort(known.begin(), known.end());
    std::vector<std::vector<uint8_t>> added;
    std::vector<uint8_t> key(saved.key_size), next(saved.key_size);
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : key.data(), next.data()) == 0) {
        first = false;
        key.swap(next);
        if (!std::binary_search(known.begin(), known.end(), key))
            added.push_back(key);
    }
    for (const auto& extra : added)
        if (int err = bpf_map_delete_elem(fd, extra.data()); err && err != -ENOENT)
            return fail(Error::from_libbpf(err, "delete an added entry"));
    return {};
}

// Writes back only what differs: a map the update never reached (or cannot
// write, a frozen one) is left alone, and a large map costs lookups only.
Result<void> restore(int fd, const MapEntries& saved) {
    if (is_hash(saved.type))
        if (auto deleted = delete_added_keys(fd, saved); !deleted)
            return deleted;
    std::vector<uint8_t> current(saved.value_size);
    for (uint32_t i = 0; i < saved.count; ++i) {
        if (bpf_map_lookup_elem(fd, saved.key(i), current.data()) == 0 &&
            std::memcmp(current.data(), saved.value(i), saved.value_size) == 0)
            continue;
        if (int err = bpf_map_update_elem(fd, saved.key(i), saved.value(i), BPF_ANY); err)
            return fail(Error::from_libbpf(err, "put an entry back"));
    }
    return {};
}

}  // namespace

Result<void> MapTransaction::track(int fd, std::string name) {
    auto entries = read_map_entries(fd);
    if (!entries)
        return fail(entries.error().wrap("read policy map '" + name + "' before the update"));
    saved_.push_back(Saved{fd, std::move(name), std::move(*entries)});
    return {};
}

const MapEntries* MapTransaction::before(int fd) const {
    for (const auto& saved : saved_)
        if (saved.fd == fd)
            return &saved.entries;
    return nullptr;
}

Result<void> MapTransaction::roll_back() const {
    Result<void> first_failure;
    for (const auto& saved : saved_)
        if (auto restored = restore(saved.fd, saved.entries); !restored && first_failure)
            first_failure = fail(restored.error().wrap("restore policy map '" + saved.name + "'"));
    return first_failure;
}

Result<void> check_fits(const char* name, size_t wanted, uint32_t max_entries) {
    if (wanted <= max_entries)
        return {};
    return fail(ErrorKind::PolicyInvalid, E2BIG,
                "policy map '" + std::string(name) + "' holds at most " + std::to_string(max_entries) +
                    " entries and this policy needs " + std::to_string(wanted) +
                    " (the rules plus bpfwarden's own entries: the canary, its files and pins)");
}

}  // namespace bpfwarden
