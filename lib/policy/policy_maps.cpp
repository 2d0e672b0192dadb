#include "policy/policy_maps.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "loading/bpf_objects.h"
#include "loading/self_state.h"
#include "policy/map_transaction.h"
#include "support/installed_paths.h"

namespace bpfwarden {
namespace {

std::optional<bw_inode_key> key_of(const std::filesystem::path& path) {
    auto identity = identity_of(path);
    if (!identity)
        return std::nullopt;
    return to_key(*identity);
}

// ---- Implicit entries ------------------------------------------------------

// A file rule on `path` (inode and name): the canary, our executables.
void add_file_rule(RuleTables& tables, const std::filesystem::path& path, const bw_rule& rule) {
    PathTarget target = resolve_path(path.string());
    if (target.file)
        tables.add_inode_rule(RuleKind::FileOpen, to_key(*target.file), rule);
    if (target.dir)
        tables.add_name_rule(RuleKind::FileOpen, to_key(*target.dir), target.name, rule);
}

bw_dirent_key dirent_key(const bw_inode_key& dir, const std::string& name) {
    bw_dirent_key key{};
    key.dir = dir;
    key.name_hash = bw_name_hash(reinterpret_cast<const unsigned char*>(name.data()), static_cast<__u32>(name.size()));
    return key;
}

// A directory only bpfwarden (and, for `flags` PKG_EXEMPT, the package
// manager) changes: its entries, its files' contents, and itself.
void protect_tree(RuleTables& tables, const std::filesystem::path& dir, uint32_t flags) {
    PathTarget target = resolve_path(dir.string());
    if (!target.file || !target.file->is_dir)
        return;
    bw_rule rule = plain_rule(BW_ACTION_DENY, kProtectedFilesRuleId, BW_RULE_MODIFY_ONLY | BW_RULE_SELF_EXEMPT | flags);
    tables.protect_directory(to_key(*target.file), rule);
    // The directory's own entries are the protection's too, not the stricter
    // of it and an administrator's rule: the programs take the inode entry
    // first, and a plain deny there would refuse bpfwarden its own directory.
    tables.file_rules[to_key(*target.file)] = rule;
    if (target.dir) {
        tables.add_name_rule(RuleKind::FileOpen, to_key(*target.dir), target.name, rule);
        tables.dirents[dirent_key(to_key(*target.dir), target.name)].file = rule;
    }
}

void add_protection(DesiredMaps& desired, const ServiceIdentity& service) {
    PinLayout pins(service.pin_root);
    for (const auto& dir : {pins.root(), pins.links_dir(), pins.maps_dir(), service.keys_dir, service.state_dir})
        if (!dir.empty())
            protect_tree(desired.tables, dir, 0);
    if (!service.image_dir.empty())
        protect_tree(desired.tables, service.image_dir, BW_RULE_PKG_EXEMPT);
    bw_rule exe_rule = plain_rule(BW_ACTION_DENY, kProtectedExesRuleId, BW_RULE_MODIFY_ONLY | BW_RULE_PKG_EXEMPT);
    for (const auto& exe : {service.daemon_exe, service.watchdog_exe, service.packager})
        if (!exe.empty())
            add_file_rule(desired.tables, exe, exe_rule);
}

// Who may become bpfwarden at exec: our executables, by name (an upgrade
// replaces the file), and the package manager's role.
void add_self_exes(DesiredMaps& desired, const ServiceIdentity& service) {
    struct Exe {
        const std::filesystem::path& path;
        uint32_t role;
        const char* unit;
    };
    for (auto [path, role, unit] : {Exe{service.daemon_exe, BW_ROLE_DAEMON, installed::kDaemonUnit},
                                    Exe{service.watchdog_exe, BW_ROLE_WATCHDOG, installed::kWatchdogUnit},
                                    Exe{service.packager, BW_ROLE_PACKAGER, ""}}) {
        PathTarget target = resolve_path(path.string());
        if (path.empty() || !target.file || !target.dir)
            continue;
        bw_self_exe exe{};
        exe.role = role;
        std::strncpy(exe.unit, unit, sizeof(exe.unit) - 1);
        desired.self_exes[dirent_key(to_key(*target.dir), target.name)] = exe;
    }
}

// With protection off, our executables run by hand must still load programs.
void allow_own_executables(DesiredMaps& desired, const ServiceIdentity& service) {
    if (auto daemon = key_of(service.daemon_exe))
        desired.tables.bpf_allow[*daemon] = bw_bpf_allow{kSelfRuleId, 0, 0};
    if (auto watchdog = key_of(service.watchdog_exe))
        desired.tables.bpf_allow[*watchdog] = bw_bpf_allow{kWatchdogRuleId, 0, 0};
}

void fill_settings(DesiredMaps& desired, const ServiceIdentity& service) {
    bw_settings& settings = desired.tables.settings;
    settings.dir_rules = static_cast<uint32_t>(desired.tables.dir_rules.size());
    struct stat st{};
    if (::stat(service.pin_root.c_str(), &st) == 0)
        settings.pin_sb_dev = kernel_dev(st.st_dev);
    settings.keys_dir = key_of(service.keys_dir).value_or(bw_inode_key{});
    settings.image_dir = key_of(service.image_dir).value_or(bw_inode_key{});
    settings.state_dir = key_of(service.state_dir).value_or(bw_inode_key{});
}

void fill_dir_bloom(DesiredMaps& desired) {
    for (const auto& [dir, rules] : desired.tables.dir_rules) {
        uint32_t bit = bw_dir_bloom_bit(dir.dev, dir.ino);
        desired.dir_bloom[bit / 64] |= uint64_t{1} << (bit % 64);
    }
}

// ---- Writing ---------------------------------------------------------------

Result<UniqueFd> open_map(const PinLayout& pins, const char* map) {
    auto fd = PinLayout::open_pin(pins.map_pin(map));
    if (!fd)
        return fail(fd.error().wrap(std::string("open policy map '") + map + "'"));
    return fd;
}

// The one entry of an array map, written only when it differs.
template <typename Value>
Result<void> write_single(int fd, const char* name, const Value& value, MapWrites& writes) {
    uint32_t zero = 0;
    Value current{};
    if (bpf_map_lookup_elem(fd, &zero, &current) == 0 && std::memcmp(&current, &value, sizeof(Value)) == 0)
        return {};
    if (int err = bpf_map_update_elem(fd, &zero, &value, BPF_ANY); err)
        return fail(Error::from_libbpf(err, std::string("update policy map '") + name + "'"));
    ++writes.written;
    return {};
}

}  // namespace

DesiredMaps desired_maps(const CompiledPolicy& policy, const ServiceIdentity& service) {
    DesiredMaps desired;
    desired.tables = policy.tables;
    // Denied even in the policy's audit mode: it is how the watchdog sees enforcement.
    add_file_rule(desired.tables, service.canary, plain_rule(BW_ACTION_DENY, kCanaryRuleId, BW_RULE_ALWAYS_ENFORCE));
    if (desired.tables.settings.protect)
        add_protection(desired, service);
    else
        allow_own_executables(desired, service);
    add_self_exes(desired, service);
    fill_settings(desired, service);
    fill_dir_bloom(desired);
    return desired;
}

Result<void> check_against_protection(const SelfState& state, const DesiredMaps& next) {
    if (!state.enforced())
        return {};
    const bw_settings& now = state.settings;
    const bw_settings& wanted = next.tables.settings;
    if (!wanted.protect)
        return fail(ErrorKind::PermissionDenied, EPERM,
                    "protect = false takes effect only while protection is lifted (bpfwardenctl unlock)");
    struct Anchor {
        const bw_inode_key& pinned;
        const bw_inode_key& given;
        const char* what;
    };
    for (auto [pinned, given, what] : {Anchor{now.keys_dir, wanted.keys_dir, "trusted keys directory"},
                                       Anchor{now.image_dir, wanted.image_dir, "image directory"},
                                       Anchor{now.state_dir, wanted.state_dir, "state directory"}})
        if ((pinned.dev || pinned.ino) && std::memcmp(&pinned, &given, sizeof(pinned)) != 0)
            return fail(ErrorKind::PermissionDenied, EPERM,
                        std::string("the ") + what +
                            " is not the one self-protection was set up with; changing it needs a lift "
                            "(bpfwardenctl unlock)");
    return {};
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

Result<PolicyMaps> PolicyMaps::open(const PinLayout& pins) {
    PolicyMaps maps;
    struct Slot {
        UniqueFd* fd;
        const char* name;
    };
    for (auto [fd, name] :
         {Slot{&maps.file_rules_, kFileRulesMap}, Slot{&maps.exec_rules_, kExecRulesMap},
          Slot{&maps.dirents_, kDirentsMap}, Slot{&maps.dir_rules_, kDirRulesMap}, Slot{&maps.dir_bloom_, kDirBloomMap},
          Slot{&maps.bpf_allow_, kBpfAllowMap}, Slot{&maps.bpf_policy_, kBpfPolicyMap},
          Slot{&maps.settings_, kSettingsMap}, Slot{&maps.self_exes_, kSelfExesMap}, Slot{&maps.scopes_, kScopesMap},
          Slot{&maps.exec_allowed_, kExecAllowedMap}}) {
        auto opened = open_map(pins, name);
        if (!opened)
            return fail(opened.error());
        *fd = std::move(*opened);
    }
    return maps;
}

Result<void> PolicyMaps::apply_rules(const DesiredMaps& desired, const MapTransaction& before,
                                     MapWrites& writes) const {
    const RuleTables& tables = desired.tables;
    // Scopes first: a scope's key is derived from its text, so one in both
    // policies is left alone, and a new rule finds its scope in place.
    if (auto ok = sync(scopes_, kScopesMap, tables.scopes, before, writes); !ok)
        return ok;
    if (auto ok = sync(file_rules_, kFileRulesMap, tables.file_rules, before, writes); !ok)
        return ok;
    if (auto ok = sync(exec_rules_, kExecRulesMap, tables.exec_rules, before, writes); !ok)
        return ok;
    if (auto ok = sync(dirents_, kDirentsMap, tables.dirents, before, writes); !ok)
        return ok;
    return sync(dir_rules_, kDirRulesMap, tables.dir_rules, before, writes);
}

// The filter in front of bpfw_dir_rules: during an update it must pass both
// the old directories and the new, so the first write is the union.
Result<void> PolicyMaps::apply_dir_filter(const DesiredMaps& desired, bool union_with_current,
                                          MapWrites& writes) const {
    for (uint32_t word = 0; word < BW_DIR_BLOOM_WORDS; ++word) {
        uint64_t current = 0, wanted = desired.dir_bloom[word];
        if (bpf_map_lookup_elem(dir_bloom_.get(), &word, &current) == 0 && union_with_current)
            wanted |= current;
        if (wanted == current)
            continue;
        if (int err = bpf_map_update_elem(dir_bloom_.get(), &word, &wanted, BPF_ANY); err)
            return fail(Error::from_libbpf(err, std::string("update policy map '") + kDirBloomMap + "'"));
        ++writes.written;
    }
    return {};
}

Result<void> PolicyMaps::apply_settings(const bw_settings& settings, MapWrites& writes) const {
    return write_single(settings_.get(), kSettingsMap, settings, writes);
}

// Every map an apply may write, read before the first write; nothing is
// written when a hash map cannot hold what the policy needs.
Result<MapTransaction> PolicyMaps::begin(const DesiredMaps& desired) const {
    const RuleTables& tables = desired.tables;
    struct Planned {
        const UniqueFd* fd;
        const char* name;
        std::optional<size_t> entries;  // a hash map's new entry count (arrays: fixed size)
    };
    const Planned maps[] = {{&file_rules_, kFileRulesMap, tables.file_rules.size()},
                            {&exec_rules_, kExecRulesMap, tables.exec_rules.size()},
                            {&dirents_, kDirentsMap, tables.dirents.size()},
                            {&dir_rules_, kDirRulesMap, tables.dir_rules.size()},
                            {&dir_bloom_, kDirBloomMap, std::nullopt},
                            {&bpf_allow_, kBpfAllowMap, tables.bpf_allow.size()},
                            {&bpf_policy_, kBpfPolicyMap, std::nullopt},
                            {&settings_, kSettingsMap, std::nullopt},
                            {&self_exes_, kSelfExesMap, desired.self_exes.size()},
                            {&scopes_, kScopesMap, tables.scopes.size()},
                            {&exec_allowed_, kExecAllowedMap, tables.exec_allowed.size()}};
    MapTransaction transaction;
    for (const auto& map : maps) {
        if (auto tracked = transaction.track(map.fd->get(), map.name); !tracked)
            return fail(tracked.error());
        if (!map.entries)
            continue;
        if (auto fits = check_fits(map.name, *map.entries, transaction.before(map.fd->get())->max_entries); !fits)
            return fail(fits.error().note("nothing was changed"));
    }
    return transaction;
}

// What bpfw_exec_allowed holds while the settings still may name the
// previous allowlists: the new entries and every entry there was.
std::map<bw_allowed_key, uint32_t, AllowedKeyLess> PolicyMaps::allowed_during_update(
    const DesiredMaps& desired, const MapTransaction& before) const {
    auto entries = desired.tables.exec_allowed;
    const MapEntries* present = before.before(exec_allowed_.get());
    for (uint32_t i = 0; present && i < present->count; ++i) {
        bw_allowed_key key{};
        uint32_t value = 0;
        std::memcpy(&key, present->key(i), std::min<size_t>(sizeof(key), present->key_size));
        std::memcpy(&value, present->value(i), std::min<size_t>(sizeof(value), present->value_size));
        entries.try_emplace(key, value);
    }
    return entries;
}

// Writes every map, in an order that never opens a gap.
Result<void> PolicyMaps::write_all(const DesiredMaps& desired, const MapTransaction& before, MapWrites& writes) const {
    // Directory lookups on for the update when either policy has directory
    // rules (the counter only says "any").
    bw_settings during = desired.tables.settings;
    if (const MapEntries* settings = before.before(settings_.get());
        settings && settings->count == 1 && settings->value_size == sizeof(bw_settings)) {
        bw_settings current{};
        std::memcpy(&current, settings->value(0), sizeof(current));
        during.dir_rules = std::max(during.dir_rules, current.dir_rules);
    }
    if (auto ok = apply_dir_filter(desired, true, writes); !ok)
        return ok;
    if (auto ok = apply_settings(during, writes); !ok)
        return ok;
    // Allowlist entries before the settings that use them, and removed only
    // after them: a list being shrunk or dropped never refuses what it listed.
    if (auto ok = sync(exec_allowed_, kExecAllowedMap, allowed_during_update(desired, before), before, writes); !ok)
        return ok;
    if (auto ok = apply_rules(desired, before, writes); !ok)
        return ok;
    if (auto ok = apply_dir_filter(desired, false, writes); !ok)
        return ok;
    if (auto ok = apply_settings(desired.tables.settings, writes); !ok)
        return ok;
    const auto* allowed_before = before.before(exec_allowed_.get());
    if (auto ok = delete_keys(exec_allowed_.get(), kExecAllowedMap,
                              stale_keys(desired.tables.exec_allowed, *allowed_before), writes);
        !ok)
        return ok;
    if (auto ok = sync(bpf_allow_, kBpfAllowMap, desired.tables.bpf_allow, before, writes); !ok)
        return ok;
    if (auto ok = write_single(bpf_policy_.get(), kBpfPolicyMap, desired.tables.bpf_policy, writes); !ok)
        return ok;
    return sync(self_exes_, kSelfExesMap, desired.self_exes, before, writes);
}

Result<MapWrites> PolicyMaps::apply(const DesiredMaps& desired) const {
    auto transaction = begin(desired);
    if (!transaction)
        return fail(transaction.error());
    MapWrites writes;
    auto written = write_all(desired, *transaction, writes);
    if (written)
        return writes;
    auto restored = transaction->roll_back();
    return fail(written.error().note(restored ? "every policy map holds the previous policy again"
                                              : "putting the previous policy back failed too (" +
                                                    restored.error().message() + "); the watchdog heals the maps"));
}

Result<bw_inode_key> executable_identity(const char* path) {
    auto identity = identity_of(path);
    if (!identity)
        return fail(identity.error());
    return to_key(*identity);
}

Result<bw_counters> read_counters(const PinLayout& pins) {
    bw_counters total{};
    for (const auto& spec : managed_objects()) {
        auto fd = PinLayout::open_pin_read_only(pins.counters_pin(spec.name));
        if (!fd) {
            if (fd.error().errnum() == ENOENT)
                continue;
            return fail(fd.error());
        }
        // `counters` is the first .bss variable; the value may hold more.
        bpf_map_info info{};
        uint32_t info_len = sizeof(info);
        if (int err = bpf_obj_get_info_by_fd(fd->get(), &info, &info_len); err)
            return fail(Error::from_libbpf(err, std::string("inspect counters of ") + spec.name));
        if (info.value_size < sizeof(bw_counters))
            return fail(EPROTO, std::string("counters of ") + spec.name + " are smaller than expected");
        std::vector<unsigned char> value(info.value_size);
        uint32_t zero = 0;
        if (int err = bpf_map_lookup_elem(fd->get(), &zero, value.data()); err)
            return fail(Error::from_libbpf(err, std::string("read counters of ") + spec.name));
        bw_counters one{};
        std::memcpy(&one, value.data(), sizeof(one));
        total.events += one.events;
        total.dropped += one.dropped;
        total.rate_limited += one.rate_limited;
        total.denials += one.denials;
        total.audits += one.audits;
        total.tampers += one.tampers;
    }
    return total;
}

}  // namespace bpfwarden
