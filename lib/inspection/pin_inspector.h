// Is each pinned link still what we pinned? Cheap enough for the watchdog to
// ask every interval: a handful of bpf() calls per program, no subprocesses,
// no bpftool.
//
// What a "detached" link looks like, per link type and kernel
// (kernel/bpf/syscall.c: link_detach() calls link->ops->detach and returns
// -EOPNOTSUPP when the link type has none):
//
//   tracing links (lsm/, fentry/, ...; bpf_tracing_link_lops = release,
//     dealloc, show_fdinfo, fill_link_info; read in a 6.1 tree and in a
//     6.17-era tree, nothing added since): no .detach, so `bpftool link
//     detach` / BPF_LINK_DETACH fails with EOPNOTSUPP and the program stays
//     attached. fill_link_info always reports attach_type and the
//     trampoline's (target_obj_id, target_btf_id). Not testable on the
//     development host (trampolines are refused). An RFC of November 2025
//     (after 6.18) adds .update_prog, i.e. BPF_LINK_UPDATE swapping the
//     program under our pin: that shows here as WrongProgram, since the
//     program behind the link is read on every call.
//   perf_event links (tracepoint/, kprobe/; bpf_perf_link_lops): no .detach
//     in 6.1 (source) nor 6.18 (measured: EOPNOTSUPP, and the program keeps
//     running); 6.12 lies between and has none either. A patch adding one
//     ("bpf: Add LINK_DETACH for iter and perf links", bpf-next, August
//     2025) was sent back for changes and is not in 6.18. fill_link_info
//     exists from 6.6 (bpf_link_info.perf_event: the tracepoint's event name,
//     without its category); on 6.1 the kernel reports only type, id and
//     prog_id, so the hook cannot be verified there.
//   raw_tracepoint links (raw_tp/, tp_btf/; bpf_raw_tp_link_lops): no
//     .detach in 6.1 (source) nor 6.18 (measured: EOPNOTSUPP, the program
//     keeps running); fill_link_info reports tp_name.
//
// So for every link type bpfwarden pins, "pinned but detached" is a state the
// kernel does not let anyone create: a link stops only when its last
// reference goes (the pin removed or replaced, and no process holding an fd),
// which this inspector reports as PinMissing or WrongProgram. Detached is
// still reported when the kernel describes a link without a program or
// without a target (prog_id 0, an empty tp_name, a zero BTF target, or a link
// the kernel can no longer describe), which link types with .detach (cgroup,
// xdp, netns, ...) do after BPF_LINK_DETACH and which a future kernel may do
// for ours. What a healthy-looking link cannot show — an LSM program that is
// attached but never runs because `bpf` is missing from lsm=, a policy map
// emptied behind it (map_digest), someone else's program on the same hook
// (foreign_lsm_programs) — the watchdog must learn otherwise; for
// enforcement the end-to-end canary is the only proof.
//
// Privileges: opening the pins needs only access to bpffs, but reading a
// program or link by id (BPF_PROG_GET_FD_BY_ID, BPF_LINK_GET_NEXT_ID,
// BPF_LINK_GET_FD_BY_ID) needs CAP_SYS_ADMIN on every kernel in question;
// without it inspect_link reports WrongProgram ("cannot verify") for every
// link and foreign_lsm_programs fails with EPERM.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "inspection/program_identity.h"
#include "support/error.h"

