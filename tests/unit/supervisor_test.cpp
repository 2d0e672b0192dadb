// The watchdog's check -> heal decisions, unprivileged: the supervisor runs
// against a fake kernel that can be broken in every way the real one can
// (link pin missing, wrong program, map drifted, frozen or gone, canary
// opened, foreign program), can refuse a heal, can be tampered with while a
// heal runs, and can report self-protection lifted.
#include "supervisor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "temp_dir.h"
#include "test_helpers.h"
#include "trust/manifest.h"
#include "trust/signature.h"

namespace bpfwarden {
namespace {

namespace fs = std::filesystem;

const ObjectSpec& spec(const char* name) { return *find_object(name); }

struct FakeMap {
    bool exists = true;
    bool frozen = false;
    Digest digest{};
};

class FakeKernel final : public WatchdogKernel {
public:
    // ---- the state a test breaks
    std::map<std::string, PinDirFacts> dirs;  // by dir; default healthy
    std::vector<std::string> moved;
    std::map<std::string, LinkProblem> links;  // by program name; default None
    std::map<std::string, FakeMap> maps;
    int canary_errno = EPERM;
    std::vector<ForeignProgram> foreign;
    SelfState self;  // default: no store, nothing lifted
    // ---- how heals go
    std::set<std::string> reload_fails;
    bool writes_take = true;
    std::function<void(const std::string& action)> on_action;  // e.g. a tamper during a heal
    // ---- what happened
    std::vector<std::string> actions;
    std::set<const ObjectSpec*> held_links;
    bool held_maps = false;
    int digests_read = 0;
    std::shared_ptr<const VerifiedImageSet> images;            // given by use_images()
    std::map<std::string, std::vector<unsigned char>> loaded;  // the image bytes each reload loaded

    void act(const std::string& action) {
        actions.push_back(action);
        if (on_action)
            on_action(action);
    }

    void use_images(std::shared_ptr<const VerifiedImageSet> given) override { images = std::move(given); }
    Result<SelfState> self_state() override { return self; }

    std::vector<PinDirFacts> pin_directories() override {
        std::vector<PinDirFacts> out;
        for (const auto& [dir, facts] : dirs)
            out.push_back(facts);
        return out;
    }
    std::vector<std::string> moved_map_pins() override { return moved; }
    LinkStatus inspect(const ExpectedObject&, const ExpectedProgram& program) override {
        LinkStatus status;
        status.problem = links[program.identity.name];
        status.prog_id =
            prog_ids.try_emplace(program.identity.name, static_cast<uint32_t>(100 + prog_ids.size())).first->second;
        if (status.problem != LinkProblem::None)
            status.detail = "broken by the test";
        return status;
    }
    PolicyMapFacts policy_map(const std::string& name, bool want_digest) override {
        PolicyMapFacts facts;
        const FakeMap& map = maps[name];
        if (!map.exists) {
            facts.missing = Error(ENOENT, "open pin 'maps/" + name + "'");
            return facts;
        }
        facts.frozen = map.frozen;
        if (want_digest) {
            ++digests_read;
            facts.digest = map.digest;
        }
        return facts;
    }
    int try_canary(const std::filesystem::path&) override { return canary_errno; }
    Result<std::vector<ForeignProgram>> foreign_programs(const std::vector<std::string>&,
                                                         const std::vector<uint32_t>&) override {
        return foreign;
    }

