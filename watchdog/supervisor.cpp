#include "supervisor.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "live_kernel.h"
#include "loading/lsm_probe.h"
#include "support/installed_paths.h"
#include "support/log.h"
#include "support/service_loop.h"
#include "support/text.h"

namespace bpfwarden {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t usec_since_epoch(std::chrono::system_clock::time_point when) {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count());
}

}  // namespace

Supervisor::Supervisor(WatchdogOptions options, std::unique_ptr<WatchdogKernel> kernel)
    : options_(std::move(options)), kernel_(std::move(kernel)) {
    options_.service.pin_root = options_.pins.root();
    options_.service.image_dir = options_.trust.image_dir;
    options_.service.keys_dir = options_.trust.keys_dir;
    options_.service.state_dir = options_.trust.state_dir;
    policy_trust_ = policy_trust_for(options_.trust);
    // The first loader marks itself as bpfwarden before self-protection is attached.
    options_.load.before_attach = [this](const ObjectSpec&) -> Result<void> {
        auto state = kernel_->self_state();
        if (state && state->store && !state->self)
            return mark_self(options_.pins, BW_ROLE_WATCHDOG);
        return {};
    };
    if (!kernel_)
        kernel_ = std::make_unique<LiveKernel>(options_.pins, options_.load);
    state_.version = installed::kVersion;
}

Result<void> Supervisor::start() {
    auto images = VerifiedImageSet::open(options_.trust);
    if (!images)
        return fail(images.error().wrap("images"));
    images_ = std::make_shared<const VerifiedImageSet>(std::move(*images));
    kernel_->use_images(images_);
    state_.image_set_version = images_->manifest().version;
    if (!options_.read_only)
        if (auto self = kernel_->self_state(); self && self->refused())
            return fail(ErrorKind::PermissionDenied, EPERM, refusal_message("bpfwarden-watchdog"));

    auto probe_image = images_->image("lsm_probe");
    if (!probe_image)
        return fail(probe_image.error());
    LsmStatus lsm = probe_bpf_lsm(**probe_image);
    bool enforcement = lsm.usable || options_.require_enforcement;
    std::string reason = lsm.usable ? "BPF LSM active"
                         : options_.require_enforcement
                             ? "enforcement required (--require-enforcement) although: " + lsm.reason
                             : lsm.reason;
    kernel_->use_bpf_lsm(lsm.usable);
    auto expected = ExpectedState::derive(*images_, enforcement, lsm.usable, options_.pins);
    if (!expected)
        return fail(expected.error());
    start_with(std::move(*expected), enforcement, std::move(reason));
    if (!options_.read_only)
        if (auto canary = ensure_canary(options_.service.canary); !canary)
            return canary;
    auto chosen =
        choose_policy(options_.policy_dir, options_.trust.state_dir, filesystem_resolver(), required_policy_trust());
    if (!chosen)
        return fail(chosen.error());
    set_policy(std::move(*chosen));
    return {};
}

void Supervisor::set_policy(ChosenPolicy chosen) {
    policy_source_ = chosen.source;
    state_.policy_source = std::string(to_string(chosen.source));
    state_.policy_problem = chosen.problem ? chosen.problem->message() : "";
    if (chosen.problem)
        log_error("policy: NOT the policy directory's: " + chosen.problem->message() + "; enforcing the " +
                  state_.policy_source + " until the directory is fixed");
    set_desired(desired_maps(chosen.policy, options_.service));
}

void Supervisor::start_with(ExpectedState expected, bool enforcement_expected, std::string mode_reason) {
    expected_ = std::move(expected);
    enforcement_expected_ = enforcement_expected;
    state_.mode = enforcement_expected ? "enforcing" : "audit-only";
    state_.mode_reason = std::move(mode_reason);
}

Result<bool> Supervisor::reload_policy() {
    auto compiled = compile_policy_dir(options_.policy_dir, filesystem_resolver(), nullptr, required_policy_trust());
    if (!compiled) {
        if (policy_source_ != PolicySource::PolicyDirectory)
            state_.policy_problem = compiled.error().message();
        return fail(compiled.error().wrap("policy"));
    }
    bool recovered = policy_source_ != PolicySource::PolicyDirectory;
    ChosenPolicy chosen{std::move(*compiled), PolicySource::PolicyDirectory, std::nullopt};
    policy_source_ = chosen.source;
    state_.policy_source = std::string(to_string(chosen.source));
    state_.policy_problem.clear();
    return set_desired(desired_maps(chosen.policy, options_.service)) || recovered;
}