namespace bpfwarden {

enum class LinkProblem { None, PinMissing, NotALink, Detached, WrongProgram, WrongHook };

std::string_view to_string(LinkProblem problem);

struct ExpectedProgram {
    std::string pin;           // full path of the link pin
    ProgramIdentity identity;  // derived from the signed image (derive_identities)
    // "lsm/file_open", "tracepoint/sched/sched_process_exec", "raw_tp/<tp>",
    // "tp_btf/<tp>", "fentry/<func>" (libbpf section names).
    std::string hook;
    // When non-empty: ids of maps the program must use (our pinned maps). A
    // tag does not cover map references, so without this a copy of our own
    // image loaded with somebody else's (empty) policy maps passes as ours.
    std::vector<uint32_t> map_ids = {};
};

struct LinkStatus {
    LinkProblem problem = LinkProblem::None;
    // For people: "program behind the pin has tag X, expected Y". May be set
    // with None too, for what could not be verified on this kernel.
    std::string detail;
    uint32_t link_id = 0, prog_id = 0;
    ProgramIdentity actual;  // of the program behind the pin, when one was found
};

// Never throws: every failure becomes a problem with a detail.
// Cost on a healthy link: two bpf() calls (pin open, link info; a third for
// a tracepoint's name) and a readlink of /proc/self/fd/N to tell a link
// from a map or program; the program's identity and maps are read once per
// program id (immutable while it is loaded; memo entries live a minute).
// About 11–14 µs of CPU per program on this 6.18 host (bench/README.md).
//   PinMissing   nothing at the pin path
//   NotALink     something else there (a map, a program, not a BPF object)
//   Detached     the kernel describes the link without program or target
//   WrongProgram the program behind the link is not the expected one (tag,
//                name or type differ, or it does not use the expected maps)
//   WrongHook    the link is attached elsewhere than `hook`

// Every BPF LSM program attached to one of `hooks` ("file_open", ...) whose
// program id is not in `our_prog_ids`: tracing links with attach type
// BPF_LSM_MAC, and cgroup links with BPF_LSM_CGROUP, whose target is one of
// the hooks. A foreign program cannot turn our denial into an allow (the
// trampoline stops a hook's chain at the first non-zero return), but it can
// deny on its own, run before ours, or pose as ours under our program's name,
// and it means someone with BPF privileges acts on the hooks we enforce: any
// is a finding.
//
// Cost: the first call loads the kernel's BTF once (about 12 ms of CPU here)
// to map bpf_lsm_<hook> names to BTF ids and keeps only that small table.
// Every call then walks the host's link ids: one bpf() call per link already
// known not to be an LSM attachment (link types never change; the memo is
// rebuilt every minute), three for a new or LSM link, and program info only
// for foreign ones. About 1.4 µs per link here.
struct ForeignProgram {
    uint32_t link_id = 0, prog_id = 0;
    std::string prog_name;
    std::string hook;         // as in `hooks`: "file_open"
    bool per_cgroup = false;  // lsm_cgroup (BPF_LSM_CGROUP): runs for one cgroup's tasks only
};

struct LsmHookTable;  // bpf_lsm_<hook> names and BTF ids of the running kernel

// What a loaded program is, as read by its id.
struct ProgramFacts {
    ProgramIdentity identity;
    std::vector<uint32_t> map_ids;
    uint32_t attach_btf_id = 0;
};

// The inspections above, with what they learn once and keep: the kernel's
// LSM hook table (read on first use), the facts of programs by id and the
// link ids known not to be LSM attachments (both dropped after a minute).
// One per process that inspects; not thread-safe.
class PinInspector {
public:
    // Never throws: every failure becomes a problem with a detail (see above).
    LinkStatus inspect_link(const ExpectedProgram& expected);

    // Foreign BPF LSM programs on `hooks` (see above).
    Result<std::vector<ForeignProgram>> foreign_lsm_programs(const std::vector<std::string>& hooks,
                                                             const std::vector<uint32_t>& our_prog_ids);

private:
    struct MemoEntry {
        ProgramFacts facts;
        int64_t read_at;  // CLOCK_MONOTONIC seconds
    };
    Result<std::shared_ptr<const LsmHookTable>> hook_table();
    Result<ProgramFacts> program_facts_memo(uint32_t prog_id);

    std::shared_ptr<const LsmHookTable> hooks_;
    std::unordered_map<uint32_t, MemoEntry> facts_;
    std::unordered_set<uint32_t> not_lsm_;
    int64_t not_lsm_built_ = 0;
};

}  // namespace bpfwarden
