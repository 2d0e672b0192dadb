#include "inspection/hardening_checks.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <expected>
#include <optional>
#include <string>
#include <utility>

#include "support/installed_paths.h"
#include "support/text.h"
#include "support/unique_fd.h"
#include "trust/trusted_keys.h"

extern char** environ;

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

// /proc and /sys files report no useful size: read until the end, bounded.
constexpr size_t kMaxSystemFileBytes = 64 * 1024;
// systemctl answers in milliseconds; a wedged service manager must not hang the report.
constexpr auto kSystemctlTimeout = std::chrono::seconds(10);
// Below this, bpfwardend's maps and its policy compiler hardly fit.
constexpr uint64_t kSmallestMemoryMax = 64ULL * 1024 * 1024;
constexpr const char* kSysctlFile = "/etc/sysctl.d/60-bpf-hardening.conf";
constexpr const char* kBootloaderSteps =
    "the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot)";
constexpr const char* kDevelopmentKey = "dev-signing.pem";

std::string trim(std::string_view text) {
    const auto* space = " \t\r\n";
    size_t begin = text.find_first_not_of(space);
    if (begin == std::string_view::npos)
        return {};
    return std::string(text.substr(begin, text.find_last_not_of(space) - begin + 1));
}

std::vector<std::string> split(std::string_view text, char separator) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(separator, start);
        if (end == std::string_view::npos)
            end = text.size();
        if (end > start)
            parts.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    return parts;
}

std::optional<uint64_t> parse_whole_number(std::string_view text) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

std::string octal_mode(mode_t mode) {
    char text[16];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

std::string owner_name(uid_t uid) { return uid == 0 ? "root" : std::to_string(uid); }

std::string file_type(mode_t mode) {
    if (S_ISLNK(mode))
        return "a symbolic link";
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    return "a special file";
}

Result<std::string> read_system_file(const fs::path& file) {
    UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd)
        return fail_errno("could not read " + file.string());
    std::string text;
    char buffer[4096];
    while (text.size() < kMaxSystemFileBytes) {
        ssize_t n = read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno("could not read " + file.string());
        if (n == 0)
            break;
        text.append(buffer, static_cast<size_t>(n));
    }
    return text;
}

// The checked system, seen through its root directory. Paths are given as
// that system names them ("/proc/cmdline").
class SystemView {
public:
    explicit SystemView(fs::path root) : root_(std::move(root)) {}

    fs::path real(const fs::path& path) const {
        if (root_ == "/" || root_.empty())
            return path;
        return root_ / path.relative_path();
    }
    Result<std::string> read(const fs::path& path) const { return read_system_file(real(path)); }
    Result<struct stat> lstat(const fs::path& path) const {
        struct stat st{};
        if (::lstat(real(path).c_str(), &st) != 0)
            return fail_errno("could not inspect " + real(path).string());
        return st;
    }
    bool exists(const fs::path& path) const {
        std::error_code ignored;
        return fs::exists(real(path), ignored);
    }

private:
    fs::path root_;
};

struct CheckContext {
    const HardeningOptions& options;
    SystemView system;
};

HardeningFinding found(Severity severity, std::string summary, std::string fix = {}) {
    return HardeningFinding{{}, severity, std::move(summary), std::move(fix)};
}

// A file that should be there and cannot be read: only root may read some
// (info), anything else is worth a look (`severity`).
HardeningFinding unreadable(const Error& error, Severity severity = Severity::Warning) {
    if (error.errnum() == EACCES || error.errnum() == EPERM)
        return found(Severity::Info, error.message(), "run bpfwardenctl doctor as root");
    return found(severity, error.message());
}

// "sysctl -w NAME=VALUE", and the line that keeps it across reboots.
std::string sysctl_fix(const std::string& name, int value) {
    std::string setting = name + "=" + std::to_string(value);
    return "sysctl -w " + setting + "\nto keep it across reboots: echo '" + name + " = " + std::to_string(value) +
           "' >>" + kSysctlFile;
}

struct SysctlValue {
    std::string name;  // "kernel.unprivileged_bpf_disabled"
    uint64_t value = 0;
};

