// The watchdog's view of kernel state, against the real tracepoint objects
// loaded into a private pin root: inspect_link for every problem this kernel
// lets us create, what BPF_LINK_DETACH does to our link types, map_digest of
// the real pinned maps, and derive_identities against what load_attach_pin
// loads.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

// struct bw_rate_state: the rate_limit map's value.
#include "bpfwarden/abi.h"
#include "host_fixture.h"
#include "inspection/map_digest.h"
#include "inspection/pin_inspector.h"
#include "inspection/program_identity.h"
#include "loading/bpf_objects.h"
#include "policy/policy_maps.h"
#include "support/unique_fd.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

bool kernel_at_least(int major, int minor) {
    utsname name{};
    uname(&name);
    int have_major = 0, have_minor = 0;
    std::sscanf(name.release, "%d.%d", &have_major, &have_minor);
    return have_major > major || (have_major == major && have_minor >= minor);
}

struct LinkIds {
    uint32_t link_id = 0, prog_id = 0;
};

// Read independently of the code under test (libbpf's UAPI struct).
LinkIds link_ids_of_pin(const std::string& pin) {
    UniqueFd fd(bpf_obj_get(pin.c_str()));
    EXPECT_TRUE(fd) << "open " << pin << ": " << std::strerror(errno);
    bpf_link_info info{};
    __u32 len = sizeof(info);
    EXPECT_EQ(bpf_obj_get_info_by_fd(fd.get(), &info, &len), 0);
    return {info.id, info.prog_id};
}

uint32_t map_id_of_pin(const std::string& pin) {
    UniqueFd fd(bpf_obj_get(pin.c_str()));
    EXPECT_TRUE(fd) << "open " << pin << ": " << std::strerror(errno);
    bpf_map_info info{};
    __u32 len = sizeof(info);
    EXPECT_EQ(bpf_obj_get_info_by_fd(fd.get(), &info, &len), 0);
    return info.id;
}

// While the returned fd is open the kernel counts program runs (run_cnt).
UniqueFd enable_run_stats() { return UniqueFd(bpf_enable_stats(BPF_STATS_RUN_TIME)); }

