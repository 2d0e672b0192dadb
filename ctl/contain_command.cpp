// contain: stop one foreign BPF program during an incident: detach its links,
// remove its pins, and say what still keeps it alive.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "inspection/bpf_inventory.h"
#include "support/command_line.h"
#include "support/installed_paths.h"
#include "support/log.h"
#include "support/text.h"

namespace bpfwarden::ctl {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDescription = R"(Contains one BPF program that is not bpfwarden's: detaches every link holding
it, removes every bpffs pin of the program, of those links, and of the maps
only it uses (a map another program uses too is left, and said so). Each pin
is checked right before it is removed: on bpffs, not a symlink, still naming
the object it did. Then it reports what still keeps the program loaded:
processes holding it (named, with what to do; contain never kills a
process), links the kernel cannot detach (perf_event, tracing and
raw_tracepoint links end only with their last reference), attachments
without a link.
Refused: bpfwarden's own programs (pinned under the pin root, held by
bpfwardend or bpfwarden-watchdog, or held by a link that is; see
'bpfwardenctl inventory'), the kernel's, and systemd's (PID 1's).
Asks for confirmation unless --yes; without a terminal, --yes is required.
Every action is printed and logged (the journal when journald listens,
otherwise stderr). Needs root.)";

constexpr const char* kFooter = R"(Exit status: 0 the program is no longer loaded; 1 refused (bpfwarden's,
the kernel's or systemd's program, no such program, not confirmed, not root)
or an action failed; 2 invalid arguments (PROG_ID not a number); 3 every
action was taken but the program is still loaded (the report says what
holds it).)";

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

struct ContainOptions {
    uint32_t prog_id = 0;
    bool yes = false;
    bool json = false;
    OwnSide own;
};

struct Action {
    std::string kind;     // "detach-link", "remove-pin"
    std::string object;   // "link 17 (tracepoint sys_enter_openat)", "/sys/fs/bpf/x"
    std::string outcome;  // "done", "not-supported", "gone", "failed"
    std::string message;  // for people, as printed and logged
};

struct Aftermath {
    bool program_loaded = false;
    std::vector<std::string> remaining;  // what still holds it
    std::vector<std::string> advice;
};

std::string plural(size_t count, const std::string& word) {
    return std::to_string(count) + " " + word + (count == 1 ? "" : "s");
}

std::string program_text(const ProgramRecord& program) {
    return "program " + std::to_string(program.id) + " " + quote_for_message(program.name) + " (" +
           program_type_name(program.type) + ")";
}

bool confirmed(const ProgramRecord& program, const ContainmentPlan& plan, const ContainOptions& options,
               const std::string& command) {
    if (options.yes)
        return true;
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "%s: refusing to contain program %u without confirmation: run again with --yes\n",
                command.c_str(), program.id);
        return false;
    }
    fprintf(stderr, "%s is %s: %s\n", program_text(program).c_str(),
            std::string(to_string(program.owner.owner)).c_str(), program.owner.reason.c_str());
    for (const auto& kept : plan.kept)
        fprintf(stderr, "will leave %s\n", kept.c_str());
    fprintf(stderr, "contain %s: detach %s, remove %s? [y/N] ", program_text(program).c_str(),
            plural(plan.links.size(), "link").c_str(), plural(plan.pins.size(), "pin").c_str());
    std::string answer;
    std::getline(std::cin, answer);
    return answer == "y" || answer == "Y" || answer == "yes";
}

// Prints (text mode) and logs one action as it happens.
void record(std::vector<Action>& actions, Action action, const ContainOptions& options) {
    if (!options.json)
        printf("%s\n", action.message.c_str());
    const LogFields fields = {{"BPFWARDEN_CONTAIN_PROG_ID", std::to_string(options.prog_id)},
                              {"BPFWARDEN_CONTAIN_OUTCOME", action.outcome}};
    log(action.outcome == "failed" ? LogLevel::Warning : LogLevel::Notice,
        "contain program " + std::to_string(options.prog_id) + ": " + action.message, fields);
    actions.push_back(std::move(action));
}

Action detach(const LinkRecord& link, uint32_t prog_id) {
    const std::string object = "link " + std::to_string(link.id) + " (" + link.target + ")";
    auto outcome = detach_link(link.id, prog_id);
    if (!outcome)
        return {"detach-link", object, "failed", "failed to detach " + object + ": " + outcome.error().message()};
    switch (*outcome) {
    case DetachOutcome::Detached: return {"detach-link", object, "done", "detached " + object};
    case DetachOutcome::Gone: return {"detach-link", object, "gone", object + " is already gone"};
    case DetachOutcome::NotSupported: break;
    }
    return {"detach-link", object, "not-supported",
            object + ": the kernel cannot detach a " + link_type_name(link.type) +
                " link; it ends once its pins are removed and no process holds it"};
}