    Result<std::vector<std::string>> restore_pin_tree() override {
        act("restore pin tree");
        dirs.clear();
        std::vector<std::string> done;
        for (const auto& name : moved)
            done.push_back("re-pinned the held map " + name);
        moved.clear();
        return done;
    }
    // Like the live kernel: only when every program's held link can go back
    // and is ours (a missing pin, nothing else wrong).
    bool repin_held_links(const ExpectedObject& object) override {
        if (!held_links.contains(object.spec))
            return false;
        for (const auto& program : object.programs) {
            LinkProblem problem = links[program.identity.name];
            if (problem != LinkProblem::None && problem != LinkProblem::PinMissing)
                return false;
        }
        for (const auto& program : object.programs)
            links[program.identity.name] = LinkProblem::None;
        act(std::string("repin ") + object.spec->name);
        return true;
    }
    // Loads from the images given at start, when some were (as the live
    // kernel does); the decision tests below give none.
    Result<void> reload(const ObjectSpec& s) override {
        if (reload_fails.contains(s.name))
            return fail(EPERM, std::string("load ") + s.name + ": refused by the test");
        if (images) {
            auto image = images->image(s.name);
            if (!image)
                return fail(image.error());
            loaded[s.name] = (*image)->bytes;
        }
        act(std::string("reload ") + s.name);
        if (s.role == ObjectRole::Store)
            for (auto& [name, map] : maps)
                map = FakeMap{};  // fresh, empty maps
        else
            for (const auto& program : s.programs)
                links[program.name] = LinkProblem::None;
        held_links.erase(&s);
        return {};
    }
    void unpin_policy_maps() override { act("unpin policy maps"); }
    Result<void> write_policy_maps(const DesiredMaps& desired) override {
        for (const auto& check : map_checks_of(desired)) {
            if (maps[check.name].frozen)
                return fail(EPERM, "update policy map '" + check.name + "'");
            if (writes_take)
                maps[check.name].digest = check.desired;
        }
        act("write policy maps");  // after the write: a tamper in on_action lands after it
        return {};
    }
    void hold_verified(const std::vector<ExpectedObject>& objects, bool maps_too) override {
        for (const auto& object : objects) {
            bool intact = !object.programs.empty();
            for (const auto& program : object.programs)
                intact = intact && links[program.identity.name] == LinkProblem::None;
            if (intact)
                held_links.insert(object.spec);
        }
        held_maps = held_maps || maps_too;
    }
    bool holds_links() const override { return !held_links.empty(); }
    bool holds_maps() const override { return held_maps; }

    // The maps hold exactly `desired`.
    void hold_in_maps(const DesiredMaps& desired) {
        for (const auto& check : map_checks_of(desired))
            maps[check.name].digest = check.desired;
    }

private:
    std::map<std::string, uint32_t> prog_ids;
};

// `name` with the given programs of its spec (all of them for none given).
ExpectedObject expect(const char* name, std::vector<std::string> programs = {}) {
    const ObjectSpec& s = spec(name);
    ExpectedObject object{&s, {}};
    for (const ProgramSpec& program : s.programs)
        if (programs.empty() || std::find(programs.begin(), programs.end(), program.name) != programs.end())
            object.programs.push_back(
                ExpectedProgram{std::string("links/") + program.name, ProgramIdentity{program.name}, program.hook});
    return object;
}

ExpectedState fixture_state() {
    return ExpectedState(
        {expect("policy_maps"), expect("bpf_audit", {"bw_tp_bpf"}), expect("self_guard", {"bw_bpf"}),
         expect("file_guard", {"bw_file_open", "bw_inode_unlink"}), expect("exec_guard", {"bw_bprm_check"})},
        {"bpf", "file_open", "inode_unlink", "bprm_check_security"});
}

DesiredMaps policy_with(uint32_t rule_id) {
    DesiredMaps desired;
    bw_inode_key file{};
    file.dev = 1;
    file.ino = 2;
    desired.tables.file_rules[file] = plain_rule(BW_ACTION_DENY, rule_id);
    desired.tables.bpf_policy.action = BW_ACTION_DENY;
    return desired;
}

WatchdogOptions default_options() {
    WatchdogOptions options{PinLayout("/sys/fs/bpf/test"), {}, "/nonexistent", {}, {}, false, false};
    options.service.canary = "/run/canary";
    return options;
}

class SupervisorTest : public ::testing::Test {
protected:
    SupervisorTest() {
        make_supervisor(default_options());
        supervisor_->start_with(fixture_state(), true, "BPF LSM active");
        supervisor_->set_desired(policy_with(1));
        kernel_->hold_in_maps(policy_with(1));  // the maps hold the desired policy
    }

