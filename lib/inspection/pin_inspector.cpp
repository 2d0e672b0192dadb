#include "inspection/pin_inspector.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "support/unique_fd.h"

namespace bpfwarden {

// bpf_lsm_<hook> function names to BTF ids and back, read once from the
// kernel's BTF. Only this table is kept: the parsed vmlinux BTF (megabytes)
// is freed at once.
struct LsmHookTable {
    std::unordered_map<std::string, uint32_t> id_of;
    std::unordered_map<uint32_t, std::string> name_of;
};

namespace {

// struct bpf_link_info as the kernel defines it, including the perf_event
// member added in 6.6: the system's UAPI header (6.1) lacks it. Only the
// members read here are spelled out; the layout is checked against the
// header where both have a member.
struct LinkInfo {
    struct RawTracepoint {
        uint64_t tp_name;  // in: buffer pointer
        uint32_t tp_name_len;
    };
    struct Tracing {
        uint32_t attach_type;
        uint32_t target_obj_id;
        uint32_t target_btf_id;
    };
    struct Cgroup {
        uint64_t cgroup_id;
        uint32_t attach_type;
    };
    struct PerfEvent {
        uint32_t type;  // enum bpf_perf_event_type
        uint32_t reserved;
        uint64_t name;  // tracepoint: tp_name; kprobe: func_name; uprobe: file_name
        uint32_t name_len;
    };

