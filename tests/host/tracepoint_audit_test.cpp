// The tracepoint programs on this machine's kernel: load, attach and pin them
// into a private pin root, trigger the real behaviour, read the real events.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <string_view>
#include <vector>

#include "host_fixture.h"
#include "loading/bpf_objects.h"
#include "policy/file_identity.h"
#include "policy/policy_maps.h"
#include "support/event.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

bool is_bpf_call(const Event& event, pid_t tgid, int cmd) {
    return event.kind == EventKind::BpfCall && event.tgid == static_cast<uint32_t>(tgid) &&
           event.bpf_cmd == static_cast<uint32_t>(cmd);
}

// A pin that cannot be made: a state-changing command that fails at once.
int failing_pin() { return bpf_obj_pin(-1, "/sys/fs/bpf/bpfwarden-no-such-pin"); }

// The marker after the calls a test looks at: state-changing, failing at
// once, and never made by the loader (whose pins would pass for a pin).
int failing_freeze() { return bpf_map_freeze(-1); }

// Two read-only commands: a lookup of a pin and a walk over program ids.
void read_only_bpf_calls() {
    EXPECT_LT(bpf_obj_get("/sys/fs/bpf/bpfwarden-no-such-pin"), 0);
    uint32_t next = 0;
    bpf_prog_get_next_id(0, &next);
}

bool is_read_from(const Event& event, pid_t tgid) {
    return is_bpf_call(event, tgid, BPF_OBJ_GET) || is_bpf_call(event, tgid, BPF_PROG_GET_NEXT_ID);
}

class TracepointAuditTest : public HostPinsTest {
protected:
    void load(const std::string& name, LoadConfig config = {}) {
        auto image = read_image(BPFWARDEN_TEST_IMAGE_DIR, name);
        ASSERT_OK(image);
        ASSERT_OK(load_attach_pin(spec_named(name), *image, pins_, config));
    }

    // What the ring buffer delivered: each record's bytes as they came, and
    // the ones that decode.
    struct Records {
        std::vector<std::vector<std::byte>> raw;
        std::vector<Event> events;
    };

    // Reads the ring buffer (the audit trail's, or `ring`) until `done` holds
    // for the decoded events or two seconds pass.
    Records collect_records(const std::function<bool(const std::vector<Event>&)>& done,
                            const char* ring_name = kEventsMap) {
        auto map = PinLayout::open_pin(pins_.map_pin(ring_name));
        EXPECT_OK(map);
        Records records;
        auto on_record = [](void* ctx, void* data, size_t size) {
            auto* out = static_cast<Records*>(ctx);
            const auto* bytes = static_cast<const std::byte*>(data);
            out->raw.emplace_back(bytes, bytes + size);
            if (auto decoded = decode_event({bytes, size}))
                out->events.push_back(*decoded);
            return 0;
        };
        ring_buffer* ring = ring_buffer__new(map->get(), on_record, &records, nullptr);
        EXPECT_NE(ring, nullptr);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!done(records.events) && std::chrono::steady_clock::now() < deadline)
            ring_buffer__poll(ring, 100);
        ring_buffer__free(ring);
        return records;
    }

    std::vector<Event> collect(const std::function<bool(const std::vector<Event>&)>& done,
                               const char* ring_name = kEventsMap) {
        return collect_records(done, ring_name).events;
    }

    // A rule on the file at `path` (by inode), written straight into the store.
    void add_rule(const char* map_name, const std::filesystem::path& path, uint32_t action, uint32_t rule_id,
                  uint32_t flags = 0) {
        auto identity = identity_of(path);
        ASSERT_OK(identity);
        auto map = PinLayout::open_pin(pins_.map_pin(map_name));
        ASSERT_OK(map);
        bw_inode_key key = to_key(*identity);
        bw_rule rule{};
        rule.action = action;
        rule.rule_id = rule_id;
        rule.flags = flags;
        ASSERT_EQ(bpf_map_update_elem(map->get(), &key, &rule, BPF_ANY), 0);
    }

    // Changes the policy's settings as the store holds them.
    void edit_settings(const std::function<void(bw_settings&)>& change) {
        auto map = PinLayout::open_pin(pins_.map_pin(kSettingsMap));
        ASSERT_OK(map);
        uint32_t zero = 0;
        bw_settings settings{};
        ASSERT_EQ(bpf_map_lookup_elem(map->get(), &zero, &settings), 0);
        change(settings);
        ASSERT_EQ(bpf_map_update_elem(map->get(), &zero, &settings, BPF_ANY), 0);
    }

    // The policy's redact_paths.
    void redact(const std::vector<std::string>& prefixes) {
        edit_settings([&](bw_settings& settings) {
            settings.redact_count = 0;
            for (const auto& prefix : prefixes) {
                bw_redact_prefix& entry = settings.redact[settings.redact_count++];
                entry.len = static_cast<uint32_t>(prefix.size());
                std::memcpy(entry.prefix, prefix.data(), prefix.size());
            }
        });
    }

    // The events up to this process's marker call (failing_freeze()), which
    // must be among them.
    std::vector<Event> events_before_marker() {
        auto is_marker = [](const Event& e) { return is_bpf_call(e, getpid(), BPF_MAP_FREEZE); };
        auto events = collect([&](const auto& seen) { return std::any_of(seen.begin(), seen.end(), is_marker); });
        auto marker = std::find_if(events.begin(), events.end(), is_marker);
        EXPECT_NE(marker, events.end()) << "the state-changing marker call was not reported";
        return {events.begin(), marker};
    }

    // The policy's audit_bpf_reads = true.
    void ask_for_bpf_reads() {
        edit_settings([](bw_settings& settings) { settings.audit_bpf_reads = 1; });
    }

    static std::string own_comm() {
        std::ifstream in("/proc/self/comm");
        std::string comm;
        std::getline(in, comm);
        return comm;
    }
};

