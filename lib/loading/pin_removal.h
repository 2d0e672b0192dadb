// Ending enforcement: removing bpfwarden's pins, and only bpfwarden's.
//
// A pin root qualifies only when it is on bpffs (statfs magic) and holds
// bpfwarden's layout: a links/ or maps/ directory with at least one pin of
// a name bpfwarden creates. Removal then unlinks exactly those names (never
// recursively), leaves everything else where it is and says so, and removes
// a directory only when that left it empty. Afterwards the report says what
// really happened: a link whose pin is gone keeps enforcing while any
// process still holds it, and the report names those processes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "inspection/bpf_holders.h"
#include "loading/pin_layout.h"
#include "support/error.h"

namespace bpfwarden {

struct OwnPin {
    std::filesystem::path path;
    bool link = false;     // a link pin (else a map pin)
    uint32_t link_id = 0;  // the link behind a link pin, 0 when unknown
    uint32_t prog_id = 0;  // its program
    std::string program;   // the link's program name ("bw_file_open")
};

struct PinInventory {
    PinLayout pins;
    std::vector<OwnPin> own;                     // names bpfwarden pins, in its directories
    std::vector<std::filesystem::path> foreign;  // anything else under the root
};

// NotFound when the root does not exist; InvalidArgument (naming what was
// found) when it is not on bpffs or holds no bpfwarden pin.
Result<PinInventory> take_pin_inventory(const PinLayout& pins);

// True when the root holds bpfwarden's pin layout (what the inventory accepts).
bool has_own_pins(const PinLayout& pins);

struct AttachedProgram {
    std::string program;
    uint32_t link_id = 0;
    std::vector<BpfHolder> held_by;  // empty: attached, but no process holds it (pinned elsewhere?)
    bool detaching = false;          // its link is gone, the kernel has not finished detaching it yet
};

struct PinRemovalReport {
    std::vector<std::filesystem::path> removed;
    // What was left, with why: foreign entries, and our pins that could not
    // be removed ("links/bw_bpf: Operation not permitted").
    std::vector<std::string> left;
    bool root_removed = false;
    // Our programs still attached afterwards.
    std::vector<AttachedProgram> still_attached;
};

// Unlinks the inventory's own pins, then the directories they leave empty.
// Never fails as a whole: what could not be removed is in `left`.
PinRemovalReport remove_own_pins(const PinInventory& inventory);

// The links among `inventory` that are still attached now, and who holds
// them; and programs whose link is gone but that the kernel has not detached
// yet (links are released asynchronously: a trampoline update per program).
std::vector<AttachedProgram> attached_programs(const PinInventory& inventory);

}  // namespace bpfwarden