bool Supervisor::set_desired(DesiredMaps desired) {
    if (!expected_.set_desired(std::move(desired)))
        return false;
    maps_intact_at_.reset();
    return_memory_ = true;
    return true;
}

// The digests are skipped while the maps cannot have changed since they were
// last found intact: no watched bpf() command from another process, and less
// than kFullDigestEvery ago. `change_count` is read before digesting: a write
// during it moves the counter.
bool Supervisor::should_digest_maps(uint64_t& change_count) const {
    if (!map_change_counter_)
        return true;
    change_count = map_change_counter_();
    bool unchanged_since_intact = maps_intact_at_ && maps_intact_at_->second == change_count &&
                                  Clock::now() - maps_intact_at_->first < kFullDigestEvery;
    return !unchanged_since_intact;
}

void Supervisor::note_maps(const CheckResult& result, uint64_t change_count) {
    if (result.maps_intact)
        maps_intact_at_.emplace(Clock::now(), change_count);
    else
        maps_intact_at_.reset();
}

CheckResult Supervisor::check() {
    uint64_t change_count = 0;
    bool digest = should_digest_maps(change_count);
    CheckOptions options{digest, enforcement_expected_, options_.service.canary, state_.mode_reason};
    CheckResult result = check_state(expected_, *kernel_, options);
    if (digest)
        note_maps(result, change_count);
    state_.programs = result.programs;
    return result;
}

// After a policy-directory edit, maps that still hold the policy from before
// it are not tampered with: bpfwardend has not applied the edit yet. They get
// the edited policy (the directory is what both processes enforce), as an
// apply rather than a heal. A map holding anything else is left to the check.
void Supervisor::apply_edited_policy() {
    std::vector<MapCheck> before = expected_.take_superseded();
    bool stale = false;
    for (const auto& old : before) {
        PolicyMapFacts map = kernel_->policy_map(old.name, true);
        if (map.missing || !map.digest)
            return;
        const MapCheck* now = nullptr;
        for (const auto& check : expected_.map_checks())
            if (check.name == old.name)
                now = &check;
        if (now && *map.digest == now->desired)
            continue;
        if (*map.digest != old.desired)
            return;  // not the old policy: tampering, for the check to find
        stale = true;
    }
    if (!stale)
        return;
    if (auto written = kernel_->write_policy_maps(expected_.desired()); !written)
        log_error("policy: applying the edited policy directory failed: " + written.error().message());
    else
        log_notice("policy: applied the edited policy directory to the maps (bpfwardend had not yet)");
}

bool Supervisor::re_resolve_before_heal(const std::vector<Finding>& findings) {
    bool drifted = std::any_of(findings.begin(), findings.end(),
                               [](const Finding& finding) { return finding.kind == FindingKind::PolicyMapDrifted; });
    if (!drifted || policy_source_ != PolicySource::PolicyDirectory)
        return false;
    auto changed = reload_policy();
    if (!changed || !*changed)
        return false;
    log_notice("policy: rule paths name other files now; desired policy re-resolved before judging the maps");
    apply_edited_policy();
    return true;
}

bool Supervisor::healing_paused() {
    auto self = kernel_->self_state();
    if (!self || !self->lifted)
        return false;
    uint64_t left_ms = (self->lifted_until_ns - monotonic_ns()) / 1'000'000;
    state_.reasons.push_back("self-protection lifted for another " + std::to_string(left_ms / 1000) +
                             " s: not healing until it ends");
    return true;
}