uint64_t run_count(uint32_t prog_id) {
    UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (!fd || bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
        return 0;
    return info.run_cnt;
}

// Every entry of a map, read with plain libbpf calls.
std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> entries_of(int fd) {
    bpf_map_info info{};
    __u32 len = sizeof(info);
    EXPECT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> out;
    std::vector<uint8_t> key(info.key_size), next(info.key_size);
    for (bool first = true; bpf_map_get_next_key(fd, first ? nullptr : key.data(), next.data()) == 0; first = false) {
        key = next;
        std::vector<uint8_t> value(info.value_size);
        if (bpf_map_lookup_elem(fd, key.data(), value.data()) == 0)
            out.emplace_back(key, value);
    }
    return out;
}

class PinInspectorHostTest : public HostPinsTest {
protected:
    void TearDown() override {
        remove_test_pin_root(other_);
        HostPinsTest::TearDown();
    }

    void load(const std::string& name, const PinLayout& pins, LoadConfig config = {}) {
        auto image = read_image(BPFWARDEN_TEST_IMAGE_DIR, name);
        ASSERT_OK(image);
        ASSERT_OK(load_attach_pin(spec_named(name), *image, pins, config));
    }
    void load(const std::string& name, LoadConfig config = {}) { load(name, pins_, config); }

    static ProgramIdentity derived_identity(const std::string& name) {
        auto image = read_image(BPFWARDEN_TEST_IMAGE_DIR, name);
        EXPECT_OK(image);
        // The programs this host runs: no BPF LSM (an object's LSM form stays out).
        auto identities = derive_identities(*image, [&](std::string_view program) {
            for (const ProgramSpec* available : available_programs(spec_named(name), false))
                if (program == available->name)
                    return true;
            return false;
        });
        EXPECT_OK(identities);
        if (!identities || identities->size() != 1)
            return {};
        return identities->front();
    }

    ExpectedProgram expected(const std::string& name) const {
        const ObjectSpec& spec = spec_named(name);
        return ExpectedProgram{pins_.link_pin(spec.programs.front().name).string(), derived_identity(name),
                               spec.programs.front().hook};
    }

    PinInspector inspector_;
    // A second private pin root, for an independent copy of an object.
    PinLayout other_{"/sys/fs/bpf/bpfwarden-test-" + std::to_string(getpid()) + "-inspect"};
};

TEST_F(PinInspectorHostTest, HealthyLinksReportNoneWithTheirIds) {
    load("bpf_audit");
    load("exec_audit");
    for (const char* name : {"bpf_audit", "exec_audit"}) {
        ExpectedProgram want = expected(name);
        LinkStatus status = inspector_.inspect_link(want);
        EXPECT_EQ(status.problem, LinkProblem::None) << name << ": " << status.detail;
        EXPECT_EQ(status.detail, "") << name;
        LinkIds ids = link_ids_of_pin(want.pin);
        EXPECT_NE(ids.link_id, 0u);
        EXPECT_EQ(status.link_id, ids.link_id) << name;
        EXPECT_EQ(status.prog_id, ids.prog_id) << name;
        EXPECT_EQ(status.actual, want.identity) << name;
        EXPECT_EQ(status.actual.name, spec_named(name).programs.front().name);
        EXPECT_EQ(status.actual.type, uint32_t(BPF_PROG_TYPE_TRACEPOINT));
    }
}

TEST_F(PinInspectorHostTest, HealthyLinkUsingTheExpectedMapsIsNone) {
    load("bpf_audit");
    ExpectedProgram want = expected("bpf_audit");
    // The audit trail's ring and per-uid budget (not the rule matches' ones).
    want.map_ids = {map_id_of_pin(pins_.map_pin(kEventsMap)), map_id_of_pin(pins_.map_pin(kTrailLimitMap)),
                    map_id_of_pin(pins_.counters_pin("bpf_audit"))};
    LinkStatus status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::None) << status.detail;
}

TEST_F(PinInspectorHostTest, PinMissingWhenTheLinkPinIsGone) {
    load("bpf_audit");
    ExpectedProgram want = expected("bpf_audit");
    ASSERT_EQ(unlink(want.pin.c_str()), 0);
    LinkStatus status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::PinMissing) << status.detail;
    EXPECT_NE(status.detail.find(want.pin), std::string::npos) << status.detail;
    EXPECT_EQ(to_string(status.problem), "pin-missing");
}

TEST_F(PinInspectorHostTest, WrongProgramWhenAnotherLinkIsPinnedAtOurPath) {
    load("bpf_audit");
    load("exec_audit");
    ExpectedProgram want = expected("bpf_audit");
    ProgramIdentity exec_identity = derived_identity("exec_audit");
    ASSERT_NE(exec_identity.tag, want.identity.tag);
    {
        auto exec_link = PinLayout::open_pin(pins_.link_pin("bw_tp_exec"));
        ASSERT_OK(exec_link);
        ASSERT_OK(pins_.pin_replacing(exec_link->get(), want.pin));
    }
    LinkStatus status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::WrongProgram) << status.detail;
    EXPECT_NE(status.detail.find(tag_hex(exec_identity.tag)), std::string::npos) << status.detail;
    EXPECT_NE(status.detail.find(tag_hex(want.identity.tag)), std::string::npos) << status.detail;
    EXPECT_EQ(status.actual, exec_identity);
    EXPECT_EQ(status.link_id, link_ids_of_pin(pins_.link_pin("bw_tp_exec")).link_id);
}

