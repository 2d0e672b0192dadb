#include "inspection/hardening_checks.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "test_helpers.h"
#include "trust/signature.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

constexpr const char* kKeys = "/etc/bpfwarden/keys";
constexpr const char* kPins = "/sys/fs/bpf/bpfwarden";
constexpr const char* kGrub =
    " the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot)";

// systemd's answers, as a test sets them; a unit with no answer is an error.
class FakeServices final : public ServiceManager {
public:
    std::map<std::string, std::string> active, enabled, properties;

    Result<std::string> active_state(const std::string& unit) override { return answer(active, unit); }
    Result<std::string> enabled_state(const std::string& unit) override { return answer(enabled, unit); }
    Result<std::string> unit_property(const std::string& unit, const std::string& name) override {
        return answer(properties, unit + " " + name);
    }

private:
    static Result<std::string> answer(const std::map<std::string, std::string>& answers, const std::string& key) {
        auto found = answers.find(key);
        if (found == answers.end())
            return fail(EIO, "no answer for " + key);
        return found->second;
    }
};

// A fake system under a temp dir, hardened as the checklist wants it; each
// test breaks one thing.
class HardeningChecksTest : public ::testing::Test {
protected:
    void SetUp() override {
        write("/proc/sys/kernel/unprivileged_bpf_disabled", "1\n");
        write("/proc/sys/net/core/bpf_jit_enable", "1\n");
        write("/proc/sys/net/core/bpf_jit_harden", "2\n");
        write("/proc/sys/kernel/bpf_stats_enabled", "0\n");
        write("/proc/sys/kernel/osrelease", "6.1.0-13-amd64\n");
        write("/proc/cmdline", "BOOT_IMAGE=/vmlinuz-6.1.0-13-amd64 root=/dev/sda1 ro quiet\n");
        write("/proc/mounts", "sysfs /sys sysfs rw,nosuid 0 0\nbpf /sys/fs/bpf bpf rw,nosuid,mode=700 0 0\n");
        write("/sys/kernel/security/lsm", "lockdown,capability,landlock,yama,apparmor,bpf");
        write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n");
        write("/sys/kernel/btf/vmlinux", std::string(4096, 'b'));
        make_dir(kPins, 0700);
        make_dir(kKeys, 0755);
        ASSERT_OK(generate_ed25519_key(tmp_ / "host-signing.key", real(kKeys) / "host-signing.pem"));
        options_.root = tmp_.path();
        options_.trusted_owner = geteuid();
    }

    fs::path real(const std::string& system_path) const { return tmp_.path() / fs::path(system_path).relative_path(); }
    void write(const std::string& system_path, const std::string& text) {
        fs::create_directories(real(system_path).parent_path());
        std::ofstream(real(system_path), std::ios::binary | std::ios::trunc) << text;
    }
    void make_dir(const std::string& system_path, mode_t mode) {
        fs::create_directories(real(system_path));
        fs::permissions(real(system_path), static_cast<fs::perms>(mode));
    }
    void remove(const std::string& system_path) { fs::remove_all(real(system_path)); }

    std::vector<HardeningFinding> run() { return run_hardening_checks(options_); }
    HardeningFinding check(const std::string& id) {
        for (auto& finding : run())
            if (finding.id == id)
                return finding;
        ADD_FAILURE() << "no finding " << id;
        return {};
    }
    // The running system's systemd, as far as the units are concerned.
    void use_systemd(FakeServices& services) {
        make_dir("/run/systemd/system", 0755);
        options_.services = &services;
    }

    TempDir tmp_{"bpfwarden-hardening"};
    HardeningOptions options_;
};

#define EXPECT_FINDING(finding, expected_severity, summary_part)                 \
    do {                                                                         \
        const HardeningFinding& bw_finding_ = (finding);                         \
        EXPECT_EQ(to_string(bw_finding_.severity), to_string(expected_severity)) \
            << bw_finding_.id << ": " << bw_finding_.summary;                    \
        EXPECT_MENTIONS(bw_finding_.summary, summary_part);                      \
    } while (0)

