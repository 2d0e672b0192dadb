#include "inspection/watchdog_status.h"

#include "support/text.h"

namespace bpfwarden {

std::string to_json(const WatchdogStatus& s) {
    auto u = [](uint64_t value) { return std::to_string(value); };
    std::string out =
        "{\"version\":" + json_quote(s.version) + ",\"healthy\":" + (s.healthy ? "true" : "false") + ",\"reasons\":[";
    for (size_t i = 0; i < s.reasons.size(); ++i)
        out += (i ? "," : "") + json_quote(s.reasons[i]);
    out += "],\"foreign_programs\":[";
    for (size_t i = 0; i < s.foreign_programs.size(); ++i)
        out += (i ? "," : "") + json_quote(s.foreign_programs[i]);
    out += "],\"mode\":" + json_quote(s.mode) + ",\"mode_reason\":" + json_quote(s.mode_reason) +
           ",\"policy_source\":" + json_quote(s.policy_source) + ",\"policy_problem\":" + json_quote(s.policy_problem) +
           ",\"image_set_version\":" + u(s.image_set_version) + ",\"check_interval_usec\":" + u(s.check_interval_usec) +
           ",\"checks\":" + u(s.checks) + ",\"last_check_usec\":" + u(s.last_check_usec) +
           ",\"last_check_duration_usec\":" + u(s.last_check_duration_usec) +
           ",\"last_trigger\":" + json_quote(s.last_trigger) + ",\"heal_count\":" + u(s.heal_count) +
           ",\"heals_by_kind\":{";
    bool first = true;
    for (const auto& [kind, heals] : s.heals_by_kind) {
        out += (first ? "" : ",") + json_quote(kind) + ":" + u(heals);
        first = false;
    }
    out += "},\"last_heal\":{\"reason\":" + json_quote(s.last_heal_reason) +
           ",\"duration_usec\":" + u(s.last_heal_usec) + "},\"programs\":[";
    for (size_t i = 0; i < s.programs.size(); ++i) {
        const auto& p = s.programs[i];
        out += std::string(i ? "," : "") + "{\"name\":" + json_quote(p.program) + ",\"hook\":" + json_quote(p.hook) +
               ",\"prog_id\":" + u(p.prog_id) + ",\"tag\":" + json_quote(p.tag) +
               ",\"status\":" + json_quote(p.status) + "}";
    }
    return out + "]}";
}

bool looks_like_status_json(std::string_view text) {
    return text.starts_with("{\"version\":") || text.starts_with("{\"healthy\":");
}

}  // namespace bpfwarden
