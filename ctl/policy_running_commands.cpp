// policy show | diff | apply: the policy bpfwardend runs, read and reloaded
// over D-Bus (org.bpfwarden.Enforcer1: ListRules, DriftedRules, ReloadPolicy).
//
// Exit status of all three: 0 done (diff: no difference), 1 diff only: there
// are differences, 2 an error: invalid arguments, an invalid policy, a
// directory bpfwardend does not read, bpfwardend unreachable or refusing.
// diff's 0/1/2 follow diff(1), so that scripts can tell "differs" from
// "could not compare".

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "policy_command.h"
#include "policy_diff.h"
#include "status_client.h"
#include "support/command_line.h"
#include "support/text.h"

namespace bpfwarden::ctl {
namespace {

namespace fs = std::filesystem;
using dbus::EnforcerSnapshot;
using dbus::StatusClient;

constexpr int kDiffers = 1;
constexpr int kError = 2;

// The running policy, read consistently: its properties and its rules from
// one generation.
struct RunningPolicy {
    EnforcerSnapshot state;
    std::vector<RunningRule> rules;
};

std::vector<RunningRule> running_rules(const std::vector<dbus::RuleEntry>& entries, const EnforcerSnapshot& state) {
    std::vector<RunningRule> rules;
    for (const auto& entry : entries) {
        RunningRule rule{entry.id, entry.kind, entry.path, entry.action, entry.source, entry.active, std::nullopt};
        for (const auto& drift : state.drifted_rules)
            if (drift.id == entry.id)
                rule.drift = drift.detail;
        for (const auto& scoped : state.rule_scopes)
            if (scoped.id == entry.id) {
                rule.scope = scoped.scope;
                rule.mode = scoped.mode;
            }
        if (auto hits = state.rule_hits.find(entry.id); hits != state.rule_hits.end())
            rule.hits = hits->second;
        rules.push_back(std::move(rule));
    }
    return rules;
}

// ListRules and the properties are separate calls: a policy applied between
// them (an edit of the directory, another admin) would mix two generations,
// so the generation is read on both sides and the read repeated if it moved.
Result<RunningPolicy> read_running_policy(const StatusClient& client) {
    constexpr int kAttempts = 3;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        auto before = client.enforcer();
        if (!before)
            return std::unexpected(before.error());
        auto rules = client.list_rules();
        if (!rules)
            return fail(rules.error().wrap("ListRules"));
        auto after = client.enforcer();
        if (!after)
            return std::unexpected(after.error());
        if (after->policy_generation == before->policy_generation)
            return RunningPolicy{*after, running_rules(*rules, *after)};
    }
    return fail(EAGAIN, "the running policy changed while it was being read (" + std::to_string(kAttempts) +
                            " times); try again");
}

Result<RunningPolicy> read_running_policy() {
    auto client = StatusClient::connect();
    if (!client)
        return std::unexpected(client.error());
    return read_running_policy(*client);
}

// An error of `command`: on stderr, and as {"error":...} on stdout for --json
// so that a script always gets one object. Returns kError.
int report_error(const char* command, bool json, const std::string& message) {
    if (json)
        printf("{\"error\":%s}\n", json_quote(message).c_str());
    fprintf(stderr, "bpfwardenctl policy %s: %s\n", command, message.c_str());
    return kError;
}

// A DIR argument for diff and apply: an existing directory (they compare or
// apply a whole policy directory, never one file).
Result<CompiledPolicy> compile_directory(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec))
        return fail(ENOENT, "'" + dir.string() + "': no such file or directory");
    if (!fs::is_directory(dir, ec))
        return fail(ENOTDIR, "'" + dir.string() + "' is not a directory (the whole policy directory is needed)");
    return compile_policy_target(dir);
}

std::string json_strings(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i)
        out += (i ? "," : "") + json_quote(items[i]);
    return out + "]";
}

// ---------------------------------------------------------------- show

constexpr const char* kShowDescription =
    R"(Lists the rules bpfwardend enforces now (ListRules over D-Bus), each with its
state: "active"; "inactive: path missing" (the path's directory does not
exist, the rule is kept and applied when a later apply finds it); or
"drifted: <detail>" (the path names another file now than when applied, see
DriftedRules; an apply re-resolves it). Also the policy generation, the
policy directory and the policy warnings. Needs no privileges.)";

