#include "authorization.h"

#include <cerrno>
#include <cstring>
#include <memory>

namespace bpfwarden::dbus {

namespace {

struct CredsUnref {
    void operator()(sd_bus_creds* creds) const { sd_bus_creds_unref(creds); }
};
struct MessageUnref {
    void operator()(sd_bus_message* message) const { sd_bus_message_unref(message); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

constexpr const char* kPolkitName = "org.freedesktop.PolicyKit1";
// How long a non-interactive polkit check may take (polkitd answers from its
// rules at once; a stuck polkitd must not stall the service for long).
constexpr uint64_t kPolkitTimeoutUsec = 10'000'000;

enum class PolkitVerdict { Authorized, NeedsAuthentication, NotAuthorized, Unavailable };

struct PolkitAnswer {
    PolkitVerdict verdict;
    std::string detail;  // why polkit could not be asked
};

// The CheckAuthorization call for `sender` (subject "system-bus-name").
Result<MessagePtr> polkit_request(sd_bus* bus, const std::string& sender, const char* action) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus, &raw, kPolkitName, "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
    MessagePtr request(raw);
    if (r >= 0)
        r = sd_bus_message_append(raw, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender.c_str(), action);
    if (r >= 0)
        r = sd_bus_message_append(raw, "a{ss}us", 0, 0u /* no interaction */, "");
    if (r < 0)
        return fail(-r, std::string("build the polkit request: ") + std::strerror(-r));
    return request;
}

// polkit's answer for `sender` on `action`.
PolkitAnswer ask_polkit(sd_bus* bus, const std::string& sender, const char* action) {
    auto request = polkit_request(bus, sender, action);
    if (!request)
        return {PolkitVerdict::Unavailable, request.error().message()};
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* raw_reply = nullptr;
    int r = sd_bus_call(bus, request->get(), kPolkitTimeoutUsec, &error, &raw_reply);
    MessagePtr reply(raw_reply);
    if (r < 0) {
        std::string why = error.message ? error.message : std::strerror(-r);
        bool absent = sd_bus_error_has_names(&error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER);
        sd_bus_error_free(&error);
        return {PolkitVerdict::Unavailable, absent ? "polkit is not running" : "polkit did not answer: " + why};
    }
    int authorized = 0, challenge = 0;
    r = sd_bus_message_enter_container(raw_reply, 'r', "bba{ss}");
    if (r >= 0)
        r = sd_bus_message_read(raw_reply, "bb", &authorized, &challenge);
    if (r < 0)
        return {PolkitVerdict::Unavailable, std::string("unreadable polkit answer: ") + std::strerror(-r)};
    if (authorized)
        return {PolkitVerdict::Authorized, {}};
    return {challenge ? PolkitVerdict::NeedsAuthentication : PolkitVerdict::NotAuthorized, {}};
}

Error refusal(std::string_view method, const char* action, const Caller& caller, const std::string& why) {
    return Error(ErrorKind::PermissionDenied, EACCES,
                 std::string(method) + " changes bpfwarden's state and needs root or polkit's authorization for " +
                     action + "; the caller (" + caller.describe() + ") is not root and " + why +
                     ". Reading properties needs no privileges.");
}

}  // namespace

std::string Caller::describe() const {
    std::string out = uid ? "uid " + std::to_string(*uid) : std::string("unknown uid");
    if (pid)
        out += " pid " + std::to_string(*pid);
    if (!sender.empty())
        out += " (" + sender + ")";
    return out;
}

Result<Caller> query_caller(sd_bus_message* message) {
    Caller caller;
    if (const char* sender = sd_bus_message_get_sender(message))
        caller.sender = sender;
    sd_bus_creds* raw = nullptr;
    int r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID, &raw);
    if (r < 0)
        return fail(ErrorKind::PermissionDenied, EACCES,
                    std::string("cannot determine the caller's credentials: ") + std::strerror(-r));
    std::unique_ptr<sd_bus_creds, CredsUnref> creds(raw);
    uint64_t augmented = sd_bus_creds_get_augmented_mask(creds.get());
    // Only what the bus vouches for counts; augmented fields come from /proc.
    uid_t euid = 0;
    if (sd_bus_creds_get_euid(creds.get(), &euid) >= 0 && !(augmented & SD_BUS_CREDS_EUID))
        caller.uid = euid;
    pid_t pid = 0;
    if (sd_bus_creds_get_pid(creds.get(), &pid) >= 0 && pid > 0 && !(augmented & SD_BUS_CREDS_PID))
        caller.pid = static_cast<uint32_t>(pid);
    return caller;
}

Result<Caller> require_authorized(sd_bus_message* message, std::string_view method, const char* polkit_action) {
    auto caller = query_caller(message);
    if (!caller)
        return fail(caller.error().wrap(std::string(method) + " refused"));
    if (caller->uid == 0u) {
        caller->authorized_by = "root";
        return caller;
    }
    if (caller->sender.empty())
        return fail(refusal(method, polkit_action, *caller, "has no bus name polkit could check"));
    PolkitAnswer answer = ask_polkit(sd_bus_message_get_bus(message), caller->sender, polkit_action);
    switch (answer.verdict) {
    case PolkitVerdict::Authorized: caller->authorized_by = "polkit"; return caller;
    case PolkitVerdict::NeedsAuthentication:
        return fail(refusal(method, polkit_action, *caller,
                            "polkit wants an administrator's authentication, which bpfwarden does not ask for: "
                            "call it as root (sudo), or grant the action with a rule in /etc/polkit-1/rules.d/"));
    case PolkitVerdict::NotAuthorized:
        return fail(refusal(method, polkit_action, *caller, "polkit does not authorize it"));
    case PolkitVerdict::Unavailable: break;
    }
    return fail(refusal(method, polkit_action, *caller, answer.detail + ", so only root is allowed"));
}

}  // namespace bpfwarden::dbus
