#include "runtime_rules.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <toml++/toml.h>
#include <vector>

#include "support/atomic_file.h"
#include "support/file_io.h"
#include "support/unique_fd.h"

namespace bpfwarden {

namespace {

constexpr const char* kHeader =
    "# Runtime rules, written by bpfwardend for D-Bus AddRule/RemoveRule\n"
    "# (bpfwardenctl, busctl). Hand edits are kept, comments are not.\n\n";

// A policy error as the caller should read it: "file:line: reason" (EINVAL
// errors carry no system error worth printing).

std::optional<RuleKind> parse_kind(std::string_view kind) {
    if (kind == "file")
        return RuleKind::FileOpen;
    if (kind == "exec")
        return RuleKind::Exec;
    return std::nullopt;
}

Result<void> check_kind(std::string_view kind) {
    if (parse_kind(kind))
        return {};
    return fail(ErrorKind::InvalidArgument, EINVAL,
                "kind " + quote_for_message(kind.substr(0, 64)) +
                    " is not a rule kind: use \"file\" (opening the file) or \"exec\" (executing it)");
}

std::string rule_name(std::string_view kind, std::string_view path) {
    return std::string(kind) + " rule for " + quote_for_message(path);
}

}  // namespace

Result<void> check_rule_path(std::string_view path) {
    if (path.empty())
        return fail(ErrorKind::InvalidArgument, EINVAL, "the path is empty: give an absolute path such as /etc/shadow");
    if (path.size() > kMaxPolicyPathLength)
        return fail(ErrorKind::InvalidArgument, EINVAL,
                    "the path is " + std::to_string(path.size()) + " bytes long; a rule path may have at most " +
                        std::to_string(kMaxPolicyPathLength) + " bytes");
    if (path.front() != '/')
        return fail(ErrorKind::InvalidArgument, EINVAL,
                    "relative path " + quote_for_message(path.substr(0, 256)) +
                        ": rule paths must be absolute (start with '/')");
    for (size_t i = 0; i < path.size(); ++i) {
        auto byte = static_cast<unsigned char>(path[i]);
        if (byte < 0x20 || byte == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "0x%02x", byte);
            return fail(ErrorKind::InvalidArgument, EINVAL,
                        std::string("the path contains a control character (") + hex + " at byte " + std::to_string(i) +
                            "): " + quote_for_message(path.substr(0, 256)) +
                            "; rule paths must name a file by its plain absolute path");
        }
    }
    return {};
}

RuntimeRules::RuntimeRules(std::filesystem::path policy_dir, const PolicyTrust* require_signed)
    : dir_(std::move(policy_dir)), file_(dir_ / kFileName), require_signed_(require_signed) {}

Result<std::optional<std::string>> RuntimeRules::read_current() const {
    auto text = read_config_file(file_, kMaxPolicyFileBytes, "runtime policy file");
    if (!text) {
        if (text.error().errnum() == ENOENT)
            return std::optional<std::string>();
        return fail(text.error().note("fix or remove it").as(ErrorKind::PolicyInvalid));
    }
    return std::optional<std::string>(std::move(*text));
}

Result<void> RuntimeRules::validate(const std::string& text) const {
    PolicyFileOverride edited{kFileName, text};
    if (auto compiled = compile_policy_dir(dir_, filesystem_resolver(), &edited, require_signed_); !compiled)
        return fail(compiled.error().note("nothing was changed"));
    return {};
}

