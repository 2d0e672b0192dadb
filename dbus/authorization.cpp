#include "authorization.h"

#include <linux/capability.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace bpfwarden::dbus {

namespace {

struct CredsUnref {
    void operator()(sd_bus_creds* creds) const { sd_bus_creds_unref(creds); }
};

// Effective uid of `pid` according to /proc (the "Uid:" line's second field).
std::optional<uint32_t> proc_effective_uid(uint32_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        unsigned real = 0, effective = 0;
        if (std::sscanf(line.c_str(), "Uid:\t%u\t%u", &real, &effective) == 2)
            return effective;
    }
    return std::nullopt;
}

// Capabilities belong to a user namespace: a process inside `unshare -Ur`
// shows a full CapEff that is worth nothing outside it. Only a caller whose
// user namespace maps uids as ours does (the initial namespace's identity
// map, for the service) has capabilities here. uid_map is world-readable, so
// this needs no privilege the daemon dropped (the ns/user link would).
std::string uid_map_of(const std::string& pid) {
    std::ifstream file("/proc/" + pid + "/uid_map");
    std::stringstream text;
    text << file.rdbuf();
    return file ? text.str() : std::string();
}

bool in_our_user_namespace(uint32_t pid) {
    std::string theirs = uid_map_of(std::to_string(pid));
    return !theirs.empty() && theirs == uid_map_of("self");
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
    int r = sd_bus_query_sender_creds(
        message, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID | SD_BUS_CREDS_EFFECTIVE_CAPS | SD_BUS_CREDS_AUGMENT, &raw);
    if (r < 0)
        // /proc/<pid> may be out of reach (the caller exited, or
        // ProtectProc=invisible hides other users' processes): what the bus
        // itself says still identifies the caller, without capabilities.
        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID | SD_BUS_CREDS_PID, &raw);
    if (r < 0)
        return fail(ErrorKind::PermissionDenied, EACCES,
                    std::string("cannot determine the caller's credentials: ") + std::strerror(-r));
    std::unique_ptr<sd_bus_creds, CredsUnref> creds(raw);
    uint64_t augmented = sd_bus_creds_get_augmented_mask(creds.get());

    // Only a uid the bus vouches for counts (augmented ones come from /proc,
    // see below).
    uid_t euid = 0;
    if (sd_bus_creds_get_euid(creds.get(), &euid) >= 0 && !(augmented & SD_BUS_CREDS_EUID))
        caller.uid = euid;
    pid_t pid = 0;
    if (sd_bus_creds_get_pid(creds.get(), &pid) >= 0 && pid > 0)
        caller.pid = static_cast<uint32_t>(pid);

    if (sd_bus_creds_has_effective_cap(creds.get(), CAP_SYS_ADMIN) > 0) {
        // Augmented capabilities were read from /proc/<pid>, and the pid may
        // have been reused by another process since the caller connected:
        // they count only when /proc still shows the uid the bus vouches for.
        bool from_proc = augmented & SD_BUS_CREDS_EFFECTIVE_CAPS;
        bool proc_agrees = caller.uid && caller.pid && proc_effective_uid(*caller.pid) == caller.uid;
        caller.cap_sys_admin = (!from_proc || proc_agrees) && caller.pid && in_our_user_namespace(*caller.pid);
    }
    return caller;
}

Result<Caller> require_privileged(sd_bus_message* message, std::string_view action) {
    auto caller = query_caller(message);
    if (!caller)
        return fail(caller.error().wrap(std::string(action) + " refused"));
    if (caller->uid == 0u || caller->cap_sys_admin)
        return caller;
    return fail(ErrorKind::PermissionDenied, EACCES,
                std::string(action) + " changes bpfwarden's state and needs root or CAP_SYS_ADMIN; the caller (" +
                    caller->describe() + ") has neither. Reading properties needs no privileges.");
}

}  // namespace bpfwarden::dbus
