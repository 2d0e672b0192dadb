// Every BPF program, map and link on the host, and whose each one is: the
// answer to "what runs in my kernel that I did not put there?" during an
// incident, and the pieces `bpfwardenctl contain` needs to stop one program.
//
// What is read, and from where:
//   - the objects: walking the kernel's id spaces (BPF_*_GET_NEXT_ID) and
//     asking each object for its info by fd (needs CAP_SYS_ADMIN: root);
//   - who holds them: /proc/<pid>/fdinfo (bpf_holders.h), with each holder's
//     systemd unit from /proc/<pid>/cgroup;
//   - where they are pinned: every bpffs mount in /proc/mounts, walked, each
//     pin opened read-only to learn which object it names.
//
// Whose an object is never follows from a name an attacker can choose:
//   bpfwarden    pinned under bpfwarden's pin root, held by bpfwardend or
//                bpfwarden-watchdog (by executable path), or (programs) held
//                by a link that is; (maps) used by a program that is;
//   kernel       pinned by the kernel itself (bpf_preload's maps.debug and
//                progs.debug: bpffs refuses '.' in names anyone else gives);
//   systemd      held by PID 1 or by a binary under /usr/lib/systemd, pinned
//                under <bpffs>/systemd/, or one of systemd's well-known
//                programs (name and program type both match, and no process
//                but PID 1 holds it);
//   allowlisted  matched by an entry of the admin's allowlist;
//   unknown      everything else.
// When several apply, the first in that order wins.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inspection/bpf_holders.h"
#include "support/error.h"

namespace bpfwarden {

enum class ObjectOwner { Bpfwarden, Kernel, Systemd, Allowlisted, Unknown };

// "bpfwarden", "kernel", "systemd", "allowlisted", "unknown".
std::string_view to_string(ObjectOwner owner);

struct Classification {
    ObjectOwner owner = ObjectOwner::Unknown;
    std::string reason;  // "pinned at /sys/fs/bpf/bpfwarden/links/bw_tp_exec (under the pin root)"
};

struct HolderProcess {
    BpfHolder process;  // pid, comm, exe
    std::string unit;   // systemd unit from /proc/<pid>/cgroup, "" when none

    // "pid 812 (bpfwardend, /usr/sbin/bpfwardend, bpfwardend.service)"
    std::string describe() const;
};

struct ProgramRecord {
    uint32_t id = 0;
    uint32_t type = 0;  // enum bpf_prog_type
    std::string name;
    std::string tag;  // 16 hex digits
    uint32_t uid = 0;
    uint64_t load_time_ns = 0;                // since boot, as the kernel reports it
    int64_t loaded_at_ns = 0;                 // the same as wall-clock time (ns since the epoch)
    uint64_t run_time_ns = 0, run_count = 0;  // grow only while statistics are enabled
    std::vector<uint32_t> map_ids;
    // What the program was loaded to attach to, for BTF-attached programs
    // ("lsm/file_open", "do_unlinkat"); "" otherwise.
    std::string btf_target;
    std::vector<uint32_t> link_ids;  // the links holding it
    std::vector<HolderProcess> holders;
    std::vector<std::string> pins;
    Classification owner;
};

struct LinkRecord {
    uint32_t id = 0;
    uint32_t type = 0;  // enum bpf_link_type
    uint32_t prog_id = 0;
    // "tracepoint sys_enter_openat", "lsm/file_open", "cgroup /sys/fs/cgroup/x (cgroup_inet_ingress)", ...
    std::string target;
    std::vector<HolderProcess> holders;
    std::vector<std::string> pins;
    Classification owner;
};

struct MapRecord {
    uint32_t id = 0;
    uint32_t type = 0;  // enum bpf_map_type
    std::string name;
    uint32_t key_size = 0, value_size = 0, max_entries = 0, flags = 0;
    std::vector<uint32_t> used_by;  // ids of the programs using it
    std::vector<HolderProcess> holders;
    std::vector<std::string> pins;
    Classification owner;
};

struct Inventory {
    std::vector<ProgramRecord> programs;
    std::vector<LinkRecord> links;
    std::vector<MapRecord> maps;
    std::vector<std::filesystem::path> bpffs_mounts;
    // kernel.bpf_stats_enabled; nullopt when unreadable. Run time and count
    // of programs grow only while it (or a BPF_ENABLE_STATS fd) is on.
    std::optional<bool> stats_enabled;
    // What could not be read ("pin /sys/fs/bpf/x: Permission denied").
    std::vector<std::string> warnings;

