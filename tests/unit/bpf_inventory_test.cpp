#include "inspection/bpf_inventory.h"

#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <string>
#include <vector>

#include "test_helpers.h"

namespace bpfwarden {
namespace {

constexpr const char* kSource = "/etc/bpfwarden/inventory.toml";

// ---- Allowlist --------------------------------------------------------------------

TEST(AllowlistTest, ParsesEntriesWithWhereTheyAre) {
    auto allowlist = parse_allowlist(R"(# expected on this host
[[expected]]
name = "cilium_host"
comment = "the CNI"

[[expected]]
tag = "0123456789ABCDEF"
owner = "/usr/bin/foo"

[[expected]]
owner = "foo.service"
)",
                                     kSource);
    ASSERT_OK(allowlist);
    ASSERT_EQ(allowlist->entries.size(), 3u);
    EXPECT_EQ(allowlist->source, kSource);
    EXPECT_EQ(allowlist->entries[0].name, "cilium_host");
    EXPECT_EQ(allowlist->entries[0].comment, "the CNI");
    EXPECT_EQ(allowlist->entries[0].where, std::string(kSource) + ":2");
    EXPECT_EQ(allowlist->entries[1].tag, "0123456789abcdef");  // as the kernel's tags are printed
    EXPECT_EQ(allowlist->entries[1].owner, "/usr/bin/foo");
    EXPECT_EQ(allowlist->entries[1].where, std::string(kSource) + ":6");
    EXPECT_EQ(allowlist->entries[2].owner, "foo.service");
}

TEST(AllowlistTest, EmptyFileExpectsNothing) {
    auto allowlist = parse_allowlist("# nothing yet\n", kSource);
    ASSERT_OK(allowlist);
    EXPECT_TRUE(allowlist->entries.empty());
}

struct BadAllowlist {
    const char* text;
    const char* message;
};

class BadAllowlistTest : public ::testing::TestWithParam<BadAllowlist> {};

TEST_P(BadAllowlistTest, NamesFileLineAndKey) {
    auto allowlist = parse_allowlist(GetParam().text, kSource);
    ASSERT_FALSE(allowlist.has_value());
    EXPECT_EQ(allowlist.error().kind(), ErrorKind::InvalidArgument);
    EXPECT_EQ(allowlist.error().message(), std::string(kSource) + ":" + GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Mistakes, BadAllowlistTest,
    ::testing::Values(
        BadAllowlist{"[[expected]]\nname = \"x\"\nnmae = \"y\"\n",
                     "3: unknown key 'nmae' in [[expected]] (expected name, tag, owner or comment)"},
        BadAllowlist{"[[expected]]\nname = 7\n", "2: 'name' must be a string"},
        BadAllowlist{"[[expected]]\nname = \"a_very_long_program_name\"\n",
                     "2: 'name': 'a_very_long_program_name' is 24 characters; the kernel keeps at most 15 of a "
                     "program's name (write the first 15)"},
        BadAllowlist{"[[expected]]\nname = \"bad-name\"\n",
                     "2: 'name': 'bad-name' has '-': program names hold only letters, digits, '_' and '.'"},
        BadAllowlist{"[[expected]]\ntag = \"0123\"\n",
                     "2: 'tag': '0123' is not a program tag (16 hex digits, as 'bpftool prog' shows it)"},
        BadAllowlist{"[[expected]]\nowner = \"foo\"\n",
                     "2: 'owner': 'foo' is neither an executable's absolute path nor a unit name ending in .service "
                     "or .scope"},
        BadAllowlist{"[[expected]]\ncomment = \"only a comment\"\n",
                     "1: [[expected]] entry gives none of name, tag and owner: it would match every program"},
        BadAllowlist{"[[expectd]]\nname = \"x\"\n", "1: unknown table 'expectd' (expected [[expected]] entries)"},
        BadAllowlist{"expected = 1\n", "1: 'expected' must be a list of tables, written [[expected]]"},
        BadAllowlist{"[[expected]]\nname = = \"x\"\n",
                     "2:8: Error while parsing value: could not determine value type"}));

// ---- Small pure parts ---------------------------------------------------------------

TEST(UnitOfCgroupTest, LastServiceOrScope) {
    EXPECT_EQ(unit_of_cgroup("0::/system.slice/cilium.service\n"), "cilium.service");
    EXPECT_EQ(unit_of_cgroup("0::/user.slice/user-0.slice/user@0.service/app.slice/foo.service\n"), "foo.service");
    EXPECT_EQ(unit_of_cgroup("0::/user.slice/user-0.slice/session-3.scope\n"), "session-3.scope");
    EXPECT_EQ(unit_of_cgroup("0::/system.slice/docker.service/payload\n"), "docker.service");
    EXPECT_EQ(unit_of_cgroup("0::/\n"), "");
    EXPECT_EQ(unit_of_cgroup("12:cpu:/x\n1:name=systemd:/system.slice/old.service\n"), "old.service");
    EXPECT_EQ(unit_of_cgroup(""), "");
}

TEST(WallTimeTest, BootTimeBecomesWallClock) {
    // Booted at 2026-12-03T10:00:00Z; the program was loaded 90 s after boot.
    const int64_t boot_wall_ns = 1796292000LL * 1000000000;
    const int64_t now_boot_ns = 3600LL * 1000000000;
    const int64_t wall = boot_time_to_wall_ns(90ULL * 1000000000, boot_wall_ns + now_boot_ns, now_boot_ns);
    EXPECT_EQ(wall, boot_wall_ns + 90LL * 1000000000);
    EXPECT_EQ(format_utc(wall), "2026-12-03T10:01:30Z");
    EXPECT_EQ(format_utc(wall + 999999999), "2026-12-03T10:01:30Z");  // whole seconds, never rounded up
}

// ---- Classification -------------------------------------------------------------------

constexpr const char* kRoot = "/sys/fs/bpf/bpfwarden";
constexpr const char* kDaemon = "/usr/sbin/bpfwardend";

HolderProcess holder(pid_t pid, const std::string& comm, const std::string& exe, const std::string& unit = "") {
    return {{pid, comm, exe}, unit};
}

ProgramRecord program(uint32_t id, const std::string& name, uint32_t type = BPF_PROG_TYPE_TRACEPOINT) {
    ProgramRecord p;
    p.id = id;
    p.name = name;
    p.type = type;
    p.tag = "00112233445566" + std::to_string(10 + id % 90);
    return p;
}

LinkRecord link(uint32_t id, uint32_t prog_id, std::vector<std::string> pins = {}) {
    LinkRecord l;
    l.id = id;
    l.prog_id = prog_id;
    l.pins = std::move(pins);
    return l;
}

MapRecord map(uint32_t id, const std::string& name) {
    MapRecord m;
    m.id = id;
    m.name = name;
    return m;
}

class ClassifyTest : public ::testing::Test {
protected:
    Inventory inventory;
    OwnSide own{kRoot, {kDaemon, "/usr/sbin/bpfwarden-watchdog"}};
    Allowlist allowlist;

    // Adds the cross references take_bpf_inventory() makes, then classifies.
    void run() {
        for (const auto& l : inventory.links)
            for (auto& p : inventory.programs)
                if (p.id == l.prog_id)
                    p.link_ids.push_back(l.id);
        for (const auto& p : inventory.programs)
            for (uint32_t map_id : p.map_ids)
                for (auto& m : inventory.maps)
                    if (m.id == map_id)
                        m.used_by.push_back(p.id);
        inventory.bpffs_mounts = {"/sys/fs/bpf"};
        classify(inventory, own, allowlist);
    }
    ObjectOwner owner_of_program(uint32_t id) const { return inventory.program(id)->owner.owner; }
    const std::string& reason_of_program(uint32_t id) const { return inventory.program(id)->owner.reason; }
};

TEST_F(ClassifyTest, OursByPinOrLinkPinNeverByName) {
    inventory.programs = {program(1, "bw_file_open"), program(2, "bw_file_open"), program(3, "bw_tp_exec")};
    inventory.programs[2].pins = {"/sys/fs/bpf/bpfwarden/progs/x"};
    inventory.links = {link(10, 1, {"/sys/fs/bpf/bpfwarden/links/bw_file_open"}),
                       link(11, 2, {"/sys/fs/bpf/attacker/bw_file_open"})};
    run();
    EXPECT_EQ(owner_of_program(1), ObjectOwner::Bpfwarden);
    EXPECT_MENTIONS(reason_of_program(1), "its link 10 is pinned at /sys/fs/bpf/bpfwarden/links/bw_file_open");
    EXPECT_EQ(owner_of_program(2), ObjectOwner::Unknown);  // our program's name, not our pin
    EXPECT_EQ(owner_of_program(3), ObjectOwner::Bpfwarden);
    EXPECT_EQ(inventory.link(11)->owner.owner, ObjectOwner::Unknown);
}

TEST_F(ClassifyTest, APinRootPrefixIsNotThePinRoot) {
    inventory.programs = {program(1, "x")};
    inventory.programs[0].pins = {"/sys/fs/bpf/bpfwarden-evil/x", "/sys/fs/bpf/bpfwarden/../elsewhere/x"};
    run();
    EXPECT_EQ(owner_of_program(1), ObjectOwner::Unknown);
}

TEST_F(ClassifyTest, OursByHolderExecutable) {
    inventory.programs = {program(1, "a"), program(2, "b"), program(3, "c")};
    inventory.programs[0].holders = {holder(812, "bpfwardend", kDaemon, "bpfwardend.service")};
    inventory.programs[1].holders = {holder(813, "bpfwardend", std::string(kDaemon) + " (deleted)")};
    inventory.programs[2].holders = {holder(814, "bpfwardend", "/tmp/bpfwardend")};  // a copy elsewhere
    run();
    EXPECT_EQ(owner_of_program(1), ObjectOwner::Bpfwarden);
    EXPECT_MENTIONS(reason_of_program(1), "held by pid 812 (bpfwardend, /usr/sbin/bpfwardend, bpfwardend.service)");
    EXPECT_EQ(owner_of_program(2), ObjectOwner::Bpfwarden);
    EXPECT_EQ(owner_of_program(3), ObjectOwner::Unknown);
}

TEST_F(ClassifyTest, Systemd) {
    inventory.programs = {program(1, "anything"),
                          program(2, "sd_devices", BPF_PROG_TYPE_CGROUP_DEVICE),
                          program(3, "sd_devices", BPF_PROG_TYPE_KPROBE),
                          program(4, "sd_fw_ingress", BPF_PROG_TYPE_CGROUP_SKB),
                          program(5, "n"),
                          program(6, "m")};
    inventory.programs[0].holders = {holder(1, "systemd", "/usr/lib/systemd/systemd")};
    inventory.programs[3].holders = {holder(4242, "evil", "/tmp/evil")};  // systemd's name, someone else's fd
    inventory.programs[4].holders = {holder(99, "systemd-nsresou", "/usr/lib/systemd/systemd-nsresourced")};
    inventory.programs[5].pins = {"/sys/fs/bpf/systemd/x"};
    run();
    EXPECT_EQ(owner_of_program(1), ObjectOwner::Systemd);
    EXPECT_EQ(reason_of_program(1), "held by PID 1 (systemd)");
    EXPECT_EQ(owner_of_program(2), ObjectOwner::Systemd);
    EXPECT_MENTIONS(reason_of_program(2), "systemd's program 'sd_devices' (cgroup_device)");
    EXPECT_EQ(owner_of_program(3), ObjectOwner::Unknown);  // name without the type
    EXPECT_EQ(owner_of_program(4), ObjectOwner::Unknown);
    EXPECT_EQ(owner_of_program(5), ObjectOwner::Systemd);
    EXPECT_EQ(owner_of_program(6), ObjectOwner::Systemd);
}

TEST_F(ClassifyTest, KernelPreloadIterators) {
    inventory.programs = {program(1, "dump_bpf_map", BPF_PROG_TYPE_TRACING)};
    inventory.links = {link(5, 1, {"/sys/fs/bpf/maps.debug"})};
    run();
    EXPECT_EQ(owner_of_program(1), ObjectOwner::Kernel);
    EXPECT_EQ(inventory.link(5)->owner.owner, ObjectOwner::Kernel);
}

TEST_F(ClassifyTest, OursWinsOverEverythingElse) {
    inventory.programs = {program(1, "x")};
    inventory.programs[0].holders = {holder(1, "systemd", "/usr/lib/systemd/systemd")};
    inventory.programs[0].pins = {"/sys/fs/bpf/bpfwarden/maps/x"};
    run();
    EXPECT_EQ(owner_of_program(1), ObjectOwner::Bpfwarden);
}

TEST_F(ClassifyTest, AllowlistEveryGivenFieldMustMatch) {
    allowlist.source = kSource;
    allowlist.entries = {{"cilium_host", "", "", "the CNI", "inv.toml:2"},
                         {"", "0011223344556612", "", "", "inv.toml:6"},
                         {"agent", "", "/usr/bin/agent", "", "inv.toml:9"},
                         {"", "", "agent.service", "", "inv.toml:12"}};
    inventory.programs = {program(1, "cilium_host"), program(2, "tagged"),    program(3, "agent"),
                          program(4, "agent"),       program(5, "unit_held"), program(6, "cilium_hos")};
    inventory.programs[2].holders = {holder(300, "agent", "/usr/bin/agent")};
    inventory.programs[3].holders = {holder(301, "agent", "/tmp/agent")};
    inventory.links = {link(20, 5)};
    inventory.links[0].holders = {holder(302, "x", "/opt/x", "agent.service")};  // owner through its link
    run();
    EXPECT_EQ(owner_of_program(1), ObjectOwner::Allowlisted);
    EXPECT_EQ(reason_of_program(1), "matches the allowlist entry at inv.toml:2: the CNI");
    EXPECT_EQ(owner_of_program(2), ObjectOwner::Allowlisted);  // tag 0011223344556612
    EXPECT_EQ(owner_of_program(3), ObjectOwner::Allowlisted);
    EXPECT_EQ(owner_of_program(4), ObjectOwner::Unknown);  // right name, wrong owner
    EXPECT_EQ(owner_of_program(5), ObjectOwner::Allowlisted);
    EXPECT_EQ(inventory.link(20)->owner.owner, ObjectOwner::Allowlisted);
    EXPECT_EQ(owner_of_program(6), ObjectOwner::Unknown);  // names match exactly
}

TEST_F(ClassifyTest, SomeoneElsesLinkToOurProgramIsUnknown) {
    inventory.programs = {program(1, "bw_file_open")};
    inventory.links = {link(10, 1, {"/sys/fs/bpf/bpfwarden/links/bw_file_open"}), link(11, 1)};
    run();
    EXPECT_EQ(owner_of_program(1), ObjectOwner::Bpfwarden);
    EXPECT_EQ(inventory.link(10)->owner.owner, ObjectOwner::Bpfwarden);
    EXPECT_EQ(inventory.link(11)->owner.owner, ObjectOwner::Unknown);
    EXPECT_MENTIONS(inventory.link(11)->owner.reason, "attaches bpfwarden's program 1 'bw_file_open'");
}

TEST_F(ClassifyTest, MapsFollowTheirPrograms) {
    allowlist.entries = {{"orphan", "", "", "", "inv.toml:2"},
                         {"tagged_orphan", "0011223344556612", "", "", "inv.toml:5"}};
    inventory.programs = {program(1, "ours"), program(2, "foreign")};
    inventory.programs[0].pins = {"/sys/fs/bpf/bpfwarden/x"};
    inventory.programs[0].map_ids = {100, 101};
    inventory.programs[1].map_ids = {101, 102};
    inventory.maps = {map(100, "a"), map(101, "shared"), map(102, "theirs"), map(103, "orphan"),
                      map(104, "tagged_orphan")};
    run();
    EXPECT_EQ(inventory.map(100)->owner.owner, ObjectOwner::Bpfwarden);
    EXPECT_EQ(inventory.map(101)->owner.owner, ObjectOwner::Bpfwarden);
    EXPECT_EQ(inventory.map(102)->owner.owner, ObjectOwner::Unknown);
    EXPECT_EQ(inventory.map(103)->owner.owner, ObjectOwner::Allowlisted);
    EXPECT_EQ(inventory.map(104)->owner.owner, ObjectOwner::Unknown);  // a tag names programs only
}

// ---- Containment plan -----------------------------------------------------------------

class PlanTest : public ClassifyTest {
protected:
    void SetUp() override {
        inventory.programs = {program(1, "ours"), program(2, "foreign"), program(3, "other"), program(4, "pid1_prog")};
        inventory.programs[0].pins = {"/sys/fs/bpf/bpfwarden/x"};
        inventory.programs[0].map_ids = {100};
        inventory.programs[1].pins = {"/sys/fs/bpf/evil/prog"};
        inventory.programs[1].map_ids = {100, 101, 102, 103, 104};
        inventory.programs[2].map_ids = {102};
        inventory.programs[3].holders = {holder(1, "init", "/sbin/init")};
        inventory.links = {link(10, 2, {"/sys/fs/bpf/evil/link"}), link(11, 2)};
        inventory.maps = {map(100, "our_map"), map(101, "stray"), map(102, "shared"), map(103, "unpinned"),
                          map(104, "solo")};
        inventory.maps[0].pins = {"/sys/fs/bpf/bpfwarden/maps/our_map"};
        // Pinned under our root as well: ours, whoever else uses it.
        inventory.maps[1].pins = {"/sys/fs/bpf/evil/stray", "/sys/fs/bpf/bpfwarden/stray"};
        inventory.maps[2].pins = {"/sys/fs/bpf/evil/shared"};
        inventory.maps[4].pins = {"/sys/fs/bpf/evil/solo"};
        run();
    }
};

TEST_F(PlanTest, DetachesLinksAndRemovesOnlyWhatIsTheProgramsAlone) {
    auto plan = plan_containment(inventory, 2, own);
    ASSERT_OK(plan);
    EXPECT_EQ(plan->links, (std::vector<uint32_t>{10, 11}));
    std::vector<std::string> paths;
    for (const auto& pin : plan->pins)
        paths.push_back(pin.path);
    EXPECT_EQ(paths,
              (std::vector<std::string>{"/sys/fs/bpf/evil/prog", "/sys/fs/bpf/evil/link", "/sys/fs/bpf/evil/solo"}));
    EXPECT_EQ(plan->pins[0].type, BpfObjectType::Program);
    EXPECT_EQ(plan->pins[1].type, BpfObjectType::Link);
    EXPECT_EQ(plan->pins[1].id, 10u);
    EXPECT_EQ(plan->pins[2].type, BpfObjectType::Map);
    EXPECT_EQ(plan->pins[2].id, 104u);
    ASSERT_EQ(plan->kept.size(), 3u);
    EXPECT_MENTIONS(plan->kept[0], "map 100 'our_map': also used by program 1");
    EXPECT_MENTIONS(plan->kept[1], "map 101 'stray': bpfwarden's (pinned at /sys/fs/bpf/bpfwarden/stray");
    EXPECT_MENTIONS(plan->kept[2], "map 102 'shared': also used by program 3; its pins are left");
}

TEST_F(PlanTest, RefusesOursAndPid1sAndWhatDoesNotExist) {
    auto ours = plan_containment(inventory, 1, own);
    ASSERT_FALSE(ours.has_value());
    EXPECT_EQ(ours.error().kind(), ErrorKind::PermissionDenied);
    EXPECT_MENTIONS(ours.error().message(), "program 1 'ours' (tracepoint) is bpfwarden's own");
    auto pid1 = plan_containment(inventory, 4, own);
    ASSERT_FALSE(pid1.has_value());
    EXPECT_MENTIONS(pid1.error().message(), "is systemd's (held by PID 1 (init)): contain refuses PID 1's programs");
    auto missing = plan_containment(inventory, 77, own);
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().kind(), ErrorKind::NotFound);
    EXPECT_EQ(missing.error().message(), "no BPF program has id 77");
}

}  // namespace
}  // namespace bpfwarden
