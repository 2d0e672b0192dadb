#include "support/log.h"

#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <systemd/sd-journal.h>

namespace bpfwarden {
namespace {

std::string g_identifier = "bpfwarden";
bool g_journal = false;
LogLevel g_max_level = LogLevel::Info;
std::mutex g_mutex;

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    struct stat st{};
    if (!stream || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) == stream;
}

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

void write_to_stderr(std::string_view message) {
    std::string line = g_identifier + ": ";
    line.append(message);
    line.push_back('\n');
    fwrite(line.data(), 1, line.size(), stderr);
    fflush(stderr);
}

// false when journald did not take the message.
bool send_to_journal(LogLevel level, std::string_view message, const LogFields& fields) {
    std::vector<std::string> items;
    items.reserve(fields.size() + 3);
    items.push_back("MESSAGE=" + std::string(message));
    items.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
    items.push_back("SYSLOG_IDENTIFIER=" + g_identifier);
    for (const auto& [name, value] : fields)
        items.push_back(name + "=" + value);
    std::vector<iovec> iov;
    iov.reserve(items.size());
    for (auto& item : items)
        iov.push_back(iovec{item.data(), item.size()});
    return sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0;
}

}  // namespace

std::optional<LogTarget> parse_log_target(std::string_view text) {
    if (text == "auto")
        return LogTarget::Auto;
    if (text == "stderr")
        return LogTarget::Stderr;
    if (text == "journal")
        return LogTarget::Journal;
    return std::nullopt;
}

namespace {

int libbpf_to_log(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG)
        return 0;
    char buffer[1024];
    int n = vsnprintf(buffer, sizeof(buffer), format, args);
    std::string line(buffer);
    while (!line.empty() && line.back() == '\n')
        line.pop_back();
    log(LogLevel::Debug, line);
    return n;
}

}  // namespace

void route_libbpf_messages_to_log() { libbpf_set_print(libbpf_to_log); }

void log_init(std::string identifier, LogTarget target, LogLevel max_level) {
    g_identifier = std::move(identifier);
    g_max_level = max_level;
    g_journal = target == LogTarget::Journal || (target == LogTarget::Auto && stderr_is_journal());
    if (g_journal && access(kJournalSocket, W_OK) != 0) {
        // Said on stderr, not dropped: a log target that loses everything is worse than none.
        g_journal = false;
        write_to_stderr(std::string("warning: no journal to log to (") + kJournalSocket + ": " + strerror(errno) +
                        "); logging to stderr instead");
    }
}

bool log_to_journal() { return g_journal; }

void log(LogLevel level, std::string_view message, const LogFields& fields) {
    if (static_cast<int>(level) > static_cast<int>(g_max_level))
        return;
    std::lock_guard lock(g_mutex);
    if (g_journal) {
        if (send_to_journal(level, message, fields))
            return;
        // journald went away: from here on stderr, said once.
        g_journal = false;
        write_to_stderr("warning: the journal refused a message; logging to stderr from now on");
    }
    write_to_stderr(message);
}

}  // namespace bpfwarden