Result<RuntimeRules::Plan> RuntimeRules::plan_add(std::string_view kind, std::string_view path,
                                                  std::string_view action) const {
    if (auto ok = check_kind(kind); !ok)
        return std::unexpected(ok.error());
    if (action != "deny" && action != "audit")
        return fail(ErrorKind::InvalidArgument, EINVAL,
                    "action " + quote_for_message(action.substr(0, 64)) +
                        " is not a rule action: use \"deny\" (refuse with EPERM) or \"audit\" (allow and log)");
    if (auto ok = check_rule_path(path); !ok)
        return std::unexpected(ok.error());
    auto current = read_current();
    if (!current)
        return std::unexpected(current.error());

    Plan plan;
    plan.old_text = *current;
    try {
        toml::table root = plan.old_text ? toml::parse(*plan.old_text, file_.string()) : toml::table{};
        std::string key(kind);
        if (!root.contains(key))
            root.insert(key, toml::array{});
        toml::array* rules = root[key].as_array();
        if (!rules)
            return fail(ErrorKind::PolicyInvalid, EINVAL,
                        "runtime policy file '" + file_.string() + "': '" + key +
                            "' is not a list of rules; fix or remove the file");
        bool found = false;
        for (auto& node : *rules) {
            toml::table* rule = node.as_table();
            if (!rule || rule->get_as<std::string>("path") == nullptr ||
                rule->get_as<std::string>("path")->get() != path)
                continue;
            found = true;
            const auto* old_action = rule->get_as<std::string>("action");
            if (!old_action || old_action->get() != action) {
                rule->insert_or_assign("action", std::string(action));
                plan.changed = true;
            }
        }
        if (!found) {
            rules->push_back(toml::table{{"path", std::string(path)}, {"action", std::string(action)}});
            plan.changed = true;
        }
        std::ostringstream text;
        text << kHeader << toml::toml_formatter(root) << "\n";
        plan.new_text = text.str();
    } catch (const toml::parse_error& error) {
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    file_.string() + ":" + std::to_string(error.source().begin.line) + ": " +
                        std::string(error.description()) + "; fix or remove the runtime policy file");
    } catch (const std::exception& error) {
        return fail(ErrorKind::Failed, EIO, std::string("edit runtime policy: ") + error.what());
    }
    if (!plan.changed)
        return plan;
    if (auto valid = validate(plan.new_text); !valid)
        return std::unexpected(valid.error());
    return plan;
}

Result<RuntimeRules::Plan> RuntimeRules::plan_remove(std::string_view kind, std::string_view path,
                                                     const CompiledPolicy& in_force) const {
    if (auto ok = check_kind(kind); !ok)
        return std::unexpected(ok.error());
    if (auto ok = check_rule_path(path); !ok)
        return std::unexpected(ok.error());
    auto not_found = [&]() -> std::unexpected<Error> {
        RuleKind wanted = *parse_kind(kind);
        for (const auto& rule : in_force.rules)
            if (!rule.bpf_allow && rule.kind == wanted && rule.path == path)
                return fail(ErrorKind::NotFound, ENOENT,
                            rule_name(kind, path) + " is defined in " + to_string(rule.where) +
                                ", not in the runtime policy file " + file_.string() +
                                ": edit that file, then call ReloadPolicy");
        return fail(ErrorKind::NotFound, ENOENT,
                    "there is no " + rule_name(kind, path) + " (ListRules lists the rules in force)");
    };
    auto current = read_current();
    if (!current)
        return std::unexpected(current.error());
    std::optional<std::string> old_text = std::move(*current);
    if (!old_text)
        return not_found();

    Plan plan;
    plan.old_text = old_text;
    try {
        toml::table root = toml::parse(*old_text, file_.string());
        std::string key(kind);
        toml::array* rules = root[key].as_array();
        if (!rules)
            return not_found();
        size_t before = rules->size();
        for (auto it = rules->begin(); it != rules->end();) {
            const toml::table* rule = it->as_table();
            const auto* rule_path = rule ? rule->get_as<std::string>("path") : nullptr;
            it = rule_path && rule_path->get() == path ? rules->erase(it) : it + 1;
        }
        if (rules->size() == before)
            return not_found();
        if (rules->empty())
            root.erase(key);
        std::ostringstream text;
        text << kHeader;
        if (!root.empty())
            text << toml::toml_formatter(root) << "\n";
        plan.new_text = text.str();
        plan.changed = true;
    } catch (const toml::parse_error& error) {
        return fail(ErrorKind::PolicyInvalid, EINVAL,
                    file_.string() + ":" + std::to_string(error.source().begin.line) + ": " +
                        std::string(error.description()) + "; fix or remove the runtime policy file");
    } catch (const std::exception& error) {
        return fail(ErrorKind::Failed, EIO, std::string("edit runtime policy: ") + error.what());
    }
    if (auto valid = validate(plan.new_text); !valid)
        return std::unexpected(valid.error());
    return plan;
}

Result<void> RuntimeRules::write(const std::optional<std::string>& text) const {
    auto sync_dir = [&]() -> Result<void> {
        UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir || fsync(dir.get()) != 0)
            return fail_errno("sync policy directory '" + dir_.string() + "'");
        return {};
    };
    if (!text) {
        if (::unlink(file_.c_str()) != 0 && errno != ENOENT)
            return fail_errno("remove '" + file_.string() + "'");
        return sync_dir();
    }
    // The temporary file has a hidden name: the policy loaders ignore it.
    return write_file_atomically(file_, *text, 0644);
}

}  // namespace bpfwarden