TEST_F(PinInspectorHostTest, WrongProgramWhenOurImageRunsWithMapsOfItsOwn) {
    // The same signed image loaded with other maps has our tag: only the map
    // ids tell it apart.
    load("bpf_audit");
    ASSERT_OK(other_.create());
    load("bpf_audit", other_);
    ExpectedProgram want = expected("bpf_audit");
    want.map_ids = {map_id_of_pin(pins_.map_pin(kRateLimitMap))};
    {
        auto impostor = PinLayout::open_pin(other_.link_pin("bw_tp_bpf"));
        ASSERT_OK(impostor);
        ASSERT_OK(pins_.pin_replacing(impostor->get(), want.pin));
    }
    LinkStatus status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::WrongProgram) << status.detail;
    EXPECT_NE(status.detail.find("does not use map id " + std::to_string(want.map_ids[0])), std::string::npos)
        << status.detail;
    EXPECT_EQ(status.actual, want.identity) << "same image, same tag";

    want.map_ids.clear();
    EXPECT_EQ(inspector_.inspect_link(want).problem, LinkProblem::None)
        << "without map ids the copy passes: the tag alone cannot tell";
}

TEST_F(PinInspectorHostTest, NotALinkWhenAMapOrProgramIsPinnedAtTheLinkPath) {
    load("bpf_audit");
    ExpectedProgram want = expected("bpf_audit");
    LinkIds ids = link_ids_of_pin(want.pin);
    {
        auto map = PinLayout::open_pin(pins_.map_pin(kRateLimitMap));
        ASSERT_OK(map);
        ASSERT_OK(pins_.pin_replacing(map->get(), want.pin));
    }
    LinkStatus status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::NotALink) << status.detail;
    EXPECT_NE(status.detail.find("a map"), std::string::npos) << status.detail;

    UniqueFd prog(bpf_prog_get_fd_by_id(ids.prog_id));
    ASSERT_TRUE(prog) << std::strerror(errno);
    ASSERT_OK(pins_.pin_replacing(prog.get(), want.pin));
    status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::NotALink) << status.detail;
    EXPECT_NE(status.detail.find("a program"), std::string::npos) << status.detail;

    ASSERT_EQ(unlink(want.pin.c_str()), 0);
    ASSERT_EQ(mkdir(want.pin.c_str(), 0700), 0);
    status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::NotALink) << status.detail;
}

TEST_F(PinInspectorHostTest, WrongHookWhenTheLinkIsAttachedElsewhere) {
    load("bpf_audit");
    ExpectedProgram want = expected("bpf_audit");
    want.hook = "tracepoint/sched/sched_process_exec";
    LinkStatus status = inspector_.inspect_link(want);
    if (kernel_at_least(6, 6)) {
        // bpf_link_info.perf_event names the tracepoint from 6.6 on.
        EXPECT_EQ(status.problem, LinkProblem::WrongHook) << status.detail;
        EXPECT_NE(status.detail.find("'sys_enter_bpf'"), std::string::npos) << status.detail;
    } else {
        EXPECT_EQ(status.problem, LinkProblem::None) << status.detail;
        EXPECT_NE(status.detail.find("not verified"), std::string::npos) << status.detail;
    }

    want.hook = "lsm/file_open";
    status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::WrongHook) << status.detail;
    EXPECT_NE(status.detail.find("perf_event link"), std::string::npos) << status.detail;
}

// BPF_LINK_DETACH on our tracepoint link. Where the kernel supports it the
// inspector must report Detached; on 6.1/6.12/6.18 perf_event links have no
// .detach: the kernel refuses (EOPNOTSUPP) and the program keeps running.
TEST_F(PinInspectorHostTest, DetachOfATracepointLinkIsRefusedOrReported) {
    load("bpf_audit");
    ExpectedProgram want = expected("bpf_audit");
    UniqueFd stats = enable_run_stats();
    ASSERT_TRUE(stats) << "BPF_ENABLE_STATS: " << std::strerror(errno);
    UniqueFd link(bpf_obj_get(want.pin.c_str()));
    ASSERT_TRUE(link);
    int ret = bpf_link_detach(link.get());
    int err = ret ? errno : 0;
    LinkStatus status = inspector_.inspect_link(want);
    if (ret == 0) {
        EXPECT_EQ(status.problem, LinkProblem::Detached) << status.detail;
        return;
    }
    EXPECT_EQ(err, EOPNOTSUPP) << std::strerror(err);
    EXPECT_EQ(status.problem, LinkProblem::None) << status.detail;
    // Still attached: our own bpf() calls still run the program.
    uint64_t before = run_count(status.prog_id);
    for (int i = 0; i < 5; ++i)
        (void)bpf_obj_get("/sys/fs/bpf/bpfwarden-no-such-pin");
    EXPECT_GE(run_count(status.prog_id), before + 5);
}

