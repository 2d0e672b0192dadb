// How often each policy rule matched since the policy was applied: the
// store's bpfw_rule_hits map, keyed by rule id (the ids of ListRules and of
// events' rule=). The programs count at the one place a matched rule gives
// its verdict; bpfwardend empties the map whenever it applies a policy,
// since the ids then name other rules.
#pragma once

#include <cstdint>
#include <map>

#include "loading/pin_layout.h"
#include "support/error.h"

namespace bpfwarden {

// Rule id → hits, only rules that matched at least once. ENOENT when the map
// is not pinned (a store pinned by an older bpfwarden).
Result<std::map<uint32_t, uint64_t>> read_rule_hits(const PinLayout& pins);

// Removes every counter (needs a writable fd: bpfwarden itself).
Result<void> clear_rule_hits(const PinLayout& pins);

}  // namespace bpfwarden