// A sysctl's value, or the finding that stands in for it: missing (what
// the kernel lacks), unreadable, or not a number.
std::expected<SysctlValue, HardeningFinding> read_sysctl(const CheckContext& context, const std::string& name,
                                                         const std::string& missing_means) {
    std::string relative = name;  // "kernel.x" is /proc/sys/kernel/x
    std::replace(relative.begin(), relative.end(), '.', '/');
    auto text = context.system.read("/proc/sys/" + relative);
    if (!text && text.error().errnum() == ENOENT)
        return std::unexpected(found(Severity::Info, name + " does not exist: " + missing_means));
    if (!text)
        return std::unexpected(unreadable(text.error()));
    auto value = parse_whole_number(trim(*text));
    if (!value)
        return std::unexpected(found(Severity::Warning, name + " reads '" + trim(*text) + "', not a number"));
    return SysctlValue{name, *value};
}

std::string setting(const SysctlValue& sysctl) { return sysctl.name + " = " + std::to_string(sysctl.value); }

// The value of CONFIG_NAME in /boot/config-<release>: "y", "m", "n" (not
// set), or nullopt when the file is not there to tell.
std::optional<std::string> kernel_config(const CheckContext& context, const std::string& option) {
    auto release = context.system.read("/proc/sys/kernel/osrelease");
    if (!release)
        return std::nullopt;
    auto config = context.system.read("/boot/config-" + trim(*release));
    if (!config)
        return std::nullopt;
    for (const auto& line : split(*config, '\n')) {
        if (line.starts_with(option + "="))
            return line.substr(option.size() + 1);
        if (line == "# " + option + " is not set")
            return "n";
    }
    return "n";
}

// The last lsm= on the kernel command line (the one the kernel uses).
std::optional<std::string> cmdline_lsm(const CheckContext& context) {
    auto cmdline = context.system.read("/proc/cmdline");
    if (!cmdline)
        return std::nullopt;
    std::optional<std::string> lsm;
    for (const auto& word : split(trim(*cmdline), ' '))
        if (word.starts_with("lsm="))
            lsm = word.substr(4);
    return lsm;
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
    return std::find(items.begin(), items.end(), item) != items.end();
}

HardeningFinding check_bpf_lsm(const CheckContext& context) {
    auto text = context.system.read("/sys/kernel/security/lsm");
    if (!text) {
        HardeningFinding finding = unreadable(text.error());
        if (text.error().errnum() == ENOENT)
            finding.fix = "mount -t securityfs securityfs /sys/kernel/security";
        return finding;
    }
    auto active = split(trim(*text), ',');
    std::string listed = active.empty() ? "none" : join(active, ",");
    if (contains(active, "bpf"))
        return found(Severity::Ok,
                     "bpf is an active LSM (" + listed + "); whether its programs attach here: bpfwardenctl status");
    const std::string summary = "bpf is not an active LSM (active: " + listed + "): bpfwarden can only audit";
    const std::string kernel_fix =
        "boot a kernel built with CONFIG_BPF_LSM=y, with " + lsm_parameter_with_bpf(active) + " on " + kBootloaderSteps;
    if (auto built = kernel_config(context, "CONFIG_BPF_LSM"); built && *built != "y")
        return found(Severity::Failure, summary + "; this kernel is built without CONFIG_BPF_LSM", kernel_fix);
    auto requested = cmdline_lsm(context);
    if (requested && contains(split(*requested, ','), "bpf"))
        return found(Severity::Failure,
                     summary + "; the kernel command line asks for it (lsm=" + *requested +
                         "), so this kernel is probably built without CONFIG_BPF_LSM",
                     kernel_fix);
    if (requested)
        return found(
            Severity::Failure, summary + "; the kernel command line sets lsm=" + *requested + ", without bpf",
            "replace lsm=" + *requested + " with " + lsm_parameter_with_bpf(active) + " on " + kBootloaderSteps);
    return found(Severity::Failure, summary, "add " + lsm_parameter_with_bpf(active) + " to " + kBootloaderSteps);
}

