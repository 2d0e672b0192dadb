#include "supervisor.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "support/event.h"
#include "support/log.h"
#include "loading/lsm_probe.h"
#include "policy/policy.h"
#include "inspection/program_identity.h"
#include "support/unique_fd.h"

namespace bpfwarden {
namespace {

using Clock = std::chrono::steady_clock;

template <typename T>
std::vector<uint8_t> bytes_of(const T& value) {
    const auto* raw = reinterpret_cast<const uint8_t*>(&value);
    return {raw, raw + sizeof(T)};
}

template <typename Value>
Digest digest_of_hash(const std::map<bw_inode_key, Value, InodeKeyLess>& entries) {
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> raw;
    for (const auto& [key, value] : entries)
        raw.emplace_back(bytes_of(key), bytes_of(value));
    return digest_of_entries(sizeof(bw_inode_key), sizeof(Value), std::move(raw));
}

// "lsm/file_open" -> "file_open"
std::string lsm_hook_name(const char* hook) {
    std::string_view view = hook;
    return std::string(view.substr(view.find('/') + 1));
}

// The pin name under maps/ of a program's map: its own name, "<object>_counters"
// for the object's .bss, "" for other per-object globals (never pinned).
std::string map_pin_name(const ObjectSpec& spec, const std::string& map) {
    if (map.ends_with(".bss"))
        return std::string(spec.name) + "_counters";
    return map.find('.') == std::string::npos ? map : "";
}

}  // namespace

Result<void> Supervisor::start() {
    auto images = VerifiedImageSet::open(options_.trust);
    if (!images)
        return std::unexpected(images.error().wrap("images"));
    state_.image_set_version = images->manifest().version;

    auto probe_image = images->image("lsm_probe");
    if (!probe_image)
        return std::unexpected(probe_image.error());
    LsmStatus lsm = probe_bpf_lsm(**probe_image);
    enforcement_expected_ = lsm.usable || options_.require_enforcement;
    state_.mode = enforcement_expected_ ? "enforcing" : "audit-only";
    state_.mode_reason = lsm.usable ? "BPF LSM active"
                         : options_.require_enforcement
                             ? "enforcement required (--require-enforcement) although: " + lsm.reason
                             : lsm.reason;

    if (auto derived = derive_expected(*images); !derived)
        return derived;
    if (!options_.read_only)
        if (auto canary = ensure_canary(options_.service.canary); !canary)
            return canary;
    if (auto policy = reload_policy(); !policy)
        return std::unexpected(policy.error());
    return {};
}

Result<void> Supervisor::derive_expected(const VerifiedImageSet& images) {
    expected_.clear();
    lsm_hooks_.clear();
    for (const auto& spec : managed_objects()) {
        if (spec.role == ObjectRole::Enforcement && !enforcement_expected_)
            continue;
        ExpectedObject object{&spec, std::nullopt};
        if (spec.program) {
            auto image = images.image(spec.name);
            if (!image)
                return std::unexpected(image.error());
            auto identities = derive_identities(**image);
            if (!identities)
                return std::unexpected(identities.error().wrap(std::string("derive identity of ") + spec.program));
            for (const auto& identity : *identities)
                if (identity.name == spec.program)
                    object.program = ExpectedProgram{options_.pins.link_pin(spec.program).string(), identity, spec.hook};
            if (!object.program)
                return fail(ENOENT, std::string("signed image '") + spec.name + "' has no program " + spec.program);
            if (spec.role == ObjectRole::Enforcement)
                lsm_hooks_.push_back(lsm_hook_name(spec.hook));
        }
        expected_.push_back(std::move(object));
    }
    return {};
}

Result<bool> Supervisor::reload_policy() {
    auto policy = load_policy_dir(options_.policy_dir);
    if (!policy)
        return std::unexpected(policy.error().wrap("policy"));
    auto compiled = compile_policy(*policy, stat_resolver());
    if (!compiled)
        return std::unexpected(compiled.error().wrap("policy"));
    DesiredMaps desired = desired_maps(*compiled, implicit_rules(options_.service));
    std::vector<MapCheck> checks = map_checks_of(desired);
    if (checks == map_checks_)
        return false;  // e.g. an editor's swap file: nothing to enforce differently
    desired_ = std::move(desired);
    maps_intact_at_.reset();
    if (superseded_checks_.empty())  // several edits before a check: the maps may hold the oldest
        superseded_checks_ = std::move(map_checks_);
    map_checks_ = std::move(checks);
    return true;
}

std::vector<Supervisor::MapCheck> Supervisor::map_checks_of(const DesiredMaps& desired) {
    uint32_t zero = 0;
    return {
        {kFileRulesMap, digest_of_hash(desired.file_rules)},
        {kExecRulesMap, digest_of_hash(desired.exec_rules)},
        {kBpfAllowMap, digest_of_hash(desired.bpf_allow)},
        {kBpfPolicyMap, digest_of_entries(sizeof(zero), sizeof(bw_bpf_policy),
                                          {{bytes_of(zero), bytes_of(desired.bpf_policy)}})},
    };
}

// Ids of the maps a genuine program uses: the ones we hold, else the pinned
// ones. A copy of our own image loaded with someone else's maps has our tag,
// but not these maps.
std::vector<uint32_t> Supervisor::expected_map_ids(const ExpectedObject& object) const {
    std::vector<uint32_t> ids;
    for (const auto& map : object.program->identity.maps) {
        std::string name = map_pin_name(*object.spec, map);
        if (name.empty())
            continue;
        if (auto held = held_maps_.id(name)) {
            ids.push_back(*held);
            continue;
        }
        auto fd = PinLayout::open_pin(options_.pins.map_pin(name));
        if (!fd)
            continue;  // a missing map pin is reported by the map checks
        if (auto id = map_id_of(fd->get()))
            ids.push_back(*id);
    }
    return ids;
}

// Every map pin our objects keep: the policy maps, and each map a program uses.
std::vector<std::string> Supervisor::map_pin_names() const {
    std::set<std::string> names = {kFileRulesMap, kExecRulesMap, kBpfAllowMap, kBpfPolicyMap};
    for (const auto& object : expected_)
        if (object.program)
            for (const auto& map : object.program->identity.maps)
                if (std::string name = map_pin_name(*object.spec, map); !name.empty())
                    names.insert(std::move(name));
    return {names.begin(), names.end()};
}

std::set<const ObjectSpec*> Supervisor::check_programs(std::vector<std::string>& problems) {
    std::set<const ObjectSpec*> broken;
    state_.programs.clear();
    for (auto& object : expected_) {
        if (!object.program)
            continue;
        object.program->map_ids = expected_map_ids(object);
        LinkStatus status = inspector_.inspect_link(*object.program);
        ProgramHealth health{object.spec->program, object.spec->hook, "ok", status.prog_id,
                             tag_hex(status.actual.tag)};
        if (status.problem != LinkProblem::None) {
            health.status = std::string(to_string(status.problem)) + ": " + status.detail;
            problems.push_back(std::string(object.spec->program) + " on " + object.spec->hook + ": " + health.status);
            broken.insert(object.spec);
        }
        state_.programs.push_back(std::move(health));
    }
    return broken;
}

// The policy map the programs read: the held one (its pin is checked apart),
// else the pinned one, opened into `pinned`. -1 when neither exists.
int Supervisor::policy_map_fd(const char* name, Result<UniqueFd>& pinned) const {
    if (int fd = held_maps_.fd(name); fd >= 0)
        return fd;
    pinned = PinLayout::open_pin(options_.pins.map_pin(name));
    return pinned ? pinned->get() : -1;
}

// After a policy-directory edit, maps that still hold the policy from before
// it are not tampered with: bpfwardend has not applied the edit yet. They get
// the edited policy (the directory is what both processes enforce), as an
// apply rather than a heal. A map holding anything else is left to the check.
void Supervisor::apply_edited_policy() {
    std::vector<MapCheck> before = std::move(superseded_checks_);
    superseded_checks_.clear();
    bool stale = false;
    for (size_t i = 0; i < before.size() && i < map_checks_.size(); ++i) {
        Result<UniqueFd> pinned = UniqueFd();
        int fd = policy_map_fd(map_checks_[i].name, pinned);
        auto actual = fd < 0 ? Result<Digest>(std::unexpected(pinned.error())) : map_digest(fd);
        if (!actual || (*actual != map_checks_[i].desired && *actual != before[i].desired))
            return;
        stale = stale || *actual != map_checks_[i].desired;
    }
    if (!stale)
        return;
    if (auto applied = rewrite_policy_maps(); !applied)
        log_error("policy: applying the edited policy directory failed: " + applied.error().message());
    else
        log_notice("policy: applied the edited policy directory to the maps (bpfwardend had not yet)");
}

// Whether every policy map holds exactly the desired contents and can still
// be updated.
Supervisor::PolicyMapState Supervisor::check_policy_maps(std::vector<std::string>& problems) {
    PolicyMapState state;
    for (const auto& check : map_checks_) {
        Result<UniqueFd> pinned = UniqueFd();
        int fd = policy_map_fd(check.name, pinned);
        if (fd < 0) {
            problems.push_back(std::string("policy map '") + check.name + "': " + pinned.error().message());
            state.intact = false;
            state.needs_new_store = true;
            continue;
        }
        if (auto frozen = map_is_frozen(fd); frozen && *frozen) {
            problems.push_back(std::string("policy map '") + check.name +
                               "' was frozen (BPF_MAP_FREEZE): its policy could never be changed again");
            state.intact = false;
            state.needs_new_store = true;
        }
        auto actual = map_digest(fd);
        if (!actual) {
            problems.push_back(std::string("policy map '") + check.name + "': " + actual.error().message());
            state.intact = false;
        } else if (*actual != check.desired) {
            problems.push_back(std::string("policy map '") + check.name + "' differs from the desired policy (digest " +
                               digest_hex(*actual).substr(0, 16) + ", expected " +
                               digest_hex(check.desired).substr(0, 16) + ")");
            state.intact = false;
        }
    }
    return state;
}

// The policy-map check, skipped while the maps cannot have changed since they
// were last found intact: no watched bpf() command from another process, and
// less than kFullDigestEvery ago.
Supervisor::PolicyMapState Supervisor::check_policy_maps_unless_unchanged(std::vector<std::string>& problems) {
    if (!map_change_counter_)
        return check_policy_maps(problems);
    uint64_t calls = map_change_counter_();  // before digesting: a write during it moves the counter
    auto now = Clock::now();
    if (maps_intact_at_ && maps_intact_at_->second == calls && now - maps_intact_at_->first < kFullDigestEvery)
        return {};
    PolicyMapState state = check_policy_maps(problems);
    if (state.intact)
        maps_intact_at_.emplace(now, calls);
    else
        maps_intact_at_.reset();
    return state;
}

// Fresh policy maps come only from loading the store with none pinned (it
// reuses pinned maps). The running programs keep the old ones until their
// successors, using the new maps, are attached.
void Supervisor::unpin_policy_maps() const {
    for (const auto& check : map_checks_)
        unlink(options_.pins.map_pin(check.name).c_str());
}

// True when opening the canary is refused: enforcement really happens.
bool Supervisor::check_canary(std::vector<std::string>& problems) {
    if (!enforcement_expected_)
        return true;
    const std::string& canary = options_.service.canary.string();
    UniqueFd fd(::open(canary.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd && errno == EPERM)
        return true;
    if (fd)
        problems.push_back("canary '" + canary +
                           "' opened although the policy denies it: enforcement is silently broken (" +
                           state_.mode_reason + ")");
    else
        problems.push_back("canary '" + canary + "': " + Error::from_errno("open").message());
    return false;
}

void Supervisor::check_foreign(std::vector<std::string>& problems) {
    if (lsm_hooks_.empty())
        return;
    std::vector<uint32_t> ours;
    for (const auto& program : state_.programs)
        if (program.prog_id)
            ours.push_back(program.prog_id);
    auto foreign = inspector_.foreign_lsm_programs(lsm_hooks_, ours);
    if (!foreign) {
        problems.push_back("cannot list LSM programs: " + foreign.error().message());
        return;
    }
    for (const auto& program : *foreign)
        problems.push_back("foreign program '" + program.prog_name + "' (id " + std::to_string(program.prog_id) +
                           ") attached to lsm/" + program.hook);
}

Result<void> Supervisor::rewrite_policy_maps() {
    auto maps = PolicyMaps::open(options_.pins);
    if (!maps)
        return std::unexpected(maps.error());
    return maps->apply(desired_);
}

void Supervisor::heal(std::set<const ObjectSpec*> broken, bool rewrite_maps, const std::string& reason) {
    auto started = Clock::now();
    std::vector<std::string> done;
    maps_intact_at_.reset();
    if (!restore_pin_tree(done)) {
        log_error("heal: " + state_.reasons.back() + " (" + reason + ")");
        return;
    }
    // A pin removed or replaced while the link lives on (we hold it): put the
    // same link back. Nothing is reloaded and enforcement never stopped.
    for (auto it = broken.begin(); it != broken.end();) {
        if ((*it)->program && repin_held_link(**it)) {
            done.push_back(std::string("re-pinned the held link of ") + (*it)->program);
            it = broken.erase(it);
        } else {
            ++it;
        }
    }

    const ObjectSpec* store = &managed_objects()[0];
    if (broken.contains(store))
        // New policy maps: the programs must be reloaded to use them.
        for (const auto& object : expected_)
            if (object.spec->role == ObjectRole::Enforcement)
                broken.insert(object.spec);

    std::optional<VerifiedImageSet> images;
    if (!broken.empty()) {
        // Re-verify before loading: never load bytes that are not signed now.
        auto verified = VerifiedImageSet::open(options_.trust);
        if (!verified) {
            state_.reasons.push_back("heal refused, keeping the current programs: " + verified.error().message());
            log_error("heal: refused to reload (" + reason + "): " + verified.error().message() +
                      "; the current programs stay");
            return;
        }
        images = std::move(*verified);
    }
    auto rewrite = [&] {
        if (auto applied = rewrite_policy_maps(); !applied) {
            state_.reasons.push_back("rewriting policy maps failed: " + applied.error().message());
            log_error("heal: rewriting policy maps failed: " + applied.error().message());
        } else {
            done.push_back("rewrote policy maps");
        }
        rewrite_maps = false;
    };
    for (const auto& spec : managed_objects()) {
        if (!broken.contains(&spec))
            continue;
        if (&spec == store)
            unpin_policy_maps();
        auto image = images->image(spec.name);
        auto loaded = image ? load_attach_pin(spec, **image, options_.pins, options_.load)
                            : Result<void>(std::unexpected(image.error()));
        if (!loaded) {
            state_.reasons.push_back(std::string("heal of ") + spec.name + " failed: " + loaded.error().message());
            log_error("heal: " + loaded.error().message());
            continue;
        }
        done.push_back(std::string("reloaded ") + (spec.program ? spec.program : spec.name));
        if (spec.program)
            held_links_.erase(spec.program);  // the superseded link detaches now that the new one enforces
        held_maps_.clear();  // the load may have pinned new maps: hold them once verified
        if (&spec == store)
            rewrite();  // fill the new maps before any program that reads them is attached
    }
    if (rewrite_maps)
        rewrite();

    double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    state_.heal_count++;
    state_.last_heal_reason = reason;
    state_.last_heal_ms = ms;
    char duration[32];
    snprintf(duration, sizeof(duration), "%.1f", ms);
    log_notice("heal: " + reason + " -> " + (done.empty() ? std::string("nothing could be done") : join(done, ", ")) +
               " in " + duration + " ms");
}

// The pin directories exist with mode 0700, and every held map is pinned
// again where its pin was removed or replaced.
bool Supervisor::restore_pin_tree(std::vector<std::string>& done) {
    if (auto created = options_.pins.create(); !created) {
        state_.reasons.push_back("restoring the pin directories failed: " + created.error().message());
        return false;
    }
    auto repinned = held_maps_.repin(options_.pins);
    if (!repinned) {
        state_.reasons.push_back("re-pinning held maps failed: " + repinned.error().message());
        return false;
    }
    done.insert(done.end(), repinned->begin(), repinned->end());
    return true;
}

// One problem per pin directory that is missing or open to anyone but root.
void Supervisor::check_pin_tree(std::vector<std::string>& problems) const {
    const PinLayout& pins = options_.pins;
    for (const auto& dir : {pins.root(), pins.links_dir(), pins.maps_dir()}) {
        struct stat st {};
        if (lstat(dir.c_str(), &st) != 0) {
            problems.push_back("pin directory '" + dir.string() + "': " + Error::from_errno("stat").message());
        } else if (!S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0700 || st.st_uid != 0) {
            char mode[8];
            snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
            problems.push_back("pin directory '" + dir.string() + "' is " +
                               (S_ISDIR(st.st_mode) ? std::string("a directory") : std::string("not a directory")) +
                               " with mode " + mode + " owned by uid " + std::to_string(st.st_uid) +
                               " (expected a directory, 0700, root)");
        }
    }
}

// References to what the last check verified: each verified link, and, when
// everything checked out, the maps.
void Supervisor::hold_verified(bool all_verified) {
    if (all_verified)
        held_maps_.hold(options_.pins, map_pin_names());
    for (auto& object : expected_) {
        if (!object.program)
            continue;
        object.program->map_ids = expected_map_ids(object);
        LinkStatus status = inspector_.inspect_link(*object.program);
        if (status.problem != LinkProblem::None)
            continue;
        if (auto fd = PinLayout::open_pin(object.program->pin))
            held_links_[object.spec->program] = std::move(*fd);
    }
}

bool Supervisor::repin_held_link(const ObjectSpec& spec) {
    auto held = held_links_.find(spec.program);
    if (held == held_links_.end())
        return false;
    if (!options_.pins.pin_replacing(held->second.get(), options_.pins.link_pin(spec.program)))
        return false;
    for (const auto& object : expected_)
        if (object.spec == &spec && inspector_.inspect_link(*object.program).problem == LinkProblem::None)
            return true;
    return false;  // the held link is no longer what we expect: reload instead
}

// What is wrong now: the objects to reload and whether the maps need a rewrite.
Supervisor::Findings Supervisor::find_problems() {
    Findings found;
    check_pin_tree(found.problems);
    auto unpinned = held_maps_.check(options_.pins);
    found.problems.insert(found.problems.end(), unpinned.begin(), unpinned.end());
    auto programs = check_programs(found.problems);
    found.broken.insert(programs.begin(), programs.end());
    PolicyMapState maps = check_policy_maps_unless_unchanged(found.problems);
    if (maps.needs_new_store)
        found.broken.insert(&managed_objects()[0]);
    bool canary_ok = check_canary(found.problems);
    if (!canary_ok)
        for (const auto& object : expected_)
            if (object.spec->role == ObjectRole::Enforcement)
                found.broken.insert(object.spec);  // enforcement silently broken: reload what enforces
    found.rewrite_maps = !maps.intact || !canary_ok;
    return found;
}

void Supervisor::run_cycle(const std::string& trigger) {
    state_.checks++;
    state_.last_check = std::chrono::system_clock::now();
    state_.last_trigger = trigger;
    state_.reasons.clear();
    if (!superseded_checks_.empty())
        apply_edited_policy();

    // The pins are checked one after another, so a tamper landing mid-check
    // is seen only in part and the heal restores only that part. Verify each
    // heal took and heal again what is newly wrong, a bounded number of times.
    constexpr int kMaxHeals = 3;
    bool healed = false;
    bool verified = false;
    std::string cause = trigger;
    std::vector<std::string> before_heal;
    for (int round = 0;; ++round) {
        Findings found = find_problems();
        if (found.problems.empty()) {
            verified = true;
            break;
        }
        bool heal_failed = !state_.reasons.empty();
        if (round == kMaxHeals || heal_failed || found.problems == before_heal) {
            // The last heal could not do its work or changed nothing, or we are
            // out of attempts: what is still wrong is why we are unhealthy.
            state_.reasons.insert(state_.reasons.end(), found.problems.begin(), found.problems.end());
            break;
        }
        std::string reason = join(found.problems, "; ") + " (detected by " + cause + ")";
        log_warning("check: " + reason);
        heal(found.broken, found.rewrite_maps, reason);
        healed = true;
        before_heal = std::move(found.problems);
        cause = "the re-check after a heal";
    }
    std::vector<std::string> foreign;
    check_foreign(foreign);
    for (const auto& problem : foreign)
        log_warning("check: " + problem);
    state_.reasons.insert(state_.reasons.end(), foreign.begin(), foreign.end());
    state_.healthy = state_.reasons.empty();
    if (healed || held_links_.empty() || (verified && held_maps_.empty()))
        hold_verified(verified);
}

void Supervisor::check_only(const std::string& trigger) {
    state_.checks++;
    state_.last_check = std::chrono::system_clock::now();
    state_.last_trigger = trigger;
    state_.reasons = find_problems().problems;
    check_foreign(state_.reasons);
    state_.healthy = state_.reasons.empty();
}

std::string watchdog_state_json(const WatchdogState& state) {
    auto quote = [](const std::string& text) { return json_quote(text); };
    std::time_t last = std::chrono::system_clock::to_time_t(state.last_check);
    std::string out = "{\"healthy\":" + std::string(state.healthy ? "true" : "false") + ",\"reasons\":[";
    for (size_t i = 0; i < state.reasons.size(); ++i)
        out += (i ? "," : "") + quote(state.reasons[i]);
    char heal_ms[32];
    snprintf(heal_ms, sizeof(heal_ms), "%.3f", state.last_heal_ms);
    out += "],\"mode\":" + quote(state.mode) + ",\"mode_reason\":" + quote(state.mode_reason) +
           ",\"image_set_version\":" + std::to_string(state.image_set_version) +
           ",\"checks\":" + std::to_string(state.checks) + ",\"last_check\":" + std::to_string(last) +
           ",\"last_trigger\":" + quote(state.last_trigger) + ",\"heal_count\":" + std::to_string(state.heal_count) +
           ",\"last_heal_reason\":" + quote(state.last_heal_reason) + ",\"last_heal_ms\":" + heal_ms +
           ",\"programs\":[";
    for (size_t i = 0; i < state.programs.size(); ++i) {
        const auto& program = state.programs[i];
        out += std::string(i ? "," : "") + "{\"program\":" + quote(program.program) + ",\"hook\":" +
               quote(program.hook) + ",\"status\":" + quote(program.status) +
               ",\"prog_id\":" + std::to_string(program.prog_id) + ",\"tag\":" + quote(program.tag) + "}";
    }
    return out + "]}";
}

}  // namespace bpfwarden
