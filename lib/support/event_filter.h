// Which events `bpfwardenctl events` shows: the filters as given on the
// command line, checked, and turned into journal matches on the fields
// bpfwardend logs (event_journal_fields in support/event.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/error.h"

namespace bpfwarden {

struct EventFilter {
    std::string kind;             // an event_kind_name(); empty: every kind
    std::string action;           // an action_name(); empty: every action
    std::optional<uint32_t> pid;  // the process (tgid)
    std::optional<uint32_t> uid;
    std::string comm;                    // exact, as check_comm_filter() accepted it
    std::optional<uint64_t> since_usec;  // the event's own time, µs since the epoch

    // "FIELD=value" matches for sd_journal_add_match(): values of one field
    // are alternatives, different fields must all match (sd-journal's own
    // rule). Without a kind, every kind is listed, so that only events match.
    std::vector<std::string> journal_matches() const;

    // For the event's own time, which can be earlier than the journal's
    // (an event logged late keeps the time it happened).
    bool accepts_time(uint64_t event_usec) const { return !since_usec || event_usec >= *since_usec; }
};

// The kernel keeps 15 bytes of a command name, and names outside
// [A-Za-z0-9_.-] would have to match the journal's escaped form: both are
// refused rather than silently never matching. EINVAL with the reason.
Result<std::string> check_comm_filter(std::string_view comm);

// --since: "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]" or the same with 'T'
// (local time), "@SECONDS" (since the epoch), or "-N" + s|min|h|d (that long
// before now_usec). EINVAL naming the text otherwise.
Result<uint64_t> parse_since(std::string_view text, uint64_t now_usec);

// The event kinds and actions, as the filters accept them.
const std::vector<std::string>& event_kind_names();
const std::vector<std::string>& event_action_names();

}  // namespace bpfwarden