HardeningFinding check_unprivileged_bpf(const CheckContext& context) {
    auto sysctl = read_sysctl(context, "kernel.unprivileged_bpf_disabled",
                              "this kernel has no bpf() system call (CONFIG_BPF_SYSCALL)");
    if (!sysctl)
        return sysctl.error();
    switch (sysctl->value) {
    case 0:
        return found(Severity::Failure,
                     setting(*sysctl) + ": every user may load BPF programs and create maps, a large attack surface",
                     sysctl_fix(sysctl->name, 2));
    case 1:
        return found(Severity::Ok, setting(*sysctl) +
                                       ": bpf() is refused to unprivileged users, permanently until reboot (root "
                                       "cannot set it back)");
    case 2:
        return found(Severity::Ok, setting(*sysctl) +
                                       ": bpf() is refused to unprivileged users (root may set it back to 0; 1 "
                                       "would lock it until reboot)");
    default:
        return found(Severity::Warning, setting(*sysctl) + ": a value this check does not know",
                     sysctl_fix(sysctl->name, 2));
    }
}

HardeningFinding check_jit_enabled(const CheckContext& context) {
    auto sysctl = read_sysctl(context, "net.core.bpf_jit_enable",
                              "this kernel has no BPF JIT (CONFIG_BPF_JIT): programs run in the interpreter");
    if (!sysctl)
        return sysctl.error();
    const std::string fix = sysctl_fix(sysctl->name, 1) +
                            "\nbetter: a kernel built with CONFIG_BPF_JIT_ALWAYS_ON=y, which has no interpreter";
    switch (sysctl->value) {
    case 1: return found(Severity::Ok, setting(*sysctl) + ": BPF programs are JIT-compiled");
    case 0:
        return found(Severity::Warning,
                     setting(*sysctl) +
                         ": BPF programs run in the interpreter: slower, and the interpreter is what Spectre attacks "
                         "on BPF use",
                     fix);
    case 2:
        return found(Severity::Warning,
                     setting(*sysctl) + ": JIT debug mode writes every compiled program to the kernel log", fix);
    default: return found(Severity::Warning, setting(*sysctl) + ": a value this check does not know", fix);
    }
}

HardeningFinding check_jit_harden(const CheckContext& context) {
    auto sysctl =
        read_sysctl(context, "net.core.bpf_jit_harden", "this kernel has no BPF JIT (CONFIG_BPF_JIT) to harden");
    if (!sysctl)
        return sysctl.error();
    const std::string fix =
        sysctl_fix(sysctl->name, 2) + "\nconstant blinding costs some JIT speed, for every BPF program on the host";
    switch (sysctl->value) {
    case 2: return found(Severity::Ok, setting(*sysctl) + ": JIT hardening (constant blinding) for every program");
    case 1:
        return found(Severity::Info,
                     setting(*sysctl) +
                         ": JIT hardening for unprivileged programs only; privileged ones (bpfwarden's, "
                         "systemd's) are compiled unhardened",
                     fix);
    case 0:
        return found(Severity::Warning,
                     setting(*sysctl) +
                         ": no JIT hardening: constants of BPF programs reach executable memory as written (JIT "
                         "spraying)",
                     fix);
    default: return found(Severity::Warning, setting(*sysctl) + ": a value this check does not know", fix);
    }
}

HardeningFinding check_lockdown(const CheckContext& context) {
    auto text = context.system.read("/sys/kernel/security/lockdown");
    if (!text && text.error().errnum() == ENOENT)
        return found(Severity::Info,
                     "/sys/kernel/security/lockdown does not exist: the lockdown LSM is not built into this kernel "
                     "(or securityfs is not mounted)");
    if (!text)
        return unreadable(text.error());
    size_t open = text->find('['), close = text->find(']');
    if (open == std::string::npos || close == std::string::npos || close < open)
        return found(Severity::Warning, "/sys/kernel/security/lockdown reads '" + trim(*text) + "': no [level]");
    const std::string level = text->substr(open + 1, close - open - 1);
    const std::string boot_integrity = std::string("lockdown=integrity on ") + kBootloaderSteps;
    if (level == "integrity")
        return found(Severity::Ok,
                     "kernel lockdown is at integrity: the running kernel cannot be modified from "
                     "user space, not even by root");
    if (level == "confidentiality")
        return found(Severity::Warning,
                     "kernel lockdown is at confidentiality: it also refuses BPF reads of kernel memory "
                     "(bpf_probe_read_kernel), which bpfwarden's programs need",
                     "boot with " + boot_integrity + "; only a reboot lowers confidentiality");
    if (level == "none")
        return found(Severity::Warning,
                     "kernel lockdown is off ([none]): root can modify the running kernel (/dev/mem, kexec, unsigned "
                     "modules), and every BPF program with it",
                     "echo integrity >/sys/kernel/security/lockdown (now; only a reboot lowers it again)\n"
                     "to keep it: " +
                         boot_integrity +
                         "\nintegrity also refuses unsigned modules and hibernation: check the host does without");
    return found(Severity::Warning, "kernel lockdown is at '" + level + "', a level this check does not know");
}

