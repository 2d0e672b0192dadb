#include "support/bpf_commands.h"

#include <linux/bpf.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace bpfwarden {
namespace {

// Indexed by enum bpf_cmd. Spelled out (rather than taken from the build
// host's linux/bpf.h) so that newer kernels' commands have names too.
constexpr std::array<std::string_view, 37> kCommandNames = {
    "map_create",        "map_lookup_elem",
    "map_update_elem",   "map_delete_elem",
    "map_get_next_key",  "prog_load",
    "obj_pin",           "obj_get",
    "prog_attach",       "prog_detach",
    "prog_test_run",     "prog_get_next_id",
    "map_get_next_id",   "prog_get_fd_by_id",
    "map_get_fd_by_id",  "obj_get_info_by_fd",
    "prog_query",        "raw_tracepoint_open",
    "btf_load",          "btf_get_fd_by_id",
    "task_fd_query",     "map_lookup_and_delete_elem",
    "map_freeze",        "btf_get_next_id",
    "map_lookup_batch",  "map_lookup_and_delete_batch",
    "map_update_batch",  "map_delete_batch",
    "link_create",       "link_update",
    "link_get_fd_by_id", "link_get_next_id",
    "enable_stats",      "iter_create",
    "link_detach",       "prog_bind_map",
    "token_create",
};

static_assert(BPF_PROG_LOAD == 5 && BPF_LINK_DETACH == 34 && BPF_PROG_BIND_MAP == 35,
              "kCommandNames must follow enum bpf_cmd");

}  // namespace

std::string bpf_command_name(uint32_t cmd) {
    if (cmd < kCommandNames.size())
        return std::string(kCommandNames[cmd]);
    return "cmd_" + std::to_string(cmd);
}

std::optional<uint32_t> bpf_command_from_name(std::string_view name) {
    std::string lower;
    for (char c : name)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    std::string_view key = lower;
    if (key.starts_with("bpf_"))
        key.remove_prefix(4);
    if (key == "prog_run")
        return BPF_PROG_TEST_RUN;
    auto it = std::find(kCommandNames.begin(), kCommandNames.end(), key);
    if (it == kCommandNames.end())
        return std::nullopt;
    return static_cast<uint32_t>(it - kCommandNames.begin());
}

uint64_t default_restricted_bpf_commands() {
    uint64_t mask = 0;
    for (uint32_t cmd : {BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_RAW_TRACEPOINT_OPEN, BPF_LINK_CREATE,
                         BPF_LINK_UPDATE, BPF_LINK_DETACH})
        mask |= uint64_t{1} << cmd;
    return mask;
}

}  // namespace bpfwarden
