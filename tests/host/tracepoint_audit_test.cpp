// The tracepoint programs on this machine's kernel: load, attach and pin them
// into a private pin root, trigger the real behaviour, read the real events.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <vector>

#include "host_fixture.h"
#include "loading/bpf_objects.h"
#include "policy/policy_maps.h"
#include "support/event.h"
#include "test_helpers.h"

namespace bpfwarden {
namespace {

class TracepointAuditTest : public HostPinsTest {
protected:
    void load(const std::string& name, LoadConfig config = {}) {
        auto image = read_image(BPFWARDEN_TEST_IMAGE_DIR, name);
        ASSERT_OK(image);
        ASSERT_OK(load_attach_pin(spec_named(name), *image, pins_, config));
    }

    // Collects decoded events until `done` holds or two seconds pass.
    std::vector<Event> collect(const std::function<bool(const std::vector<Event>&)>& done) {
        auto map = PinLayout::open_pin(pins_.map_pin(kEventsMap));
        EXPECT_OK(map);
        std::vector<Event> events;
        auto on_record = [](void* ctx, void* data, size_t size) {
            auto decoded = decode_event({static_cast<const std::byte*>(data), size});
            if (decoded)
                static_cast<std::vector<Event>*>(ctx)->push_back(*decoded);
            return 0;
        };
        ring_buffer* ring = ring_buffer__new(map->get(), on_record, &events, nullptr);
        EXPECT_NE(ring, nullptr);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!done(events) && std::chrono::steady_clock::now() < deadline)
            ring_buffer__poll(ring, 100);
        ring_buffer__free(ring);
        return events;
    }

    static std::string own_comm() {
        std::ifstream in("/proc/self/comm");
        std::string comm;
        std::getline(in, comm);
        return comm;
    }
};

bool is_bpf_call(const Event& event, pid_t tgid, int cmd) {
    return event.kind == EventKind::BpfCall && event.tgid == static_cast<uint32_t>(tgid) &&
           event.bpf_cmd == static_cast<uint32_t>(cmd);
}

// A pin that cannot be made: a state-changing command that fails at once.
int failing_pin() { return bpf_obj_pin(-1, "/sys/fs/bpf/bpfwarden-no-such-pin"); }

TEST_F(TracepointAuditTest, StateChangingBpfCallIsAuditedWithCallerIdentity) {
    load("bpf_audit");
    EXPECT_TRUE(is_pinned(spec_named("bpf_audit"), pins_));
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

// Read-only commands change nothing and are not reported: a lookup of a pin
// and a walk over program ids, then a pin as the marker (one thread: had the
// reads been reported, their events would come before the marker's).
TEST_F(TracepointAuditTest, ReadOnlyBpfCallsAreNotReported) {
    load("bpf_audit");
    EXPECT_LT(bpf_obj_get("/sys/fs/bpf/bpfwarden-no-such-pin"), 0);
    uint32_t next = 0;
    bpf_prog_get_next_id(0, &next);
    EXPECT_LT(failing_pin(), 0);

    auto events = collect([](const auto& seen) {
        return std::any_of(seen.begin(), seen.end(),
                           [](const Event& e) { return is_bpf_call(e, getpid(), BPF_OBJ_PIN); });
    });
    auto marker = std::find_if(events.begin(), events.end(),
                               [](const Event& e) { return is_bpf_call(e, getpid(), BPF_OBJ_PIN); });
    ASSERT_NE(marker, events.end()) << "the state-changing marker call was not reported";
    for (auto it = events.begin(); it != marker; ++it)
        EXPECT_FALSE(is_bpf_call(*it, getpid(), BPF_OBJ_GET) || is_bpf_call(*it, getpid(), BPF_PROG_GET_NEXT_ID))
            << "read-only command " << it->bpf_cmd << " was reported";
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

TEST_F(TracepointAuditTest, RateLimitBoundsAFloodFromOneProcess) {
    LoadConfig config;
    config.rate_limit_burst = 5;
    config.rate_limit_window_ns = 60'000'000'000ULL;  // one window for the whole test
    load("bpf_audit", config);
    for (int i = 0; i < 50; ++i)
        failing_pin();

    auto events = collect([](const auto&) { return false; });  // drain for the full two seconds
    size_t ours =
        std::count_if(events.begin(), events.end(), [](const Event& e) { return e.tgid == uint32_t(getpid()); });
    EXPECT_EQ(ours, 5u) << "the per-process budget is 5 events per window";
    auto counters = read_counters(pins_);
    ASSERT_OK(counters);
    EXPECT_GE(counters->rate_limited, 45u);
    EXPECT_GE(counters->events, 5u);
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