    void make_supervisor(WatchdogOptions options) {
        auto owned = std::make_unique<FakeKernel>();
        kernel_ = owned.get();
        supervisor_ = std::make_unique<Supervisor>(std::move(options), std::move(owned));
    }

    const WatchdogStatus& cycle() {
        supervisor_->run_cycle("test");
        return supervisor_->state();
    }
    bool did(const std::string& action) const {
        return std::find(kernel_->actions.begin(), kernel_->actions.end(), action) != kernel_->actions.end();
    }
    static bool mentions(const std::vector<std::string>& reasons, const std::string& needle) {
        return std::any_of(reasons.begin(), reasons.end(),
                           [&](const std::string& r) { return r.find(needle) != std::string::npos; });
    }

    FakeKernel* kernel_;
    std::unique_ptr<Supervisor> supervisor_;
};

TEST_F(SupervisorTest, HealthyChangesNothingAndHoldsWhatItVerified) {
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(state.heal_count, 0u);
    EXPECT_TRUE(kernel_->actions.empty());
    EXPECT_EQ(kernel_->held_links.size(), 4u) << "every object with programs; the store has none";
    EXPECT_TRUE(kernel_->held_maps);
    ASSERT_EQ(state.programs.size(), 5u) << "one entry per program";
    EXPECT_EQ(state.programs[0].program, "bw_tp_bpf");
    EXPECT_EQ(state.programs[2].program, "bw_file_open");
    EXPECT_EQ(state.programs[2].hook, "lsm/file_open");
    EXPECT_EQ(state.programs[3].program, "bw_inode_unlink");
    for (const auto& program : state.programs)
        EXPECT_EQ(program.status, "ok") << program.program;
}

TEST_F(SupervisorTest, MissingLinkPinGetsTheHeldLinkBack) {
    cycle();  // hold everything
    kernel_->links["bw_file_open"] = LinkProblem::PinMissing;
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(state.heal_count, 1u);
    EXPECT_EQ(state.heals_by_kind, (std::map<std::string, uint64_t>{{"link-broken", 1}}));
    EXPECT_TRUE(did("repin file_guard"));
    EXPECT_FALSE(did("reload file_guard"));
    EXPECT_NE(state.last_heal_reason.find("bw_file_open on lsm/file_open: pin-missing"), std::string::npos);
}

TEST_F(SupervisorTest, ObjectWithAProgramThatCannotBeRepinnedIsReloaded) {
    cycle();  // hold everything
    kernel_->links["bw_file_open"] = LinkProblem::PinMissing;
    kernel_->links["bw_inode_unlink"] = LinkProblem::WrongProgram;
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy) << join(state.reasons, "; ");
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"restore pin tree", "reload file_guard"}));
    EXPECT_NE(state.last_heal_reason.find("bw_inode_unlink on lsm/inode_unlink: wrong-program"), std::string::npos);
}

TEST_F(SupervisorTest, WrongProgramIsReloaded) {
    kernel_->links["bw_bprm_check"] = LinkProblem::WrongProgram;
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"restore pin tree", "reload exec_guard"}));
}

TEST_F(SupervisorTest, DriftedMapIsRewrittenInPlace) {
    kernel_->maps[kFileRulesMap].digest = Digest{};
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(state.heal_count, 1u);
    EXPECT_EQ(state.heals_by_kind, (std::map<std::string, uint64_t>{{"policy-map-drifted", 1}}));
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"restore pin tree", "write policy maps"}));
}

TEST_F(SupervisorTest, EveryPolicyMapIsChecked) {
    for (const char* name : kPolicyMaps) {
        SCOPED_TRACE(name);
        kernel_->actions.clear();
        kernel_->maps[name].digest = Digest{7};
        const auto& state = cycle();
        EXPECT_TRUE(state.healthy);
        EXPECT_TRUE(did("write policy maps"));
        EXPECT_NE(state.last_heal_reason.find(std::string("policy map '") + name + "'"), std::string::npos)
            << state.last_heal_reason;
    }
}

