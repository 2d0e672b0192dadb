// inventory: every BPF program, link and map on the host, and whose each is.

#include <unistd.h>

#include <cstdio>
#include <expected>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.h"
#include "inspection/bpf_inventory.h"
#include "support/command_line.h"
#include "support/installed_paths.h"
#include "support/text.h"

namespace bpfwarden::ctl {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDescription = R"(Lists every BPF program, link and map loaded on this host: id, type, name,
program tag, what each link attaches to, load time, run time and count,
the processes holding each (pid, command, executable, systemd unit) and
its bpffs pins (every bpffs mount is walked). Each object is classified:
  bpfwarden    pinned under the pin root, held by bpfwardend or
               bpfwarden-watchdog (by executable path), or held by / used by
               an object that is (never by name alone)
  kernel       pinned by the kernel itself (bpf_preload's *.debug iterators)
  systemd      held by PID 1 or a binary under /usr/lib/systemd, pinned under
               <bpffs>/systemd/, or one of systemd's own programs (name and
               type) that no other process holds
  allowlisted  matches an entry of the allowlist
  unknown      anything else: what to look at during an incident
The allowlist (TOML) names what the admin expects; an entry matches a
program when every field it gives matches:
  [[expected]]
  name = "cilium_host"     # program name, exact (at most 15 characters)
  tag = "0123456789abcdef" # program tag, as 'bpftool prog' shows it
  owner = "/usr/bin/foo"   # a holder's executable, or its unit "foo.service"
  comment = "why it is expected"
Run time and count grow only while BPF statistics are on
(sysctl kernel.bpf_stats_enabled=1); the output says whether they are.
Needs root: the kernel lists BPF objects only to CAP_SYS_ADMIN.)";

constexpr const char* kFooter = R"(Exit status: 0 listed (with --unknown: no unknown program); 1 with --unknown:
an unknown program was found, or the listing failed (not root); 2 invalid
arguments, an unreadable or invalid allowlist, or a missing --allowlist file.)";

struct InventoryOptions {
    bool json = false;
    bool only_unknown = false;
    fs::path allowlist = fs::path(installed::kPolicyDir).parent_path() / "inventory.toml";
    bool allowlist_given = false;
    OwnSide own;
};

// ---- Text ---------------------------------------------------------------------------

std::string ids_text(const std::vector<uint32_t>& ids) {
    std::vector<std::string> items;
    for (uint32_t id : ids)
        items.push_back(std::to_string(id));
    return items.empty() ? "-" : join(items, ",");
}

std::string duration_text(uint64_t ns) {
    char text[32];
    if (ns < 1000000)
        snprintf(text, sizeof(text), "%.1f us", static_cast<double>(ns) / 1e3);
    else if (ns < 1000000000)
        snprintf(text, sizeof(text), "%.1f ms", static_cast<double>(ns) / 1e6);
    else
        snprintf(text, sizeof(text), "%.1f s", static_cast<double>(ns) / 1e9);
    return text;
}

// The lines under an object's row: why it is classified so, pins, holders.
void print_details(const Classification& owner, const std::vector<std::string>& pins,
                   const std::vector<HolderProcess>& holders) {
    printf("         why: %s\n", sanitize_field(owner.reason, 1024).c_str());
    for (const auto& pin : pins)
        printf("         pinned: %s\n", sanitize_field(pin, 1024).c_str());
    for (const auto& holder : holders)
        printf("         held by: %s\n", sanitize_field(holder.describe(), 1024).c_str());
}

std::string stats_text(const Inventory& inventory) {
    if (!inventory.stats_enabled)
        return "unknown (kernel.bpf_stats_enabled unreadable): run time and count may not be counting";
    if (*inventory.stats_enabled)
        return "on (kernel.bpf_stats_enabled = 1): run time and count are counting";
    return "off (kernel.bpf_stats_enabled = 0): run time and count grow only while statistics are on";
}

template <typename Record>
std::vector<const Record*> shown(const std::vector<Record>& records, bool only_unknown) {
    std::vector<const Record*> out;
    for (const auto& record : records)
        if (!only_unknown || record.owner.owner == ObjectOwner::Unknown)
            out.push_back(&record);
    return out;
}

void print_programs(const Inventory& inventory, bool only_unknown) {
    auto programs = shown(inventory.programs, only_unknown);
    printf("%s programs: %zu\n", only_unknown ? "Unknown BPF" : "BPF", programs.size());
    printf("Statistics: %s\n", stats_text(inventory).c_str());
    if (programs.empty())
        return;
    printf("  %-7s %-15s %-15s %-16s  %-11s %-20s  %10s  %s\n", "ID", "TYPE", "NAME", "TAG", "OWNER", "LOADED", "RUNS",
           "RUN TIME");
    for (const ProgramRecord* p : programs) {
        printf("  %-7u %-15s %-15s %-16s  %-11s %-20s  %10llu  %s\n", p->id, program_type_name(p->type).c_str(),
               sanitize_field(p->name).c_str(), p->tag.c_str(), std::string(to_string(p->owner.owner)).c_str(),
               format_utc(p->loaded_at_ns).c_str(), static_cast<unsigned long long>(p->run_count),
               duration_text(p->run_time_ns).c_str());
        if (!p->btf_target.empty())
            printf("         loaded for: %s\n", sanitize_field(p->btf_target).c_str());
        printf("         links: %s   maps: %s   uid: %u\n", ids_text(p->link_ids).c_str(), ids_text(p->map_ids).c_str(),
               p->uid);
        print_details(p->owner, p->pins, p->holders);
    }
}