    uint32_t type;
    uint32_t id;
    uint32_t prog_id;
    uint32_t reserved;
    union {
        RawTracepoint raw_tracepoint;
        Tracing tracing;
        Cgroup cgroup;
        PerfEvent perf_event;
        uint8_t bytes[48];
    };
};
static_assert(offsetof(LinkInfo, raw_tracepoint) == offsetof(bpf_link_info, raw_tracepoint));
static_assert(offsetof(LinkInfo, tracing) == offsetof(bpf_link_info, tracing));
static_assert(offsetof(LinkInfo, cgroup) == offsetof(bpf_link_info, cgroup));
static_assert(sizeof(LinkInfo) >= sizeof(bpf_link_info));

constexpr uint32_t kPerfEventTracepoint = 5;  // BPF_PERF_EVENT_TRACEPOINT (6.6+)

const char* link_type_name(uint32_t type) {
    switch (type) {
    case BPF_LINK_TYPE_RAW_TRACEPOINT: return "raw_tracepoint";
    case BPF_LINK_TYPE_TRACING: return "tracing";
    case BPF_LINK_TYPE_CGROUP: return "cgroup";
    case BPF_LINK_TYPE_ITER: return "iter";
    case BPF_LINK_TYPE_NETNS: return "netns";
    case BPF_LINK_TYPE_XDP: return "xdp";
    case BPF_LINK_TYPE_PERF_EVENT: return "perf_event";
    case BPF_LINK_TYPE_KPROBE_MULTI: return "kprobe_multi";
    case BPF_LINK_TYPE_STRUCT_OPS: return "struct_ops";
    default: return "unknown";
    }
}

std::string errno_text(int err) { return std::strerror(err); }

// The hook a program should be attached to, from its libbpf section name.
struct Hook {
    enum class Kind { Lsm, Tracepoint, RawTracepoint, TpBtf, Fentry, Fexit, FmodRet, Unknown } kind = Kind::Unknown;
    std::string name;  // LSM hook, tracepoint event, raw tracepoint or function name
};

Hook parse_hook(std::string_view hook) {
    static constexpr std::pair<std::string_view, Hook::Kind> kPrefixes[] = {
        {"lsm/", Hook::Kind::Lsm},
        {"lsm.s/", Hook::Kind::Lsm},
        {"tracepoint/", Hook::Kind::Tracepoint},
        {"tp/", Hook::Kind::Tracepoint},
        {"raw_tracepoint/", Hook::Kind::RawTracepoint},
        {"raw_tp/", Hook::Kind::RawTracepoint},
        {"tp_btf/", Hook::Kind::TpBtf},
        {"fentry/", Hook::Kind::Fentry},
        {"fexit/", Hook::Kind::Fexit},
        {"fmod_ret/", Hook::Kind::FmodRet},
    };
    for (const auto& [prefix, kind] : kPrefixes) {
        if (!hook.starts_with(prefix))
            continue;
        std::string_view rest = hook.substr(prefix.size());
        if (kind == Hook::Kind::Tracepoint) {
            // "<category>/<event>": perf_event links report the event only.
            auto slash = rest.rfind('/');
            rest = slash == std::string_view::npos ? rest : rest.substr(slash + 1);
        }
        return {kind, std::string(rest)};
    }
    return {};
}

Result<std::shared_ptr<const LsmHookTable>> load_lsm_hook_table() {
    std::unique_ptr<btf, decltype(&btf__free)> vmlinux(btf__load_vmlinux_btf(), &btf__free);
    if (!vmlinux)
        return fail_errno("load the kernel's BTF (/sys/kernel/btf/vmlinux) to name LSM hooks");
    auto table = std::make_shared<LsmHookTable>();
    constexpr std::string_view kPrefix = "bpf_lsm_";
    const uint32_t count = btf__type_cnt(vmlinux.get());
    for (uint32_t id = 1; id < count; ++id) {
        const btf_type* type = btf__type_by_id(vmlinux.get(), id);
        if (!type || !btf_is_func(type))
            continue;
        const char* name = btf__name_by_offset(vmlinux.get(), type->name_off);
        if (!name || std::strncmp(name, kPrefix.data(), kPrefix.size()) != 0)
            continue;
        std::string hook(name + kPrefix.size());
        table->id_of.emplace(hook, id);
        table->name_of.emplace(id, std::move(hook));
    }
    if (table->id_of.empty())
        return fail(ENOENT, "the kernel's BTF names no bpf_lsm_ hooks (kernel without CONFIG_BPF_LSM?)");
    return std::shared_ptr<const LsmHookTable>(std::move(table));
}

// Reads link info, and for raw tracepoint and perf_event links the name of
// what they are attached to into `name_buf`. The first call passes no
// pointer at all: each link type reads the union in its own layout, and a
// buffer pointer offered in one layout is taken by another type as something
// else (a kprobe_multi link reads it as an address array and the count beside
// it as an element count, and would write past the buffer). Only once the
// type is known is the buffer offered, in that type's layout.
Result<LinkInfo> read_link_info(int fd, char* name_buf, uint32_t name_len) {
    name_buf[0] = '\0';
    LinkInfo info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
        return fail_errno("read link info");
    if (info.type != BPF_LINK_TYPE_RAW_TRACEPOINT && info.type != BPF_LINK_TYPE_PERF_EVENT)
        return info;
    LinkInfo named{};
    if (info.type == BPF_LINK_TYPE_RAW_TRACEPOINT) {
        named.raw_tracepoint.tp_name = reinterpret_cast<uintptr_t>(name_buf);
        named.raw_tracepoint.tp_name_len = name_len;
    } else {
        // perf_event (6.6+): the tracepoint, kprobe function or uprobe file
        // name sits at the same place for every perf event type. Before 6.6
        // the kernel fills nothing and hands the input back: type stays 0.
        named.perf_event.name = reinterpret_cast<uintptr_t>(name_buf);
        named.perf_event.name_len = name_len;
    }
    len = sizeof(named);
    if (bpf_obj_get_info_by_fd(fd, &named, &len) != 0) {
        if (errno != ENOSPC)
            return fail_errno("read link info with its target name");
        name_buf[0] = '\0';  // a name longer than any tracepoint's: left unnamed
        return info;
    }
    name_buf[name_len - 1] = '\0';
    return named;
}

// One BPF_OBJ_GET_INFO_BY_FD for identity and map ids (a second one for a
// program with more than 64 maps).
Result<ProgramFacts> program_facts(uint32_t prog_id, bool want_maps) {
    UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
    if (!fd) {
        int err = errno;
        return fail_system(err, "open program id " + std::to_string(prog_id) +
                                    (err == EPERM ? " (BPF_PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN)" : ""));
    }
    std::vector<__u32> maps(want_maps ? 64 : 0);
    bpf_prog_info info{};
    for (;;) {
        info = bpf_prog_info{};
        info.nr_map_ids = maps.size();
        info.map_ids = maps.empty() ? 0 : reinterpret_cast<uintptr_t>(maps.data());
        __u32 len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
            return fail_errno("read info of program id " + std::to_string(prog_id));
        if (!want_maps || info.nr_map_ids <= maps.size())
            break;
        maps.resize(info.nr_map_ids);
    }
    ProgramFacts facts;
    facts.identity.name.assign(info.name, strnlen(info.name, sizeof(info.name)));
    facts.identity.type = info.type;
    std::memcpy(facts.identity.tag.data(), info.tag, facts.identity.tag.size());
    facts.attach_btf_id = info.attach_btf_id;
    if (want_maps)
        facts.map_ids.assign(maps.begin(), maps.begin() + info.nr_map_ids);
    return facts;
}

std::string describe(const ProgramIdentity& identity) {
    return "'" + identity.name + "' (type " + std::to_string(identity.type) + ", tag " + tag_hex(identity.tag) + ")";
}

// Links in /proc/self/fd read "anon_inode:bpf-link" (or bpf_link), maps
// "anon_inode:bpf-map", programs "anon_inode:bpf-prog". The kernel's info
// call alone cannot tell: it answers for maps and programs too, in their own
// layouts.
std::string object_kind(int fd) {
    char path[64];
    std::snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    char target[64];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return {};
    target[n] = '\0';
    std::string_view kind(target);
    constexpr std::string_view kAnon = "anon_inode:";
    return kind.starts_with(kAnon) ? std::string(kind.substr(kAnon.size())) : std::string(kind);
}

LinkStatus problem(LinkStatus status, LinkProblem what, std::string detail) {
    status.problem = what;
    status.detail = std::move(detail);
    return status;
}

using HookTableSource = std::function<Result<std::shared_ptr<const LsmHookTable>>()>;

// "link <id> at '<pin>'": how every hook mismatch names the link.
std::string link_where(const LinkInfo& info, const ExpectedProgram& expected) {
    return "link " + std::to_string(info.id) + " at '" + expected.pin + "'";
}

LinkStatus wrong_link_type(LinkStatus status, const std::string& where, const LinkInfo& info, const char* wanted,
                           const ExpectedProgram& expected) {
    return problem(
        std::move(status), LinkProblem::WrongHook,
        where + " is a " + link_type_name(info.type) + " link, expected a " + wanted + " link for " + expected.hook);
}

// lsm/: a BPF_LSM_MAC tracing link whose BTF target is bpf_lsm_<hook>. The
// hook table is asked for only here; without it the hook stays unverified.
LinkStatus check_lsm_hook(LinkStatus status, const ExpectedProgram& expected, const Hook& hook, const LinkInfo& info,
                          const HookTableSource& lsm_hook_table) {
    const std::string where = link_where(info, expected);
    if (info.type != BPF_LINK_TYPE_TRACING)
        return wrong_link_type(std::move(status), where, info, "tracing", expected);
    if (info.tracing.attach_type != BPF_LSM_MAC)
        return problem(std::move(status), LinkProblem::WrongHook,
                       where + " has attach type " + std::to_string(info.tracing.attach_type) +
                           ", expected BPF_LSM_MAC for " + expected.hook);
    auto table = lsm_hook_table();
    if (!table) {
        status.detail = "hook not verified: " + table.error().message();
        return status;
    }
    auto wanted = (*table)->id_of.find(hook.name);
    if (wanted == (*table)->id_of.end())
        return problem(std::move(status), LinkProblem::WrongHook,
                       "this kernel has no LSM hook '" + hook.name + "' (expected " + expected.hook + ")");
    if (info.tracing.target_btf_id != wanted->second) {
        auto actual = (*table)->name_of.find(info.tracing.target_btf_id);
        std::string actual_name = actual == (*table)->name_of.end()
                                      ? "BTF id " + std::to_string(info.tracing.target_btf_id)
                                      : "lsm/" + actual->second;
        return problem(std::move(status), LinkProblem::WrongHook,
                       where + " is attached to " + actual_name + ", expected " + expected.hook);
    }
    return status;
}

// fentry/, fexit/, fmod_ret/: only the attach type is compared, since only
// LSM hooks are resolved from BTF ids to names.
LinkStatus check_trampoline_hook(LinkStatus status, const ExpectedProgram& expected, const Hook& hook,
                                 const LinkInfo& info) {
    const std::string where = link_where(info, expected);
    if (info.type != BPF_LINK_TYPE_TRACING)
        return wrong_link_type(std::move(status), where, info, "tracing", expected);
    uint32_t wanted = hook.kind == Hook::Kind::Fentry  ? BPF_TRACE_FENTRY
                      : hook.kind == Hook::Kind::Fexit ? BPF_TRACE_FEXIT
                                                       : BPF_MODIFY_RETURN;
    if (info.tracing.attach_type != wanted)
        return problem(std::move(status), LinkProblem::WrongHook,
                       where + " has attach type " + std::to_string(info.tracing.attach_type) + ", expected " +
                           std::to_string(wanted) + " for " + expected.hook);
    status.detail = "attach type verified; the traced function is not (only LSM hooks are resolved)";
    return status;
}

// tracepoint/: a perf_event link, which names its tracepoint from 6.6 on.
LinkStatus check_tracepoint_hook(LinkStatus status, const ExpectedProgram& expected, const Hook& hook,
                                 const LinkInfo& info, const char* name) {
    const std::string where = link_where(info, expected);
    if (info.type != BPF_LINK_TYPE_PERF_EVENT)
        return wrong_link_type(std::move(status), where, info, "perf_event", expected);
    if (info.perf_event.type == 0) {
        // 6.1–6.5: no fill_link_info for perf_event links.
        status.detail = "hook not verified: this kernel does not report a perf_event link's tracepoint (6.6+ does)";
        return status;
    }
    if (info.perf_event.type != kPerfEventTracepoint)
        return problem(std::move(status), LinkProblem::WrongHook,
                       where + " is a perf event of type " + std::to_string(info.perf_event.type) +
                           ", not a tracepoint, expected " + expected.hook);
    if (hook.name != name)
        return problem(std::move(status), LinkProblem::WrongHook,
                       where + " is attached to tracepoint '" + name + "', expected " + expected.hook);
    return status;
}

// raw_tp/ and tp_btf/: tp_btf programs attach through raw tracepoint links as well.
LinkStatus check_raw_tracepoint_hook(LinkStatus status, const ExpectedProgram& expected, const Hook& hook,
                                     const LinkInfo& info, const char* name) {
    const std::string where = link_where(info, expected);
    if (info.type != BPF_LINK_TYPE_RAW_TRACEPOINT)
        return wrong_link_type(std::move(status), where, info, "raw_tracepoint", expected);
    if (hook.name != name)
        return problem(std::move(status), LinkProblem::WrongHook,
                       where + " is attached to raw tracepoint '" + name + "', expected " + expected.hook);
    return status;
}

// The hook comparison for one link; None with a detail when this kernel
// does not report enough to compare.
LinkStatus check_hook(LinkStatus status, const ExpectedProgram& expected, const Hook& hook, const LinkInfo& info,
                      const char* name, const HookTableSource& lsm_hook_table) {
    switch (hook.kind) {
    case Hook::Kind::Lsm: return check_lsm_hook(std::move(status), expected, hook, info, lsm_hook_table);
    case Hook::Kind::Fentry:
    case Hook::Kind::Fexit:
    case Hook::Kind::FmodRet: return check_trampoline_hook(std::move(status), expected, hook, info);
    case Hook::Kind::Tracepoint: return check_tracepoint_hook(std::move(status), expected, hook, info, name);
    case Hook::Kind::RawTracepoint:
    case Hook::Kind::TpBtf: return check_raw_tracepoint_hook(std::move(status), expected, hook, info, name);
    case Hook::Kind::Unknown: break;
    }
    status.detail = "hook not verified: unrecognised hook '" + expected.hook + "'";
    return status;
}

// Why a link the kernel describes counts as detached (no program, or no
// target); nothing when it looks attached.
std::optional<std::string> detached_detail(const LinkInfo& info, const std::string& pin) {
    if (info.prog_id == 0)
        return "link " + std::to_string(info.id) + " at '" + pin + "' holds no program";
    if (info.type == BPF_LINK_TYPE_TRACING && info.tracing.target_obj_id == 0 && info.tracing.target_btf_id == 0)
        return "tracing link " + std::to_string(info.id) + " at '" + pin + "' has no target";
    if (info.type == BPF_LINK_TYPE_RAW_TRACEPOINT && info.raw_tracepoint.tp_name_len <= 1)
        return "raw tracepoint link " + std::to_string(info.id) + " at '" + pin + "' names no tracepoint";
    return std::nullopt;
}

// Why the program behind the link is not the expected one (its identity, or
// a map it should use); nothing when it is.
std::optional<std::string> wrong_program_detail(const ExpectedProgram& expected, const ProgramFacts& facts,
                                                uint32_t prog_id) {
    const ProgramIdentity& want = expected.identity;
    const ProgramIdentity& have = facts.identity;
    if (have.tag != want.tag || have.type != want.type || (!want.name.empty() && have.name != want.name))
        return "program behind '" + expected.pin + "' is " + describe(have) + ", id " + std::to_string(prog_id) +
               "; expected " + describe(want);
    for (uint32_t map_id : expected.map_ids)
        if (std::find(facts.map_ids.begin(), facts.map_ids.end(), map_id) == facts.map_ids.end())
            return "program behind '" + expected.pin + "' (id " + std::to_string(prog_id) + ", tag " +
                   tag_hex(have.tag) + " as expected) does not use map id " + std::to_string(map_id) +
                   ": a copy of the program with maps of its own";
    return std::nullopt;
}

// The two ways a link attaches a BPF LSM program: for every task
// (BPF_LSM_MAC) or for one cgroup's tasks (BPF_LSM_CGROUP).
bool is_lsm_mac_link(const LinkInfo& info) {
    return info.type == BPF_LINK_TYPE_TRACING && info.tracing.attach_type == BPF_LSM_MAC;
}

bool is_lsm_cgroup_link(const LinkInfo& info) {
    return info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.attach_type == BPF_LSM_CGROUP;
}

// BTF id of bpf_lsm_<hook> -> hook, for `hooks` given as "file_open" or
// "lsm/file_open".
Result<std::unordered_map<uint32_t, std::string>> watched_hook_ids(const LsmHookTable& table,
                                                                   const std::vector<std::string>& hooks) {
    std::unordered_map<uint32_t, std::string> watched;
    for (const auto& name : hooks) {
        std::string_view hook = name;
        if (hook.starts_with("lsm/"))
            hook.remove_prefix(4);
        auto found = table.id_of.find(std::string(hook));
        if (found == table.id_of.end())
            return fail(ENOENT, "this kernel has no LSM hook '" + std::string(hook) + "'");
        watched.emplace(found->second, std::string(hook));
    }
    return watched;
}

// The info of link `id`, or nothing when the link is gone since it was listed.
Result<std::optional<LinkInfo>> link_info_by_id(uint32_t id) {
    UniqueFd fd(bpf_link_get_fd_by_id(id));
    if (!fd) {
        if (errno == ENOENT)
            return std::nullopt;
        return fail_errno("open link id " + std::to_string(id));
    }
    LinkInfo info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
        return fail_errno("read info of link id " + std::to_string(id));
    return info;
}

// Empties `link_ids` when it was built a minute ago or more (CLOCK_MONOTONIC
// seconds in `built_at`), so that a memo of link ids never outlives id reuse.
void forget_if_a_minute_old(std::unordered_set<uint32_t>& link_ids, int64_t& built_at) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - built_at >= 60) {
        link_ids.clear();
        built_at = now.tv_sec;
    }
}