constexpr const char* kShowFooter = "Exit status: 0 listed, 2 bpfwardend unreachable or invalid arguments.";

// "00-default.toml:26" for a file of the policy directory, else as given.
std::string shown_source(const std::string& source, const std::string& policy_dir) {
    std::string prefix = policy_dir.ends_with('/') ? policy_dir : policy_dir + "/";
    return source.starts_with(prefix) ? source.substr(prefix.size()) : source;
}

// Columns padded to their widest cell; the last one is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> widths;
    for (const auto& row : rows) {
        widths.resize(std::max(widths.size(), row.size()), 0);
        for (size_t i = 0; i < row.size(); ++i)
            widths[i] = std::max(widths[i], row[i].size());
    }
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i)
            line += i + 1 < row.size() ? row[i] + std::string(widths[i] - row[i].size() + 2, ' ') : row[i];
        puts(line.c_str());
    }
}

// "everyone", or the scope with its mode when that is audit.
std::string shown_scope(const RunningRule& rule) {
    if (rule.scope.empty())
        return "everyone";
    return rule.scope + (rule.mode == "audit" ? " (audit)" : "");
}

void print_show_text(const RunningPolicy& running) {
    const EnforcerSnapshot& s = running.state;
    printf("policy generation %llu, %zu rules from %s\n", static_cast<unsigned long long>(s.policy_generation),
           running.rules.size(), s.policy_directory.c_str());
    if (!s.policy_problem.empty())
        printf("enforcing the %s: %s\n", s.policy_source.c_str(), s.policy_problem.c_str());
    if (s.policy_bundle_version)
        printf("signed policy bundle version %llu, signed by %s\n",
               static_cast<unsigned long long>(s.policy_bundle_version), s.policy_bundle_signer.c_str());
    std::vector<std::vector<std::string>> rows = {{"ID", "KIND", "ACTION", "SCOPE", "PATH", "SOURCE", "HITS", "STATE"}};
    for (const auto& rule : running.rules)
        rows.push_back({std::to_string(rule.id), rule.kind, rule.action, shown_scope(rule), rule.path,
                        shown_source(rule.source, s.policy_directory), std::to_string(rule.hits), rule_state(rule)});
    print_table(rows);
    for (const auto& warning : s.policy_warnings)
        printf("warning: %s\n", warning.c_str());
}

void print_show_json(const RunningPolicy& running) {
    const EnforcerSnapshot& s = running.state;
    std::string out =
        "{\"generation\":" + std::to_string(s.policy_generation) + ",\"directory\":" + json_quote(s.policy_directory) +
        ",\"source\":" + json_quote(s.policy_source) +
        ",\"problem\":" + (s.policy_problem.empty() ? "null" : json_quote(s.policy_problem)) + ",\"bundle\":" +
        (s.policy_bundle_version ? "{\"version\":" + std::to_string(s.policy_bundle_version) +
                                       ",\"signer\":" + json_quote(s.policy_bundle_signer) + "}"
                                 : std::string("null")) +
        ",\"warnings\":" + json_strings(s.policy_warnings) + ",\"rules\":[";
    for (size_t i = 0; i < running.rules.size(); ++i) {
        const RunningRule& rule = running.rules[i];
        out += std::string(i ? "," : "") + "{\"id\":" + std::to_string(rule.id) + ",\"kind\":" + json_quote(rule.kind) +
               ",\"path\":" + json_quote(rule.path) + ",\"action\":" + json_quote(rule.action) +
               ",\"source\":" + json_quote(rule.source) + ",\"state\":" + json_quote(rule_state(rule)) +
               ",\"scope\":" + (rule.scope.empty() ? "null" : json_quote(rule.scope)) +
               ",\"mode\":" + (rule.mode.empty() ? "null" : json_quote(rule.mode)) +
               ",\"hits\":" + std::to_string(rule.hits) + "}";
    }
    puts((out + "]}").c_str());
}

// ---------------------------------------------------------------- diff

constexpr const char* kDiffDescription =
    R"(Compiles DIR here, exactly as 'policy check' and bpfwardend do, and compares
its rules with the rules bpfwardend enforces now (ListRules, DriftedRules):
  + kind path action (file:line)        a rule only DIR has
  - kind path action (file:line)        a rule DIR no longer has
  ~ kind path old → new (file:line)     its action or its location changed
  ! kind path action (file:line): old → new
                                        a rule that would resolve differently:
                                        inactive → active, active → inactive,
                                        drifted → active (an apply re-resolves)
