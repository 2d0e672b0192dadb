#include "healer.h"

namespace bpfwarden {
namespace {

const ExpectedObject* object_of(const ExpectedState& expected, const ObjectSpec* spec) {
    for (const auto& object : expected.objects())
        if (object.spec == spec)
            return &object;
    return nullptr;
}

// A removed or replaced pin whose link we hold: put the same link back.
// Nothing is reloaded and enforcement never stopped. Returns what is left.
std::set<const ObjectSpec*> repin_held_links(std::set<const ObjectSpec*> broken, const ExpectedState& expected,
                                             WatchdogKernel& kernel, HealOutcome& outcome) {
    for (auto it = broken.begin(); it != broken.end();) {
        const ExpectedObject* object = object_of(expected, *it);
        if (object && !object->programs.empty() && kernel.repin_held_links(*object)) {
            outcome.done.push_back(std::string("re-pinned the held links of ") + (*it)->name);
            it = broken.erase(it);
        } else {
            ++it;
        }
    }
    return broken;
}

void rewrite_maps(const ExpectedState& expected, WatchdogKernel& kernel, HealOutcome& outcome) {
    if (auto written = kernel.write_policy_maps(expected.desired()); !written)
        outcome.failures.push_back("rewriting policy maps failed: " + written.error().message());
    else
        outcome.done.emplace_back("rewrote policy maps");
}

// Reloads `broken` in load order (the store first, filled before the programs
// that read its maps are attached). Returns whether the maps were rewritten.
bool reload_objects(const std::set<const ObjectSpec*>& broken, const ExpectedState& expected, WatchdogKernel& kernel,
                    HealOutcome& outcome) {
    bool rewritten = false;
    for (const auto& object : expected.objects()) {
        const ObjectSpec* spec = object.spec;
        if (!broken.contains(spec))
            continue;
        bool store = spec == expected.store();
        if (store)
            kernel.unpin_policy_maps();
        if (auto loaded = kernel.reload(*spec); !loaded) {
            outcome.failures.push_back(std::string("heal of ") + spec->name + " failed: " + loaded.error().message());
            continue;
        }
        outcome.done.push_back(std::string("reloaded ") + spec->name);
        if (store) {  // fill the new maps before any program that reads them is attached
            rewrite_maps(expected, kernel, outcome);
            rewritten = true;
        }
    }
    return rewritten;
}

}  // namespace

HealPlan plan_heal(const std::vector<Finding>& findings, const ExpectedState& expected) {
    HealPlan plan;
    for (const auto& finding : findings) {
        switch (finding.kind) {
        case FindingKind::LinkBroken: plan.broken.insert(finding.object); break;
        case FindingKind::PolicyMapMissing:
        case FindingKind::PolicyMapFrozen:
            plan.new_store = true;
            plan.rewrite_maps = true;
            break;
        case FindingKind::PolicyMapDrifted:
        case FindingKind::PolicyMapUnreadable: plan.rewrite_maps = true; break;
        case FindingKind::CanaryOpened:
        case FindingKind::CanaryError:
            // Enforcement silently broken: reload what enforces, with the policy.
            for (const ObjectSpec* spec : expected.enforcement())
                plan.broken.insert(spec);
            plan.rewrite_maps = true;
            break;
        case FindingKind::PinDirectory:
        case FindingKind::MapPinMoved:  // every heal restores the pin tree first
            break;
        }
    }
    return plan;
}

HealOutcome heal(const HealPlan& plan, const ExpectedState& expected, WatchdogKernel& kernel) {
    HealOutcome outcome;
    auto restored = kernel.restore_pin_tree();
    if (!restored) {
        outcome.failures.push_back(restored.error().message());
        outcome.aborted = true;
        return outcome;
    }
    outcome.done.insert(outcome.done.end(), restored->begin(), restored->end());

    std::set<const ObjectSpec*> reload = repin_held_links(plan.broken, expected, kernel, outcome);
    if (plan.new_store && expected.store()) {
        reload.insert(expected.store());
        for (const ObjectSpec* spec : expected.store_readers())  // new maps: the programs must be reloaded to use them
            reload.insert(spec);
    }
    bool rewritten = false;
    if (!reload.empty())
        rewritten = reload_objects(reload, expected, kernel, outcome);
    if (plan.rewrite_maps && !rewritten)
        rewrite_maps(expected, kernel, outcome);
    return outcome;
}

}  // namespace bpfwarden