// The same for a raw tracepoint link (the kind tp_btf programs get too),
// built from a two-instruction program: no object of ours uses one yet.
TEST_F(PinInspectorHostTest, DetachOfARawTracepointLinkIsRefusedOrReported) {
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = 0
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},                   // exit
    };
    UniqueFd prog(bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, "bw_raw_probe", "GPL", insns, 2, nullptr));
    ASSERT_TRUE(prog) << "load raw tracepoint program: " << std::strerror(errno);
    UniqueFd link(bpf_raw_tracepoint_open("sys_enter", prog.get()));
    ASSERT_TRUE(link) << "attach raw_tp/sys_enter: " << std::strerror(errno);
    const std::string pin = pins_.link_pin("bw_raw_probe").string();
    ASSERT_OK(pins_.pin_replacing(link.get(), pin));
    auto identity = identity_of_program_fd(prog.get());
    ASSERT_OK(identity);
    EXPECT_EQ(identity->name, "bw_raw_probe");
    ExpectedProgram want{pin, *identity, "raw_tp/sys_enter"};

    LinkStatus status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::None) << status.detail;
    want.hook = "raw_tp/sys_exit";
    status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::WrongHook) << status.detail;
    EXPECT_NE(status.detail.find("'sys_enter'"), std::string::npos) << status.detail;
    want.hook = "raw_tp/sys_enter";

    UniqueFd stats = enable_run_stats();
    ASSERT_TRUE(stats);
    int ret = bpf_link_detach(link.get());
    int err = ret ? errno : 0;
    status = inspector_.inspect_link(want);
    if (ret == 0) {
        EXPECT_EQ(status.problem, LinkProblem::Detached) << status.detail;
        return;
    }
    EXPECT_EQ(err, EOPNOTSUPP) << std::strerror(err);
    EXPECT_EQ(status.problem, LinkProblem::None) << status.detail;
    uint64_t before = run_count(status.prog_id);
    for (int i = 0; i < 5; ++i)
        (void)syscall(SYS_getppid);
    EXPECT_GE(run_count(status.prog_id), before + 5) << "the program stopped running";
}

// The maps of the real objects, with the links removed first so that no
// program writes to them while they are read (bpf_audit updates rate_limit
// on every bpf() call, this test's own included).
class PinInspectorMapHostTest : public PinInspectorHostTest {
protected:
    void SetUp() override {
        PinInspectorHostTest::SetUp();
        if (HasFatalFailure())
            return;
        load("bpf_audit");
        load("exec_audit");
        for (const char* program : {"bw_tp_bpf", "bw_tp_exec"})
            ASSERT_EQ(unlink(pins_.link_pin(program).c_str()), 0);
        wait_until_programs_stopped();
    }

    // A link is released asynchronously after its last reference goes: wait
    // until the programs' counters stop moving (bpf() calls keep happening).
    void wait_until_programs_stopped() {
        auto counters = [this] { return read_counters(pins_).value_or(bw_counters{}).events; };
        for (int attempt = 0; attempt < 40; ++attempt) {
            uint64_t before = counters();
            usleep(50 * 1000);
            if (counters() == before)
                return;
        }
        FAIL() << "the tracepoint programs kept running after their links were unpinned";
    }
};

