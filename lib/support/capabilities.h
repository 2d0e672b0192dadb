// Least privilege after setup: once programs are loaded and pinned, a
// process keeps only the capabilities its steady state needs.
#pragma once

#include <initializer_list>
#include <string>

#include "support/error.h"

namespace bpfwarden {

// Drops every capability (effective, permitted, inheritable, bounding, and
// ambient) except `keep`, which are CAP_* numbers. Uid stays 0: the pins and
// the policy directory are root's.
Result<void> drop_capabilities_except(std::initializer_list<int> keep);

// "cap_bpf,cap_dac_read_search" — the effective set of this process.
std::string effective_capabilities();

}  // namespace bpfwarden
