// policy: the admin's policy workflow. `check` validates a policy directory or
// file the way bpfwardend would load it, without root and without a daemon;
// `show`, `diff` and `apply` (policy_running_commands.cpp) work with the
// policy bpfwardend runs.
#include "policy_command.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "policy/policy.h"
#include "policy/policy_compiler.h"
#include "support/command_line.h"
#include "support/installed_paths.h"
#include "support/text.h"

namespace bpfwarden::ctl {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPolicyUsage = R"(Usage: bpfwardenctl policy SUBCOMMAND [OPTIONS]

  check [DIR|FILE]  validate a policy directory (or one file) as bpfwardend
                    would load it: syntax, merge and rules, with file and
                    line; warnings for paths that name nothing yet
  show              the rules bpfwardend enforces now, each with its state
                    (active, inactive: path missing, drifted), over D-Bus
  diff [DIR]        what applying DIR (default: bpfwardend's policy
                    directory) would change: rules added, removed, changed,
                    and rules that would resolve differently; exit 1 if any
  apply [DIR]       check bpfwardend's policy directory, then have bpfwardend
                    reload it (ReloadPolicy; root or polkit); DIR, if given,
                    must be that directory
  sign [DIR]        check DIR, then sign it as a policy bundle (--key,
                    --version) for hosts run with --require-signed-policy
  verify [DIR]      check DIR's signed policy bundle as those hosts do

The admin workflow: edit a copy, 'check' and 'diff' it, copy it into the
policy directory, 'apply', then 'show'. See docs/POLICY.md.
Run 'bpfwardenctl policy SUBCOMMAND --help' for its options.
)";

struct RuleCounts {
    size_t file = 0, exec = 0, bpf_allow = 0, inactive = 0;
};

RuleCounts count_rules(const CompiledPolicy& compiled) {
    RuleCounts counts;
    for (const auto& rule : compiled.rules) {
        if (rule.bpf_allow)
            ++counts.bpf_allow;
        else if (rule.kind == RuleKind::FileOpen)
            ++counts.file;
        else
            ++counts.exec;
        counts.inactive += rule.active() ? 0 : 1;
    }
    return counts;
}

// The directory's files merged, or the one file.
Result<Policy> load(const fs::path& target) {
    std::error_code ec;
    if (fs::is_directory(target, ec))
        return load_policy_dir(target);
    return load_policy_file(target);
}

}  // namespace

Result<CompiledPolicy> compile_policy_target(const fs::path& target) {
    auto policy = load(target);
    if (!policy)
        return fail(policy.error());
    return compile_policy(*policy, filesystem_resolver());
}

namespace {

void print_json(const fs::path& target, const Result<CompiledPolicy>& compiled) {
    std::string out = "{\"target\":" + json_quote(target.string()) + ",\"valid\":" + (compiled ? "true" : "false");
    if (!compiled) {
        printf("%s,\"error\":%s}\n", out.c_str(), json_quote(compiled.error().message()).c_str());
        return;
    }
    RuleCounts counts = count_rules(*compiled);
    out += ",\"files\":" + std::to_string(compiled->sources.size()) +
           ",\"rules\":{\"file\":" + std::to_string(counts.file) + ",\"exec\":" + std::to_string(counts.exec) +
           ",\"bpf_allow\":" + std::to_string(counts.bpf_allow) + ",\"inactive\":" + std::to_string(counts.inactive) +
           "},\"warnings\":[";
    for (size_t i = 0; i < compiled->warnings.size(); ++i)
        out += (i ? "," : "") + json_quote(compiled->warnings[i]);
    printf("%s]}\n", out.c_str());
}

void print_text(const fs::path& target, const CompiledPolicy& compiled) {
    for (const auto& warning : compiled.warnings)
        printf("warning: %s\n", warning.c_str());
    RuleCounts counts = count_rules(compiled);
    printf("OK: %s is valid: %zu file, %zu exec and %zu bpf allow rules from %zu file%s", target.c_str(), counts.file,
           counts.exec, counts.bpf_allow, compiled.sources.size(), compiled.sources.size() == 1 ? "" : "s");
    if (counts.inactive)
        printf(", %zu inactive until their path exists (warnings above)", counts.inactive);
    printf("\n");
}

int check(int argc, char** argv) {
    std::vector<std::string> targets;
    bool json = false;
    CommandLine cli("bpfwardenctl policy check", "[DIR|FILE] [--json]",
                    std::string("Validates a policy directory (every *.toml in it, merged in name order) or one\n"
                                "policy file exactly as bpfwardend loads it: TOML syntax (file:line, column),\n"
                                "each rule, and the merge of the files. Paths are resolved as bpfwardend\n"
                                "would resolve them now: a path that names nothing yet is a warning (the rule\n"
                                "is kept, inactive until it exists), not an error. Needs neither root nor a\n"
                                "running bpfwardend, and changes nothing.\n\n"
                                "DIR defaults to ") +
                        installed::kPolicyDir + ".",
                    "Exit status: 0 valid (warnings are printed), 1 invalid, 2 invalid arguments\n"
                    "(including a DIR or FILE that does not exist).");
    cli.arguments("target", targets, "the policy directory or file to check");
    cli.flag("--json", json, "one JSON object: target, valid, error or files, rule counts and warnings");
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    if (targets.size() > 1) {
        fprintf(stderr, "bpfwardenctl policy check: one DIR or FILE at a time (got %zu)\n", targets.size());
        return 2;
    }
    const fs::path target = targets.empty() ? fs::path(installed::kPolicyDir) : fs::path(targets.front());
    struct stat st{};
    if (::stat(target.c_str(), &st) != 0) {
        fprintf(stderr, "bpfwardenctl policy check: '%s': no such file or directory\n", target.c_str());
        return 2;
    }
    Result<CompiledPolicy> compiled = compile_policy_target(target);
    if (json)
        print_json(target, compiled);
    else if (compiled)
        print_text(target, *compiled);
    else
        fprintf(stderr, "bpfwardenctl policy check: %s\n", compiled.error().message().c_str());
    return compiled ? 0 : 1;
}

}  // namespace

int policy(int argc, char** argv) {
    std::string_view sub = argc >= 2 ? argv[1] : "";
    if (sub == "-h" || sub == "--help" || sub == "help") {
        fputs(kPolicyUsage, stdout);
        return 0;
    }
    if (sub == "check")
        return check(argc - 1, argv + 1);
    if (sub == "show")
        return policy_show(argc - 1, argv + 1);
    if (sub == "diff")
        return policy_diff(argc - 1, argv + 1);
    if (sub == "apply")
        return policy_apply(argc - 1, argv + 1);
    if (sub == "sign")
        return policy_sign(argc - 1, argv + 1);
    if (sub == "verify")
        return policy_verify(argc - 1, argv + 1);
    if (sub.empty())
        fputs(kPolicyUsage, stderr);
    else
        fprintf(stderr, "bpfwardenctl policy: unknown subcommand '%s'\nTry 'bpfwardenctl policy --help'.\n", argv[1]);
    return 2;
}

}  // namespace bpfwarden::ctl
