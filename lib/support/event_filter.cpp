#include "support/event_filter.h"

#include <cerrno>
#include <charconv>
#include <ctime>

#include "support/event.h"

namespace bpfwarden {
namespace {

constexpr size_t kCommMax = BW_COMM_LEN - 1;  // the kernel's TASK_COMM_LEN without its NUL

bool is_comm_character(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

std::optional<uint64_t> whole_number(std::string_view text) {
    uint64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || text.empty())
        return std::nullopt;
    return value;
}

// "-10min": that long before now.
std::optional<uint64_t> relative_time(std::string_view text, uint64_t now_usec) {
    static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
        {"min", 60}, {"s", 1}, {"h", 3600}, {"d", 86400}};
    if (!text.starts_with('-'))
        return std::nullopt;
    text.remove_prefix(1);
    for (const auto& [suffix, seconds] : kUnits) {
        if (!text.ends_with(suffix))
            continue;
        auto count = whole_number(text.substr(0, text.size() - suffix.size()));
        if (!count || *count > 100 * 365 * 86400ULL / seconds)
            return std::nullopt;
        uint64_t back = *count * seconds * 1000000;
        return back > now_usec ? 0 : now_usec - back;
    }
    return std::nullopt;
}

// "2026-12-03", "2026-12-03 13:40", "2026-12-03T13:40:05": local time.
std::optional<uint64_t> calendar_time(std::string_view text) {
    static constexpr const char* kFormats[] = {"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                                               "%Y-%m-%dT%H:%M", "%Y-%m-%d"};
    std::string copy(text);
    for (const char* format : kFormats) {
        struct tm local{};
        const char* end = strptime(copy.c_str(), format, &local);
        if (!end || *end != '\0')
            continue;
        local.tm_isdst = -1;
        time_t seconds = mktime(&local);
        if (seconds < 0)
            return std::nullopt;
        return static_cast<uint64_t>(seconds) * 1000000;
    }
    return std::nullopt;
}

}  // namespace

std::vector<std::string> EventFilter::journal_matches() const {
    std::vector<std::string> matches;
    if (kind.empty())
        for (const auto& name : event_kind_names())
            matches.push_back("BPFWARDEN_EVENT=" + name);
    else
        matches.push_back("BPFWARDEN_EVENT=" + kind);
    if (!action.empty())
        matches.push_back("BPFWARDEN_ACTION=" + action);
    if (pid)
        matches.push_back("BPFWARDEN_TGID=" + std::to_string(*pid));
    if (uid)
        matches.push_back("BPFWARDEN_UID=" + std::to_string(*uid));
    if (!comm.empty())
        matches.push_back("BPFWARDEN_COMM=" + comm);
    return matches;
}

Result<std::string> check_comm_filter(std::string_view comm) {
    if (comm.empty())
        return fail(EINVAL, "an empty command name matches nothing");
    if (comm.size() > kCommMax)
        return fail(EINVAL, "'" + sanitize_field(comm, 64) + "' is " + std::to_string(comm.size()) +
                                " bytes; the kernel keeps at most " + std::to_string(kCommMax) +
                                " of a command name (use its first " + std::to_string(kCommMax) + ")");
    for (char c : comm)
        if (!is_comm_character(c))
            return fail(EINVAL, "'" + sanitize_field(comm, 64) + "' has '" +
                                    sanitize_field(std::string_view(&c, 1), 8) +
                                    "': a command name filter takes only A-Z a-z 0-9 _ . -");
    return std::string(comm);
}

Result<uint64_t> parse_since(std::string_view text, uint64_t now_usec) {
    if (text.starts_with('@'))
        if (auto seconds = whole_number(text.substr(1)); seconds && *seconds < (1ULL << 40))
            return *seconds * 1000000;
    if (auto relative = relative_time(text, now_usec))
        return *relative;
    if (auto calendar = calendar_time(text))
        return *calendar;
    return fail(EINVAL, "'" + sanitize_field(text, 64) +
                            "' is not a time: use 'YYYY-MM-DD [HH:MM[:SS]]' (local time), '@SECONDS' since the "
                            "epoch, or '-N' with s, min, h or d (e.g. -10min)");
}

const std::vector<std::string>& event_kind_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out;
        for (uint32_t kind = 0; kind < 64; ++kind)
            if (std::string_view name = event_kind_name(kind); name != "unknown")
                out.emplace_back(name);
        return out;
    }();
    return names;
}

const std::vector<std::string>& event_action_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out;
        for (uint32_t action = 0; action < 64; ++action)
            if (std::string_view name = action_name(action); name != "unknown")
                out.emplace_back(name);
        return out;
    }();
    return names;
}

}  // namespace bpfwarden