TEST_F(TracepointAuditTest, StateChangingBpfCallIsAuditedWithCallerIdentity) {
    load("bpf_audit");
    EXPECT_TRUE(is_pinned(spec_named("bpf_audit"), pins_, false));
    // A refused call counts too.
    EXPECT_LT(failing_pin(), 0);

    auto events = collect([](const auto& seen) {
        return std::any_of(seen.begin(), seen.end(),
                           [](const Event& e) { return is_bpf_call(e, getpid(), BPF_OBJ_PIN); });
    });
    auto found = std::find_if(events.begin(), events.end(),
                              [](const Event& e) { return is_bpf_call(e, getpid(), BPF_OBJ_PIN); });
    ASSERT_NE(found, events.end()) << "no bpf_call event for BPF_OBJ_PIN from pid " << getpid() << " among "
                                   << events.size() << " events";
    EXPECT_EQ(found->action, EventAction::None);
    EXPECT_EQ(found->uid, getuid());
    EXPECT_EQ(found->comm, own_comm());
    EXPECT_EQ(found->path, "bpfwarden_host_tests");  // the calling executable's name
    auto self = executable_identity();
    ASSERT_OK(self);
    EXPECT_EQ(found->dev, self->dev);
    EXPECT_EQ(found->ino, self->ino);
}

// Read-only commands change nothing and are not reported, then a pin as the
// marker (one thread: had the reads been reported, their events would come
// before the marker's).
TEST_F(TracepointAuditTest, ReadOnlyBpfCallsAreNotReported) {
    load("bpf_audit");
    read_only_bpf_calls();
    EXPECT_LT(failing_freeze(), 0);
    for (const Event& event : events_before_marker())
        EXPECT_FALSE(is_read_from(event, getpid())) << "read-only command " << event.bpf_cmd << " was reported";
}

// ... unless the policy asks for them (audit_bpf_reads = true).
TEST_F(TracepointAuditTest, ReadOnlyBpfCallsAreReportedWhenThePolicyAsks) {
    load("bpf_audit");
    ask_for_bpf_reads();
    read_only_bpf_calls();
    EXPECT_LT(failing_freeze(), 0);
    auto events = events_before_marker();
    EXPECT_TRUE(std::any_of(events.begin(), events.end(),
                            [](const Event& e) { return is_bpf_call(e, getpid(), BPF_OBJ_GET); }));
    EXPECT_TRUE(std::any_of(events.begin(), events.end(),
                            [](const Event& e) { return is_bpf_call(e, getpid(), BPF_PROG_GET_NEXT_ID); }));
}

