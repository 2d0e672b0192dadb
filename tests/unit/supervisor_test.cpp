// The watchdog's check -> heal decisions, unprivileged: the supervisor runs
// against a fake kernel that can be broken in every way the real one can
// (link pin missing, wrong program, map drifted, frozen or gone, canary
// opened, foreign program), can refuse a heal, and can be tampered with while
// a heal runs.
#include "supervisor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "test_helpers.h"

namespace bpfwarden {
namespace {

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
    std::map<const ObjectSpec*, LinkProblem> links;
    std::map<std::string, FakeMap> maps;
    int canary_errno = EPERM;
    std::vector<ForeignProgram> foreign;
    // ---- how heals go
    std::set<std::string> reload_fails;
    bool images_ok = true;
    bool writes_take = true;
    std::function<void(const std::string& action)> on_action;  // e.g. a tamper during a heal
    // ---- what happened
    std::vector<std::string> actions;
    std::set<const ObjectSpec*> held_links;
    bool held_maps = false;
    int digests_read = 0;

    void act(const std::string& action) {
        actions.push_back(action);
        if (on_action)
            on_action(action);
    }

    std::vector<PinDirFacts> pin_directories() override {
        std::vector<PinDirFacts> out;
        for (const auto& [dir, facts] : dirs)
            out.push_back(facts);
        return out;
    }
    std::vector<std::string> moved_map_pins() override { return moved; }
    LinkStatus inspect(const ExpectedObject& object) override {
        LinkStatus status;
        status.problem = links[object.spec];
        status.prog_id = 100 + static_cast<uint32_t>(object.spec - managed_objects().data());
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
    bool repin_held_link(const ExpectedObject& object) override {
        if (!held_links.contains(object.spec) || links[object.spec] != LinkProblem::PinMissing)
            return false;
        act(std::string("repin ") + object.spec->program);
        links[object.spec] = LinkProblem::None;
        return true;
    }
    Result<void> verify_images() override {
        if (!images_ok)
            return fail(EBADMSG, "image 'file_guard' does not match the signed manifest");
        return {};
    }
    Result<void> reload(const ObjectSpec& s) override {
        if (reload_fails.contains(s.name))
            return fail(EPERM, std::string("load ") + s.name + ": refused by the test");
        act(std::string("reload ") + s.name);
        if (s.role == ObjectRole::Store)
            for (auto& [name, map] : maps)
                map = FakeMap{};  // fresh, empty maps
        else
            links[&s] = LinkProblem::None;
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
        for (const auto& object : objects)
            if (object.program && links[object.spec] == LinkProblem::None)
                held_links.insert(object.spec);
        held_maps = held_maps || maps_too;
    }
    bool holds_links() const override { return !held_links.empty(); }
    bool holds_maps() const override { return held_maps; }
};

ExpectedObject program(const char* name) {
    const ObjectSpec& s = spec(name);
    return {&s, ExpectedProgram{std::string("links/") + s.program, ProgramIdentity{s.program}, s.hook}};
}

DesiredMaps policy_with(uint32_t rule_id) {
    DesiredMaps desired;
    desired.file_rules[bw_inode_key{1, 2}] = bw_rule{BW_ACTION_DENY, rule_id};
    desired.bpf_policy.action = BW_ACTION_DENY;
    return desired;
}

class SupervisorTest : public ::testing::Test {
protected:
    SupervisorTest() {
        auto owned = std::make_unique<FakeKernel>();
        kernel_ = owned.get();
        WatchdogOptions options{PinLayout("/sys/fs/bpf/test"), {}, "/nonexistent", {}, {}, false, false};
        options.service.canary = "/run/canary";
        supervisor_ = std::make_unique<Supervisor>(options, std::move(owned));
        ExpectedState expected({{&spec("policy_maps"), std::nullopt},
                                program("bpf_audit"),
                                program("file_guard"),
                                program("exec_guard"),
                                program("bpf_guard")},
                               {"file_open", "bprm_check_security", "bpf"});
        supervisor_->start_with(std::move(expected), true, "BPF LSM active");
        supervisor_->set_desired(policy_with(1));
        for (const auto& check : map_checks_of(policy_with(1)))
            kernel_->maps[check.name].digest = check.desired;  // the maps hold the desired policy
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
    EXPECT_EQ(kernel_->held_links.size(), 4u);
    EXPECT_TRUE(kernel_->held_maps);
    EXPECT_EQ(state.programs.size(), 4u);
}

TEST_F(SupervisorTest, MissingLinkPinGetsTheHeldLinkBack) {
    cycle();  // hold everything
    kernel_->links[&spec("file_guard")] = LinkProblem::PinMissing;
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(state.heal_count, 1u);
    EXPECT_TRUE(did("repin bw_file_open"));
    EXPECT_FALSE(did("reload file_guard"));
    EXPECT_NE(state.last_heal_reason.find("bw_file_open on lsm/file_open: pin-missing"), std::string::npos);
}

TEST_F(SupervisorTest, WrongProgramIsReloaded) {
    kernel_->links[&spec("exec_guard")] = LinkProblem::WrongProgram;
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"restore pin tree", "reload exec_guard"}));
}

TEST_F(SupervisorTest, DriftedMapIsRewrittenInPlace) {
    kernel_->maps["file_rules"].digest = Digest{};
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"restore pin tree", "write policy maps"}));
}

TEST_F(SupervisorTest, FrozenMapGetsANewStoreFilledBeforeTheProgramsAttach) {
    kernel_->maps["file_rules"].frozen = true;
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy) << join(state.reasons, "; ");
    EXPECT_EQ(kernel_->actions, (std::vector<std::string>{"restore pin tree", "unpin policy maps", "reload policy_maps",
                                                          "write policy maps", "reload file_guard", "reload exec_guard",
                                                          "reload bpf_guard"}));
}