HealOutcome Supervisor::heal_findings(const std::vector<Finding>& findings, const std::string& reason) {
    auto started = Clock::now();
    maps_intact_at_.reset();
    HealOutcome outcome = heal(plan_heal(findings, expected_), expected_, *kernel_);
    if (outcome.aborted) {
        log_error("heal: " + outcome.failures.back() + " (" + reason + ")");
        return outcome;
    }
    for (const auto& failure : outcome.failures)
        log_error("heal: " + failure);
    auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
    state_.heal_count++;
    count_heal_kinds(findings);
    state_.last_heal_reason = reason;
    state_.last_heal_usec = static_cast<uint64_t>(elapsed.count());
    char duration[32];
    snprintf(duration, sizeof(duration), "%.1f", static_cast<double>(elapsed.count()) / 1000.0);
    log_notice("heal: " + reason + " -> " +
               (outcome.done.empty() ? std::string("nothing could be done") : join(outcome.done, ", ")) + " in " +
               duration + " ms");
    return outcome;
}

void Supervisor::count_heal_kinds(const std::vector<Finding>& findings) {
    std::set<std::string_view> kinds;
    for (const auto& finding : findings)
        kinds.insert(to_string(finding.kind));
    for (std::string_view kind : kinds)
        state_.heals_by_kind[std::string(kind)]++;
}

void Supervisor::begin_cycle(const std::string& trigger) {
    cycle_started_ = Clock::now();
    state_.checks++;
    state_.last_check_usec = usec_since_epoch(std::chrono::system_clock::now());
    state_.last_trigger = trigger;
    state_.reasons.clear();
}

void Supervisor::end_cycle() {
    state_.healthy = state_.reasons.empty();
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - cycle_started_);
    state_.last_check_duration_usec = static_cast<uint64_t>(took.count());
    // The first cycle, and the first after a new policy, have freed what the
    // one before needed (its compiled policy, its maps' read buffers).
    if (std::exchange(return_memory_, false))
        return_freed_memory();
}

void Supervisor::run_cycle(const std::string& trigger) {
    begin_cycle(trigger);
    if (expected_.has_superseded())
        apply_edited_policy();

    bool healed = false, verified = false;
    std::string cause = trigger;
    std::vector<Finding> before_heal;
    for (int round = 0;; ++round) {
        std::vector<Finding> findings = check().findings;
        if (findings.empty()) {
            verified = true;
            break;
        }
        if (round == 0 && re_resolve_before_heal(findings))
            continue;  // judge the maps against the files the paths name now
        // Out of attempts, or the last heal could not do its work or changed
        // nothing, or protection is lifted: what is still wrong is why we are unhealthy.
        if (round == kMaxHeals || !state_.reasons.empty() || findings == before_heal || healing_paused()) {
            for (auto& detail : details(findings))
                state_.reasons.push_back(std::move(detail));
            break;
        }
        std::string reason = describe(findings) + " (detected by " + cause + ")";
        log_warning("check: " + reason);
        HealOutcome outcome = heal_findings(findings, reason);
        state_.reasons.insert(state_.reasons.end(), outcome.failures.begin(), outcome.failures.end());
        healed = true;
        before_heal = std::move(findings);
        cause = "the re-check after a heal";
    }
    note_foreign_programs(true);
    end_cycle();
    if (healed || !kernel_->holds_links() || (verified && !kernel_->holds_maps()))
        kernel_->hold_verified(expected_.objects(), verified);
}

// Other programs on our LSM hooks (systemd's RestrictFileSystems=, another
// security tool) are not tampering: a BPF LSM hook runs every attached
// program and the first refusal wins, so they may add refusals but never
// undo ours. They are reported (status, and a log line when the set
// changes), never healed against. Not being able to list them is a failure.
void Supervisor::note_foreign_programs(bool log_changes) {
    auto foreign = find_foreign_programs(expected_, *kernel_, state_.programs);
    if (!foreign) {
        state_.reasons.push_back(foreign.error().message());
        return;
    }
    if (log_changes && *foreign != state_.foreign_programs)
        for (const auto& program : *foreign)
            log_notice("check: " + program + " (another program's: reported, not tampering)");
    state_.foreign_programs = std::move(*foreign);
}

void Supervisor::check_only(const std::string& trigger) {
    begin_cycle(trigger);
    state_.reasons = details(check().findings);
    note_foreign_programs(false);
    end_cycle();
}

}  // namespace bpfwarden