// Every object that reads the store is reloaded with it: the LSM objects
// (policy) and the tracepoints (settings).
TEST_F(SupervisorTest, FrozenMapGetsANewStoreFilledBeforeTheProgramsAttach) {
    kernel_->maps[kFileRulesMap].frozen = true;
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy) << join(state.reasons, "; ");
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"restore pin tree", "unpin policy maps", "reload policy_maps",
                                                          "write policy maps", "reload bpf_audit", "reload self_guard",
                                                          "reload file_guard", "reload exec_guard"}));
}

TEST_F(SupervisorTest, MissingMapAlsoGetsANewStore) {
    kernel_->maps[kBpfPolicyMap].exists = false;
    cycle();
    EXPECT_TRUE(did("reload policy_maps"));
    EXPECT_TRUE(supervisor_->state().healthy);
}

TEST_F(SupervisorTest, FailedHealIsReportedAndNotRetriedWithinTheCycle) {
    kernel_->links["bw_bpf"] = LinkProblem::Detached;
    kernel_->reload_fails = {"self_guard"};
    const auto& state = cycle();
    EXPECT_FALSE(state.healthy);
    EXPECT_EQ(state.heal_count, 1u);
    EXPECT_TRUE(mentions(state.reasons, "heal of self_guard failed"));
    EXPECT_TRUE(mentions(state.reasons, "bw_bpf on lsm/bpf: detached"));
}

TEST_F(SupervisorTest, TamperDuringAHealIsHealedInTheSameCycle) {
    kernel_->links["bw_file_open"] = LinkProblem::WrongProgram;
    bool tampered = false;
    kernel_->on_action = [&](const std::string& action) {
        if (action == "reload file_guard" && !tampered) {
            tampered = true;
            kernel_->maps[kExecRulesMap].digest = Digest{};  // lands while the heal runs
        }
    };
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy) << join(state.reasons, "; ");
    EXPECT_EQ(state.heal_count, 2u);
    EXPECT_NE(state.last_heal_reason.find("detected by the re-check after a heal"), std::string::npos);
}

TEST_F(SupervisorTest, AtMostThreeHealsPerCycle) {
    // Every heal is undone by a new tamper at once.
    kernel_->maps[kFileRulesMap].digest = Digest{};
    uint8_t round = 0;
    kernel_->on_action = [&](const std::string& action) {
        if (action == "write policy maps")
            kernel_->maps[round++ % 2 ? kFileRulesMap : kExecRulesMap].digest = Digest{round};
    };
    const auto& state = cycle();
    EXPECT_EQ(state.heal_count, static_cast<uint64_t>(Supervisor::kMaxHeals));
    EXPECT_FALSE(state.healthy);
    EXPECT_TRUE(mentions(state.reasons, "differs from the desired policy"));
}

TEST_F(SupervisorTest, AHealThatChangesNothingStopsTheCycle) {
    kernel_->maps[kFileRulesMap].digest = Digest{};
    kernel_->writes_take = false;
    const auto& state = cycle();
    EXPECT_EQ(state.heal_count, 1u);
    EXPECT_FALSE(state.healthy);
}

TEST_F(SupervisorTest, OpenedCanaryReloadsEnforcementWithThePolicy) {
    kernel_->canary_errno = 0;
    kernel_->on_action = [&](const std::string& action) {
        if (action == "reload exec_guard")
            kernel_->canary_errno = EPERM;  // enforcement is back
    };
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    for (const char* name : {"reload self_guard", "reload file_guard", "reload exec_guard", "write policy maps"})
        EXPECT_TRUE(did(name)) << name;
    EXPECT_FALSE(did("reload bpf_audit")) << "audit programs do not enforce";
    EXPECT_NE(state.last_heal_reason.find("opened although the policy denies it"), std::string::npos);
}

