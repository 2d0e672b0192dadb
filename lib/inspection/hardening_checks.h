// The BPF hardening checklist, as checks an admin runs (`bpfwardenctl
// doctor`): each looks at one setting and, where it is not as it should be,
// says exactly how to change it (a command, a kernel command line parameter,
// a file).
//
// Everything is read through a root directory (default "/"): /proc, /sys,
// /etc and bpfwarden's directories under that root, so that the checks run
// against another system's image, or a fake tree in a test, as they run
// against this one. What files cannot tell (the state of a systemd unit) is
// asked of a ServiceManager, which only the running system has.
//
// Nothing here needs root, and nothing here changes the system: a file that
// cannot be read is a finding ("could not read ...: reason"), not an error.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "support/error.h"

namespace bpfwarden {

// Ordered: a report is as bad as its worst finding.
enum class Severity { Ok, Info, Warning, Failure };

// "ok", "info", "warning", "failure" (stable, for JSON and scripts).
std::string_view to_string(Severity severity);

struct HardeningFinding {
    std::string id;  // stable: "bpf-lsm", "unprivileged-bpf", ... (hardening_check_ids())
    Severity severity = Severity::Ok;
    std::string summary;  // one line: what was seen
    // What to do about it, one step a line; empty when there is nothing to do.
    std::string fix;
};

// What only the running service manager knows. Each answer is systemctl's
// own word ("active", "enabled", "infinity", ...).
class ServiceManager {
public:
    virtual ~ServiceManager() = default;
    // `systemctl is-active UNIT`: "active", "inactive", "failed", ...
    virtual Result<std::string> active_state(const std::string& unit) = 0;
    // `systemctl is-enabled UNIT`: "enabled", "disabled", "masked", ...
    virtual Result<std::string> enabled_state(const std::string& unit) = 0;
    // `systemctl show -p NAME --value UNIT`: "infinity", "268435456", ...
    virtual Result<std::string> unit_property(const std::string& unit, const std::string& name) = 0;
};

// Runs systemctl (found in PATH; no shell), each call bounded in time.
class Systemctl final : public ServiceManager {
public:
    Result<std::string> active_state(const std::string& unit) override;
    Result<std::string> enabled_state(const std::string& unit) override;
    Result<std::string> unit_property(const std::string& unit, const std::string& name) override;
};

struct HardeningOptions {
    std::filesystem::path root = "/";
    // As the checked system names them; read under `root`.
    std::filesystem::path pin_root = "/sys/fs/bpf/bpfwarden";
    std::filesystem::path keys_dir = "/etc/bpfwarden/keys";
    // Who must own the pin directory and the trusted keys.
    uid_t trusted_owner = 0;
    // nullptr: unit state and MemoryMax are not checked (a --root that is
    // not the running system has no service manager to ask).
    ServiceManager* services = nullptr;
};

// Every check, in hardening_check_ids() order.
std::vector<HardeningFinding> run_hardening_checks(const HardeningOptions& options);

// "bpf-lsm", "unprivileged-bpf", ..., "memlock": one finding each, in order.
const std::vector<std::string>& hardening_check_ids();

// Ok for an empty list.
Severity worst_severity(const std::vector<HardeningFinding>& findings);

// `bpfwardenctl doctor`'s exit status for a worst finding: 0 up to info,
// 1 a warning, 3 a failure (2 is left to invalid arguments).
int doctor_exit_status(Severity worst);

// What `lsm=` must say for BPF LSM to be active: the active LSMs, in order,
// with "bpf" appended ("lsm=lockdown,capability,landlock,yama,apparmor,bpf").
std::string lsm_parameter_with_bpf(const std::vector<std::string>& active_lsms);

}  // namespace bpfwarden
