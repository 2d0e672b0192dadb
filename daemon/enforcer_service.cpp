#include "enforcer_service.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "policy/policy.h"
#include "support/event.h"
#include "support/log.h"

namespace bpfwarden {

namespace {

// What the kernel says about a link fd (fs/proc fdinfo: "prog_tag:",
// "prog_id:"). Needs no privilege, unlike BPF_PROG_GET_FD_BY_ID (CAP_SYS_ADMIN,
// which the daemon no longer has after setup).
void read_link_fdinfo(int fd, ProgramStatus& status) {
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(fd));
    std::string line;
    bool is_link = false;
    while (std::getline(info, line)) {
        char tag[32] = {};
        unsigned id = 0;
        if (line.starts_with("link_type:"))
            is_link = true;
        else if (std::sscanf(line.c_str(), "prog_tag: %31s", tag) == 1)
            status.tag = tag;
        else if (std::sscanf(line.c_str(), "prog_id: %u", &id) == 1)
            status.prog_id = id;
    }
    status.pinned = is_link;
    status.attached = is_link && status.prog_id != 0;
    if (!is_link) {
        status.tag.clear();
        status.prog_id = 0;
    }
}

}  // namespace

std::string_view to_string(EnforcementMode mode) {
    return mode == EnforcementMode::Enforcing ? "enforcing" : "audit-only";
}

EnforcerService::EnforcerService(EnforcerOptions options) : options_(std::move(options)), pins_(options_.pin_root) {}

Result<CompiledPolicy> EnforcerService::load_policy(const PolicyFileOverride* override) const {
    auto compiled = compile_policy_dir(options_.policy_dir, stat_resolver(), override);
    if (!compiled)
        return fail(compiled.error().wrap("policy"));
    return compiled;
}

void EnforcerService::decide_mode(const VerifiedImageSet& images) {
    if (options_.audit_only) {
        mode_ = EnforcementMode::AuditOnly;
        mode_reason_ = "audit-only requested (--audit-only)";
        lsm_ = LsmStatus{false, "not probed (--audit-only)", read_active_lsms()};
        return;
    }
    auto probe_image = images.image("lsm_probe");
    if (!probe_image) {
        mode_ = EnforcementMode::AuditOnly;
        mode_reason_ = "cannot probe BPF LSM: " + probe_image.error().message();
        lsm_ = LsmStatus{false, mode_reason_, read_active_lsms()};
        return;
    }
    LsmStatus lsm = probe_bpf_lsm(**probe_image);
    mode_ = lsm.usable ? EnforcementMode::Enforcing : EnforcementMode::AuditOnly;
    mode_reason_ = lsm.usable ? "BPF LSM active" : lsm.reason;
    lsm_ = std::move(lsm);
}

void EnforcerService::set_up_objects(const VerifiedImageSet& images) {
    objects_.clear();
    for (const auto& spec : managed_objects()) {
        ObjectState state{&spec, ObjectState::Origin::Loaded, {}};
        if (spec.role == ObjectRole::Enforcement && mode_ != EnforcementMode::Enforcing) {
            state.origin = ObjectState::Origin::Skipped;
            state.detail = "needs BPF LSM";
        } else if (is_pinned(spec, pins_)) {
            state.origin = ObjectState::Origin::Adopted;
        } else if (auto image = images.image(spec.name); !image) {
            state.origin = ObjectState::Origin::Failed;
            state.detail = image.error().message();
        } else if (auto loaded = load_attach_pin(spec, **image, pins_, options_.load); !loaded) {
            state.origin = ObjectState::Origin::Failed;
            state.detail = loaded.error().message();
        }
        objects_.push_back(state);
    }
}

ImplicitRules EnforcerService::current_implicit_rules() const {
    ImplicitRules implicit = implicit_rules(options_.service);
    bool listed = std::any_of(implicit.allow.begin(), implicit.allow.end(), [&](const ImplicitAllow& allow) {
        return allow.exe.dev == self_allow_.exe.dev && allow.exe.ino == self_allow_.exe.ino;
    });
    if (!listed)
        implicit.allow.push_back(self_allow_);
    return implicit;
}

Result<void> EnforcerService::apply(const CompiledPolicy& policy) {
    if (!policy_maps_)
        return fail(EINVAL, "the policy maps are not open yet");
    if (auto applied = policy_maps_->apply(desired_maps(policy, current_implicit_rules())); !applied)
        return applied;
    policy_ = policy;
    ++policy_generation_;
    return {};
}