// Another tool's program on our hook (systemd's RestrictFileSystems=) can
// only add refusals: reported, neither healed against nor unhealthy.
TEST_F(SupervisorTest, ForeignProgramIsReportedNotHealedAndNotTampering) {
    kernel_->foreign = {ForeignProgram{7, 70, "restrict_filesy", "file_open", false}};
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_TRUE(kernel_->actions.empty());
    EXPECT_TRUE(state.reasons.empty());
    EXPECT_TRUE(
        mentions(state.foreign_programs, "foreign program 'restrict_filesy' (id 70) attached to lsm/file_open"));
    kernel_->foreign.clear();
    EXPECT_TRUE(cycle().foreign_programs.empty());
}

TEST_F(SupervisorTest, PinDirectoryAndMovedMapPinAreRestored) {
    cycle();
    kernel_->dirs["/sys/fs/bpf/test/links"] = PinDirFacts{"/sys/fs/bpf/test/links", 0, true, 0777, 0};
    kernel_->moved = {kFileRulesMap};
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_NE(state.last_heal_reason.find("mode 0777"), std::string::npos);
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"restore pin tree"}));
}

TEST_F(SupervisorTest, AnEditedPolicyIsAppliedNotHealed) {
    EXPECT_TRUE(supervisor_->set_desired(policy_with(2)));  // the maps still hold policy 1
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(state.heal_count, 0u);
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"write policy maps"}));
    EXPECT_FALSE(supervisor_->set_desired(policy_with(2)));  // the same again changes nothing
}

TEST_F(SupervisorTest, AfterAnEditSomethingElseInTheMapsIsStillHealed) {
    supervisor_->set_desired(policy_with(2));
    kernel_->maps[kFileRulesMap].digest = Digest{9};  // neither the old policy nor the new
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(state.heal_count, 1u);
}

TEST_F(SupervisorTest, CheckOnlyChangesNothing) {
    kernel_->links["bw_file_open"] = LinkProblem::WrongProgram;
    kernel_->maps[kFileRulesMap].frozen = true;
    supervisor_->check_only("--check");
    const auto& state = supervisor_->state();
    EXPECT_FALSE(state.healthy);
    EXPECT_TRUE(kernel_->actions.empty());
    EXPECT_TRUE(kernel_->held_links.empty());
    EXPECT_TRUE(mentions(state.reasons, "was frozen"));
    EXPECT_TRUE(mentions(state.reasons, "bw_file_open on lsm/file_open: wrong-program"));
}

TEST_F(SupervisorTest, MapsAreNotDigestedWhileNothingCouldHaveChangedThem) {
    uint64_t bpf_writes = 0;
    supervisor_->set_map_change_counter([&] { return bpf_writes; });
    cycle();
    int first = kernel_->digests_read;
    EXPECT_GT(first, 0);
    cycle();
    EXPECT_EQ(kernel_->digests_read, first);  // no bpf() write since: skipped
    ++bpf_writes;
    cycle();
    EXPECT_GT(kernel_->digests_read, first);
}

// ---------------------------------------------------------------------------
// Break-glass: while self-protection is lifted, changes are the admin's.

TEST_F(SupervisorTest, NoHealWhileProtectionIsLifted) {
    kernel_->self.store = true;
    kernel_->self.protect = true;
    kernel_->self.guarded = true;
    kernel_->self.lifted = true;
    kernel_->self.lifted_until_ns = monotonic_ns() + 600'000'000'000ULL;  // ten minutes
    kernel_->maps[kFileRulesMap].digest = Digest{};
    kernel_->links["bw_bprm_check"] = LinkProblem::WrongProgram;

    const auto& lifted = cycle();
    EXPECT_FALSE(lifted.healthy);
    EXPECT_EQ(lifted.heal_count, 0u);
    EXPECT_TRUE(kernel_->actions.empty());
    EXPECT_TRUE(mentions(lifted.reasons, "self-protection lifted for another"));
    EXPECT_TRUE(mentions(lifted.reasons, "not healing until it ends"));
    // What is wrong is still reported.
    EXPECT_TRUE(mentions(lifted.reasons, "differs from the desired policy"));
    EXPECT_TRUE(mentions(lifted.reasons, "bw_bprm_check on lsm/bprm_check_security: wrong-program"));

    // The lift ends: the next cycle heals.
    kernel_->self.lifted = false;
    kernel_->self.lifted_until_ns = 0;
    const auto& after = cycle();
    EXPECT_TRUE(after.healthy) << join(after.reasons, "; ");
    EXPECT_EQ(after.heal_count, 1u);
    EXPECT_TRUE(did("write policy maps"));
    EXPECT_TRUE(did("reload exec_guard"));
    EXPECT_FALSE(mentions(after.reasons, "lifted"));
}

