#include "break_glass.h"

#include <bpf/bpf.h>

#include <algorithm>

#include "loading/bpf_objects.h"
#include "loading/self_state.h"
#include "trust/trusted_keys.h"
#include "trust/unlock_token.h"

namespace bpfwarden {

namespace {

using Nanoseconds = std::chrono::nanoseconds;

Result<void> require_protection_in_force(const PinLayout& pins) {
    auto state = read_self_state(pins);
    if (!state)
        return fail(state.error().wrap("self-protection state"));
    if (!state->store)
        return fail(ErrorKind::NotFound, ENOENT,
                    "no policy store is pinned under " + pins.root().string() + ": nothing is protected");
    if (!state->protect)
        return fail(ErrorKind::InvalidArgument, EINVAL,
                    "self-protection is off in the policy (protect = false): there is nothing to lift");
    if (!state->guarded)
        return fail(ErrorKind::Unsupported, EOPNOTSUPP,
                    "self-protection is not enforced on this kernel (no BPF LSM): there is nothing to lift");
    return {};
}

Result<TrustedKeys> signing_keys(const ImageTrust& trust) {
    auto keys = trust.key_file.empty() ? TrustedKeys::load_dir(trust.keys_dir, trust.key_rules)
                                       : TrustedKeys::load_file(trust.key_file, trust.key_rules);
    if (!keys)
        return fail(keys.error().wrap("trusted keys"));
    return keys;
}

// Sets bpfw_lift to `until_ns` (CLOCK_MONOTONIC), unless a later lift is on;
// returns the lift's end as written.
Result<uint64_t> write_lift(const PinLayout& pins, uint64_t until_ns) {
    auto map = PinLayout::open_pin(pins.map_pin(kLiftMap));
    if (!map)
        return fail(map.error().wrap("open " + std::string(kLiftMap)));
    uint32_t zero = 0;
    bw_lift lift{};
    if (bpf_map_lookup_elem(map->get(), &zero, &lift) != 0)
        return fail_errno("read " + std::string(kLiftMap));
    lift.until_ns = std::max<uint64_t>(lift.until_ns, until_ns);
    if (bpf_map_update_elem(map->get(), &zero, &lift, BPF_ANY) != 0)
        return fail_errno("write " + std::string(kLiftMap));
    return lift.until_ns;
}

}  // namespace

uint64_t lifted_until_usec(uint64_t lifted_until_monotonic_ns) {
    uint64_t now_ns = monotonic_ns();
    if (lifted_until_monotonic_ns <= now_ns)
        return 0;
    auto left = Nanoseconds(lifted_until_monotonic_ns - now_ns);
    auto until = std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::microseconds>(left);
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(until.time_since_epoch()).count());
}

Result<Lift> lift_protection(std::string_view token, const ImageTrust& trust, const PinLayout& pins,
                             std::chrono::system_clock::time_point now) {
    if (auto in_force = require_protection_in_force(pins); !in_force)
        return fail(in_force.error());
    auto keys = signing_keys(trust);
    if (!keys)
        return fail(keys.error());
    auto verified = verify_unlock_token(token, *keys, now);
    if (!verified)
        return fail(verified.error());
    auto nonces = UsedNonces::open(trust.state_dir);
    if (!nonces)
        return fail(nonces.error().wrap("used unlock tokens"));
    // Recorded before the lift: a crash in between wastes a token, never reuses one.
    if (auto recorded = nonces->record(*verified, now); !recorded)
        return fail(recorded.error());
    auto expires = std::chrono::system_clock::time_point(std::chrono::seconds(verified->expires));
    auto left = std::chrono::duration_cast<Nanoseconds>(expires - now);
    auto until_ns = write_lift(pins, monotonic_ns() + static_cast<uint64_t>(left.count()));
    if (!until_ns)
        return fail(until_ns.error());
    return Lift{lifted_until_usec(*until_ns), verified->nonce, verified->signer};
}

}  // namespace bpfwarden
