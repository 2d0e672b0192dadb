// Names of bpf(2) commands, for policy files ("prog_load") and events.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bpfwarden {

// Lower-case name without the BPF_ prefix ("prog_load"), or "cmd_<n>" for a
// command newer than this table.
std::string bpf_command_name(uint32_t cmd);

// Inverse of bpf_command_name for known commands; accepts "prog_load" and
// "BPF_PROG_LOAD" alike.
std::optional<uint32_t> bpf_command_from_name(std::string_view name);

// Commands that can change what BPF enforces on the host: the default set
// the bpf() guard restricts to allowlisted executables.
uint64_t default_restricted_bpf_commands();

}  // namespace bpfwarden