TEST_F(SupervisorTest, LiftedWithNothingWrongIsHealthy) {
    kernel_->self.store = true;
    kernel_->self.protect = true;
    kernel_->self.guarded = true;
    kernel_->self.lifted = true;
    kernel_->self.lifted_until_ns = monotonic_ns() + 60'000'000'000ULL;
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy) << join(state.reasons, "; ");
    EXPECT_TRUE(state.reasons.empty());
}

// ---------------------------------------------------------------------------
// A drifted map is judged against the files the rule paths name now.

class ReResolveTest : public SupervisorTest {
protected:
    ReResolveTest() {
        fs::create_directory(dir_ / "policy.d");
        fs::create_directory(dir_ / "data");
        secret_ = dir_.write("data/secret", "v1");
        tool_ = dir_.write("data/tool", "v1");
        dir_.write("policy.d/10-test.toml", "[[file]]\npath = \"" + secret_.string() +
                                                "\"\naction = \"deny\"\n[[exec]]\npath = \"" + tool_.string() +
                                                "\"\naction = \"deny\"\n");
        options_ = default_options();
        options_.policy_dir = dir_ / "policy.d";
        options_.service.canary = dir_ / "canary";
        options_.service.packager.clear();
        make_supervisor(options_);
        supervisor_->start_with(fixture_state(), true, "BPF LSM active");
    }

    // What bpfwardend computes from the policy directory now.
    DesiredMaps daemon_view() const {
        Supervisor daemon(options_, std::make_unique<FakeKernel>());
        auto changed = daemon.reload_policy();
        EXPECT_TRUE(changed.has_value()) << changed.error().message();
        return daemon.expected().desired();
    }
    Digest digest_of(const DesiredMaps& desired, const char* map) const {
        for (const auto& check : map_checks_of(desired))
            if (check.name == map)
                return check.desired;
        ADD_FAILURE() << "no map " << map;
        return {};
    }

    TempDir dir_;
    fs::path secret_, tool_;
    WatchdogOptions options_;
};

TEST_F(ReResolveTest, ReplacedFileThatTheDaemonAppliedIsNotHealedBack) {
    ASSERT_OK(supervisor_->reload_policy());
    DesiredMaps before = supervisor_->expected().desired();
    kernel_->hold_in_maps(before);
    ASSERT_TRUE(cycle().healthy);
    kernel_->actions.clear();

    // /data/secret replaced by rename; bpfwardend saw it first and applied
    // the re-resolved policy.
    fs::rename(secret_, dir_ / "secret.old");  // keep the old inode alive: no reuse of its number
    dir_.write("data/secret.new", "v2");
    fs::rename(dir_ / "data/secret.new", secret_);
    DesiredMaps now = daemon_view();
    ASSERT_NE(digest_of(now, kFileRulesMap), digest_of(before, kFileRulesMap)) << "the file's key must change";
    kernel_->hold_in_maps(now);

    const auto& state = cycle();
    EXPECT_TRUE(state.healthy) << join(state.reasons, "; ");
    EXPECT_EQ(state.heal_count, 0u);
    EXPECT_FALSE(did("restore pin tree"));
    EXPECT_FALSE(did("write policy maps")) << "the maps hold the re-resolved policy already";
    EXPECT_EQ(supervisor_->expected().map_checks(), map_checks_of(now));
}