TEST_F(TracepointAuditTest, ExecIsAuditedWithFilenameAndPid) {
    load("exec_audit");
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        execl("/bin/true", "true", nullptr);
        _exit(127);
    }
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    auto matches = [child](const Event& e) { return e.kind == EventKind::Exec && e.tgid == uint32_t(child); };
    auto events = collect([&](const auto& seen) { return std::any_of(seen.begin(), seen.end(), matches); });
    auto it = std::find_if(events.begin(), events.end(), matches);
    ASSERT_NE(it, events.end()) << "no exec event for child " << child;
    EXPECT_EQ(it->path, "/bin/true");
    EXPECT_EQ(it->comm, "true");
    EXPECT_NE(it->ino, 0u);
}

// Runs `path` (true(1)) in a child; its pid.
pid_t run_true(const char* path) {
    pid_t child = fork();
    if (child == 0) {
        execl(path, "true", nullptr);
        _exit(127);
    }
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << path;
    return child;
}

bool contains(const std::vector<std::byte>& record, std::string_view text) {
    auto begin = reinterpret_cast<const char*>(record.data());
    return std::string_view(begin, record.size()).find(text) != std::string_view::npos;
}

// A path under a redact prefix is "[FILTERED]" in the record the kernel
// wrote: not one byte of it reaches user space. Another path is reported.
TEST_F(TracepointAuditTest, RedactedExecPathNeverLeavesTheKernel) {
    load("exec_audit");
    redact({"/nonexistent/", "/bin/"});
    pid_t hidden = run_true("/bin/true");
    pid_t shown = run_true("/usr/bin/true");

    auto of = [](pid_t pid) {
        return [pid](const Event& e) { return e.kind == EventKind::Exec && e.tgid == uint32_t(pid); };
    };
    auto records = collect_records([&](const auto& seen) {
        return std::any_of(seen.begin(), seen.end(), of(hidden)) && std::any_of(seen.begin(), seen.end(), of(shown));
    });
    auto hidden_event = std::find_if(records.events.begin(), records.events.end(), of(hidden));
    auto shown_event = std::find_if(records.events.begin(), records.events.end(), of(shown));
    ASSERT_NE(hidden_event, records.events.end());
    ASSERT_NE(shown_event, records.events.end());
    EXPECT_EQ(hidden_event->path, BW_REDACTED_PATH);
    EXPECT_NE(hidden_event->ino, 0u);  // still says which file ran
    EXPECT_EQ(shown_event->path, "/usr/bin/true");
    size_t hidden_records = 0;
    for (const auto& record : records.raw) {
        auto decoded = decode_event(record);
        if (!decoded || decoded->tgid != uint32_t(hidden))
            continue;
        ++hidden_records;
        EXPECT_FALSE(contains(record, "/bin")) << "a redacted path reached the ring buffer";
    }
    EXPECT_GE(hidden_records, 1u);
}

TEST_F(TracepointAuditTest, RateLimitBoundsAFloodOfBpfCallsFromOneProcess) {
    LoadConfig config;
    config.trail_limit_burst = 5;
    config.rate_limit_window_ns = 60'000'000'000ULL;  // one window for the whole test
    load("bpf_audit", config);
    for (int i = 0; i < 50; ++i)
        failing_pin();

    auto events = collect([](const auto&) { return false; });  // drain for the full two seconds
    size_t ours =
        std::count_if(events.begin(), events.end(), [](const Event& e) { return e.tgid == uint32_t(getpid()); });
    EXPECT_EQ(ours, 5u) << "the audit trail's budget is 5 events per window and uid";
    auto counters = read_counters(pins_);
    ASSERT_OK(counters);
    EXPECT_GE(counters->rate_limited, 45u);
    EXPECT_GE(counters->events, 5u);
}

// Every child of a fork+exec flood is a new process: the audit trail's budget
// is per uid, so the flood gets the burst and no more.
TEST_F(TracepointAuditTest, AForkExecFloodIsBoundedPerUidNotPerProcess) {
    constexpr uid_t kFlooder = 65534;  // nobody: no other process of it runs bpf() or exec here
    LoadConfig config;
    config.trail_limit_burst = 5;
    config.rate_limit_window_ns = 60'000'000'000ULL;  // one window for the whole test
    load("exec_audit", config);
    for (int i = 0; i < 30; ++i) {
        pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            if (setgid(kFlooder) != 0 || setuid(kFlooder) != 0)
                _exit(126);
            execl("/bin/true", "true", nullptr);
            _exit(127);
        }
        int status = 0;
        waitpid(child, &status, 0);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child " << i;
    }
    auto events = collect([](const auto&) { return false; });  // drain for the full two seconds
    size_t flood = std::count_if(events.begin(), events.end(),
                                 [](const Event& e) { return e.kind == EventKind::Exec && e.uid == kFlooder; });
    EXPECT_EQ(flood, 5u) << "30 execs by 30 processes of one uid, budget 5 per window and uid";
    auto counters = read_counters(pins_);
    ASSERT_OK(counters);
    EXPECT_GE(counters->rate_limited, 25u);
}