TEST_F(HardeningChecksTest, HardenedSystemHasNothingWorseThanInfo) {
    auto findings = run();
    ASSERT_EQ(findings.size(), hardening_check_ids().size());
    for (size_t i = 0; i < findings.size(); ++i) {
        EXPECT_EQ(findings[i].id, hardening_check_ids()[i]);
        const bool informational = findings[i].id == "units" || findings[i].id == "memlock";
        EXPECT_EQ(findings[i].severity, informational ? Severity::Info : Severity::Ok)
            << findings[i].id << ": " << findings[i].summary;
        if (findings[i].severity == Severity::Ok) {
            EXPECT_EQ(findings[i].fix, "") << findings[i].id;
        }
    }
    EXPECT_EQ(worst_severity(findings), Severity::Info);
    EXPECT_EQ(doctor_exit_status(worst_severity(findings)), 0);
}

TEST_F(HardeningChecksTest, CheckIdsAreTheStableOnes) {
    EXPECT_EQ(hardening_check_ids(),
              (std::vector<std::string>{"bpf-lsm", "unprivileged-bpf", "jit-enabled", "jit-harden", "lockdown",
                                        "bpf-stats", "bpffs", "pin-directory", "btf", "units", "development-key",
                                        "trusted-keys", "memlock"}));
}

TEST_F(HardeningChecksTest, UnhardenedSystemFailsEachCheck) {
    write("/sys/kernel/security/lsm", "lockdown,capability,landlock");
    write("/proc/sys/kernel/unprivileged_bpf_disabled", "0\n");
    write("/proc/sys/net/core/bpf_jit_enable", "0\n");
    write("/proc/sys/net/core/bpf_jit_harden", "0\n");
    write("/sys/kernel/security/lockdown", "[none] integrity confidentiality\n");
    write("/proc/sys/kernel/bpf_stats_enabled", "1\n");
    write("/proc/mounts", "sysfs /sys sysfs rw 0 0\n");
    remove(kPins);
    remove("/sys/kernel/btf/vmlinux");
    write(std::string(kKeys) + "/dev-signing.pem", "");
    const std::map<std::string, Severity> expected = {
        {"bpf-lsm", Severity::Failure},    {"unprivileged-bpf", Severity::Failure}, {"jit-enabled", Severity::Warning},
        {"jit-harden", Severity::Warning}, {"lockdown", Severity::Warning},         {"bpf-stats", Severity::Info},
        {"bpffs", Severity::Failure},      {"pin-directory", Severity::Warning},    {"btf", Severity::Failure},
        {"units", Severity::Info},         {"development-key", Severity::Failure},  {"trusted-keys", Severity::Failure},
        {"memlock", Severity::Info},
    };
    auto findings = run();
    for (const auto& finding : findings) {
        EXPECT_EQ(to_string(finding.severity), to_string(expected.at(finding.id)))
            << finding.id << ": " << finding.summary;
        if (finding.severity >= Severity::Warning) {
            EXPECT_NE(finding.fix, "") << finding.id << " has no fix";
        }
    }
    EXPECT_EQ(doctor_exit_status(worst_severity(findings)), 3);
}

TEST(HardeningExitStatus, FollowsTheWorstFinding) {
    EXPECT_EQ(doctor_exit_status(Severity::Ok), 0);
    EXPECT_EQ(doctor_exit_status(Severity::Info), 0);
    EXPECT_EQ(doctor_exit_status(Severity::Warning), 1);
    EXPECT_EQ(doctor_exit_status(Severity::Failure), 3);
    EXPECT_EQ(worst_severity({}), Severity::Ok);
    std::vector<HardeningFinding> findings{
        {"a", Severity::Info, "", ""}, {"b", Severity::Warning, "", "x"}, {"c", Severity::Ok, "", ""}};
    EXPECT_EQ(worst_severity(findings), Severity::Warning);
    findings.push_back({"d", Severity::Failure, "", "y"});
    EXPECT_EQ(worst_severity(findings), Severity::Failure);
    EXPECT_EQ(to_string(Severity::Ok), "ok");
    EXPECT_EQ(to_string(Severity::Info), "info");
    EXPECT_EQ(to_string(Severity::Warning), "warning");
    EXPECT_EQ(to_string(Severity::Failure), "failure");
}

