// events: bpfwardend's events from the journal, filtered, as text or one
// JSON object per line; --follow waits for new ones.
//
// bpfwardend logs each event with its fields (BPFWARDEN_EVENT, _ACTION,
// _TGID, _UID, _COMM, ..., and BPFWARDEN_JSON, the event as one JSON object):
// the filters become journal matches, so journald does the filtering.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <systemd/sd-journal.h>

#include "commands.h"
#include "support/command_line.h"
#include "support/event.h"
#include "support/event_filter.h"
#include "trust/id_anonymizer.h"

namespace bpfwarden::ctl {
namespace {

constexpr const char* kEventsDescription =
    R"(Shows bpfwardend's events from the system journal: denials, audits, exec and
bpf() audit, tamper attempts. Each line starts with the time the kernel saw
the event (an event logged late, e.g. while bpfwardend restarted, keeps it).
Filters are combined (all must match); each is checked: a command name longer
than the kernel's 15 bytes is refused rather than never matching.
Reading the system journal needs root or the systemd-journal group.)";

constexpr const char* kEventsFooter = R"(Examples:
  bpfwardenctl events --action deny --since -1h
  bpfwardenctl events --follow --kind bpf_call --json | jq .cmd
Exit status: 0 done (also when nothing matched), 1 the journal could not be
read, 2 invalid arguments.)";

struct EventsOptions {
    EventFilter filter;
    std::string comm;
    std::string since;
    uint32_t pid = 0;
    uint32_t uid = 0;
    bool follow = false;
    bool json = false;
    uint32_t lines = 0;
    std::filesystem::path salt_file;         // --anonymize: where the salt is
    std::optional<IdAnonymizer> anonymizer;  // set when --anonymize was given
};

uint64_t now_usec() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

std::optional<std::string> field(sd_journal* journal, const char* name) {
    const void* data = nullptr;
    size_t length = 0;
    if (sd_journal_get_data(journal, name, &data, &length) < 0)
        return std::nullopt;
    std::string_view entry(static_cast<const char*>(data), length);
    return std::string(entry.substr(std::strlen(name) + 1));  // "NAME=value"
}

// The event's own time (BPFWARDEN_TIME, µs since the epoch via the RFC 3339
// text), else the journal's.
struct EntryTime {
    std::string text;
    uint64_t usec = 0;
};

EntryTime entry_time(sd_journal* journal) {
    uint64_t journal_usec = 0;
    sd_journal_get_realtime_usec(journal, &journal_usec);
    EntryTime time{format_rfc3339_usec(journal_usec), journal_usec};
    auto kernel = field(journal, "BPFWARDEN_TIME");
    if (!kernel)
        return time;
    struct tm utc{};
    unsigned long fraction = 0;
    const char* rest = strptime(kernel->c_str(), "%Y-%m-%dT%H:%M:%S", &utc);
    if (!rest || sscanf(rest, ".%6luZ", &fraction) != 1)
        return time;
    return {*kernel, static_cast<uint64_t>(timegm(&utc)) * 1000000 + fraction};
}

void print_entry(sd_journal* journal, const EventsOptions& options) {
    EntryTime time = entry_time(journal);
    if (!options.filter.accepts_time(time.usec))
        return;
    const auto& anonymizer = options.anonymizer;
    if (options.json) {
        auto json = field(journal, "BPFWARDEN_JSON");
        if (json)
            printf("%s\n", (anonymizer ? anonymizer->anonymize_json(*json) : *json).c_str());
    } else {
        std::string message = field(journal, "MESSAGE").value_or("(no message)");
        printf("%s %s\n", time.text.c_str(), (anonymizer ? anonymizer->anonymize_text(message) : message).c_str());
    }
    fflush(stdout);
}

// Puts the cursor before the first entry to show: --since, or the last
// --lines entries (10 when following, as tail -f), or the oldest.
int position(sd_journal* journal, const EventsOptions& options) {
    if (options.filter.since_usec)
        return sd_journal_seek_realtime_usec(journal, *options.filter.since_usec);
    uint32_t lines = options.lines ? options.lines : (options.follow ? 10 : 0);
    if (lines == 0)
        return sd_journal_seek_head(journal);
    int r = sd_journal_seek_tail(journal);
    if (r < 0)
        return r;
    r = sd_journal_previous_skip(journal, lines);
    if (r < 0)
        return r;
    // previous_skip left the cursor on the first entry to show: step back
    // once more so that the loop's next() lands on it.
    if (r > 0 && sd_journal_previous(journal) == 0)
        return sd_journal_seek_head(journal);
    return 0;
}

bool journal_exists() {
    std::error_code error;
    return std::filesystem::exists("/run/log/journal", error) || std::filesystem::exists("/var/log/journal", error);
}