TEST_F(TracepointAuditTest, ObjectsShareOneRingBufferAndPinsOutliveTheLoader) {
    load("bpf_audit");
    load("exec_audit");
    // Both objects were loaded and released by this process; only the pins
    // hold them. One ring buffer carries both kinds.
    EXPECT_LT(failing_pin(), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        execl("/bin/true", "true", nullptr);
        _exit(127);
    }
    waitpid(child, nullptr, 0);
    auto has_both = [child](const std::vector<Event>& seen) {
        bool exec = false, call = false;
        for (const auto& e : seen) {
            exec |= e.kind == EventKind::Exec && e.tgid == uint32_t(child);
            call |= is_bpf_call(e, getpid(), BPF_OBJ_PIN);
        }
        return exec && call;
    };
    EXPECT_TRUE(has_both(collect(has_both)));
}

TEST_F(TracepointAuditTest, AReloadedObjectReusesThePinnedMaps) {
    load("bpf_audit");
    auto before = PinLayout::open_pin(pins_.map_pin(kEventsMap));
    ASSERT_OK(before);
    bpf_map_info info_before{};
    uint32_t len = sizeof(info_before);
    ASSERT_EQ(bpf_obj_get_info_by_fd(before->get(), &info_before, &len), 0);

    load("bpf_audit");  // a second generation replaces the link pin
    auto after = PinLayout::open_pin(pins_.map_pin(kEventsMap));
    ASSERT_OK(after);
    bpf_map_info info_after{};
    len = sizeof(info_after);
    ASSERT_EQ(bpf_obj_get_info_by_fd(after->get(), &info_after, &len), 0);
    EXPECT_EQ(info_before.id, info_after.id) << "the event ring buffer must survive a reload";
}

}  // namespace
}  // namespace bpfwarden

namespace bpfwarden {
namespace {

// Without BPF LSM (this machine), rule_audit reports what file and exec
// rules would do: an audit rule reports, a deny rule reports would-deny,
// and a file under no rule reports nothing.
class RuleAuditTest : public TracepointAuditTest {
protected:
    void SetUp() override {
        TracepointAuditTest::SetUp();
        dir_ = std::filesystem::path("/tmp") / ("bpfwarden-rule-audit-" + std::to_string(getpid()));
        std::filesystem::create_directory(dir_);
        for (const char* name : {"audited", "denied", "unruled"})
            std::ofstream(dir_ / name) << name;
        load("policy_maps");
        load("rule_audit");
    }
    void TearDown() override {
        std::filesystem::remove_all(dir_);  // made by SetUp
        TracepointAuditTest::TearDown();
    }

    // Runs `program` in a child; its pid if it exited with 0, else -1.
    static pid_t run_to_success(const std::filesystem::path& program) {
        pid_t child = fork();
        if (child == 0) {
            execl(program.c_str(), program.filename().c_str(), nullptr);
            _exit(127);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) != child)
            return -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? child : -1;
    }

    std::vector<Event> file_events_until(const std::string& last_name) {
        auto is_last = [&](const Event& e) { return e.kind == EventKind::FileOpen && e.path == last_name; };
        auto events =
            collect([&](const auto& seen) { return std::any_of(seen.begin(), seen.end(), is_last); }, kAlertsMap);
        std::erase_if(events, [](const Event& e) { return e.tgid != uint32_t(getpid()); });
        return events;
    }