A rule is known by its kind and path; locations are compared by file name
and line, so that a staging copy compares with the policy directory. Only
rules are compared: bpfwardend does not list top-level options or [bpf]
mode/restrict. DIR defaults to the directory bpfwardend reads
(PolicyDirectory). Needs no privileges.)";

constexpr const char* kDiffFooter =
    "Exit status: 0 no difference, 1 differences, 2 an error (invalid arguments, an\n"
    "invalid policy in DIR, bpfwardend unreachable).";

std::string location(const std::string& before, const std::string& after) {
    return before == after ? after : before + " → " + after;
}

void print_diff_text(const fs::path& dir, const RunningPolicy& running, const PolicyDiff& diff) {
    const auto generation = static_cast<unsigned long long>(running.state.policy_generation);
    if (diff.empty()) {
        printf("no changes: %s matches the running policy (generation %llu)\n", dir.c_str(), generation);
        return;
    }
    printf("running policy (generation %llu, %s) → %s:\n", generation, running.state.policy_directory.c_str(),
           dir.c_str());
    for (const auto& rule : diff.added)
        printf("+ %s%s\n", rule_text(rule).c_str(), rule.state == "active" ? "" : (", " + rule.state).c_str());
    for (const auto& rule : diff.removed)
        printf("- %s\n", rule_text(rule).c_str());
    for (const auto& [old_rule, new_rule] : diff.changed)
        printf("~ %s %s %s (%s)\n", new_rule.kind.c_str(), new_rule.path.c_str(),
               location(old_rule.action, new_rule.action).c_str(), location(old_rule.source, new_rule.source).c_str());
    for (const auto& [old_rule, new_rule] : diff.state_changes)
        printf("! %s: %s → %s\n", rule_text(new_rule).c_str(), old_rule.state.c_str(), new_rule.state.c_str());
    printf("%zu added, %zu removed, %zu changed, %zu would change state\n", diff.added.size(), diff.removed.size(),
           diff.changed.size(), diff.state_changes.size());
}

std::string view_json(const RuleView& rule) {
    return "{\"kind\":" + json_quote(rule.kind) + ",\"path\":" + json_quote(rule.path) +
           ",\"action\":" + json_quote(rule.action) + ",\"source\":" + json_quote(rule.source) +
           ",\"state\":" + json_quote(rule.state) +
           ",\"scope\":" + (rule.scope.empty() ? "null" : json_quote(rule.scope)) +
           ",\"mode\":" + (rule.mode.empty() ? "null" : json_quote(rule.mode)) + "}";
}

std::string views_json(const std::vector<RuleView>& rules) {
    std::string out = "[";
    for (size_t i = 0; i < rules.size(); ++i)
        out += (i ? "," : "") + view_json(rules[i]);
    return out + "]";
}

// [{"kind","path","running":{...},"compiled":{...}}]: both sides whole, so
// that a script picks what it needs (action, source or state).
std::string pairs_json(const std::vector<RulePair>& pairs) {
    std::string out = "[";
    for (size_t i = 0; i < pairs.size(); ++i)
        out += std::string(i ? "," : "") + "{\"kind\":" + json_quote(pairs[i].compiled.kind) +
               ",\"path\":" + json_quote(pairs[i].compiled.path) + ",\"running\":" + view_json(pairs[i].running) +
               ",\"compiled\":" + view_json(pairs[i].compiled) + "}";
    return out + "]";
}

void print_diff_json(const fs::path& dir, const RunningPolicy& running, const PolicyDiff& diff) {
    printf(
        "{\"directory\":%s,\"running\":{\"generation\":%llu,\"directory\":%s},\"differences\":%s,\"added\":%s,"
        "\"removed\":%s,\"changed\":%s,\"state_changes\":%s}\n",
        json_quote(dir.string()).c_str(), static_cast<unsigned long long>(running.state.policy_generation),
        json_quote(running.state.policy_directory).c_str(), diff.empty() ? "false" : "true",
        views_json(diff.added).c_str(), views_json(diff.removed).c_str(), pairs_json(diff.changed).c_str(),
        pairs_json(diff.state_changes).c_str());
}

// ---------------------------------------------------------------- apply

constexpr const char* kApplyDescription =
    R"(Checks the policy directory exactly as 'policy check' does and, if it is