TEST(HardeningLsmParameter, AppendsBpfToTheActiveList) {
    EXPECT_EQ(lsm_parameter_with_bpf({"lockdown", "capability", "landlock", "yama", "apparmor"}),
              "lsm=lockdown,capability,landlock,yama,apparmor,bpf");
    EXPECT_EQ(lsm_parameter_with_bpf({"capability", "bpf", "selinux"}), "lsm=capability,selinux,bpf");
    EXPECT_EQ(lsm_parameter_with_bpf({}), "lsm=bpf");
}

TEST_F(HardeningChecksTest, BpfLsmMissingNamesTheExactParameter) {
    write("/sys/kernel/security/lsm", "lockdown,capability,landlock,yama,apparmor\n");
    auto finding = check("bpf-lsm");
    EXPECT_FINDING(finding, Severity::Failure, "bpf is not an active LSM (active: lockdown,capability,landlock,yama");
    EXPECT_EQ(finding.fix, std::string("add lsm=lockdown,capability,landlock,yama,apparmor,bpf to") + kGrub);
}

TEST_F(HardeningChecksTest, BpfLsmReplacesAnLsmParameterWithoutBpf) {
    write("/sys/kernel/security/lsm", "capability,landlock,yama");
    write("/proc/cmdline", "root=/dev/sda1 lsm=selinux ro lsm=landlock,yama quiet\n");
    auto finding = check("bpf-lsm");
    EXPECT_FINDING(finding, Severity::Failure, "the kernel command line sets lsm=landlock,yama, without bpf");
    EXPECT_EQ(finding.fix, std::string("replace lsm=landlock,yama with lsm=capability,landlock,yama,bpf on") + kGrub);
}

TEST_F(HardeningChecksTest, BpfLsmAskedForButNotBuiltNeedsAnotherKernel) {
    write("/sys/kernel/security/lsm", "capability,yama");
    write("/proc/cmdline", "ro lsm=yama,bpf\n");
    auto finding = check("bpf-lsm");
    EXPECT_FINDING(finding, Severity::Failure, "asks for it (lsm=yama,bpf)");
    EXPECT_MENTIONS(finding.fix, "CONFIG_BPF_LSM=y");

    write("/proc/cmdline", "ro\n");
    write("/boot/config-6.1.0-13-amd64", "CONFIG_BPF=y\n# CONFIG_BPF_LSM is not set\n");
    finding = check("bpf-lsm");
    EXPECT_FINDING(finding, Severity::Failure, "built without CONFIG_BPF_LSM");
    EXPECT_MENTIONS(finding.fix, "boot a kernel built with CONFIG_BPF_LSM=y, with lsm=capability,yama,bpf");
}

TEST_F(HardeningChecksTest, BpfLsmListUnreadableIsAWarningWithTheMount) {
    remove("/sys/kernel/security/lsm");
    auto finding = check("bpf-lsm");
    EXPECT_FINDING(finding, Severity::Warning,
                   "could not read " + real("/sys/kernel/security/lsm").string() + ": No such file or directory");
    EXPECT_EQ(finding.fix, "mount -t securityfs securityfs /sys/kernel/security");
}

TEST_F(HardeningChecksTest, UnprivilegedBpfEachValue) {
    write("/proc/sys/kernel/unprivileged_bpf_disabled", "0\n");
    auto finding = check("unprivileged-bpf");
    EXPECT_FINDING(finding, Severity::Failure, "kernel.unprivileged_bpf_disabled = 0");
    EXPECT_MENTIONS(finding.fix, "sysctl -w kernel.unprivileged_bpf_disabled=2\n");
    EXPECT_MENTIONS(finding.fix, "echo 'kernel.unprivileged_bpf_disabled = 2' >>/etc/sysctl.d/");
    EXPECT_FINDING(check("unprivileged-bpf"), Severity::Failure, "every user may load BPF programs");

    write("/proc/sys/kernel/unprivileged_bpf_disabled", "1\n");
    EXPECT_FINDING(check("unprivileged-bpf"), Severity::Ok, "permanently until reboot");
    write("/proc/sys/kernel/unprivileged_bpf_disabled", "2\n");
    EXPECT_FINDING(check("unprivileged-bpf"), Severity::Ok, "root may set it back to 0");
    write("/proc/sys/kernel/unprivileged_bpf_disabled", "7\n");
    EXPECT_FINDING(check("unprivileged-bpf"), Severity::Warning, "a value this check does not know");
    write("/proc/sys/kernel/unprivileged_bpf_disabled", "yes\n");
    EXPECT_FINDING(check("unprivileged-bpf"), Severity::Warning, "reads 'yes', not a number");
    remove("/proc/sys/kernel/unprivileged_bpf_disabled");
    EXPECT_FINDING(check("unprivileged-bpf"), Severity::Info, "CONFIG_BPF_SYSCALL");
}

