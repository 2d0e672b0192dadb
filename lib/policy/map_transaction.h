// All or nothing over several BPF maps: a policy update either leaves every
// policy map holding the new policy or every one holding the previous one.
//
// What each map held is read before the first write (MapTransaction::track);
// when a write fails part way (a kernel refusal, memory), roll_back() puts
// every tracked map back as it was read. A policy that cannot fit is refused
// before anything is written (check_fits), and a hash map is synced so that
// it never needs more room than the larger of its old and new contents
// (sync_hash_map): a rule in both policies is never removed, not even for a
// moment.
#pragma once

#include <bpf/bpf.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "inspection/map_digest.h"
#include "support/error.h"

namespace bpfwarden {

class MapTransaction {
public:
    // Reads `fd`'s contents now, before anything writes to it.
    Result<void> track(int fd, std::string name);
    // What `fd` held when it was tracked (nullptr: not tracked).
    const MapEntries* before(int fd) const;
    // Puts every tracked map back as it was read: a hash map loses the keys
    // added since and gets back what was changed or deleted; an array gets
    // every value back. Goes on past a failing map and reports the first.
    Result<void> roll_back() const;

private:
    struct Saved {
        int fd;
        std::string name;
        MapEntries entries;
    };
    std::vector<Saved> saved_;
};

// Refuses `wanted` entries in a map of `max_entries` with E2BIG, naming both.
Result<void> check_fits(const char* name, size_t wanted, uint32_t max_entries);

// Writes `desired` into the hash map `fd`, which held `before`: updates first
// and stale keys last, unless the map could not hold both at once, in which
// case the stale keys (in no rule of the new policy) go first. `desired` must
// fit (check_fits, before the first write of the update).
template <typename Key, typename Value, typename Less>
Result<void> sync_hash_map(int fd, const char* name, const std::map<Key, Value, Less>& desired,
                           const MapEntries& before) {
    std::vector<Key> stale;
    size_t kept = 0;
    for (uint32_t i = 0; i < before.count; ++i) {
        Key key{};
        std::memcpy(&key, before.key(i), std::min<size_t>(sizeof(key), before.key_size));
        if (desired.contains(key))
            ++kept;
        else
            stale.push_back(key);
    }
    auto delete_stale = [&]() -> Result<void> {
        for (const auto& key : stale)
            if (int err = bpf_map_delete_elem(fd, &key); err && err != -ENOENT)
                return fail(Error::from_libbpf(err, std::string("delete from policy map '") + name + "'"));
        return {};
    };
    const bool room_for_both = before.count + (desired.size() - kept) <= before.max_entries;
    if (!room_for_both)
        if (auto deleted = delete_stale(); !deleted)
            return deleted;
    for (const auto& [key, value] : desired)
        if (int err = bpf_map_update_elem(fd, &key, &value, BPF_ANY); err)
            return fail(Error::from_libbpf(err, std::string("update policy map '") + name + "'"));
    return room_for_both ? delete_stale() : Result<void>{};
}

}  // namespace bpfwarden