HardeningFinding check_bpf_stats(const CheckContext& context) {
    auto sysctl = read_sysctl(context, "kernel.bpf_stats_enabled", "this kernel does not collect BPF run-time figures");
    if (!sysctl)
        return sysctl.error();
    if (sysctl->value == 0)
        return found(Severity::Ok, setting(*sysctl) +
                                       ": no run-time figures per program (to measure, turn it on for a while: "
                                       "sysctl -w kernel.bpf_stats_enabled=1; it costs every program run)");
    return found(Severity::Info,
                 setting(*sysctl) +
                     ": the kernel times every BPF program run (bpftool prog shows run_time_ns), "
                     "which costs a little on each run",
                 "sysctl -w kernel.bpf_stats_enabled=0 once the figures are taken");
}

struct Mount {
    std::string point;
    std::string type;
};

// /proc/mounts writes space, tab, newline and backslash as \ooo.
std::string unescape_mount_field(const std::string& field) {
    std::string out;
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            int value = 0;
            auto [end, ec] = std::from_chars(field.data() + i + 1, field.data() + i + 4, value, 8);
            if (ec == std::errc() && end == field.data() + i + 4) {
                out += static_cast<char>(value);
                i += 3;
                continue;
            }
        }
        out += field[i];
    }
    return out;
}

Result<std::vector<Mount>> read_mounts(const CheckContext& context) {
    auto text = context.system.read("/proc/mounts");
    if (!text)
        return std::unexpected(text.error());
    std::vector<Mount> mounts;
    for (const auto& line : split(*text, '\n')) {
        auto fields = split(line, ' ');
        if (fields.size() >= 3)
            mounts.push_back({unescape_mount_field(fields[1]), fields[2]});
    }
    return mounts;
}

// The mount `path` is on: the longest mount point it lies under, the later
// of two equal ones (it covers the earlier).
std::optional<Mount> mount_of(const std::vector<Mount>& mounts, const fs::path& path) {
    std::optional<Mount> best;
    const fs::path normal = path.lexically_normal();
    for (const auto& mount : mounts) {
        auto relative = normal.lexically_relative(mount.point);
        bool under = !relative.empty() && *relative.begin() != "..";
        if (under && (!best || mount.point.size() >= best->point.size()))
            best = mount;
    }
    return best;
}

HardeningFinding check_bpffs(const CheckContext& context) {
    auto mounts = read_mounts(context);
    if (!mounts)
        return unreadable(mounts.error());
    const std::string fix =
        "mount -t bpf bpf /sys/fs/bpf\nto keep it (systemd mounts it by itself): add 'bpf /sys/fs/bpf bpf defaults "
        "0 0' to /etc/fstab";
    std::optional<Mount> at_bpf_dir;
    for (const auto& mount : *mounts)
        if (mount.point == "/sys/fs/bpf")
            at_bpf_dir = mount;
    if (!at_bpf_dir)
        return found(Severity::Failure,
                     "nothing is mounted at /sys/fs/bpf: bpfwarden's pins, which keep it enforcing, "
                     "need a bpf filesystem there",
                     fix);
    if (at_bpf_dir->type != "bpf")
        return found(Severity::Failure, "/sys/fs/bpf is a " + at_bpf_dir->type + " mount, not a bpf filesystem", fix);
    return found(Severity::Ok, "a bpf filesystem is mounted at /sys/fs/bpf");
}