valid, has bpfwardend reload it (ReloadPolicy over D-Bus), then prints the new
policy generation. bpfwardend and the watchdog read only their own policy
directory (PolicyDirectory, shown by 'policy show'), so DIR, if given, must be
that directory: to try a policy elsewhere, 'policy check' and 'policy diff'
it, then copy its files there. An invalid policy changes nothing. Needs root
or polkit's org.bpfwarden.manage-policy (bpfwardend decides).)";

constexpr const char* kApplyFooter =
    "Exit status: 0 applied; 2 nothing was applied: an invalid policy, DIR is not\n"
    "bpfwardend's policy directory, bpfwardend unreachable or refusing (the D-Bus\n"
    "error is printed), or invalid arguments.";

// Both name one directory. Compared by identity (device and inode), so that
// a relative path, a symlink or a bind mount of the daemon's directory count;
// by canonical path if either cannot be looked at.
bool same_directory(const fs::path& a, const fs::path& b) {
    std::error_code ec;
    bool same = fs::equivalent(a, b, ec);
    if (!ec)
        return same;
    return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

struct ApplyRequest {
    fs::path dir;
    bool json = false;
};

int apply_failure(const ApplyRequest& request, const std::string& message, std::optional<uint64_t> generation) {
    if (request.json) {
        std::string running = generation ? std::to_string(*generation) : "null";
        printf("{\"applied\":false,\"directory\":%s,\"error\":%s,\"generation\":%s}\n",
               json_quote(request.dir.string()).c_str(), json_quote(message).c_str(), running.c_str());
    }
    fprintf(stderr, "bpfwardenctl policy apply: %s\n", message.c_str());
    return kError;
}

// Refused by bpfwardend: the generation is read again, to say for certain
// what runs now rather than to assume it.
int reload_refused(const ApplyRequest& request, const StatusClient& client, const Error& error, uint64_t previous) {
    auto now = client.enforcer();
    if (!now)
        return apply_failure(
            request,
            error.message() + "; the policy generation could not be read again (" + now.error().message() + ")",
            std::nullopt);
    std::string outcome = now->policy_generation == previous
                              ? "the running policy is unchanged (generation " + std::to_string(previous) + ")"
                              : "the running policy is now generation " + std::to_string(now->policy_generation) +
                                    " (was " + std::to_string(previous) + "): bpfwardend applied an edit meanwhile";
    return apply_failure(request, error.message() + "\n" + outcome, now->policy_generation);
}

void print_applied(const ApplyRequest& request, uint64_t generation, uint64_t previous, size_t rules,
                   const std::vector<std::string>& warnings) {
    if (request.json) {
        printf(
            "{\"applied\":true,\"directory\":%s,\"generation\":%llu,\"previous_generation\":%llu,\"rules\":%zu,"
            "\"warnings\":%s}\n",
            json_quote(request.dir.string()).c_str(), static_cast<unsigned long long>(generation),
            static_cast<unsigned long long>(previous), rules, json_strings(warnings).c_str());
        return;
    }
    for (const auto& warning : warnings)
        printf("warning: %s\n", warning.c_str());
    printf("applied: generation %llu (was %llu), %zu rules\n", static_cast<unsigned long long>(generation),
           static_cast<unsigned long long>(previous), rules);
}

int reload(const ApplyRequest& request, const StatusClient& client, const EnforcerSnapshot& before,
           const CompiledPolicy& compiled) {
    auto generation = client.reload_policy();
    if (!generation)
        return reload_refused(request, client, generation.error(), before.policy_generation);
    // The rule count and warnings bpfwardend reports for what it applied; the
    // local compilation's if it cannot be read (the reload did happen).
    if (auto after = client.enforcer())
        print_applied(request, *generation, before.policy_generation, after->rule_count, after->policy_warnings);
    else
        print_applied(request, *generation, before.policy_generation, compiled.rules.size(), compiled.warnings);
    return 0;
}

int apply_checked(ApplyRequest& request, const std::optional<CompiledPolicy>& checked) {
    auto client = StatusClient::connect();
    auto before = client ? client->enforcer() : Result<EnforcerSnapshot>(std::unexpected(client.error()));
    if (!before)
        return apply_failure(request, "cannot reach bpfwardend: " + before.error().message() + "; nothing was changed",
                             std::nullopt);
    const uint64_t previous = before->policy_generation;
    if (request.dir.empty())
        request.dir = before->policy_directory;
    std::optional<CompiledPolicy> compiled = checked;
    if (!compiled) {
        auto from_dir = compile_directory(request.dir);
        if (!from_dir)
            return apply_failure(
                request,
                from_dir.error().message() + "; nothing was changed (generation " + std::to_string(previous) + ")",
                previous);
        compiled = std::move(*from_dir);
    }
    if (!same_directory(request.dir, before->policy_directory))
        return apply_failure(request,
                             "refused: bpfwardend reads its policy from '" + before->policy_directory +
                                 "', not from '" + request.dir.string() +
                                 "'. bpfwardend and the watchdog follow only that directory: place the files "
                                 "there (check them first with 'bpfwardenctl policy diff " +
                                 request.dir.string() + "'), then apply. Nothing was changed (generation " +
                                 std::to_string(previous) + ")",
                             previous);
    request.dir = before->policy_directory;  // what bpfwardend reloads, however DIR was spelt
    return reload(request, *client, *before, *compiled);
}

}  // namespace

