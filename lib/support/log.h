// Process-wide log sink: the journal (structured fields) when the process
// runs under it, otherwise stderr with one line per message. Only processes
// log; library code returns errors.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bpfwarden {

enum class LogLevel { Error = 3, Warning = 4, Notice = 5, Info = 6, Debug = 7 };
enum class LogTarget { Auto, Stderr, Journal };

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Call once at start. Auto picks the journal when stderr is already connected
// to it (JOURNAL_STREAM) so lines are not logged twice.
// "auto", "stderr" or "journal" (a --log-target value).
std::optional<LogTarget> parse_log_target(std::string_view text);

// Sends libbpf's warnings and info through log() at Debug level (seen with
// --verbose) instead of letting libbpf write to stderr on its own.
void route_libbpf_messages_to_log();

// Messages above `max_level` (less important) are dropped.
void log_init(std::string identifier, LogTarget target = LogTarget::Auto, LogLevel max_level = LogLevel::Info);
bool log_to_journal();

// `fields` become journal fields (upper-case names, e.g. BPFWARDEN_EVENT);
// on stderr only the message is printed.
void log(LogLevel level, std::string_view message, const LogFields& fields = {});

inline void log_error(std::string_view message) { log(LogLevel::Error, message); }
inline void log_warning(std::string_view message) { log(LogLevel::Warning, message); }
inline void log_notice(std::string_view message) { log(LogLevel::Notice, message); }
inline void log_info(std::string_view message) { log(LogLevel::Info, message); }

}  // namespace bpfwarden
