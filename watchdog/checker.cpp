#include "checker.h"

#include <cstdio>

#include "inspection/program_identity.h"

namespace bpfwarden {
namespace {

void check_pin_tree(WatchdogKernel& kernel, std::vector<Finding>& out) {
    for (const auto& dir : kernel.pin_directories()) {
        std::string where = "pin directory '" + dir.dir.string() + "'";
        if (dir.error) {
            out.push_back(
                {FindingKind::PinDirectory, nullptr, where + ": " + Error::system(dir.error, "stat").message()});
        } else if (!dir.is_dir || dir.mode != 0700 || dir.uid != 0) {
            char mode[8];
            snprintf(mode, sizeof(mode), "%04o", dir.mode);
            out.push_back({FindingKind::PinDirectory, nullptr,
                           where + " is " + (dir.is_dir ? "a directory" : "not a directory") + " with mode " + mode +
                               " owned by uid " + std::to_string(dir.uid) + " (expected a directory, 0700, root)"});
        }
    }
}

void check_program(const ExpectedObject& object, const ExpectedProgram& program, WatchdogKernel& kernel,
                   CheckResult& out) {
    LinkStatus status = kernel.inspect(object, program);
    WatchdogProgram health{program.identity.name, program.hook, status.prog_id, tag_hex(status.actual.tag), "ok"};
    if (status.problem != LinkProblem::None) {
        health.status = std::string(to_string(status.problem)) + ": " + status.detail;
        out.findings.push_back({FindingKind::LinkBroken, object.spec,
                                program.identity.name + " on " + program.hook + ": " + health.status});
    }
    out.programs.push_back(std::move(health));
}

void check_programs(const ExpectedState& expected, WatchdogKernel& kernel, CheckResult& out) {
    for (const auto& object : expected.objects())
        for (const auto& program : object.programs)
            check_program(object, program, kernel, out);
}

void check_policy_maps(const ExpectedState& expected, WatchdogKernel& kernel, CheckResult& out) {
    for (const auto& check : expected.map_checks()) {
        const std::string which = "policy map '" + check.name + "'";
        PolicyMapFacts map = kernel.policy_map(check.name, true);
        if (map.missing) {
            out.findings.push_back({FindingKind::PolicyMapMissing, nullptr, which + ": " + map.missing->message()});
            out.maps_intact = false;
            continue;
        }
        if (map.frozen) {
            out.findings.push_back({FindingKind::PolicyMapFrozen, nullptr,
                                    which + " was frozen (BPF_MAP_FREEZE): its policy could never be changed again"});
            out.maps_intact = false;
        }
        if (!map.digest) {
            out.findings.push_back(
                {FindingKind::PolicyMapUnreadable, nullptr, which + ": " + map.digest.error().message()});
            out.maps_intact = false;
        } else if (*map.digest != check.desired) {
            out.findings.push_back({FindingKind::PolicyMapDrifted, nullptr,
                                    which + " differs from the desired policy (digest " +
                                        digest_hex(*map.digest).substr(0, 16) + ", expected " +
                                        digest_hex(check.desired).substr(0, 16) + ")"});
            out.maps_intact = false;
        }
    }
}

// Opening the canary must fail with EPERM: proof that enforcement happens.
void check_canary(const std::filesystem::path& canary, const std::string& mode_reason, WatchdogKernel& kernel,
                  std::vector<Finding>& out) {
    int err = kernel.try_canary(canary);
    if (err == EPERM)
        return;
    if (err == 0)
        out.push_back({FindingKind::CanaryOpened, nullptr,
                       "canary '" + canary.string() + "' opened although the policy denies it: enforcement is " +
                           "silently broken (" + mode_reason + ")"});
    else
        out.push_back({FindingKind::CanaryError, nullptr,
                       "canary '" + canary.string() + "': " + Error::system(err, "open").message()});
}

}  // namespace

CheckResult check_state(const ExpectedState& expected, WatchdogKernel& kernel, const CheckOptions& options) {
    CheckResult result;
    check_pin_tree(kernel, result.findings);
    for (auto& problem : kernel.moved_map_pins())
        result.findings.push_back({FindingKind::MapPinMoved, nullptr, std::move(problem)});
    check_programs(expected, kernel, result);
    if (options.digest_maps)
        check_policy_maps(expected, kernel, result);
    if (options.expect_enforcement)
        check_canary(options.canary, options.mode_reason, kernel, result.findings);
    return result;
}

Result<std::vector<std::string>> find_foreign_programs(const ExpectedState& expected, WatchdogKernel& kernel,
                                                       const std::vector<WatchdogProgram>& ours) {
    std::vector<std::string> out;
    if (expected.lsm_hooks().empty())
        return out;
    std::vector<uint32_t> ids;
    for (const auto& program : ours)
        if (program.prog_id)
            ids.push_back(program.prog_id);
    auto foreign = kernel.foreign_programs(expected.lsm_hooks(), ids);
    if (!foreign)
        return fail(foreign.error().wrap("cannot list LSM programs"));
    for (const auto& program : *foreign)
        out.push_back("foreign program '" + program.prog_name + "' (id " + std::to_string(program.prog_id) +
                      ") attached to lsm/" + program.hook);
    return out;
}

}  // namespace bpfwarden
