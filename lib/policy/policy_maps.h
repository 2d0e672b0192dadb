// What the policy maps must hold (a compiled policy plus what bpfwarden adds
// on its own), and writing it into the pinned maps. The watchdog compares
// digests of the same DesiredMaps.
//
// Each hash map is brought to exactly the desired contents: entries that
// stay are overwritten in place (never deleted and re-added), new ones are
// added, stale ones removed last, so a rule present before and after an
// update never stops applying. A map too full to take the new entries first
// (its capacity used up by junk, say) gets its stale entries removed first.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>

#include "bpfwarden/abi.h"
#include "loading/pin_layout.h"
#include "policy/map_transaction.h"
#include "policy/policy_compiler.h"
#include "support/error.h"
#include "support/unique_fd.h"

namespace bpfwarden {

// bpfwarden's own files and executables: the implicit policy entries. The
// daemon and the watchdog derive the same entries from the same paths, so
// they agree on what the maps must hold.
struct ServiceIdentity {
    std::filesystem::path daemon_exe;
    std::filesystem::path watchdog_exe;
    std::filesystem::path canary;  // always denied: proof that enforcement works
    std::filesystem::path pin_root = PinLayout::kDefaultRoot;
    std::filesystem::path image_dir, keys_dir, state_dir;
    std::filesystem::path packager = "/usr/bin/dpkg";  // may replace our images and executables
};

// The exact contents of every policy map.
struct DesiredMaps {
    RuleTables tables;  // the policy's entries and the implicit ones
    std::map<bw_dirent_key, bw_self_exe, DirentKeyLess> self_exes;
    std::array<uint64_t, BW_DIR_BLOOM_WORDS> dir_bloom{};  // a bit for each key of tables.dir_rules
};

// The policy plus the implicit entries: the canary (always denied); with
// protection on, bpfwarden's pins, images, keys, state and executables
// (changed only by bpfwarden, images and executables also by the package
// manager) and who may become bpfwarden; with it off, bpfwarden's
// executables in bpf.allow instead. Paths that do not exist are left out.
DesiredMaps desired_maps(const CompiledPolicy& policy, const ServiceIdentity& service);

// What protection, as pinned (`state`), lets a daemon or watchdog do with
// `next`: while protection is on and not lifted, it stays on (protect = false
// applies only during a lift) and the trusted keys, images and state must be
// the ones it was set up with (a process given other directories would load
// other programs). PermissionDenied names what differs.
Result<void> check_against_protection(const struct SelfState& state, const DesiredMaps& next);

// Creates the canary file (0600, and its directories) if missing.
Result<void> ensure_canary(const std::filesystem::path& canary);

class PolicyMaps {
public:
    static Result<PolicyMaps> open(const PinLayout& pins);

    // Writes every map, in an order that never opens a gap: rules before the
    // directory filter and settings that make them reachable, allowlist
    // entries before the bpf() policy that relies on them. All or nothing
    // (map_transaction.h): a policy a map cannot hold changes nothing, and a
    // write that fails part way puts every map back as it was. An entry that
    // already holds what the policy wants is left alone (map_transaction.h
    // says why); the result counts what was written and removed.
    Result<MapWrites> apply(const DesiredMaps& desired) const;

private:
    Result<MapTransaction> begin(const DesiredMaps& desired) const;
    Result<void> write_all(const DesiredMaps& desired, const MapTransaction& before, MapWrites& writes) const;
    Result<void> apply_rules(const DesiredMaps& desired, const MapTransaction& before, MapWrites& writes) const;
    template <typename Key, typename Value, typename Less>
    static Result<void> sync(const UniqueFd& fd, const char* name, const std::map<Key, Value, Less>& desired,
                             const MapTransaction& before, MapWrites& writes) {
        return sync_hash_map(fd.get(), name, desired, *before.before(fd.get()), writes);
    }
    Result<void> apply_dir_filter(const DesiredMaps& desired, bool union_with_current, MapWrites& writes) const;
    Result<void> apply_settings(const bw_settings& settings, MapWrites& writes) const;
    std::map<bw_allowed_key, uint32_t, AllowedKeyLess> allowed_during_update(const DesiredMaps& desired,
                                                                             const MapTransaction& before) const;

    UniqueFd file_rules_, exec_rules_, dirents_, dir_rules_, dir_bloom_, bpf_allow_, bpf_policy_, settings_, self_exes_,
        scopes_, exec_allowed_;
};

// Identity of an executable (bpf.allow keys it by inode).
Result<bw_inode_key> executable_identity(const char* path = "/proc/self/exe");

// Sum of the counters of every pinned object.
Result<bw_counters> read_counters(const PinLayout& pins);

}  // namespace bpfwarden