// Why the pin directory is not as bpfwardend makes it, if it is not.
std::optional<HardeningFinding> pin_directory_problem(const CheckContext& context, const struct stat& st) {
    const std::string pins = context.options.pin_root.string();
    if (!S_ISDIR(st.st_mode))
        return found(Severity::Failure, pins + " is " + file_type(st.st_mode) + ", not a directory",
                     "look at it (ls -la " + pins + "), remove it, then systemctl restart bpfwardend.service");
    if (st.st_uid != context.options.trusted_owner)
        return found(Severity::Failure,
                     pins + " is owned by uid " + std::to_string(st.st_uid) + ": its owner can remove every pin",
                     "chown " + owner_name(context.options.trusted_owner) + " " + pins);
    if (st.st_mode & 077)
        return found(Severity::Failure,
                     pins + " has mode " + octal_mode(st.st_mode) +
                         ": others may look into bpfwarden's pins, and open those whose mode lets them",
                     "chmod 0700 " + pins);
    auto mounts = read_mounts(context);
    if (!mounts)
        return std::nullopt;
    auto mount = mount_of(*mounts, context.options.pin_root);
    if (!mount || mount->type != "bpf")
        return found(Severity::Failure,
                     pins + " is on " + (mount ? mount->type : std::string("no known mount")) +
                         ", not on a bpf filesystem: nothing pinned there outlives bpfwardend",
                     "give bpfwardend a --pin-root under a bpf mount (default /sys/fs/bpf/bpfwarden)");
    return std::nullopt;
}

HardeningFinding check_pin_directory(const CheckContext& context) {
    const std::string pins = context.options.pin_root.string();
    auto st = context.system.lstat(context.options.pin_root);
    if (!st && st.error().errnum() == ENOENT)
        return found(Severity::Warning,
                     pins + " does not exist: bpfwardend has not run since boot, or its pins were removed",
                     "systemctl start bpfwardend.service");
    if (!st)
        return unreadable(st.error());
    if (auto problem = pin_directory_problem(context, *st))
        return *problem;
    return found(Severity::Ok, pins + " is a directory on bpffs, owned by " +
                                   owner_name(context.options.trusted_owner) + ", mode " + octal_mode(st->st_mode));
}

HardeningFinding check_btf(const CheckContext& context) {
    auto st = context.system.lstat("/sys/kernel/btf/vmlinux");
    if (!st && st.error().errnum() == ENOENT)
        return found(Severity::Failure,
                     "/sys/kernel/btf/vmlinux does not exist: this kernel has no BTF, which bpfwarden's programs need "
                     "to load (CO-RE) and to attach",
                     "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's and Ubuntu's stock kernels are)");
    if (!st)
        return unreadable(st.error());
    return found(Severity::Ok, "/sys/kernel/btf/vmlinux is there (" + std::to_string(st->st_size / 1024) +
                                   " KiB): this kernel describes its types for CO-RE");
}

struct UnitState {
    std::string unit;
    std::string active;
    std::string enabled;
};

HardeningFinding judge_units(const std::vector<UnitState>& states) {
    std::vector<std::string> seen, to_fix;
    Severity severity = Severity::Ok;
    for (const auto& state : states) {
        seen.push_back(state.unit + " " + state.active + ", " + state.enabled);
        if (state.active != "active")
            severity = Severity::Failure;
        else if (state.enabled != "enabled")
            severity = std::max(severity, Severity::Warning);
        if (state.active != "active" || state.enabled != "enabled")
            to_fix.push_back(state.unit);
    }
    if (severity == Severity::Ok)
        return found(Severity::Ok, join(seen, "; "));
    std::string why = severity == Severity::Failure ? ": nothing loads or heals the programs"
                                                    : ": they will not start at the next boot";
    return found(severity, join(seen, "; ") + why, "systemctl enable --now " + join(to_fix, " "));
}

HardeningFinding check_units(const CheckContext& context) {
    if (!context.system.exists("/run/systemd/system"))
        return found(Severity::Info, "not checked: systemd is not running (no /run/systemd/system)");
    if (!context.options.services)
        return found(Severity::Info, "not checked: " + context.options.root.string() + " is not the running system");
    std::vector<UnitState> states;
    for (const char* unit : {installed::kDaemonUnit, installed::kWatchdogUnit}) {
        auto active = context.options.services->active_state(unit);
        auto enabled = context.options.services->enabled_state(unit);
        if (!active || !enabled)
            return found(Severity::Warning, "could not ask systemd about " + std::string(unit) + ": " +
                                                (active ? enabled : active).error().message());
        states.push_back({unit, *active, *enabled});
    }
    return judge_units(states);
}

