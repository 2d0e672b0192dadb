// What a loaded BPF program is, as the kernel reports it: name, type and tag.
//
// The watchdog derives the identities it expects by loading the signed images
// itself (derive_identities), never by asking the objects it checks.
//
// The tag is the kernel's hash of the program's instructions as they were
// handed to BPF_PROG_LOAD (after libbpf's relocations, before the verifier
// rewrites anything), with the immediates of map references (the map fd, and
// the offset of a direct map-value access such as a .rodata global) zeroed.
// Consequences the watchdog must keep in mind:
//   - the tag does not depend on which maps a program uses, nor on map
//     contents or .rodata values (rate_limit_burst): a program loaded with
//     another LoadConfig has the same tag (checked by the host tests);
//   - for the same reason, our own image loaded by someone else with maps of
//     their own has *our* tag: compare the maps too (ExpectedProgram::map_ids);
//   - the hash function is the running kernel's (the first 8 bytes of SHA-1
//     up to 6.17; of SHA-256 from 6.18, commit "bpf: Update the
//     bpf_prog_calc_tag to use SHA256" — recomputed from libbpf's final
//     instructions and matched on this 6.18 host), and libbpf's CO-RE
//     relocations depend on the running kernel's BTF: derive tags on the
//     machine that runs the programs, never ship them precomputed.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "support/error.h"
#include "trust/bpf_image.h"

namespace bpfwarden {

struct ProgramIdentity {
    std::string name;   // as the kernel keeps it: at most 15 characters
    uint32_t type = 0;  // enum bpf_prog_type
    std::array<uint8_t, 8> tag{};
    // Names of the maps the program really uses (the verifier's list), filled
    // by derive_identities() only: the watchdog turns them into the map ids a
    // genuine copy must reference. Not part of the identity comparison.
    std::vector<std::string> maps = {};

    bool operator==(const ProgramIdentity& other) const {
        return name == other.name && type == other.type && tag == other.tag;
    }
};

// Lower-case hex, 16 characters, as bpftool prints it.
std::string tag_hex(const std::array<uint8_t, 8>& tag);

// Loads every program of the image into the kernel without attaching it
// (libbpf bpf_object__open_mem + load, with fresh maps), reads back each
// program's kernel-computed name, type and tag, then closes everything.
// Needs the privileges of a loader; on a kernel that refuses the program type
// (LSM here: EPERM) the load error is returned.
// `load_only`, when given, picks the programs to load (the ones this kernel
// runs); the others are left out of the result.
using ProgramFilter = std::function<bool(std::string_view program)>;
Result<std::vector<ProgramIdentity>> derive_identities(const BpfImage& image, const ProgramFilter& load_only = {});

Result<ProgramIdentity> identity_of_program_fd(int prog_fd);

}  // namespace bpfwarden