int policy_show(int argc, char** argv) {
    bool json = false;
    CommandLine cli("bpfwardenctl policy show", "[--json]", kShowDescription, kShowFooter);
    cli.flag("--json", json, "one JSON object: generation, directory, source, problem, warnings and rules");
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    auto running = read_running_policy();
    if (!running)
        return report_error("show", json, "cannot read the running policy: " + running.error().message());
    if (json)
        print_show_json(*running);
    else
        print_show_text(*running);
    return 0;
}

int policy_diff(int argc, char** argv) {
    std::vector<std::string> targets;
    bool json = false;
    CommandLine cli("bpfwardenctl policy diff", "[DIR] [--json]", kDiffDescription, kDiffFooter);
    cli.arguments("dir", targets, "the policy directory to compare with the running policy");
    cli.flag("--json", json,
             "one JSON object: directory, running, differences, added, removed, changed, state_changes");
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    if (targets.size() > 1)
        return cli.usage_error("one DIR at a time (got " + std::to_string(targets.size()) + ")");
    // DIR is checked before bpfwardend is asked anything: its errors are the
    // admin's to fix whether or not the daemon runs.
    std::optional<CompiledPolicy> compiled;
    if (!targets.empty()) {
        auto from_dir = compile_directory(targets.front());
        if (!from_dir)
            return report_error("diff", json, from_dir.error().message());
        compiled = std::move(*from_dir);
    }
    auto running = read_running_policy();
    if (!running)
        return report_error("diff", json, "cannot read the running policy: " + running.error().message());
    const fs::path dir = targets.empty() ? fs::path(running->state.policy_directory) : fs::path(targets.front());
    if (!compiled) {
        auto from_dir = compile_directory(dir);
        if (!from_dir)
            return report_error("diff", json, from_dir.error().message());
        compiled = std::move(*from_dir);
    }
    PolicyDiff diff = diff_policy(running->rules, *compiled);
    if (json)
        print_diff_json(dir, *running, diff);
    else
        print_diff_text(dir, *running, diff);
    return diff.empty() ? 0 : kDiffers;
}

int policy_apply(int argc, char** argv) {
    std::vector<std::string> targets;
    ApplyRequest request;
    CommandLine cli("bpfwardenctl policy apply", "[DIR] [--json]", kApplyDescription, kApplyFooter);
    cli.arguments("dir", targets, "bpfwardend's policy directory (the default), named explicitly");
    cli.flag("--json", request.json,
             "one JSON object: applied, directory, generation, previous_generation, rules, warnings (or error)");
    if (auto exit_status = cli.parse(argc, argv))
        return *exit_status;
    if (targets.size() > 1)
        return cli.usage_error("one DIR at a time (got " + std::to_string(targets.size()) + ")");
    // A DIR given is checked first, daemon or not; without one, the
    // directory is bpfwardend's, which only bpfwardend can name.
    std::optional<CompiledPolicy> checked;
    if (!targets.empty()) {
        request.dir = targets.front();
        auto from_dir = compile_directory(request.dir);
        if (!from_dir)
            return apply_failure(request, from_dir.error().message() + "; nothing was changed", std::nullopt);
        checked = std::move(*from_dir);
    }
    return apply_checked(request, checked);
}

}  // namespace bpfwarden::ctl