Result<void> EnforcerService::start() {
    auto policy = load_policy();
    if (!policy)
        return std::unexpected(policy.error());
    auto images = VerifiedImageSet::open(options_.trust);
    if (!images)
        return std::unexpected(images.error().wrap("images"));
    if (auto created = pins_.create(); !created)
        return std::unexpected(created.error().wrap("pins"));
    auto self = executable_identity();
    if (!self)
        return std::unexpected(self.error().wrap("allowlist own executable"));
    self_allow_ = ImplicitAllow{*self, kSelfRuleId};
    if (auto canary = ensure_canary(options_.service.canary); !canary)
        return std::unexpected(canary.error());
    // A pinned bpf() guard from an earlier run (perhaps of an older binary)
    // must let this executable load whatever is missing.
    if (auto allowed = allow_implicit_in_pinned_guard(pins_, {self_allow_}); !allowed)
        return std::unexpected(allowed.error().wrap("allowlist own executable"));

    decide_mode(*images);
    set_up_objects(*images);
    bool any_running = false;
    for (const auto& state : objects_)
        any_running |= state.origin == ObjectState::Origin::Loaded || state.origin == ObjectState::Origin::Adopted;
    if (!any_running)
        return fail(0, "no BPF program could be loaded or adopted (see the errors above)");

    auto maps = PolicyMaps::open(pins_);
    if (!maps)
        return std::unexpected(maps.error().wrap("policy maps"));
    policy_maps_ = std::move(*maps);
    if (auto applied = apply(*policy); !applied)
        return std::unexpected(applied.error().wrap("apply policy"));
    image_set_version_ = images->manifest().version;
    if (auto committed = images->commit_version(options_.trust); !committed)
        return std::unexpected(committed.error().wrap("anti-rollback state"));
    return {};
}

Result<bool> EnforcerService::apply_policy(const ApplyRequest& request) {
    auto policy = load_policy(request.override);
    if (!policy)
        return fail(policy.error());
    if (request.only_if_changed && same_policy(*policy, policy_))
        return false;
    if (auto applied = apply(*policy); !applied)
        return fail(applied.error().wrap("apply policy"));
    PolicyApplied event{request.what,       request.detail,       request.reason,
                        policy_generation_, policy_.rules.size(), policy_.warnings};
    for (const auto& [token, listener] : policy_listeners_)
        listener(event);
    return true;
}

size_t EnforcerService::add_policy_listener(PolicyListener listener) {
    policy_listeners_.emplace(next_listener_, std::move(listener));
    return next_listener_++;
}

void EnforcerService::handle_event(std::span<const std::byte> record) {
    auto event = decode_event(record);
    if (!event) {
        log_warning("events: " + event.error().message());
        return;
    }
    std::string rule_path;
    if (event->kind == EventKind::FileOpen || event->kind == EventKind::ExecCheck)
        if (const RuleInfo* rule = policy_.rule(event->rule_id))
            rule_path = rule->path;
    if (observer_)
        observer_(*event, rule_path);
    if (!log_limiter_.allow(std::chrono::steady_clock::now()))
        return;
    if (uint64_t suppressed = log_limiter_.take_suppressed_since_report())
        log_notice("events: " + std::to_string(suppressed) + " events not logged (log rate limit)");

    std::string line =
        options_.json_events ? format_event_json(*event, rule_path) : format_event_text(*event, rule_path);
    LogLevel level = event->action == EventAction::Deny ? LogLevel::Warning : LogLevel::Info;
    log(level, line,
        {{"BPFWARDEN_EVENT", std::string(event_kind_name(event->kind))},
         {"BPFWARDEN_ACTION", std::string(action_name(event->action))},
         {"BPFWARDEN_PID", std::to_string(event->tgid)}});
}

std::vector<ProgramStatus> EnforcerService::program_status() const {
    std::vector<ProgramStatus> out;
    for (const auto& object : objects_) {
        if (!object.spec->program)
            continue;
        ProgramStatus status;
        status.spec = object.spec;
        switch (object.origin) {
        case ObjectState::Origin::Loaded: status.state = "loaded"; break;
        case ObjectState::Origin::Adopted: status.state = "adopted"; break;
        case ObjectState::Origin::Skipped: status.state = "skipped: " + object.detail; break;
        case ObjectState::Origin::Failed: status.state = "failed: " + object.detail; break;
        }
        if (auto link = PinLayout::open_pin(pins_.link_pin(object.spec->program)))
            read_link_fdinfo(link->get(), status);
        out.push_back(std::move(status));
    }
    return out;
}

std::string EnforcerService::counters_summary() const {
    auto counters = read_counters(pins_);
    if (!counters)
        return "counters unavailable: " + counters.error().message();
    return "events=" + std::to_string(counters->events) + " denials=" + std::to_string(counters->denials) +
           " audits=" + std::to_string(counters->audits) + " dropped=" + std::to_string(counters->dropped) +
           " rate_limited=" + std::to_string(counters->rate_limited);
}

}  // namespace bpfwarden