Action unpin(const PinRemoval& pin) {
    auto removed = remove_verified_pin(pin);
    if (!removed)
        return {"remove-pin", pin.path, "failed",
                "failed to remove pin " + pin.path + ": " + removed.error().message()};
    return {"remove-pin", pin.path, "done", "removed pin " + pin.path + " (" + pin.object + ")"};
}

std::vector<Action> carry_out(const Inventory& inventory, const ContainmentPlan& plan, const ContainOptions& options) {
    std::vector<Action> actions;
    for (uint32_t link_id : plan.links)
        if (const LinkRecord* link = inventory.link(link_id))
            record(actions, detach(*link, plan.prog_id), options);
    for (const PinRemoval& pin : plan.pins)
        record(actions, unpin(pin), options);
    return actions;
}

// The last reference to a link or program goes asynchronously (a deferred
// put, then RCU): give the kernel a moment before saying it stays.
bool still_loaded_after_settling(uint32_t prog_id) {
    for (int waited = 0; waited < 30 && program_exists(prog_id); ++waited)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return program_exists(prog_id);
}

void describe_holders(const std::string& what, const std::vector<HolderProcess>& holders, Aftermath& after) {
    for (const auto& holder : holders) {
        after.remaining.push_back(what + " is held by " + holder.describe());
        std::string stop = holder.unit.empty() || holder.unit.ends_with(".scope")
                               ? "end that process yourself once you know what it is"
                               : "stop its unit ('systemctl stop " + holder.unit + "') or end it yourself";
        std::string advice = "pid " + std::to_string(holder.process.pid) + " (" + holder.process.comm +
                             "): look at it first (ls -l /proc/" + std::to_string(holder.process.pid) +
                             "/exe; cat /proc/" + std::to_string(holder.process.pid) + "/cgroup), then " + stop +
                             "; bpfwardenctl never kills processes";
        if (std::find(after.advice.begin(), after.advice.end(), advice) == after.advice.end())
            after.advice.push_back(std::move(advice));
    }
}

Aftermath look_again(uint32_t prog_id) {
    Aftermath after;
    after.program_loaded = still_loaded_after_settling(prog_id);
    if (!after.program_loaded)
        return after;
    auto inventory = take_bpf_inventory();
    if (!inventory) {
        after.remaining.push_back("cannot look at what holds it: " + inventory.error().message());
        return after;
    }
    const ProgramRecord* program = inventory->program(prog_id);
    if (!program) {
        after.program_loaded = false;  // went away meanwhile
        return after;
    }
    const std::string name = "program " + std::to_string(prog_id);
    for (const auto& pin : program->pins)
        after.remaining.push_back(name + " is still pinned at " + pin);
    describe_holders(name, program->holders, after);
    for (uint32_t link_id : program->link_ids) {
        const LinkRecord* link = inventory->link(link_id);
        const std::string what = "link " + std::to_string(link_id) + " (" + (link ? link->target : "?") + ")";
        after.remaining.push_back(what + " still holds it");
        if (!link)
            continue;
        for (const auto& pin : link->pins)
            after.remaining.push_back(what + " is still pinned at " + pin);
        describe_holders(what, link->holders, after);
    }
    if (after.remaining.empty()) {
        after.remaining.push_back(name + " is still loaded, yet no link, pin or process holds it");
        after.advice.emplace_back(
            "it may be attached without a link (cgroup: 'bpftool cgroup tree'; tc or XDP: 'bpftool net'; a perf "
            "event or kprobe opened by a process), or sit in a program array map (tail calls)");
    }
    return after;
}

bool all_done(const std::vector<Action>& actions) {
    return std::none_of(actions.begin(), actions.end(), [](const Action& a) { return a.outcome == "failed"; });
}

void print_text(const ContainmentPlan& plan, const Aftermath& after) {
    for (const auto& kept : plan.kept)
        printf("left: %s\n", kept.c_str());
    if (!after.program_loaded) {
        printf("program %u is no longer loaded\n", plan.prog_id);
        return;
    }
    printf("program %u is still loaded:\n", plan.prog_id);
    for (const auto& line : after.remaining)
        printf("  %s\n", line.c_str());
    for (const auto& line : after.advice)
        printf("what to do: %s\n", line.c_str());
}