// The finding for someone else's LSM link, or nothing when it is on a hook
// we do not watch (or its lsm_cgroup program is gone).
std::optional<ForeignProgram> foreign_program(const LinkInfo& info,
                                              const std::unordered_map<uint32_t, std::string>& watched) {
    bool per_cgroup = false;
    uint32_t target = 0;
    std::string prog_name;
    if (is_lsm_mac_link(info)) {
        target = info.tracing.target_btf_id;
        if (!watched.contains(target))
            return std::nullopt;
    } else if (is_lsm_cgroup_link(info)) {
        // The hook of an lsm_cgroup program is its attach_btf_id.
        auto facts = program_facts(info.prog_id, false);
        if (!facts)
            return std::nullopt;  // unloaded since: nothing attached any more
        target = facts->attach_btf_id;
        if (!watched.contains(target))
            return std::nullopt;
        per_cgroup = true;
        prog_name = facts->identity.name;
    } else {
        return std::nullopt;
    }
    if (prog_name.empty()) {
        auto facts = program_facts(info.prog_id, false);
        prog_name = facts ? facts->identity.name : "?";
    }
    return ForeignProgram{info.id, info.prog_id, std::move(prog_name), watched.at(target), per_cgroup};
}

}  // namespace

std::string_view to_string(LinkProblem problem) {
    switch (problem) {
    case LinkProblem::None: return "none";
    case LinkProblem::PinMissing: return "pin-missing";
    case LinkProblem::NotALink: return "not-a-link";
    case LinkProblem::Detached: return "detached";
    case LinkProblem::WrongProgram: return "wrong-program";
    case LinkProblem::WrongHook: return "wrong-hook";
    }
    return "unknown";
}