// The steps from the development key to this host's own.
std::string development_key_fix(const CheckContext& context, const fs::path& key) {
    const fs::path keys = context.options.keys_dir;
    const std::string host_key = (keys.parent_path() / "host-signing.key").string();
    const std::string floor_file = (fs::path(installed::kStateDir) / "image-set-version").string();
    std::string version = "N (the version the images are signed with now: bpfwardenctl verify)";
    if (auto floor = context.system.read(floor_file); floor && parse_whole_number(trim(*floor)))
        version = trim(*floor) + " (" + floor_file + ": the lowest version this host accepts)";
    return "while bpfwardend enforces, self-protection refuses changes to keys and images: lift it first "
           "(bpfwardenctl unlock)\n"
           "unless this host has its own key: bpfwardenctl keygen --private " +
           host_key + " --public " + (keys / "host-signing.pem").string() + "\nbpfwardenctl sign --key " + host_key +
           " --images " + installed::kImageDir + " --version " + version + "\nrm " + key.string() +
           "\nsystemctl restart " + installed::kDaemonUnit + " " + installed::kWatchdogUnit;
}

HardeningFinding check_development_key(const CheckContext& context) {
    const fs::path key = context.options.keys_dir / kDevelopmentKey;
    auto st = context.system.lstat(key);
    if (!st && st.error().errnum() == ENOENT)
        return found(Severity::Ok, "no development key (" + std::string(kDevelopmentKey) + ") in " +
                                       context.options.keys_dir.string());
    if (!st)
        return unreadable(st.error());
    return found(Severity::Failure,
                 key.string() +
                     " is trusted: a build tree's development key (cmake/SignImages.cmake); whoever has that tree can "
                     "sign BPF programs this host loads",
                 development_key_fix(context, key));
}

// Owner and write permission of the key directory or a key in it.
void check_key_file_owner(const CheckContext& context, const struct stat& st, const fs::path& path,
                          std::vector<std::string>& problems, std::vector<std::string>& fixes) {
    if (st.st_uid != context.options.trusted_owner) {
        problems.push_back(path.string() + " is owned by uid " + std::to_string(st.st_uid));
        fixes.push_back("chown " + owner_name(context.options.trusted_owner) + " " + path.string());
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        problems.push_back(path.string() + " has mode " + octal_mode(st.st_mode) + " (others may write it)");
        fixes.push_back("chmod go-w " + path.string());
    }
}

bool named_like_a_key(const std::string& name) {
    return !name.starts_with(".") && (name.ends_with(".pem") || name.ends_with(".pub"));
}

// Who may write the directory and each key in it: whoever can, can load
// code into the kernel.
std::optional<HardeningFinding> key_permission_problem(const CheckContext& context, const struct stat& dir_stat) {
    const fs::path keys = context.options.keys_dir;
    std::vector<std::string> problems, fixes;
    check_key_file_owner(context, dir_stat, keys, problems, fixes);
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(context.system.real(keys), error)) {
        const std::string name = entry.path().filename().string();
        if (!named_like_a_key(name))
            continue;
        if (auto st = context.system.lstat(keys / name); st && S_ISREG(st->st_mode))
            check_key_file_owner(context, *st, keys / name, problems, fixes);
    }
    if (error)
        return unreadable(Error::system(error.value(), "could not read " + context.system.real(keys).string()));
    if (problems.empty())
        return std::nullopt;
    std::string more = problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more)" : "";
    return found(Severity::Failure,
                 problems.front() + more +
                     ": whoever may write a trusted key can load code into "
                     "the kernel",
                 join(fixes, "\n"));
}

