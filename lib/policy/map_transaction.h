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
#include <unordered_set>
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

// How many entries an update wrote and removed (what the kernel saw change).
struct MapWrites {
    size_t written = 0;
    size_t removed = 0;
};

// Deletes `keys` from the hash map `fd` (a key already gone is no error).
template <typename Key>
Result<void> delete_keys(int fd, const char* name, const std::vector<Key>& keys, MapWrites& writes) {
    for (const auto& key : keys) {
        if (int err = bpf_map_delete_elem(fd, &key); err && err != -ENOENT)
            return fail(Error::from_libbpf(err, std::string("delete from policy map '") + name + "'"));
        ++writes.removed;
    }
    return {};
}

// The keys `before` holds that `desired` does not; with `unchanged`, also
// which desired values `before` already holds byte for byte.
template <typename Key, typename Value, typename Less>
std::vector<Key> stale_keys(const std::map<Key, Value, Less>& desired, const MapEntries& before,
                            std::unordered_set<const Value*>* unchanged = nullptr) {
    std::vector<Key> stale;
    for (uint32_t i = 0; i < before.count; ++i) {
        Key key{};
        std::memcpy(&key, before.key(i), std::min<size_t>(sizeof(key), before.key_size));
        auto found = desired.find(key);
        if (found == desired.end())
            stale.push_back(key);
        else if (unchanged && before.value_size == sizeof(Value) &&
                 std::memcmp(&found->second, before.value(i), sizeof(Value)) == 0)
            unchanged->insert(&found->second);
    }
    return stale;
}

// Writes `desired` into the hash map `fd`, which held `before`: updates first
// and stale keys last, unless the map could not hold both at once, in which
// case the stale keys (in no rule of the new policy) go first. `desired` must
// fit (check_fits, before the first write of the update).
//
// An entry that already holds its desired value is not written again. Beyond
// saving a syscall per rule, that keeps concurrent lookups safe: the kernel
// replaces a hash element on every update and may hand the freed element to
// the very next update at once (bpf_mem_alloc, preallocated maps alike), so a
// program that looked up key A just before A was rewritten can read key B's
// value. Rewriting an unchanged policy (every daemon start does) would open
// that window on every rule; now only a rule whose value changes has it.
template <typename Key, typename Value, typename Less>
Result<void> sync_hash_map(int fd, const char* name, const std::map<Key, Value, Less>& desired,
                           const MapEntries& before, MapWrites& writes) {
    std::unordered_set<const Value*> unchanged;
    const std::vector<Key> stale = stale_keys(desired, before, &unchanged);
    const size_t kept = before.count - stale.size();
    const bool room_for_both = before.count + (desired.size() - kept) <= before.max_entries;
    if (!room_for_both)
        if (auto deleted = delete_keys(fd, name, stale, writes); !deleted)
            return deleted;
    for (const auto& [key, value] : desired) {
        if (unchanged.contains(&value))
            continue;
        if (int err = bpf_map_update_elem(fd, &key, &value, BPF_ANY); err)
            return fail(Error::from_libbpf(err, std::string("update policy map '") + name + "'"));
        ++writes.written;
    }
    return room_for_both ? delete_keys(fd, name, stale, writes) : Result<void>{};
}

}  // namespace bpfwarden
