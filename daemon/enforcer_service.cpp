#include "enforcer_service.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "inspection/rule_hits.h"
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
    switch (mode) {
    case EnforcementMode::Enforcing: return "enforcing";
    case EnforcementMode::Degraded: return "degraded";
    case EnforcementMode::AuditOnly: break;
    }
    return "audit-only";
}

EnforcerService::EnforcerService(EnforcerOptions options) : options_(std::move(options)), pins_(options_.pin_root) {
    options_.service.pin_root = options_.pin_root;
    options_.service.image_dir = options_.trust.image_dir;
    options_.service.keys_dir = options_.trust.keys_dir;
    options_.service.state_dir = options_.trust.state_dir;
    policy_trust_ = policy_trust_for(options_.trust);
    for (const auto& exe :
         {std::filesystem::path("/proc/self/exe"), options_.service.daemon_exe, options_.service.watchdog_exe})
        if (auto identity = identity_of(exe))
            own_executables_.push_back(*identity);
}

bool EnforcerService::is_own_bpf_call(const Event& event) const {
    return event.kind == EventKind::BpfCall &&
           std::any_of(own_executables_.begin(), own_executables_.end(),
                       [&](const FileIdentity& exe) { return exe.dev == event.dev && exe.ino == event.ino; });
}

Result<CompiledPolicy> EnforcerService::load_policy(const PolicyFileOverride* override) const {
    auto compiled = compile_policy_dir(options_.policy_dir, filesystem_resolver(), override, required_policy_trust());
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

// The first loader marks itself as bpfwarden before any program that
// decides who bpfwarden is gets attached (a daemon started by systemd was
// marked at exec already).
Result<void> EnforcerService::mark_self_once() {
    if (marked_self_)
        return {};
    auto state = read_self_state(pins_);
    if (state && !state->self)
        if (auto marked = mark_self(pins_, BW_ROLE_DAEMON); !marked)
            return marked;
    marked_self_ = true;
    return {};
}

// BPF LSM works, yet an enforcement object did not load: its rules (or
// self-protection) are not enforced, and "enforcing" would be a lie.
void EnforcerService::note_failed_enforcement() {
    if (mode_ != EnforcementMode::Enforcing)
        return;
    for (const auto& object : objects_)
        if (object.spec->role == ObjectRole::Enforcement && object.origin == ObjectState::Origin::Failed) {
            mode_ = EnforcementMode::Degraded;
            mode_reason_ += std::string("; but ") + object.spec->name + " (" + object.spec->what +
                            ") failed to load: " + object.detail;
        }
}

void EnforcerService::set_up_objects(const VerifiedImageSet& images) {
    objects_.clear();
    LoadConfig load = options_.load;
    load.bpf_lsm = lsm_.usable;
    load.before_attach = [this](const ObjectSpec&) { return mark_self_once(); };
    for (const auto& spec : managed_objects()) {
        ObjectState state{&spec, ObjectState::Origin::Loaded, {}};
        if (spec.role == ObjectRole::Enforcement && mode_ != EnforcementMode::Enforcing) {
            state.origin = ObjectState::Origin::Skipped;
            state.detail = "needs BPF LSM";
        } else if (!is_needed(spec, lsm_.usable)) {
            state.origin = ObjectState::Origin::Skipped;
            state.detail = "not needed: BPF LSM serves";
        } else if (is_pinned(spec, pins_, lsm_.usable)) {
            state.origin = ObjectState::Origin::Adopted;
        } else if (auto image = images.image(spec.name); !image) {
            state.origin = ObjectState::Origin::Failed;
            state.detail = image.error().message();
        } else if (auto loaded = load_attach_pin(spec, **image, pins_, load); !loaded) {
            state.origin = ObjectState::Origin::Failed;
            state.detail = loaded.error().message();
        }
        objects_.push_back(state);
    }
}

// A policy that would weaken protection (or come with other trust anchors)
// is refused while protection is on; at start, refused means "keep
// protection on": nothing starts with less protection because of an edit.
Result<void> EnforcerService::check_protection(const SelfState& state) {
    if (state.refused())
        return fail(ErrorKind::PermissionDenied, EPERM, refusal_message("bpfwardend"));
    if (state.enforced() && !policy_.tables.settings.protect) {
        policy_.tables.settings.protect = 1;
        policy_problem_ = Error(ErrorKind::PermissionDenied, EPERM,
                                "protect = false ignored: it takes effect only while protection is lifted "
                                "(bpfwardenctl unlock)");
    }
    return check_against_protection(state, desired_maps(policy_, options_.service));
}

Result<void> EnforcerService::apply(const CompiledPolicy& policy, bool from_directory) {
    if (!policy_maps_)
        return fail(EINVAL, "the policy maps are not open yet");
    DesiredMaps desired = desired_maps(policy, options_.service);
    if (auto state = read_self_state(pins_); state)
        if (auto allowed = check_against_protection(*state, desired); !allowed)
            return allowed;
    auto applied = policy_maps_->apply(desired);
    if (!applied)
        return fail(applied.error());
    log_info("policy maps: " + std::to_string(applied->written) + " entries written, " +
             std::to_string(applied->removed) + " removed" +
             (applied->written + applied->removed == 0 ? " (they already held this policy)" : ""));
    // Rule ids now name the new policy's rules: their hits start from 0.
    if (auto cleared = clear_rule_hits(pins_); !cleared && cleared.error().errnum() != ENOENT)
        log_warning("policy: could not reset the rule hit counters: " + cleared.error().message());
    // A new object, not an assignment: that would keep the old rule table's
    // capacity, as large as the largest policy ever applied.
    policy_ = CompiledPolicy(policy);
    ++policy_generation_;
    if (from_directory) {
        policy_source_ = PolicySource::PolicyDirectory;
        policy_problem_.reset();
        if (auto saved = save_last_good_policy(options_.trust.state_dir, policy); !saved)
            log_warning("policy: " + saved.error().message());
        commit_bundle_version(policy);
    }
    return {};
}

Result<void> EnforcerService::start() {
    auto chosen =
        choose_policy(options_.policy_dir, options_.trust.state_dir, filesystem_resolver(), required_policy_trust());
    if (!chosen)
        return fail(chosen.error());
    policy_ = chosen->policy;
    policy_source_ = chosen->source;
    policy_problem_ = chosen->problem;
    auto images = VerifiedImageSet::open(options_.trust);
    if (!images)
        return fail(images.error().wrap("images"));
    if (auto created = pins_.create(); !created)
        return fail(created.error().wrap("pins"));
    auto state = read_self_state(pins_);
    if (!state)
        return fail(state.error().wrap("self-protection state"));
    if (auto allowed = check_protection(*state); !allowed)
        return allowed;
    // An existing store we may change (protection off or lifted): become
    // bpfwarden in it before the first program load its bpf() guard judges.
    if (state->store && !state->self)
        if (auto marked = mark_self_once(); !marked)
            return fail(marked.error());
    if (auto canary = ensure_canary(options_.service.canary); !canary)
        return canary;

    decide_mode(*images);
    set_up_objects(*images);
    note_failed_enforcement();
    bool any_running = false;
    for (const auto& object : objects_)
        any_running |= object.origin == ObjectState::Origin::Loaded || object.origin == ObjectState::Origin::Adopted;
    if (!any_running)
        return fail(0, "no BPF program could be loaded or adopted (see the errors above)");

    auto maps = PolicyMaps::open(pins_);
    if (!maps)
        return fail(maps.error().wrap("policy maps"));
    policy_maps_ = std::move(*maps);
    if (auto applied = apply(policy_, chosen->source == PolicySource::PolicyDirectory && !policy_problem_); !applied)
        return fail(applied.error().wrap("apply policy"));
    held_.refresh(pins_);
    image_set_version_ = images->manifest().version;
    if (auto committed = images->commit_version(options_.trust); !committed)
        return fail(committed.error().wrap("anti-rollback state"));
    return {};
}

void EnforcerService::notify(const PolicyApplied& event) {
    for (const auto& [token, listener] : policy_listeners_)
        listener(event);
}

Result<bool> EnforcerService::apply_policy(const ApplyRequest& request) {
    auto policy = load_policy(request.override);
    if (!policy)
        return fail(policy.error());
    bool recovering = policy_source_ != PolicySource::PolicyDirectory;
    // A newly signed bundle of the same rules still raises the bundle's floor.
    if (request.only_if_changed && !recovering && same_policy(*policy, policy_) && policy->bundle == policy_.bundle)
        return false;
    if (auto applied = apply(*policy, true); !applied)
        return fail(applied.error().wrap("apply policy"));
    notify({request.what, request.detail, request.reason, policy_generation_, policy_.rules.size(), policy_.warnings});
    return true;
}

namespace {

// The running policy's own files, compiled again against the filesystem as
// it is now: a re-resolution changes which files the paths name, never which
// rules there are. An edit of the directory is applied, and labelled, by the
// directory's own watch, even when it lands during a re-resolution.
Result<CompiledPolicy> recompile_running(const CompiledPolicy& running) {
    Policy merged;
    for (std::size_t i = 0; i < running.sources.size() && i < running.source_texts.size(); ++i) {
        auto parsed = parse_policy(running.source_texts[i], running.sources[i]);
        if (!parsed)
            return fail(parsed.error());
        if (auto merged_ok = merge_policy(merged, std::move(*parsed)); !merged_ok)
            return fail(merged_ok.error());
    }
    merged.bundle = running.bundle;
    return compile_policy(merged, filesystem_resolver());
}

}  // namespace

// Once a signed bundle is in force, older bundles are refused from now on.
void EnforcerService::commit_bundle_version(const CompiledPolicy& policy) const {
    if (!policy.bundle)
        return;
    log_info("policy: signed policy bundle version " + std::to_string(policy.bundle->version) + " (created " +
             policy.bundle->created + ", signed by " + policy.bundle->signer + ") is in force");
    if (auto committed = commit_policy_bundle_version(policy_trust_, policy.bundle->version); !committed)
        log_warning("policy: could not raise the policy bundle's anti-rollback floor: " + committed.error().message());
}

Result<bool> EnforcerService::re_resolve(const std::string& why) {
    if (policy_source_ != PolicySource::PolicyDirectory)
        return false;  // only the directory's policy is edited by the filesystem
    auto policy = recompile_running(policy_);
    if (!policy)
        return fail(policy.error().wrap("policy"));
    if (same_policy(*policy, policy_))
        return false;
    if (auto applied = apply(*policy, true); !applied)
        return fail(applied.error().wrap("apply policy"));
    notify({kReResolved, why, "rule path changed", policy_generation_, policy_.rules.size(), policy_.warnings});
    return true;
}

std::vector<RuleDrift> EnforcerService::drift() const {
    std::vector<RuleDrift> out;
    auto describe = [](const std::optional<FileIdentity>& file) {
        return file ? "inode " + std::to_string(file->ino) + " on device " + std::to_string(file->dev) : "nothing";
    };
    for (const auto& rule : policy_.rules) {
        if (rule.allowlist)
            continue;  // many files, none of them its path
        PathTarget now = resolve_path(rule.path);
        if (now.file == rule.target.file && now.dir == rule.target.dir)
            continue;
        out.push_back(
            {rule.id, rule.path, "names " + describe(now.file) + " now, applied to " + describe(rule.target.file)});
    }
    return out;
}

std::vector<std::filesystem::path> EnforcerService::rule_directories() const {
    std::set<std::filesystem::path> dirs;
    for (const auto& rule : policy_.rules)
        for (const auto& path : rule.depends_on())
            dirs.insert(std::filesystem::path(path).parent_path());
    return {dirs.begin(), dirs.end()};
}

std::vector<std::string> EnforcerService::follow_pins() {
    std::vector<std::string> changed = held_.refresh(pins_);
    if (changed.empty())
        return changed;
    if (auto maps = PolicyMaps::open(pins_))
        policy_maps_ = std::move(*maps);
    else
        log_warning("pins: " + maps.error().message());
    if (store_listener_)
        store_listener_(changed);
    return changed;
}

size_t EnforcerService::add_policy_listener(PolicyListener listener) {
    policy_listeners_.emplace(next_listener_, std::move(listener));
    return next_listener_++;
}

namespace {

// Journal message ids of the event kinds an admin acts on; `journalctl -x`
// explains them from units/bpfwarden.catalog.
constexpr const char* kDeniedMessageId = "7b9176337fc347bab652948d4fe1a557";
constexpr const char* kWouldDenyMessageId = "35c0938eaa58420e85a8504f02c6eb6b";
constexpr const char* kTamperMessageId = "2f1916527ab94a87b3d40b507661b331";

LogFields journal_fields_of(const Event& event, std::string_view rule_path, const std::string& json) {
    LogFields fields = event_journal_fields(event, rule_path);
    fields.emplace_back("BPFWARDEN_JSON", json);
    // journald adds the process's unit, cgroup and command line as OBJECT_*
    // fields while it still runs.
    fields.emplace_back("OBJECT_PID", std::to_string(event.tgid));
    if (event.kind == EventKind::Tamper)
        fields.emplace_back("MESSAGE_ID", kTamperMessageId);
    else if (event.action == EventAction::Deny)
        fields.emplace_back("MESSAGE_ID", kDeniedMessageId);
    else if (event.action == EventAction::WouldDeny)
        fields.emplace_back("MESSAGE_ID", kWouldDenyMessageId);
    return fields;
}

}  // namespace

void EnforcerService::handle_event(std::span<const std::byte> record) {
    auto event = decode_event(record);
    if (!event) {
        log_warning("events: " + event.error().message());
        return;
    }
    if (is_own_bpf_call(*event))
        return;
    event->wall_time_usec = monotonic_to_wall_usec(event->ts_ns);
    std::string rule_path;
    if (event->kind == EventKind::FileOpen || event->kind == EventKind::FileChange ||
        event->kind == EventKind::ExecCheck)
        // An allowlist's refusal names the file executed instead, and a
        // redacted rule's path is as private as its file's name.
        if (const RuleInfo* rule = policy_.rule(event->rule_id); rule && !rule->allowlist && !rule->redacted)
            rule_path = rule->path;
    if (observer_)
        observer_(*event, rule_path);
    const bool trail = event->kind == EventKind::Exec || event->kind == EventKind::BpfCall;
    RateLimiter& limiter = trail ? trail_log_limiter_ : match_log_limiter_;
    if (!limiter.allow(std::chrono::steady_clock::now()))
        return;
    if (uint64_t suppressed = limiter.take_suppressed_since_report())
        log_notice("events: " + std::to_string(suppressed) + (trail ? " audit-trail" : " rule-match") +
                   " events not logged (log rate limit)");

    LogLevel level = event->action == EventAction::Deny ? LogLevel::Warning : LogLevel::Info;
    if (log_to_journal())  // the text line to read, the JSON beside it in BPFWARDEN_JSON
        log(level, format_event_text(*event, rule_path),
            journal_fields_of(*event, rule_path, format_event_json(*event, rule_path)));
    else
        log(level, options_.json_events ? format_event_json(*event, rule_path) : format_event_text(*event, rule_path));
}

std::vector<ProgramStatus> EnforcerService::program_status() const {
    std::vector<ProgramStatus> out;
    for (const auto& object : objects_) {
        std::string state;
        switch (object.origin) {
        case ObjectState::Origin::Loaded: state = "loaded"; break;
        case ObjectState::Origin::Adopted: state = "adopted"; break;
        case ObjectState::Origin::Skipped: state = "skipped: " + object.detail; break;
        case ObjectState::Origin::Failed: state = "failed: " + object.detail; break;
        }
        for (const ProgramSpec* program : available_programs(*object.spec, lsm_.usable)) {
            ProgramStatus status;
            status.spec = object.spec;
            status.program = program;
            status.state = state;
            if (auto link = PinLayout::open_pin(pins_.link_pin(program->name)))
                read_link_fdinfo(link->get(), status);
            out.push_back(std::move(status));
        }
    }
    return out;
}

std::string EnforcerService::counters_summary() const {
    auto counters = read_counters(pins_);
    if (!counters)
        return "counters unavailable: " + counters.error().message();
    return "events=" + std::to_string(counters->events) + " denials=" + std::to_string(counters->denials) +
           " audits=" + std::to_string(counters->audits) + " tampers=" + std::to_string(counters->tampers) +
           " dropped=" + std::to_string(counters->dropped) + " rate_limited=" + std::to_string(counters->rate_limited);
}

}  // namespace bpfwarden