TEST_F(ReResolveTest, HalfAppliedReResolvedPolicyIsCompletedAsAnApply) {
    ASSERT_OK(supervisor_->reload_policy());
    DesiredMaps before = supervisor_->expected().desired();
    kernel_->hold_in_maps(before);
    ASSERT_TRUE(cycle().healthy);
    kernel_->actions.clear();

    fs::rename(secret_, dir_ / "secret.old");
    fs::rename(tool_, dir_ / "tool.old");
    dir_.write("data/secret.new", "v2");
    dir_.write("data/tool.new", "v2");
    fs::rename(dir_ / "data/secret.new", secret_);
    fs::rename(dir_ / "data/tool.new", tool_);
    DesiredMaps now = daemon_view();
    ASSERT_NE(digest_of(now, kFileRulesMap), digest_of(before, kFileRulesMap));
    ASSERT_NE(digest_of(now, kExecRulesMap), digest_of(before, kExecRulesMap));
    // bpfwardend is half way through applying it: file rules new, exec rules old.
    kernel_->hold_in_maps(now);
    kernel_->maps[kExecRulesMap].digest = digest_of(before, kExecRulesMap);

    const auto& state = cycle();
    EXPECT_TRUE(state.healthy) << join(state.reasons, "; ");
    EXPECT_EQ(state.heal_count, 0u);
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"write policy maps"}));
    EXPECT_EQ(kernel_->maps[kExecRulesMap].digest, digest_of(now, kExecRulesMap));
}

TEST_F(ReResolveTest, DriftThatTheFilesDoNotExplainIsHealed) {
    ASSERT_OK(supervisor_->reload_policy());
    DesiredMaps desired = supervisor_->expected().desired();
    kernel_->hold_in_maps(desired);
    kernel_->maps[kFileRulesMap].digest = Digest{3};  // nothing changed on disk
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(state.heal_count, 1u);
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"restore pin tree", "write policy maps"}));
    EXPECT_EQ(supervisor_->expected().map_checks(), map_checks_of(desired));
}

// ---------------------------------------------------------------------------
// Images: verified once at start; every heal loads those bytes.

class SupervisorImagesTest : public SupervisorTest {
protected:
    SupervisorImagesTest() {
        for (auto dir : {"images", "keys", "state", "private"})
            fs::create_directory(dir_ / dir);
        EXPECT_TRUE(generate_ed25519_key(dir_ / "private/signing.key", dir_ / "keys/signing.pem").has_value());
        // Opaque bytes: nothing here parses ELF. No lsm_probe image: start()
        // stops where probing BPF LSM would need privileges.
        images_ = {{"file_guard", std::vector<unsigned char>(300, 'f')},
                   {"exec_guard", std::vector<unsigned char>(200, 'e')}};
        Manifest manifest;
        manifest.version = 7;
        manifest.created = "2026-11-21T05:00:00Z";
        for (const auto& [name, bytes] : images_) {
            write(dir_ / "images" / (name + ".bpf.o"), bytes);
            manifest.images.push_back({name, bytes.size(), sha256_hex(bytes), {"prog_" + name}, {}});
        }
        std::string text = serialize_manifest(manifest);
        write(dir_ / "images" / kManifestFile, {text.begin(), text.end()});
        auto signature =
            sign_file_bytes(dir_ / "private/signing.key", std::vector<unsigned char>(text.begin(), text.end()));
        EXPECT_TRUE(signature.has_value());
        if (signature)
            write(dir_ / "images" / kSignatureFile, *signature);

        options_ = default_options();
        options_.trust.image_dir = dir_ / "images";
        options_.trust.keys_dir = dir_ / "keys";
        options_.trust.state_dir = dir_ / "state";
        options_.trust.key_rules.required_owner = getuid();
        make_supervisor(options_);
    }

    static void write(const fs::path& path, const std::vector<unsigned char>& bytes) {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }

    TempDir dir_;
    std::map<std::string, std::vector<unsigned char>> images_;
    WatchdogOptions options_;
};