TEST_F(HardeningChecksTest, UnreadableSettingSaysWhyAndDoesNotCrash) {
    remove("/proc/sys/kernel/unprivileged_bpf_disabled");
    make_dir("/proc/sys/kernel/unprivileged_bpf_disabled", 0755);  // read() gives EISDIR
    auto finding = check("unprivileged-bpf");
    EXPECT_FINDING(
        finding, Severity::Warning,
        "could not read " + real("/proc/sys/kernel/unprivileged_bpf_disabled").string() + ": Is a directory");
}

TEST_F(HardeningChecksTest, JitEnableEachValue) {
    write("/proc/sys/net/core/bpf_jit_enable", "0\n");
    auto finding = check("jit-enabled");
    EXPECT_FINDING(finding, Severity::Warning, "run in the interpreter");
    EXPECT_MENTIONS(finding.fix, "sysctl -w net.core.bpf_jit_enable=1");
    EXPECT_MENTIONS(finding.fix, "CONFIG_BPF_JIT_ALWAYS_ON=y");
    write("/proc/sys/net/core/bpf_jit_enable", "2\n");
    EXPECT_FINDING(check("jit-enabled"), Severity::Warning, "debug mode");
    remove("/proc/sys/net/core/bpf_jit_enable");
    finding = check("jit-enabled");
    EXPECT_FINDING(finding, Severity::Info, "net.core.bpf_jit_enable does not exist: this kernel has no BPF JIT");
    EXPECT_EQ(finding.fix, "");
}

TEST_F(HardeningChecksTest, JitHardenEachValue) {
    write("/proc/sys/net/core/bpf_jit_harden", "1\n");
    auto finding = check("jit-harden");
    EXPECT_FINDING(finding, Severity::Info, "unprivileged programs only");
    EXPECT_MENTIONS(finding.fix, "sysctl -w net.core.bpf_jit_harden=2");
    write("/proc/sys/net/core/bpf_jit_harden", "0\n");
    EXPECT_FINDING(check("jit-harden"), Severity::Warning, "no JIT hardening");
    remove("/proc/sys/net/core/bpf_jit_harden");
    EXPECT_FINDING(check("jit-harden"), Severity::Info, "does not exist");
}

TEST_F(HardeningChecksTest, LockdownEachLevel) {
    write("/sys/kernel/security/lockdown", "[none] integrity confidentiality\n");
    auto finding = check("lockdown");
    EXPECT_FINDING(finding, Severity::Warning, "kernel lockdown is off");
    EXPECT_MENTIONS(finding.fix, "echo integrity >/sys/kernel/security/lockdown");
    EXPECT_MENTIONS(finding.fix, std::string("lockdown=integrity on") + kGrub);
    write("/sys/kernel/security/lockdown", "none integrity [confidentiality]\n");
    finding = check("lockdown");
    EXPECT_FINDING(finding, Severity::Warning, "bpf_probe_read_kernel");
    EXPECT_MENTIONS(finding.fix, "boot with lockdown=integrity");
    write("/sys/kernel/security/lockdown", "integrity\n");
    EXPECT_FINDING(check("lockdown"), Severity::Warning, "no [level]");
    remove("/sys/kernel/security/lockdown");
    EXPECT_FINDING(check("lockdown"), Severity::Info, "the lockdown LSM is not built into this kernel");
}