HardeningFinding check_trusted_keys(const CheckContext& context) {
    const fs::path keys = context.options.keys_dir;
    auto st = context.system.lstat(keys);
    if (!st && st.error().errnum() == ENOENT)
        return found(Severity::Warning,
                     keys.string() +
                         " does not exist: bpfwardend has no key to verify its images with, and will not "
                         "start",
                     "install the bpfwarden package (it makes a host key), or: install -d -m 0755 " + keys.string() +
                         " and put the public half of your signing key there (bpfwardenctl keygen)");
    if (!st)
        return unreadable(st.error());
    if (!S_ISDIR(st->st_mode))
        return found(Severity::Failure, keys.string() + " is " + file_type(st->st_mode) + ", not a directory",
                     "replace it with a directory of public keys: install -d -m 0755 " + keys.string());
    if (auto problem = key_permission_problem(context, *st))
        return *problem;
    auto loaded = TrustedKeys::load_dir(context.system.real(keys), KeyDirRules{context.options.trusted_owner});
    if (!loaded)
        return found(Severity::Failure, "bpfwardend would refuse the trusted keys: " + loaded.error().message(),
                     loaded.error().errnum() == ENOKEY
                         ? "put the public half of the signing key in " + keys.string() + " (bpfwardenctl keygen)"
                         : "correct or remove the file named above: one bad file refuses the whole directory");
    std::vector<std::string> names;
    for (const auto& key : loaded->keys())
        names.push_back(key.name + " " + key.algorithm);
    return found(Severity::Ok, keys.string() + ": " + std::to_string(names.size()) + " trusted key" +
                                   (names.size() == 1 ? "" : "s") + " (" + join(names, ", ") + "), written only by " +
                                   owner_name(context.options.trusted_owner));
}

// "6.1.0-13-amd64" -> {6, 1}.
std::optional<std::pair<unsigned, unsigned>> kernel_version(const std::string& release) {
    unsigned major = 0, minor = 0;
    const char* end = release.data() + release.size();
    auto first = std::from_chars(release.data(), end, major);
    if (first.ec != std::errc() || first.ptr == end || *first.ptr != '.')
        return std::nullopt;
    if (std::from_chars(first.ptr + 1, end, minor).ec != std::errc())
        return std::nullopt;
    return std::pair{major, minor};
}

// A memory limit of bpfwardend's unit that is set and below kSmallestMemoryMax.
std::optional<uint64_t> small_limit(ServiceManager& services, const std::string& property) {
    auto value = services.unit_property(installed::kDaemonUnit, property);
    if (!value)
        return std::nullopt;
    auto bytes = parse_whole_number(*value);
    if (bytes && *bytes < kSmallestMemoryMax)
        return bytes;
    return std::nullopt;
}

HardeningFinding check_memlock(const CheckContext& context) {
    auto release = context.system.read("/proc/sys/kernel/osrelease");
    if (!release)
        return unreadable(release.error(), Severity::Info);
    auto version = kernel_version(trim(*release));
    if (!version)
        return found(Severity::Info, "kernel release '" + trim(*release) + "' is not in a form this check knows");
    const bool memcg = *version >= std::pair{5u, 11u};
    const std::string kernel = "kernel " + trim(*release);
    std::string summary = memcg ? kernel + ": BPF memory is charged to the memory cgroup; RLIMIT_MEMLOCK does not apply"
                                : kernel +
                                      " (before 5.11): BPF maps count against RLIMIT_MEMLOCK; the unit sets "
                                      "LimitMEMLOCK=infinity, a bpfwardend started by hand needs ulimit -l "
                                      "unlimited";
    const std::string unit = installed::kDaemonUnit;
    const bool systemd = context.system.exists("/run/systemd/system") && context.options.services;
    if (systemd && memcg)
        if (auto limit = small_limit(*context.options.services, "MemoryMax"))
            return found(Severity::Warning,
                         summary + "; " + unit + " has MemoryMax=" + std::to_string(*limit) +
                             " (under 64 MiB): loading and policy updates may fail with ENOMEM",
                         "systemctl set-property " + unit + " MemoryMax=256M");
    if (systemd && !memcg)
        if (auto limit = small_limit(*context.options.services, "LimitMEMLOCK"))
            return found(
                Severity::Warning,
                summary + "; but " + unit + " has LimitMEMLOCK=" + std::to_string(*limit) + ": its maps may not fit",
                "systemctl edit " + unit + ": LimitMEMLOCK=infinity under [Service], then systemctl restart " + unit);
    return found(Severity::Info, summary);
}

struct Check {
    const char* id;
    HardeningFinding (*run)(const CheckContext&);
};