    std::filesystem::path dir_;
};

TEST_F(RuleAuditTest, OpensOfRuledFilesAreReportedAndNothingIsRefused) {
    add_rule(kFileRulesMap, dir_ / "audited", BW_ACTION_AUDIT, 11);
    add_rule(kFileRulesMap, dir_ / "denied", BW_ACTION_DENY, 12);
    EXPECT_TRUE(std::ifstream(dir_ / "unruled").good());
    EXPECT_TRUE(std::ofstream(dir_ / "denied", std::ios::app).good()) << "a tracepoint cannot refuse";
    EXPECT_TRUE(std::ifstream(dir_ / "audited").good());

    auto events = file_events_until("audited");
    ASSERT_EQ(events.size(), 2u) << "expected the denied file's open, then the audited file's";
    EXPECT_EQ(events[0].path, "denied");
    EXPECT_EQ(events[0].action, EventAction::WouldDeny);
    EXPECT_EQ(events[0].rule_id, 12u);
    EXPECT_EQ(events[0].op, uint32_t(BW_OP_OPEN_WRITE));
    EXPECT_EQ(events[1].action, EventAction::Audit);
    EXPECT_EQ(events[1].rule_id, 11u);
    EXPECT_EQ(events[1].op, uint32_t(BW_OP_OPEN));
    auto audited = identity_of(dir_ / "audited");
    ASSERT_OK(audited);
    EXPECT_EQ(events[1].ino, audited->ino);
}

TEST_F(RuleAuditTest, ExecOfARuledExecutableIsReported) {
    std::filesystem::path tool = dir_ / "tool";
    std::filesystem::copy_file("/bin/true", tool);
    add_rule(kExecRulesMap, tool, BW_ACTION_DENY, 21);
    pid_t child = run_to_success(tool);
    ASSERT_GT(child, 0) << "the exec was refused";

    auto is_report = [&](const Event& e) { return e.kind == EventKind::ExecCheck && e.tgid == uint32_t(child); };
    auto events =
        collect([&](const auto& seen) { return std::any_of(seen.begin(), seen.end(), is_report); }, kAlertsMap);
    auto found = std::find_if(events.begin(), events.end(), is_report);
    ASSERT_NE(found, events.end()) << "no exec_check event for child " << child;
    EXPECT_EQ(found->action, EventAction::WouldDeny);
    EXPECT_EQ(found->rule_id, 21u);
    EXPECT_EQ(found->path, tool.string());
}

bool holds(const std::vector<std::byte>& record, std::string_view text) {
    std::string_view bytes(reinterpret_cast<const char*>(record.data()), record.size());
    return bytes.find(text) != std::string_view::npos;
}

// A rule the compiler flagged redacted (its path is under redact_paths)
// reports no name; an executed path under a prefix is redacted even with no
// flag. Checked on the raw ring buffer records.
TEST_F(RuleAuditTest, RedactedNamesNeverLeaveTheKernel) {
    add_rule(kFileRulesMap, dir_ / "audited", BW_ACTION_AUDIT, 11, BW_RULE_REDACT);
    std::filesystem::path tool = dir_ / "secret-tool";
    std::filesystem::copy_file("/bin/true", tool);
    add_rule(kExecRulesMap, tool, BW_ACTION_AUDIT, 21);
    redact({dir_.string() + "/"});
    EXPECT_TRUE(std::ifstream(dir_ / "audited").good());
    pid_t child = run_to_success(tool);
    ASSERT_GT(child, 0);

    auto is_exec_report = [&](const Event& e) { return e.kind == EventKind::ExecCheck && e.tgid == uint32_t(child); };
    auto records = collect_records(
        [&](const auto& seen) { return std::any_of(seen.begin(), seen.end(), is_exec_report); }, kAlertsMap);
    auto open_report = std::find_if(records.events.begin(), records.events.end(), [](const Event& e) {
        return e.kind == EventKind::FileOpen && e.tgid == uint32_t(getpid()) && e.rule_id == 11;
    });
    ASSERT_NE(open_report, records.events.end()) << "the open of the redacted rule's file was not reported";
    EXPECT_EQ(open_report->path, BW_REDACTED_PATH);
    auto exec_report = std::find_if(records.events.begin(), records.events.end(), is_exec_report);
    ASSERT_NE(exec_report, records.events.end());
    EXPECT_EQ(exec_report->path, BW_REDACTED_PATH);
    for (const auto& record : records.raw) {
        EXPECT_FALSE(holds(record, "audited")) << "a redacted name reached the ring buffer";
        // (The comm, the executable's first 15 bytes, is kept, as documented.)
        EXPECT_FALSE(holds(record, dir_.string())) << "a redacted path reached the ring buffer";
    }
}

TEST_F(RuleAuditTest, IsNotLoadedWhereBpfLsmServes) {
    EXPECT_TRUE(is_needed(spec_named("rule_audit"), false));
    EXPECT_FALSE(is_needed(spec_named("rule_audit"), true));
    EXPECT_TRUE(is_needed(spec_named("policy_maps"), true));
}

}  // namespace
}  // namespace bpfwarden
