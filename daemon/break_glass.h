// Break-glass: an unlock token (trust/unlock_token.h), signed with an image
// key, lifts self-protection until the token expires, once. bpfwardend is the
// only process that may write bpfw_lift (the self guard refuses everyone
// else a writable fd), so a token is worth something only through it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "loading/pin_layout.h"
#include "support/error.h"
#include "trust/image_set.h"

namespace bpfwarden {

struct Lift {
    uint64_t until_usec = 0;  // CLOCK_REALTIME end of the lift (the token's expiry)
    std::string nonce;
    std::string signer;  // the trusted key file that verified the token
};

// Checks `token` (shape, signature against the trusted image keys, times,
// single use, recorded in the state directory) and lifts protection until it
// expires. Refused, with nothing changed, when protection is not in force
// (off in the policy, or not enforceable without BPF LSM): there is nothing
// to lift. A second token extends a lift, never shortens it.
Result<Lift> lift_protection(std::string_view token, const ImageTrust& trust, const PinLayout& pins,
                             std::chrono::system_clock::time_point now);

// The end of a lift as CLOCK_REALTIME microseconds (0: not lifted now).
uint64_t lifted_until_usec(uint64_t lifted_until_monotonic_ns);

}  // namespace bpfwarden