TEST_F(HardeningChecksTest, BpfStatsOnCostsALittle) {
    EXPECT_FINDING(check("bpf-stats"), Severity::Ok, "sysctl -w kernel.bpf_stats_enabled=1");
    write("/proc/sys/kernel/bpf_stats_enabled", "1\n");
    auto finding = check("bpf-stats");
    EXPECT_FINDING(finding, Severity::Info, "costs a little on each run");
    EXPECT_EQ(finding.fix, "sysctl -w kernel.bpf_stats_enabled=0 once the figures are taken");
}

TEST_F(HardeningChecksTest, BpffsMustBeMountedAtSysFsBpf) {
    write("/proc/mounts", "sysfs /sys sysfs rw 0 0\n");
    auto finding = check("bpffs");
    EXPECT_FINDING(finding, Severity::Failure, "nothing is mounted at /sys/fs/bpf");
    EXPECT_MENTIONS(finding.fix, "mount -t bpf bpf /sys/fs/bpf");
    write("/proc/mounts", "bpf /sys/fs/bpf bpf rw 0 0\ntmpfs /sys/fs/bpf tmpfs rw 0 0\n");
    EXPECT_FINDING(check("bpffs"), Severity::Failure, "/sys/fs/bpf is a tmpfs mount");
    remove("/proc/mounts");
    EXPECT_FINDING(check("bpffs"), Severity::Warning, "could not read");
}

TEST_F(HardeningChecksTest, PinDirectoryMissingWideForeignOrElsewhere) {
    remove(kPins);
    auto finding = check("pin-directory");
    EXPECT_FINDING(finding, Severity::Warning, "/sys/fs/bpf/bpfwarden does not exist");
    EXPECT_EQ(finding.fix, "systemctl start bpfwardend.service");

    make_dir(kPins, 0755);
    finding = check("pin-directory");
    EXPECT_FINDING(finding, Severity::Failure, "has mode 0755");
    EXPECT_EQ(finding.fix, "chmod 0700 /sys/fs/bpf/bpfwarden");

    make_dir(kPins, 0700);
    options_.trusted_owner = geteuid() + 1;
    finding = check("pin-directory");
    EXPECT_FINDING(finding, Severity::Failure, "is owned by uid " + std::to_string(geteuid()));
    EXPECT_MENTIONS(finding.fix, "chown ");
    options_.trusted_owner = geteuid();

    remove(kPins);
    write(kPins, "");
    EXPECT_FINDING(check("pin-directory"), Severity::Failure, "is a regular file, not a directory");

    options_.pin_root = "/run/pins";
    make_dir("/run/pins", 0700);
    write("/proc/mounts", "bpf /sys/fs/bpf bpf rw 0 0\ntmpfs /run tmpfs rw 0 0\n");
    EXPECT_FINDING(check("pin-directory"), Severity::Failure, "/run/pins is on tmpfs, not on a bpf filesystem");
}

TEST_F(HardeningChecksTest, BtfMissingNeedsAnotherKernel) {
    remove("/sys/kernel/btf/vmlinux");
    auto finding = check("btf");
    EXPECT_FINDING(finding, Severity::Failure, "/sys/kernel/btf/vmlinux does not exist");
    EXPECT_MENTIONS(finding.fix, "CONFIG_DEBUG_INFO_BTF=y");
}

TEST_F(HardeningChecksTest, UnitsAreCheckedOnlyWhereSystemdRuns) {
    EXPECT_FINDING(check("units"), Severity::Info, "not checked: systemd is not running");
    make_dir("/run/systemd/system", 0755);
    EXPECT_FINDING(check("units"), Severity::Info, "is not the running system");
}

TEST_F(HardeningChecksTest, UnitsActiveAndEnabled) {
    FakeServices services;
    use_systemd(services);
    services.active = {{"bpfwardend.service", "active"}, {"bpfwarden-watchdog.service", "active"}};
    services.enabled = {{"bpfwardend.service", "enabled"}, {"bpfwarden-watchdog.service", "enabled"}};
    EXPECT_FINDING(check("units"), Severity::Ok, "bpfwardend.service active, enabled");

    services.enabled["bpfwarden-watchdog.service"] = "disabled";
    auto finding = check("units");
    EXPECT_FINDING(finding, Severity::Warning, "bpfwarden-watchdog.service active, disabled");
    EXPECT_EQ(finding.fix, "systemctl enable --now bpfwarden-watchdog.service");

    services.active["bpfwardend.service"] = "failed";
    finding = check("units");
    EXPECT_FINDING(finding, Severity::Failure, "bpfwardend.service failed, enabled");
    EXPECT_EQ(finding.fix, "systemctl enable --now bpfwardend.service bpfwarden-watchdog.service");

    services.active.erase("bpfwarden-watchdog.service");
    EXPECT_FINDING(check("units"), Severity::Warning,
                   "could not ask systemd about bpfwarden-watchdog.service: no answer");
}