TEST_F(SupervisorImagesTest, AReloadLoadsTheImagesVerifiedAtStart) {
    auto started = supervisor_->start();
    EXPECT_ERROR_MENTIONS(started, "lsm_probe");  // got past verifying and handing over the images
    ASSERT_NE(kernel_->images, nullptr) << "start() must give the kernel the verified images";
    EXPECT_EQ(kernel_->images->manifest().version, 7u);
    EXPECT_EQ(supervisor_->state().image_set_version, 7u);

    // The file on disk changes after start (tampered, or a half-done upgrade).
    write(dir_ / "images/file_guard.bpf.o", std::vector<unsigned char>(300, 'X'));

    supervisor_->start_with(fixture_state(), true, "BPF LSM active");
    supervisor_->set_desired(policy_with(1));
    kernel_->hold_in_maps(policy_with(1));
    kernel_->links["bw_file_open"] = LinkProblem::WrongProgram;
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy) << join(state.reasons, "; ");
    EXPECT_EQ(state.heal_count, 1u);
    ASSERT_TRUE(kernel_->loaded.contains("file_guard"));
    EXPECT_EQ(kernel_->loaded["file_guard"], images_["file_guard"]) << "the verified bytes, not the file now";
}

TEST_F(SupervisorImagesTest, StartIsRefusedWhileProtectionRefusesUs) {
    kernel_->self.store = true;
    kernel_->self.protect = true;
    kernel_->self.guarded = true;
    auto started = supervisor_->start();
    EXPECT_ERRNO(started, EPERM);
    EXPECT_EQ(started.error().kind(), ErrorKind::PermissionDenied);
    EXPECT_ERROR_MENTIONS(started, "self-protection is on");
    EXPECT_ERROR_MENTIONS(started, "bpfwarden-watchdog");

    // Admitted as bpfwarden, during a lift, or only checking: not refused
    // (start() goes on, and stops at the missing probe image).
    struct Case {
        const char* name;
        bool self, lifted, read_only;
    };
    for (Case c : {Case{"ours", true, false, false}, Case{"lifted", false, true, false},
                   Case{"read-only", false, false, true}}) {
        WatchdogOptions options = options_;
        options.read_only = c.read_only;
        make_supervisor(options);
        kernel_->self.store = true;
        kernel_->self.protect = true;
        kernel_->self.guarded = true;
        kernel_->self.self = c.self;
        kernel_->self.lifted = c.lifted;
        auto go_on = supervisor_->start();
        EXPECT_FALSE(go_on.has_value()) << c.name;
        if (!go_on) {
            EXPECT_NE(go_on.error().message().find("lsm_probe"), std::string::npos)
                << c.name << ": " << go_on.error().message();
        }
    }
}

TEST(HealPlanTest, EachFindingKindCallsForItsHeal) {
    ExpectedState expected({expect("policy_maps"), expect("file_guard", {"bw_file_open"}), expect("bpf_audit")},
                           {"file_open"});
    auto plan_for = [&](FindingKind kind, const ObjectSpec* object = nullptr) {
        return plan_heal({Finding{kind, object, "x"}}, expected);
    };
    EXPECT_EQ(plan_for(FindingKind::LinkBroken, &spec("bpf_audit")).broken,
              (std::set<const ObjectSpec*>{&spec("bpf_audit")}));
    EXPECT_TRUE(plan_for(FindingKind::PolicyMapFrozen).new_store);
    EXPECT_TRUE(plan_for(FindingKind::PolicyMapMissing).new_store);
    EXPECT_FALSE(plan_for(FindingKind::PolicyMapDrifted).new_store);
    EXPECT_TRUE(plan_for(FindingKind::PolicyMapDrifted).rewrite_maps);
    EXPECT_TRUE(plan_for(FindingKind::PolicyMapUnreadable).rewrite_maps);
    HealPlan canary = plan_for(FindingKind::CanaryOpened);
    EXPECT_EQ(canary.broken, (std::set<const ObjectSpec*>{&spec("file_guard")}));
    EXPECT_TRUE(canary.rewrite_maps);
    for (FindingKind kind : {FindingKind::PinDirectory, FindingKind::MapPinMoved}) {
        HealPlan plan = plan_for(kind);
        EXPECT_TRUE(plan.broken.empty() && !plan.new_store && !plan.rewrite_maps) << to_string(kind);
    }
}

}  // namespace
}  // namespace bpfwarden
