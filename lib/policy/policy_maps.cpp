#include "policy/policy_maps.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <tuple>

#include "loading/bpf_objects.h"

namespace bpfwarden {
namespace {

Result<UniqueFd> open_optional(const PinLayout& pins, const char* map) {
    auto fd = PinLayout::open_pin(pins.map_pin(map));
    if (!fd && fd.error().errnum() == ENOENT)
        return UniqueFd();
    return fd;
}

template <typename Value>
Result<void> sync_hash_map(int fd, const char* name, const std::map<bw_inode_key, Value, InodeKeyLess>& desired) {
    for (const auto& [key, value] : desired)
        if (int err = bpf_map_update_elem(fd, &key, &value, BPF_ANY); err)
            return std::unexpected(Error::from_libbpf(err, std::string("update policy map '") + name + "'"));

    std::vector<bw_inode_key> stale;
    bw_inode_key key{}, next{};
    const void* cursor = nullptr;
    while (bpf_map_get_next_key(fd, cursor, &next) == 0) {
        if (!desired.contains(next))
            stale.push_back(next);
        key = next;
        cursor = &key;
    }
    for (const auto& old : stale)
        if (int err = bpf_map_delete_elem(fd, &old); err && err != -ENOENT)
            return std::unexpected(Error::from_libbpf(err, std::string("delete from policy map '") + name + "'"));
    return {};
}

}  // namespace

ImplicitRules implicit_rules(const ServiceIdentity& service) {
    ImplicitRules rules;
    if (auto daemon = executable_identity(service.daemon_exe.c_str()))
        rules.allow.push_back({*daemon, kSelfRuleId});
    if (auto watchdog = executable_identity(service.watchdog_exe.c_str()))
        rules.allow.push_back({*watchdog, kWatchdogRuleId});
    if (auto canary = executable_identity(service.canary.c_str()))
        rules.file_deny.push_back({*canary, bw_rule{BW_ACTION_DENY, kCanaryRuleId}});
    return rules;
}

Result<void> ensure_canary(const std::filesystem::path& canary) {
    std::error_code ec;
    if (std::filesystem::exists(canary, ec))
        return {};
    std::filesystem::create_directories(canary.parent_path(), ec);
    if (ec)
        return fail_system(ec.value(), "create canary directory '" + canary.parent_path().string() + "'");
    UniqueFd fd(::open(canary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd && errno != EEXIST)
        return fail_errno("create canary '" + canary.string() + "'");
    static constexpr char kText[] = "bpfwarden canary: opening this file must fail with EPERM\n";
    if (fd && write(fd.get(), kText, sizeof(kText) - 1) < 0)
        return fail_errno("write canary '" + canary.string() + "'");
    return {};
}

DesiredMaps desired_maps(const CompiledPolicy& policy, const ImplicitRules& implicit) {
    DesiredMaps desired;
    for (const auto& entry : policy.file_rules)
        desired.file_rules[entry.key] = entry.value;
    for (const auto& entry : implicit.file_deny)
        desired.file_rules[entry.key] = entry.value;
    for (const auto& entry : policy.exec_rules)
        desired.exec_rules[entry.key] = entry.value;
    for (const auto& [key, value] : policy.bpf_allow)
        desired.bpf_allow[key] = value;
    for (const auto& extra : implicit.allow)
        desired.bpf_allow[extra.exe] = bw_bpf_allow{extra.rule_id, 0};
    desired.bpf_policy = policy.bpf_policy;
    return desired;
}

Result<PolicyMaps> PolicyMaps::open(const PinLayout& pins) {
    PolicyMaps maps;
    struct Slot {
        UniqueFd* fd;
        const char* name;
    };
    for (auto [fd, name] : {Slot{&maps.file_rules_, kFileRulesMap}, Slot{&maps.exec_rules_, kExecRulesMap},
                            Slot{&maps.bpf_allow_, kBpfAllowMap}, Slot{&maps.bpf_policy_, kBpfPolicyMap}}) {
        auto opened = open_optional(pins, name);
        if (!opened)
            return std::unexpected(opened.error());
        *fd = std::move(*opened);
    }
    return maps;
}

Result<void> PolicyMaps::apply(const DesiredMaps& desired) const {
    if (file_rules_)
        if (auto synced = sync_hash_map(file_rules_.get(), kFileRulesMap, desired.file_rules); !synced)
            return synced;
    if (exec_rules_)
        if (auto synced = sync_hash_map(exec_rules_.get(), kExecRulesMap, desired.exec_rules); !synced)
            return synced;
    if (bpf_allow_)
        if (auto synced = sync_hash_map(bpf_allow_.get(), kBpfAllowMap, desired.bpf_allow); !synced)
            return synced;
    if (bpf_policy_) {
        uint32_t zero = 0;
        if (int err = bpf_map_update_elem(bpf_policy_.get(), &zero, &desired.bpf_policy, BPF_ANY); err)
            return std::unexpected(Error::from_libbpf(err, std::string("update policy map '") + kBpfPolicyMap + "'"));
    }
    return {};
}

Result<void> allow_implicit_in_pinned_guard(const PinLayout& pins, const std::vector<ImplicitAllow>& implicit) {
    auto fd = open_optional(pins, kBpfAllowMap);
    if (!fd)
        return std::unexpected(fd.error());
    if (!*fd)
        return {};
    for (const auto& extra : implicit) {
        bw_bpf_allow value{extra.rule_id, 0};
        if (int err = bpf_map_update_elem(fd->get(), &extra.exe, &value, BPF_ANY); err)
            return std::unexpected(Error::from_libbpf(err, std::string("update policy map '") + kBpfAllowMap + "'"));
    }
    return {};
}

Result<bw_inode_key> executable_identity(const char* path) {
    struct stat st{};
    if (stat(path, &st) != 0)
        return fail_errno(std::string("stat '") + path + "'");
    return bw_inode_key{kernel_dev(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

Result<bw_counters> read_counters(const PinLayout& pins) {
    bw_counters total{};
    for (const auto& spec : managed_objects()) {
        auto fd = PinLayout::open_pin(pins.counters_pin(spec.name));
        if (!fd) {
            if (fd.error().errnum() == ENOENT)
                continue;
            return std::unexpected(fd.error());
        }
        // `counters` is the first .bss variable; the value may hold more.
        bpf_map_info info{};
        uint32_t info_len = sizeof(info);
        if (int err = bpf_obj_get_info_by_fd(fd->get(), &info, &info_len); err)
            return std::unexpected(Error::from_libbpf(err, std::string("inspect counters of ") + spec.name));
        if (info.value_size < sizeof(bw_counters))
            return fail(EPROTO, std::string("counters of ") + spec.name + " are smaller than expected");
        std::vector<unsigned char> value(info.value_size);
        uint32_t zero = 0;
        if (int err = bpf_map_lookup_elem(fd->get(), &zero, value.data()); err)
            return std::unexpected(Error::from_libbpf(err, std::string("read counters of ") + spec.name));
        bw_counters one{};
        std::memcpy(&one, value.data(), sizeof(one));
        total.events += one.events;
        total.dropped += one.dropped;
        total.rate_limited += one.rate_limited;
        total.denials += one.denials;
        total.audits += one.audits;
    }
    return total;
}

}  // namespace bpfwarden