// The real Systemctl, with a systemctl of this test's first in PATH: the
// arguments it is given, and its answers as systemctl words them.
TEST(HardeningSystemctl, AsksSystemctlAndReadsItsAnswers) {
    TempDir bin("bpfwarden-systemctl");
    auto script = bin.write("systemctl",
                            "#!/bin/sh\n"
                            "case \"$1\" in\n"
                            "is-active) [ \"$2\" = bpfwardend.service ] && echo active && exit 0\n"
                            "  [ \"$2\" = busless.service ] && echo 'Failed to connect to bus: Host is down' >&2 "
                            "&& exit 1\n"
                            "  echo inactive; exit 3 ;;\n"
                            "is-enabled) echo \"Failed to get unit file state for $2: No such file or directory\" "
                            ">&2; exit 1 ;;\n"
                            "show) echo \"$*\" ;;\n"
                            "esac\n");
    fs::permissions(script, static_cast<fs::perms>(0755));
    const char* old_path = getenv("PATH");
    const std::string saved = old_path ? old_path : "";
    setenv("PATH", (bin.path().string() + ":" + saved).c_str(), 1);

    Systemctl systemctl;
    auto active = systemctl.active_state("bpfwardend.service");
    auto inactive = systemctl.active_state("bpfwarden-watchdog.service");
    auto busless = systemctl.active_state("busless.service");
    auto enabled = systemctl.enabled_state("bpfwardend.service");
    auto shown = systemctl.unit_property("bpfwardend.service", "MemoryMax");
    setenv("PATH", saved.c_str(), 1);

    ASSERT_OK(active);
    EXPECT_EQ(*active, "active");
    ASSERT_OK(inactive);
    EXPECT_EQ(*inactive, "inactive");
    EXPECT_ERROR_MENTIONS(busless, "systemctl is-active busless.service: Failed to connect to bus: Host is down");
    ASSERT_OK(enabled);
    EXPECT_EQ(*enabled, "not-found");
    ASSERT_OK(shown);
    EXPECT_EQ(*shown, "show -p MemoryMax --value bpfwardend.service");
}

TEST_F(HardeningChecksTest, MemlockMattersBefore511AndMemoryMaxAfter) {
    auto finding = check("memlock");
    EXPECT_FINDING(finding, Severity::Info, "kernel 6.1.0-13-amd64: BPF memory is charged to the memory cgroup");
    write("/proc/sys/kernel/osrelease", "5.10.0-28-amd64\n");
    EXPECT_FINDING(check("memlock"), Severity::Info, "(before 5.11): BPF maps count against RLIMIT_MEMLOCK");
    write("/proc/sys/kernel/osrelease", "linux\n");
    EXPECT_FINDING(check("memlock"), Severity::Info, "'linux' is not in a form this check knows");

    FakeServices services;
    use_systemd(services);
    write("/proc/sys/kernel/osrelease", "6.12.9\n");
    services.properties["bpfwardend.service MemoryMax"] = "infinity";
    EXPECT_EQ(check("memlock").severity, Severity::Info);
    services.properties["bpfwardend.service MemoryMax"] = "33554432";
    finding = check("memlock");
    EXPECT_FINDING(finding, Severity::Warning, "has MemoryMax=33554432");
    EXPECT_EQ(finding.fix, "systemctl set-property bpfwardend.service MemoryMax=256M");
    services.properties["bpfwardend.service MemoryMax"] = "268435456";
    EXPECT_EQ(check("memlock").severity, Severity::Info);

    write("/proc/sys/kernel/osrelease", "5.4.0\n");
    services.properties["bpfwardend.service LimitMEMLOCK"] = "65536";
    finding = check("memlock");
    EXPECT_FINDING(finding, Severity::Warning, "has LimitMEMLOCK=65536");
    EXPECT_MENTIONS(finding.fix, "LimitMEMLOCK=infinity");
}