    const ProgramRecord* program(uint32_t id) const;
    const LinkRecord* link(uint32_t id) const;
    const MapRecord* map(uint32_t id) const;
};

// "cilium", "bpftool prog load", ...: programs the admin expects
// (/etc/bpfwarden/inventory.toml):
//   [[expected]]
//   name = "..."     program name, exact (the kernel keeps 15 characters)
//   tag = "..."      program tag, 16 hex digits
//   owner = "..."    a holder's executable ("/usr/bin/foo") or unit ("foo.service")
//   comment = "..."  why it is expected
// An entry matches a program when every field it gives matches; it gives at
// least one of name, tag and owner. A map used by no program matches an
// entry without a tag by its own name and holders.
struct AllowlistEntry {
    std::string name, tag, owner, comment;
    std::string where;  // "inventory.toml:3"
};

struct Allowlist {
    std::string source;  // "" when there is none
    std::vector<AllowlistEntry> entries;
};

// InvalidArgument naming "<source>:<line>" and the key for every mistake.
Result<Allowlist> parse_allowlist(std::string_view text, const std::string& source);
// NotFound when the file does not exist; the file must be written only by
// its owner (root): an allowlist decides what an incident responder sees.
Result<Allowlist> load_allowlist(const std::filesystem::path& file);

// What makes an object bpfwarden's own.
struct OwnSide {
    std::filesystem::path pin_root;
    std::vector<std::filesystem::path> executables;  // bpfwardend, bpfwarden-watchdog as installed
};

// Walks the kernel's objects, their holders and every bpffs mount. Objects
// are not classified yet (classify()). Fails with PermissionDenied when the
// kernel refuses to list objects (not root).
Result<Inventory> take_bpf_inventory();

// Sets `owner` of every program, link and map (see the top of this file).
void classify(Inventory& inventory, const OwnSide& own, const Allowlist& allowlist);

// The unit a process runs in, from the text of /proc/<pid>/cgroup: the last
// "*.service" or "*.scope" component of its cgroup ("" when none).
std::string unit_of_cgroup(std::string_view proc_cgroup);

// Wall-clock time (ns since the epoch) of `since_boot_ns` on CLOCK_BOOTTIME,
// given both clocks read now.
int64_t boot_time_to_wall_ns(uint64_t since_boot_ns, int64_t realtime_now_ns, int64_t boottime_now_ns);
// "2026-12-03T13:40:00Z" (UTC).
std::string format_utc(int64_t wall_ns);

std::string program_type_name(uint32_t type);
std::string map_type_name(uint32_t type);
std::string link_type_name(uint32_t type);

// ---- Containing one program -------------------------------------------------

struct PinRemoval {
    std::string path;
    BpfObjectType type = BpfObjectType::Program;
    uint32_t id = 0;     // the object the pin must still name when it is removed
    std::string object;  // "program 42 'foo'", "link 17", "map 8 'counts'"
};

struct ContainmentPlan {
    uint32_t prog_id = 0;
    std::vector<uint32_t> links;    // to detach
    std::vector<PinRemoval> pins;   // to remove: the program's, its links', and of maps only it uses
    std::vector<std::string> kept;  // what is left on purpose, with why
};

// NotFound when no program has that id; PermissionDenied, saying whose it
// is, for bpfwarden's, the kernel's and systemd's (PID 1's) programs.
// `inventory` must be classified.
Result<ContainmentPlan> plan_containment(const Inventory& inventory, uint32_t prog_id, const OwnSide& own);

enum class DetachOutcome {
    Detached,
    NotSupported,  // the link type has no detach (perf_event, tracing, raw_tracepoint): it ends with its last reference
    Gone,          // no such link (any more)
};
// BPF_LINK_DETACH of link `link_id`, after checking that it still holds
// program `prog_id` (ids are reused once the id space wraps).
Result<DetachOutcome> detach_link(uint32_t link_id, uint32_t prog_id);

// Unlinks `pin.path` after checking, right before, that it is on bpffs, is
// not a symlink, and still names the object `pin.type`/`pin.id`.
Result<void> remove_verified_pin(const PinRemoval& pin);

// Whether a program with that id is loaded now.
bool program_exists(uint32_t prog_id);

}  // namespace bpfwarden