TEST_F(SupervisorTest, MissingMapAlsoGetsANewStore) {
    kernel_->maps["bpf_policy"].exists = false;
    cycle();
    EXPECT_TRUE(did("reload policy_maps"));
    EXPECT_TRUE(supervisor_->state().healthy);
}

TEST_F(SupervisorTest, FailedHealIsReportedAndNotRetriedWithinTheCycle) {
    kernel_->links[&spec("bpf_guard")] = LinkProblem::Detached;
    kernel_->reload_fails = {"bpf_guard"};
    const auto& state = cycle();
    EXPECT_FALSE(state.healthy);
    EXPECT_EQ(state.heal_count, 1u);
    EXPECT_TRUE(mentions(state.reasons, "heal of bpf_guard failed"));
    EXPECT_TRUE(mentions(state.reasons, "bw_bpf on lsm/bpf: detached"));
}

TEST_F(SupervisorTest, RefusedImagesKeepTheCurrentProgramsAndCountNoHeal) {
    kernel_->links[&spec("file_guard")] = LinkProblem::WrongProgram;
    kernel_->images_ok = false;
    const auto& state = cycle();
    EXPECT_FALSE(state.healthy);
    EXPECT_EQ(state.heal_count, 0u);
    EXPECT_FALSE(did("reload file_guard"));
    EXPECT_TRUE(mentions(state.reasons, "heal refused, keeping the current programs"));
}

TEST_F(SupervisorTest, TamperDuringAHealIsHealedInTheSameCycle) {
    kernel_->links[&spec("file_guard")] = LinkProblem::WrongProgram;
    bool tampered = false;
    kernel_->on_action = [&](const std::string& action) {
        if (action == "reload file_guard" && !tampered) {
            tampered = true;
            kernel_->maps["exec_rules"].digest = Digest{};  // lands while the heal runs
        }
    };
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy) << join(state.reasons, "; ");
    EXPECT_EQ(state.heal_count, 2u);
    EXPECT_NE(state.last_heal_reason.find("detected by the re-check after a heal"), std::string::npos);
}

TEST_F(SupervisorTest, AtMostThreeHealsPerCycle) {
    // Every heal is undone by a new tamper at once.
    kernel_->maps["file_rules"].digest = Digest{};
    uint8_t round = 0;
    kernel_->on_action = [&](const std::string& action) {
        if (action == "write policy maps")
            kernel_->maps[round++ % 2 ? "file_rules" : "exec_rules"].digest = Digest{round};
    };
    const auto& state = cycle();
    EXPECT_EQ(state.heal_count, static_cast<uint64_t>(Supervisor::kMaxHeals));
    EXPECT_FALSE(state.healthy);
    EXPECT_TRUE(mentions(state.reasons, "differs from the desired policy"));
}

TEST_F(SupervisorTest, AHealThatChangesNothingStopsTheCycle) {
    kernel_->maps["file_rules"].digest = Digest{};
    kernel_->writes_take = false;
    const auto& state = cycle();
    EXPECT_EQ(state.heal_count, 1u);
    EXPECT_FALSE(state.healthy);
}

TEST_F(SupervisorTest, OpenedCanaryReloadsEnforcementWithThePolicy) {
    kernel_->canary_errno = 0;
    kernel_->on_action = [&](const std::string& action) {
        if (action == "reload bpf_guard")
            kernel_->canary_errno = EPERM;  // enforcement is back
    };
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    for (const char* name : {"reload file_guard", "reload exec_guard", "reload bpf_guard", "write policy maps"})
        EXPECT_TRUE(did(name)) << name;
    EXPECT_NE(state.last_heal_reason.find("opened although the policy denies it"), std::string::npos);
}

TEST_F(SupervisorTest, ForeignProgramIsReportedNotHealed) {
    kernel_->foreign = {ForeignProgram{7, 70, "intruder", "file_open", false}};
    const auto& state = cycle();
    EXPECT_FALSE(state.healthy);
    EXPECT_TRUE(kernel_->actions.empty());
    EXPECT_TRUE(mentions(state.reasons, "foreign program 'intruder' (id 70) attached to lsm/file_open"));
}

TEST_F(SupervisorTest, PinDirectoryAndMovedMapPinAreRestored) {
    cycle();
    kernel_->dirs["/sys/fs/bpf/test/links"] = PinDirFacts{"/sys/fs/bpf/test/links", 0, true, 0777, 0};
    kernel_->moved = {"file_rules"};
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
    kernel_->maps["file_rules"].digest = Digest{9};  // neither the old policy nor the new
    const auto& state = cycle();
    EXPECT_TRUE(state.healthy);
    EXPECT_EQ(state.heal_count, 1u);
}

TEST_F(SupervisorTest, CheckOnlyChangesNothing) {
    kernel_->links[&spec("file_guard")] = LinkProblem::WrongProgram;
    kernel_->maps["file_rules"].frozen = true;
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

TEST(HealPlanTest, EachFindingKindCallsForItsHeal) {
    ExpectedState expected({{&spec("policy_maps"), std::nullopt}, program("file_guard"), program("bpf_audit")},
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
    for (FindingKind kind : {FindingKind::PinDirectory, FindingKind::MapPinMoved, FindingKind::ForeignProgram}) {
        HealPlan plan = plan_for(kind);
        EXPECT_TRUE(plan.broken.empty() && !plan.new_store && !plan.rewrite_maps) << to_string(kind);
    }
}

}  // namespace
}  // namespace bpfwarden