TEST_F(HardeningChecksTest, DevelopmentKeyIsAFailureWithTheWayOut) {
    const std::string dev_key = std::string(kKeys) + "/dev-signing.pem";
    ASSERT_OK(generate_ed25519_key(tmp_ / "dev-signing.key", real(dev_key)));
    auto finding = check("development-key");
    EXPECT_FINDING(finding, Severity::Failure, dev_key + " is trusted: a build tree's development key");
    EXPECT_MENTIONS(finding.fix, "bpfwardenctl sign --key /etc/bpfwarden/host-signing.key");
    EXPECT_MENTIONS(finding.fix, "--version N ");
    EXPECT_MENTIONS(finding.fix, "\nrm " + dev_key + "\n");
    // The valid development key does not make the directory itself wrong.
    EXPECT_FINDING(check("trusted-keys"), Severity::Ok, "2 trusted keys (dev-signing.pem ed25519, host-signing.pem");

    write("/var/lib/bpfwarden/image-set-version", "7\n");
    EXPECT_MENTIONS(check("development-key").fix, "--version 7 (/var/lib/bpfwarden/image-set-version");
}

TEST_F(HardeningChecksTest, TrustedKeysWritableByOthers) {
    make_dir(kKeys, 0775);
    auto finding = check("trusted-keys");
    EXPECT_FINDING(finding, Severity::Failure, "/etc/bpfwarden/keys has mode 0775");
    EXPECT_EQ(finding.fix, "chmod go-w /etc/bpfwarden/keys");

    make_dir(kKeys, 0755);
    fs::permissions(real(std::string(kKeys) + "/host-signing.pem"), static_cast<fs::perms>(0666));
    finding = check("trusted-keys");
    EXPECT_FINDING(finding, Severity::Failure, "host-signing.pem has mode 0666");
    EXPECT_EQ(finding.fix, "chmod go-w /etc/bpfwarden/keys/host-signing.pem");

    make_dir(kKeys, 0777);
    EXPECT_FINDING(check("trusted-keys"), Severity::Failure, "(and 1 more)");
    EXPECT_EQ(check("trusted-keys").fix,
              "chmod go-w /etc/bpfwarden/keys\nchmod go-w /etc/bpfwarden/keys/host-signing.pem");

    make_dir(kKeys, 0755);
    fs::permissions(real(std::string(kKeys) + "/host-signing.pem"), static_cast<fs::perms>(0644));
    options_.trusted_owner = geteuid() + 1;
    finding = check("trusted-keys");
    EXPECT_FINDING(finding, Severity::Failure, "/etc/bpfwarden/keys is owned by uid " + std::to_string(geteuid()));
    EXPECT_MENTIONS(finding.fix, "chown " + std::to_string(geteuid() + 1) + " /etc/bpfwarden/keys\n");
}

TEST_F(HardeningChecksTest, TrustedKeysMissingEmptyOrInvalid) {
    write(std::string(kKeys) + "/broken.pem", "not a key\n");
    auto finding = check("trusted-keys");
    EXPECT_FINDING(finding, Severity::Failure, "bpfwardend would refuse the trusted keys: ");
    EXPECT_MENTIONS(finding.summary, "broken.pem");

    remove(kKeys);
    make_dir(kKeys, 0755);
    finding = check("trusted-keys");
    EXPECT_FINDING(finding, Severity::Failure, "bpfwardend would refuse the trusted keys");
    EXPECT_MENTIONS(finding.fix, "bpfwardenctl keygen");

    remove(kKeys);
    finding = check("trusted-keys");
    EXPECT_FINDING(finding, Severity::Warning, "/etc/bpfwarden/keys does not exist");
    EXPECT_MENTIONS(finding.fix, "install -d -m 0755 /etc/bpfwarden/keys");
    EXPECT_FINDING(check("development-key"), Severity::Ok, "no development key");
}

}  // namespace
}  // namespace bpfwarden