Result<std::shared_ptr<const LsmHookTable>> PinInspector::hook_table() {
    if (!hooks_) {
        auto loaded = load_lsm_hook_table();
        if (!loaded)
            return std::unexpected(loaded.error());
        hooks_ = std::move(*loaded);
    }
    return hooks_;
}

// What a program is never changes while it is loaded (name, type, tag, the
// maps it was loaded with; BPF_PROG_BIND_MAP can only add maps), and program
// ids are allocated cyclically (idr_alloc_cyclic up to INT_MAX): a program id
// names the same program until the id space wraps. So the facts of the
// program behind a link are read once per id, which halves the bpf() calls of
// a healthy inspection. Entries expire after a minute all the same — far below
// the time 2^31 program loads take — and are dropped when not used.
Result<ProgramFacts> PinInspector::program_facts_memo(uint32_t prog_id) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    constexpr int64_t kLifetimeSeconds = 60;
    auto hit = facts_.find(prog_id);
    if (hit != facts_.end() && now.tv_sec - hit->second.read_at < kLifetimeSeconds)
        return hit->second.facts;
    auto facts = program_facts(prog_id, true);
    if (!facts)
        return facts;
    std::erase_if(facts_, [&](const auto& entry) { return now.tv_sec - entry.second.read_at >= kLifetimeSeconds; });
    if (facts_.size() < 4096)
        facts_[prog_id] = MemoEntry{*facts, now.tv_sec};
    return facts;
}