TEST_F(PinInspectorMapHostTest, RateLimitDigestFollowsUpdatesAndReverts) {
    auto map = PinLayout::open_pin(pins_.map_pin(kRateLimitMap));
    ASSERT_OK(map);
    auto original = map_digest(map->get());
    ASSERT_OK(original);
    EXPECT_EQ(*map_digest(map->get()), *original) << "digest of an unchanged map moved";
    EXPECT_EQ(*original, digest_of_entries(sizeof(uint32_t), sizeof(bw_rate_state), entries_of(map->get())))
        << "map_digest disagrees with the definition over the same entries";

    uint32_t tgid = 0x7ffffff0;  // no such process
    bw_rate_state state{123456789, 3, 0};
    ASSERT_EQ(bpf_map_update_elem(map->get(), &tgid, &state, BPF_NOEXIST), 0) << std::strerror(errno);
    auto added = map_digest(map->get());
    ASSERT_OK(added);
    EXPECT_NE(*added, *original);

    state.used = 4;  // one value bit pattern changed
    ASSERT_EQ(bpf_map_update_elem(map->get(), &tgid, &state, BPF_EXIST), 0);
    auto changed = map_digest(map->get());
    ASSERT_OK(changed);
    EXPECT_NE(*changed, *added);

    ASSERT_EQ(bpf_map_delete_elem(map->get(), &tgid), 0);
    auto reverted = map_digest(map->get());
    ASSERT_OK(reverted);
    EXPECT_EQ(*reverted, *original);
}

// An array map no program writes to: the live counters of a loaded object
// change under any bpf() call on the host (the tracepoint counts it), so
// they cannot show that a digest returns to its value after a revert.
TEST_F(PinInspectorMapHostTest, ArrayDigestFollowsUpdatesAndReverts) {
    constexpr uint32_t kValueSize = sizeof(bw_counters);
    UniqueFd map(bpf_map_create(BPF_MAP_TYPE_ARRAY, "bw_test_array", 4, kValueSize, 1, nullptr));
    ASSERT_TRUE(map) << std::strerror(errno);
    uint32_t zero = 0;
    std::vector<uint8_t> saved(kValueSize, 0x11), value = saved;
    ASSERT_EQ(bpf_map_update_elem(map.get(), &zero, saved.data(), BPF_ANY), 0);
    auto original = map_digest(map.get());
    ASSERT_OK(original);
    auto entries = entries_of(map.get());
    ASSERT_EQ(entries.size(), 1u) << "a one-entry array";
    EXPECT_EQ(*original, digest_of_entries(4, kValueSize, entries));

    value[0] ^= 1;
    ASSERT_EQ(bpf_map_update_elem(map.get(), &zero, value.data(), BPF_ANY), 0);
    auto changed = map_digest(map.get());
    ASSERT_OK(changed);
    EXPECT_NE(*changed, *original);
    ASSERT_EQ(bpf_map_update_elem(map.get(), &zero, saved.data(), BPF_ANY), 0);
    EXPECT_EQ(*map_digest(map.get()), *original);
}

TEST_F(PinInspectorMapHostTest, BatchAndKeyByKeyReadsAgreeWithTheDefinition) {
    // A policy-sized hash map (16-byte keys, 8-byte values) and the exact
    // contents it should hold.
    UniqueFd map(bpf_map_create(BPF_MAP_TYPE_HASH, "bw_test_policy", 16, 8, 1024, nullptr));
    ASSERT_TRUE(map) << std::strerror(errno);
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> desired;
    for (uint32_t i = 0; i < 100; ++i) {
        std::vector<uint8_t> key(16, 0), value(8, 0);
        uint32_t group = i % 10;  // ten keys share their first eight bytes
        std::memcpy(key.data(), &group, sizeof(group));
        key[8] = uint8_t(i * 13);
        value[0] = uint8_t(i);
        value[7] = 0x80;
        ASSERT_EQ(bpf_map_update_elem(map.get(), key.data(), value.data(), BPF_NOEXIST), 0);
        desired.emplace_back(std::move(key), std::move(value));
    }
    const Digest want = digest_of_entries(16, 8, desired);
    for (MapReadMethod method : {MapReadMethod::Auto, MapReadMethod::Batch, MapReadMethod::KeyByKey}) {
        auto digest = map_digest(map.get(), method);
        ASSERT_OK(digest);
        EXPECT_EQ(*digest, want) << "method " << int(method);
    }
    // An array map holds every index.
    UniqueFd array(bpf_map_create(BPF_MAP_TYPE_ARRAY, "bw_test_array", 4, 8, 3, nullptr));
    ASSERT_TRUE(array);
    uint32_t one = 1;
    uint64_t value = 0xdeadbeef;
    ASSERT_EQ(bpf_map_update_elem(array.get(), &one, &value, BPF_ANY), 0);
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> array_contents;
    for (uint32_t i = 0; i < 3; ++i) {
        uint64_t v = i == 1 ? value : 0;
        array_contents.emplace_back(std::vector<uint8_t>((uint8_t*)&i, (uint8_t*)&i + 4),
                                    std::vector<uint8_t>((uint8_t*)&v, (uint8_t*)&v + 8));
    }
    for (MapReadMethod method : {MapReadMethod::Batch, MapReadMethod::KeyByKey})
        EXPECT_EQ(*map_digest(array.get(), method), digest_of_entries(4, 8, array_contents)) << int(method);
}