constexpr Check kChecks[] = {
    {"bpf-lsm", check_bpf_lsm},
    {"unprivileged-bpf", check_unprivileged_bpf},
    {"jit-enabled", check_jit_enabled},
    {"jit-harden", check_jit_harden},
    {"lockdown", check_lockdown},
    {"bpf-stats", check_bpf_stats},
    {"bpffs", check_bpffs},
    {"pin-directory", check_pin_directory},
    {"btf", check_btf},
    {"units", check_units},
    {"development-key", check_development_key},
    {"trusted-keys", check_trusted_keys},
    {"memlock", check_memlock},
};

// Reads `fd` to its end or until `deadline`; false when the deadline passed.
bool read_until_end(int fd, std::chrono::steady_clock::time_point deadline, std::string& output) {
    while (output.size() < kMaxSystemFileBytes) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        pollfd readable{fd, POLLIN, 0};
        int ready = poll(&readable, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0)
            return false;
        char buffer[1024];
        ssize_t n = ready < 0 ? -1 : read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return true;
        output.append(buffer, static_cast<size_t>(n));
    }
    return true;
}

// systemctl ARGS...: its output (both streams, trimmed), whatever its exit
// status: `is-active` says "inactive" and exits 3.
Result<std::string> run_systemctl(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return fail_errno("systemctl: pipe");
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
    std::vector<char*> argv{const_cast<char*>("systemctl")};
    for (const auto& arg : args)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    int spawned = posix_spawnp(&pid, "systemctl", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0)
        return fail_system(spawned, "run systemctl");
    write_end.reset();

    std::string output;
    const bool answered = read_until_end(read_end.get(), std::chrono::steady_clock::now() + kSystemctlTimeout, output);
    if (!answered)
        kill(pid, SIGKILL);  // our own child, by its pid
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!answered)
        return fail(ETIMEDOUT, "systemctl " + join(args, " ") + " did not answer within 10 s");
    return trim(output);
}

// is-active and is-enabled answer in one word; anything longer is
// systemctl's complaint ("Failed to get unit file state for x.service: No
// such file or directory").
Result<std::string> one_word_state(const std::vector<std::string>& args) {
    auto state = run_systemctl(args);
    if (!state || state->find_first_of(" \n") == std::string::npos)
        return state;
    if (state->find("No such file or directory") != std::string::npos)
        return std::string("not-found");
    return fail(EIO, "systemctl " + join(args, " ") + ": " + *state);
}

}  // namespace

std::string_view to_string(Severity severity) {
    switch (severity) {
    case Severity::Ok: return "ok";
    case Severity::Info: return "info";
    case Severity::Warning: return "warning";
    case Severity::Failure: return "failure";
    }
    return "unknown";
}

Result<std::string> Systemctl::active_state(const std::string& unit) { return one_word_state({"is-active", unit}); }

Result<std::string> Systemctl::enabled_state(const std::string& unit) { return one_word_state({"is-enabled", unit}); }

Result<std::string> Systemctl::unit_property(const std::string& unit, const std::string& name) {
    return run_systemctl({"show", "-p", name, "--value", unit});
}

std::vector<HardeningFinding> run_hardening_checks(const HardeningOptions& options) {
    CheckContext context{options, SystemView(options.root)};
    std::vector<HardeningFinding> findings;
    for (const auto& check : kChecks) {
        HardeningFinding finding = check.run(context);
        finding.id = check.id;
        findings.push_back(std::move(finding));
    }
    return findings;
}

const std::vector<std::string>& hardening_check_ids() {
    static const std::vector<std::string> ids = [] {
        std::vector<std::string> all;
        for (const auto& check : kChecks)
            all.emplace_back(check.id);
        return all;
    }();
    return ids;
}

Severity worst_severity(const std::vector<HardeningFinding>& findings) {
    Severity worst = Severity::Ok;
    for (const auto& finding : findings)
        worst = std::max(worst, finding.severity);
    return worst;
}

int doctor_exit_status(Severity worst) {
    switch (worst) {
    case Severity::Ok:
    case Severity::Info: return 0;
    case Severity::Warning: return 1;
    case Severity::Failure: return 3;
    }
    return 3;
}

std::string lsm_parameter_with_bpf(const std::vector<std::string>& active_lsms) {
    std::vector<std::string> lsms;
    for (const auto& lsm : active_lsms)
        if (lsm != "bpf")
            lsms.push_back(lsm);
    lsms.emplace_back("bpf");
    return "lsm=" + join(lsms, ",");
}

}  // namespace bpfwarden
