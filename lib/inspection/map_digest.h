// A digest of a BPF map's exact contents, to compare what a policy map holds
// with what it should hold without keeping (or shipping) either side whole.
//
// Definition (version 1), the same for a live map and for desired contents:
//   SHA-256( "bpfwarden-map-digest-v1" NUL
//            || le32(key_size) || le32(value_size) || le64(entry count)
//            || key_0 || value_0 || key_1 || value_1 || ... )
// with the entries sorted by key bytes (memcmp order; for little-endian
// integer keys that is not numeric order). Every key and value has exactly
// key_size / value_size bytes.
//
// Array maps always hold max_entries entries: desired contents for an array
// must list every index, zero values included.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "support/error.h"

namespace bpfwarden {

using Digest = std::array<uint8_t, 32>;

// How map_digest reads the map. Auto uses BPF_MAP_LOOKUP_BATCH (one syscall
// per up to 4096 entries) and falls back to key-by-key iteration
// (bpf_map_get_next_key + lookup: two syscalls per entry) where the kernel or
// the map type has no batch lookup. The explicit choices exist for tests
// and the benchmark.
enum class MapReadMethod { Auto, Batch, KeyByKey };

// Entries read from a map: fixed-size keys and values in two flat buffers.
struct MapEntries {
    uint32_t type = 0;  // BPF_MAP_TYPE_*
    uint32_t key_size = 0;
    uint32_t value_size = 0;
    uint32_t max_entries = 0;
    uint32_t count = 0;
    std::vector<uint8_t> keys;
    std::vector<uint8_t> values;

    const uint8_t* key(uint32_t i) const { return keys.data() + size_t(i) * key_size; }
    const uint8_t* value(uint32_t i) const { return values.data() + size_t(i) * value_size; }
};

// Every entry of a map with plain contents (as map_digest reads it, once).
Result<MapEntries> read_map_entries(int map_fd, MapReadMethod method = MapReadMethod::Auto);

// Hash (including LRU), array and LPM-trie maps; key_size and value_size
// come from the kernel's map info. Per-CPU maps are refused with ENOTSUP (one
// value per possible CPU, which desired contents cannot state), and so are
// maps without plain key/value contents (ring buffers, maps of programs or
// maps, ...). A hash map that keeps changing while it is read (an LRU map
// fed by a program) fails with EAGAIN rather than looping.
Result<Digest> map_digest(int map_fd, MapReadMethod method = MapReadMethod::Auto);

// The same definition over desired contents, in any order. Duplicate keys
// are kept as given (a map cannot hold them, so such contents match no map),
// and an entry whose sizes differ from key_size/value_size makes a digest
// that matches no map.
Digest digest_of_entries(uint32_t key_size, uint32_t value_size,
                         std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> entries);

// Lower-case hex, 64 characters.
std::string digest_hex(const Digest& digest);

}  // namespace bpfwarden