std::string json_strings(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i)
        out += (i ? "," : "") + json_quote(items[i]);
    return out + "]";
}

void print_json(const ProgramRecord& program, const ContainmentPlan& plan, const std::vector<Action>& actions,
                const Aftermath& after) {
    std::string out = "{\"program\":{\"id\":" + std::to_string(program.id) + ",\"name\":" + json_quote(program.name) +
                      ",\"type\":" + json_quote(program_type_name(program.type)) +
                      ",\"owner\":" + json_quote(to_string(program.owner.owner)) +
                      ",\"reason\":" + json_quote(program.owner.reason) + "},\"actions\":[";
    for (size_t i = 0; i < actions.size(); ++i)
        out += std::string(i ? "," : "") + "{\"action\":" + json_quote(actions[i].kind) +
               ",\"object\":" + json_quote(actions[i].object) + ",\"outcome\":" + json_quote(actions[i].outcome) +
               ",\"message\":" + json_quote(actions[i].message) + "}";
    out += "],\"left\":" + json_strings(plan.kept) +
           ",\"program_loaded\":" + (after.program_loaded ? "true" : "false") +
           ",\"remaining\":" + json_strings(after.remaining) + ",\"advice\":" + json_strings(after.advice) + "}";
    puts(out.c_str());
}

int run_contain(const ContainOptions& options, const std::string& command) {
    log_init("bpfwardenctl", access(kJournalSocket, W_OK) == 0 ? LogTarget::Journal : LogTarget::Stderr);
    auto inventory = take_bpf_inventory();
    if (!inventory) {
        fprintf(stderr, "%s: %s\n", command.c_str(), inventory.error().message().c_str());
        return 1;
    }
    classify(*inventory, options.own, Allowlist{});
    auto plan = plan_containment(*inventory, options.prog_id, options.own);
    if (!plan) {
        fprintf(stderr, "%s: %s; nothing was changed\n", command.c_str(), plan.error().message().c_str());
        return 1;
    }
    const ProgramRecord& program = *inventory->program(options.prog_id);
    if (!confirmed(program, *plan, options, command))
        return 1;
    log(LogLevel::Notice,
        "contain " + program_text(program) + ", " + std::string(to_string(program.owner.owner)) + ": " +
            program.owner.reason + "; uid " + std::to_string(getuid()) + " asked",
        {{"BPFWARDEN_CONTAIN_PROG_ID", std::to_string(options.prog_id)}});
    const std::vector<Action> actions = carry_out(*inventory, *plan, options);
    const Aftermath after = look_again(options.prog_id);
    log(after.program_loaded ? LogLevel::Warning : LogLevel::Notice,
        "contain program " + std::to_string(options.prog_id) +
            (after.program_loaded ? ": still loaded (" + join(after.remaining, "; ") + ")" : ": no longer loaded"),
        {{"BPFWARDEN_CONTAIN_PROG_ID", std::to_string(options.prog_id)}});
    if (options.json)
        print_json(program, *plan, actions, after);
    else
        print_text(*plan, after);
    if (!all_done(actions))
        return 1;
    return after.program_loaded ? 3 : 0;
}

}  // namespace

int contain(int argc, char** argv) {
    ContainOptions options;
    std::vector<std::string> ids;
    CommandLine cli("bpfwardenctl contain", "PROG_ID [--yes] [--json] [--pin-root DIR]", kDescription, kFooter);
    cli.arguments("PROG_ID", ids, "the id of the program to contain (as 'bpfwardenctl inventory' lists it)");
    cli.flag("-y,--yes", options.yes, "do not ask for confirmation");
    add_json(cli, options.json);
    add_pin_root(cli, options.own.pin_root);
    fs::path daemon_exe = installed::kDaemonExe, watchdog_exe = installed::kWatchdogExe;
    cli.path("--daemon-exe", daemon_exe, "bpfwardend's executable: its processes' objects are refused", "FILE");
    cli.path("--watchdog-exe", watchdog_exe, "bpfwarden-watchdog's executable (likewise)", "FILE");
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    if (ids.size() != 1)
        return cli.usage_error(ids.empty() ? "PROG_ID is required" : "one PROG_ID at a time");
    if (auto problem = check_whole_number(ids.front(), 1, UINT32_MAX))
        return cli.usage_error("PROG_ID: " + *problem);
    options.prog_id = static_cast<uint32_t>(std::stoul(ids.front()));
    options.own.executables = {daemon_exe, watchdog_exe};
    return run_contain(options, cli.program());
}

}  // namespace bpfwarden::ctl