void print_links(const Inventory& inventory, bool only_unknown) {
    auto links = shown(inventory.links, only_unknown);
    printf("\n%s links: %zu\n", only_unknown ? "Unknown BPF" : "BPF", links.size());
    if (links.empty())
        return;
    printf("  %-7s %-15s %-7s %-11s %s\n", "ID", "TYPE", "PROG", "OWNER", "ATTACHED TO");
    for (const LinkRecord* l : links) {
        printf("  %-7u %-15s %-7u %-11s %s\n", l->id, link_type_name(l->type).c_str(), l->prog_id,
               std::string(to_string(l->owner.owner)).c_str(), sanitize_field(l->target, 1024).c_str());
        print_details(l->owner, l->pins, l->holders);
    }
}

void print_maps(const Inventory& inventory, bool only_unknown) {
    auto maps = shown(inventory.maps, only_unknown);
    printf("\n%s maps: %zu\n", only_unknown ? "Unknown BPF" : "BPF", maps.size());
    if (maps.empty())
        return;
    printf("  %-7s %-15s %-15s %-11s %s\n", "ID", "TYPE", "NAME", "OWNER", "USED BY");
    for (const MapRecord* m : maps) {
        printf("  %-7u %-15s %-15s %-11s %s\n", m->id, map_type_name(m->type).c_str(), sanitize_field(m->name).c_str(),
               std::string(to_string(m->owner.owner)).c_str(), ids_text(m->used_by).c_str());
        print_details(m->owner, m->pins, m->holders);
    }
}

void print_text(const Inventory& inventory, const InventoryOptions& options, const Allowlist& allowlist) {
    printf("Pin root: %s   Allowlist: %s\n", options.own.pin_root.c_str(),
           allowlist.source.empty() ? "none" : allowlist.source.c_str());
    print_programs(inventory, options.only_unknown);
    print_links(inventory, options.only_unknown);
    print_maps(inventory, options.only_unknown);
    for (const auto& warning : inventory.warnings)
        printf("warning: %s\n", sanitize_field(warning, 1024).c_str());
}

// ---- JSON ---------------------------------------------------------------------------

std::string json_ids(const std::vector<uint32_t>& ids) {
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i)
        out += (i ? "," : "") + std::to_string(ids[i]);
    return out + "]";
}

std::string json_strings(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i)
        out += (i ? "," : "") + json_quote(items[i]);
    return out + "]";
}

// "owner", "reason", "pins" and "holders": what every kind has.
std::string json_common(const Classification& owner, const std::vector<std::string>& pins,
                        const std::vector<HolderProcess>& holders) {
    std::string out = "\"owner\":" + json_quote(to_string(owner.owner)) + ",\"reason\":" + json_quote(owner.reason) +
                      ",\"pins\":" + json_strings(pins) + ",\"holders\":[";
    for (size_t i = 0; i < holders.size(); ++i)
        out += std::string(i ? "," : "") + "{\"pid\":" + std::to_string(holders[i].process.pid) +
               ",\"comm\":" + json_quote(holders[i].process.comm) + ",\"exe\":" + json_quote(holders[i].process.exe) +
               ",\"unit\":" + (holders[i].unit.empty() ? "null" : json_quote(holders[i].unit)) + "}";
    return out + "]";
}

std::string json_program(const ProgramRecord& p) {
    return "{\"id\":" + std::to_string(p.id) + ",\"type\":" + json_quote(program_type_name(p.type)) +
           ",\"name\":" + json_quote(p.name) + ",\"tag\":" + json_quote(p.tag) + ",\"uid\":" + std::to_string(p.uid) +
           ",\"loaded_at\":" + json_quote(format_utc(p.loaded_at_ns)) +
           ",\"load_time_since_boot_ns\":" + std::to_string(p.load_time_ns) +
           ",\"run_time_ns\":" + std::to_string(p.run_time_ns) + ",\"run_count\":" + std::to_string(p.run_count) +
           ",\"loaded_for\":" + (p.btf_target.empty() ? "null" : json_quote(p.btf_target)) +
           ",\"links\":" + json_ids(p.link_ids) + ",\"maps\":" + json_ids(p.map_ids) + "," +
           json_common(p.owner, p.pins, p.holders) + "}";
}