TEST_F(PinInspectorMapHostTest, PerCpuAndRingBufferMapsAreRefused) {
    UniqueFd per_cpu(bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "bw_test_pcpu", 4, 8, 16, nullptr));
    ASSERT_TRUE(per_cpu) << std::strerror(errno);
    EXPECT_ERRNO(map_digest(per_cpu.get()), ENOTSUP);
    auto events = PinLayout::open_pin(pins_.map_pin(kEventsMap));
    ASSERT_OK(events);
    EXPECT_ERRNO(map_digest(events->get()), ENOTSUP);
}

TEST_F(PinInspectorHostTest, DerivedTagsAreStableAndMatchWhatLoadAttachPinLoads) {
    ProgramIdentity first = derived_identity("bpf_audit");
    ProgramIdentity second = derived_identity("bpf_audit");
    EXPECT_EQ(first, second);
    EXPECT_EQ(first.name, "bw_tp_bpf");
    EXPECT_NE(first.tag, (std::array<uint8_t, 8>{}));

    // Loaded with another .rodata configuration than the default the
    // derivation leaves in place: same tag (map-value references are zeroed
    // before hashing).
    LoadConfig config;
    config.rate_limit_burst = 5;
    config.rate_limit_window_ns = 60'000'000'000ULL;
    load("bpf_audit", config);
    ExpectedProgram want = expected("bpf_audit");
    LinkStatus status = inspector_.inspect_link(want);
    EXPECT_EQ(status.problem, LinkProblem::None) << status.detail;
    EXPECT_EQ(tag_hex(status.actual.tag), tag_hex(first.tag));

    // And a different program has a different tag.
    EXPECT_NE(derived_identity("exec_audit").tag, first.tag);
}

TEST_F(PinInspectorHostTest, DeriveIdentitiesOfAnLsmImageLoadsOrReportsTheRefusal) {
    auto image = read_image(BPFWARDEN_TEST_IMAGE_DIR, "file_guard");
    ASSERT_OK(image);
    auto identities = derive_identities(*image);
    if (identities) {
        ASSERT_FALSE(identities->empty());
        EXPECT_EQ(identities->front().type, uint32_t(BPF_PROG_TYPE_LSM));
    } else {
        // This development host refuses trampoline programs.
        EXPECT_EQ(identities.error().errnum(), EPERM) << identities.error().message();
    }
}

TEST_F(PinInspectorHostTest, ForeignLsmScanNamesHooksAndFindsNoneOfOurs) {
    load("bpf_audit");
    LinkIds ours = link_ids_of_pin(pins_.link_pin("bw_tp_bpf"));
    auto foreign = inspector_.foreign_lsm_programs({"file_open", "lsm/bprm_check_security", "bpf"}, {ours.prog_id});
    ASSERT_OK(foreign);
    // Nothing can attach an LSM program on this kernel; where something can,
    // whatever is listed must be on the hooks asked for.
    for (const auto& program : *foreign) {
        EXPECT_NE(program.prog_id, ours.prog_id);
        EXPECT_TRUE(program.hook == "file_open" || program.hook == "bprm_check_security" || program.hook == "bpf")
            << program.hook;
    }
    EXPECT_ERRNO(inspector_.foreign_lsm_programs({"no_such_hook"}, {}), ENOENT);
}

}  // namespace
}  // namespace bpfwarden