LinkStatus PinInspector::inspect_link(const ExpectedProgram& expected) {
    LinkStatus status;
    UniqueFd fd(bpf_obj_get(expected.pin.c_str()));
    if (!fd) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            return problem(std::move(status), LinkProblem::PinMissing, "no pin at '" + expected.pin + "'");
        // bpffs answers EACCES for a path that is not a BPF object (a
        // directory, a file elsewhere) as well as for missing permission.
        return problem(std::move(status), LinkProblem::NotALink,
                       "cannot open '" + expected.pin + "' as a BPF object: " + errno_text(err));
    }

    std::string kind = object_kind(fd.get());
    if (kind != "bpf-link" && kind != "bpf_link") {
        std::string what = kind == "bpf-map" ? "a map" : kind == "bpf-prog" ? "a program" : "'" + kind + "'";
        return problem(std::move(status), LinkProblem::NotALink,
                       what + " is pinned at '" + expected.pin + "', not a link");
    }

    const Hook hook = parse_hook(expected.hook);
    char name[128] = {};
    auto info = read_link_info(fd.get(), name, sizeof(name));
    if (!info)
        return problem(std::move(status), LinkProblem::Detached,
                       "the kernel cannot describe the link at '" + expected.pin + "' (" + info.error().message() +
                           "): treat it as not attached");
    status.link_id = info->id;
    status.prog_id = info->prog_id;
    fd.reset();  // everything else goes by id

    if (auto detached = detached_detail(*info, expected.pin))
        return problem(std::move(status), LinkProblem::Detached, std::move(*detached));

    auto facts = program_facts_memo(info->prog_id);
    if (!facts)
        return problem(std::move(status), LinkProblem::WrongProgram,
                       "cannot verify the program behind '" + expected.pin + "': " + facts.error().message());
    status.actual = facts->identity;

    if (auto wrong = wrong_program_detail(expected, *facts, info->prog_id))
        return problem(std::move(status), LinkProblem::WrongProgram, std::move(*wrong));

    return check_hook(std::move(status), expected, hook, *info, name, [this] { return hook_table(); });
}