std::string json_link(const LinkRecord& l) {
    return "{\"id\":" + std::to_string(l.id) + ",\"type\":" + json_quote(link_type_name(l.type)) +
           ",\"prog_id\":" + std::to_string(l.prog_id) + ",\"target\":" + json_quote(l.target) + "," +
           json_common(l.owner, l.pins, l.holders) + "}";
}

std::string json_map(const MapRecord& m) {
    return "{\"id\":" + std::to_string(m.id) + ",\"type\":" + json_quote(map_type_name(m.type)) +
           ",\"name\":" + json_quote(m.name) + ",\"key_size\":" + std::to_string(m.key_size) +
           ",\"value_size\":" + std::to_string(m.value_size) + ",\"max_entries\":" + std::to_string(m.max_entries) +
           ",\"flags\":" + std::to_string(m.flags) + ",\"used_by\":" + json_ids(m.used_by) + "," +
           json_common(m.owner, m.pins, m.holders) + "}";
}

template <typename Record>
std::string json_list(const std::vector<Record>& records, bool only_unknown, std::string (*render)(const Record&)) {
    std::string out = "[";
    for (const Record* record : shown(records, only_unknown))
        out += (out.size() > 1 ? "," : "") + render(*record);
    return out + "]";
}

void print_json(const Inventory& inventory, const InventoryOptions& options, const Allowlist& allowlist,
                size_t unknown_programs) {
    const std::string stats = inventory.stats_enabled ? (*inventory.stats_enabled ? "true" : "false") : "null";
    std::string out = "{\"pin_root\":" + json_quote(options.own.pin_root.string()) +
                      ",\"allowlist\":" + (allowlist.source.empty() ? "null" : json_quote(allowlist.source)) +
                      ",\"only_unknown\":" + (options.only_unknown ? "true" : "false") + ",\"stats_enabled\":" + stats +
                      ",\"stats_note\":" + json_quote(stats_text(inventory)) +
                      ",\"unknown_programs\":" + std::to_string(unknown_programs) +
                      ",\"programs\":" + json_list(inventory.programs, options.only_unknown, json_program) +
                      ",\"links\":" + json_list(inventory.links, options.only_unknown, json_link) +
                      ",\"maps\":" + json_list(inventory.maps, options.only_unknown, json_map) +
                      ",\"warnings\":" + json_strings(inventory.warnings) + "}";
    puts(out.c_str());
}

// ---- The command --------------------------------------------------------------------

// The allowlist, or the exit status of a problem with it (2).
std::expected<Allowlist, int> read_allowlist(const InventoryOptions& options, CommandLine& cli) {
    auto allowlist = load_allowlist(options.allowlist);
    if (allowlist)
        return *allowlist;
    if (allowlist.error().errnum() == ENOENT && !options.allowlist_given)
        return Allowlist{};  // no allowlist installed: nothing is expected
    if (allowlist.error().errnum() == ENOENT)
        return std::unexpected(
            cli.usage_error("--allowlist: " + quote_for_message(options.allowlist.string()) + " does not exist"));
    fprintf(stderr, "%s: allowlist: %s\n", cli.program().c_str(), allowlist.error().message().c_str());
    return std::unexpected(2);
}

}  // namespace

int inventory(int argc, char** argv) {
    InventoryOptions options;
    CommandLine cli("bpfwardenctl inventory", "[--json] [--unknown] [--allowlist FILE] [--pin-root DIR]", kDescription,
                    kFooter);
    add_json(cli, options.json);
    cli.flag("--unknown", options.only_unknown,
             "list only the unknown (not bpfwarden's, the kernel's, systemd's or allowlisted); exit 1 if a program is");
    auto* allowlist_option = cli.path("--allowlist", options.allowlist, "the admin's allowlist (TOML)", "FILE");
    add_pin_root(cli, options.own.pin_root);
    fs::path daemon_exe = installed::kDaemonExe, watchdog_exe = installed::kWatchdogExe;
    cli.path("--daemon-exe", daemon_exe, "bpfwardend's executable: its processes' objects are bpfwarden's", "FILE");
    cli.path("--watchdog-exe", watchdog_exe, "bpfwarden-watchdog's executable (likewise)", "FILE");
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    options.allowlist_given = allowlist_option->count() > 0;
    options.own.executables = {daemon_exe, watchdog_exe};

    auto allowlist = read_allowlist(options, cli);
    if (!allowlist)
        return allowlist.error();
    auto inventory = take_bpf_inventory();
    if (!inventory) {
        fprintf(stderr, "%s: %s\n", cli.program().c_str(), inventory.error().message().c_str());
        return 1;
    }
    classify(*inventory, options.own, *allowlist);
    size_t unknown_programs = shown(inventory->programs, true).size();
    if (options.json)
        print_json(*inventory, options, *allowlist, unknown_programs);
    else
        print_text(*inventory, options, *allowlist);
    return options.only_unknown && unknown_programs > 0 ? 1 : 0;
}

}  // namespace bpfwarden::ctl