int show_events(const EventsOptions& options) {
    if (!journal_exists()) {
        fprintf(stderr,
                "bpfwardenctl events: no system journal on this host (neither /run/log/journal nor "
                "/var/log/journal): without journald, bpfwardend logs its events to stderr\n");
        return 1;
    }
    sd_journal* journal = nullptr;
    int r = sd_journal_open(&journal, SD_JOURNAL_SYSTEM | SD_JOURNAL_LOCAL_ONLY);
    if (r < 0) {
        fprintf(stderr, "bpfwardenctl events: cannot open the system journal: %s\n", strerror(-r));
        return 1;
    }
    for (const auto& match : options.filter.journal_matches())
        if ((r = sd_journal_add_match(journal, match.data(), match.size())) < 0) {
            fprintf(stderr, "bpfwardenctl events: journal match '%s': %s\n", match.c_str(), strerror(-r));
            sd_journal_close(journal);
            return 1;
        }
    if (geteuid() != 0 && !options.json)
        fprintf(stderr, "bpfwardenctl events: not root: showing only the journal files readable to you\n");
    if ((r = position(journal, options)) < 0) {
        fprintf(stderr, "bpfwardenctl events: cannot seek in the journal: %s\n", strerror(-r));
        sd_journal_close(journal);
        return 1;
    }
    for (;;) {
        while ((r = sd_journal_next(journal)) > 0)
            print_entry(journal, options);
        if (r < 0 || !options.follow)
            break;
        if ((r = sd_journal_wait(journal, UINT64_MAX)) < 0)
            break;
    }
    sd_journal_close(journal);
    if (r < 0) {
        fprintf(stderr, "bpfwardenctl events: reading the journal: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}

}  // namespace

int events(int argc, char** argv) {
    EventsOptions options;
    CommandLine cli("bpfwardenctl events",
                    "[--follow] [--kind KIND] [--action ACTION] [--pid N] [--uid N] [--comm NAME] [--since TIME] "
                    "[--lines N] [--json]",
                    kEventsDescription, kEventsFooter);
    cli.flag("-f,--follow", options.follow, "after the history, wait for new events and show them as they come");
    cli.choice("--kind", options.filter.kind, event_kind_names(), "only events of this kind");
    cli.choice("--action", options.filter.action, event_action_names(), "only events with this outcome");
    auto* pid =
        cli.number("--pid", options.pid, uint32_t{1}, uint32_t{4194304}, "only events of this process (its tgid)");
    auto* uid = cli.number("--uid", options.uid, uint32_t{0}, uint32_t{4294967294}, "only events of this user id");
    cli.text("--comm", options.comm, "only events of processes with this command name (at most 15 bytes)", "NAME");
    auto* since_option = cli.text(
        "--since", options.since,
        "only events from this time on: 'YYYY-MM-DD [HH:MM[:SS]]' (local), '@SECONDS', or '-N' + s|min|h|d", "TIME");
    auto* lines = cli.number("-n,--lines", options.lines, uint32_t{0}, uint32_t{1000000},
                             "only the last N matching events of the history (0: all; 10 with --follow)");
    cli.flag("--json", options.json, "one JSON object per event and line, as bpfwardend logged it");
    options.salt_file = "/etc/bpfwarden/event-salt";
    auto* anonymize = cli.path("--anonymize", options.salt_file,
                               "replace pid, tgid and target by salted hashes (h:...), keyed by this salt file "
                               "(32 bytes, mode 0600, made when missing): for events that leave the host",
                               "SALT_FILE");
    anonymize->expected(0, 1);
    cli.exclusive(since_option, lines);
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    if (pid->count())
        options.filter.pid = options.pid;
    if (uid->count())
        options.filter.uid = options.uid;
    if (!options.comm.empty() || cli.app().count("--comm")) {
        auto comm = check_comm_filter(options.comm);
        if (!comm)
            return cli.usage_error("--comm: " + comm.error().message());
        options.filter.comm = *comm;
    }
    if (!options.since.empty() || cli.app().count("--since")) {
        auto since = parse_since(options.since, now_usec());
        if (!since)
            return cli.usage_error("--since: " + since.error().message());
        options.filter.since_usec = *since;
    }
    if (anonymize->count()) {
        auto anonymizer = IdAnonymizer::from_salt_file(options.salt_file);
        if (!anonymizer) {
            fprintf(stderr, "bpfwardenctl events: --anonymize: %s\n", anonymizer.error().message().c_str());
            return 1;
        }
        options.anonymizer = std::move(*anonymizer);
    }
    return show_events(options);
}

}  // namespace bpfwarden::ctl