Result<std::vector<ForeignProgram>> PinInspector::foreign_lsm_programs(const std::vector<std::string>& hooks,
                                                                       const std::vector<uint32_t>& our_prog_ids) {
    auto table = hook_table();
    if (!table)
        return std::unexpected(table.error());
    auto watched = watched_hook_ids(**table, hooks);
    if (!watched)
        return std::unexpected(watched.error());
    const std::unordered_set<uint32_t> ours(our_prog_ids.begin(), our_prog_ids.end());

    // Link ids already known not to be LSM attachments are skipped: one
    // bpf() call per such link instead of four. Sound because a link's type
    // and attach type never change and link ids are allocated cyclically
    // (idr_alloc_cyclic up to INT_MAX), so an id is not reused until the id
    // space wraps; the set is rebuilt from scratch every minute all the same,
    // far below the time needed to create 2^31 links. LSM links are read
    // again on every call: a cgroup link's program can be replaced.
    forget_if_a_minute_old(not_lsm_, not_lsm_built_);
    std::unordered_set<uint32_t> still_not_lsm;

    std::vector<ForeignProgram> found;
    for (__u32 id = 0;;) {
        if (bpf_link_get_next_id(id, &id) != 0) {
            int err = errno;
            if (err == ENOENT)
                break;
            return fail_system(err, std::string("walk BPF links") +
                                        (err == EPERM ? " (BPF_LINK_GET_NEXT_ID needs CAP_SYS_ADMIN)" : ""));
        }
        if (not_lsm_.contains(id)) {
            still_not_lsm.insert(id);
            continue;
        }
        auto read = link_info_by_id(id);
        if (!read)
            return std::unexpected(read.error());
        const std::optional<LinkInfo> info = *read;
        if (!info)
            continue;  // gone since it was listed
        if (!is_lsm_mac_link(*info) && !is_lsm_cgroup_link(*info)) {
            still_not_lsm.insert(id);
            continue;
        }
        if (ours.contains(info->prog_id))
            continue;
        if (auto foreign = foreign_program(*info, *watched))
            found.push_back(std::move(*foreign));
    }
    not_lsm_ = std::move(still_not_lsm);  // forget links that are gone
    return found;
}

}  // namespace bpfwarden
