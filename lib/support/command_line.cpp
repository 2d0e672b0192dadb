#include "support/command_line.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "support/installed_paths.h"

namespace bpfwarden {
namespace {

// Edit distance, for "did you mean": option names are short.
size_t distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

bool is_negative_number(const std::string& arg) {
    return arg.size() > 1 && arg[0] == '-' && std::isdigit(static_cast<unsigned char>(arg[1]));
}

// "--name" of "--name=value".
std::string option_name(const std::string& arg) { return arg.substr(0, arg.find('=')); }

// Usage line first, then what the program does, then the options; an
// option's line shows only its value's name.
class Formatter : public CLI::Formatter {
public:
    Formatter() { column_width(30); }
    std::string make_usage(const CLI::App* app, std::string) const override {
        return "Usage: " + app->get_name() + "\n\n";
    }
    std::string make_option_opts(const CLI::Option* option) const override {
        return option->get_items_expected_min() > 0 ? " " + option->get_type_name() : std::string();
    }
    std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override {
        return make_usage(app, name) + make_description(app) + make_positionals(app) + make_groups(app, mode) + "\n" +
               make_footer(app);
    }
};

}  // namespace

CLI::Option* last_wins(CLI::Option* option) { return option->multi_option_policy(CLI::MultiOptionPolicy::TakeLast); }

std::string range_text(uint64_t min, uint64_t max) { return std::to_string(min) + ".." + std::to_string(max); }

std::optional<std::string> check_whole_number(const std::string& text, uint64_t min, uint64_t max) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || end != text.data() + text.size())
        return "'" + text + "' is not a whole number (expected " + range_text(min, max) + ")";
    if (ec != std::errc() || value < min || value > max)
        return "'" + text + "' is out of range (expected " + range_text(min, max) + ")";
    return std::nullopt;
}

CommandLine::CommandLine(std::string program, std::string synopsis, std::string description, std::string footer)
    : program_(std::move(program)), app_(std::move(description), program_ + " " + synopsis) {
    app_.formatter(std::make_shared<Formatter>());
    app_.set_help_flag("-h,--help", "show this help and exit");
    if (program_.find(' ') == std::string::npos)  // subcommands may use --version for their own purpose
        app_.set_version_flag("--version", program_ + " " + installed::kVersion, "show the version and exit");
    if (!footer.empty())
        app_.footer(std::move(footer));
    app_.get_formatter()->label("REQUIRED", "(required)");
}

CLI::Option* CommandLine::path(const std::string& name, std::filesystem::path& target, const std::string& help,
                               const std::string& value_name) {
    std::string full = target.empty() ? help : help + " (default " + target.string() + ")";
    return last_wins(app_.add_option(name, target, full)->type_name(value_name));
}

CLI::Option* CommandLine::text(const std::string& name, std::string& target, const std::string& help,
                               const std::string& value_name) {
    return last_wins(app_.add_option(name, target, help)->type_name(value_name));
}

CLI::Option* CommandLine::flag(const std::string& name, bool& target, const std::string& help) {
    return app_.add_flag(name, target, help);
}

CLI::Option* CommandLine::choice(const std::string& name, std::string& target, const std::vector<std::string>& choices,
                                 const std::string& help) {
    std::string listed, alternatives;
    for (const auto& choice : choices) {
        listed += (listed.empty() ? "" : ", ") + choice;
        alternatives += (alternatives.empty() ? "" : "|") + choice;
    }
    std::string full = help + " (" + listed + (target.empty() ? "" : "; default " + target) + ")";
    auto* option = last_wins(app_.add_option(name, target, full)->type_name(alternatives));
    option->check(CLI::Validator(
        [choices, listed](std::string& value) -> std::string {
            if (std::find(choices.begin(), choices.end(), value) != choices.end())
                return {};
            return "'" + value + "' is not one of " + listed;
        },
        "", "choice"));
    return option;
}

CLI::Option* CommandLine::arguments(const std::string& name, std::vector<std::string>& target,
                                    const std::string& help) {
    return app_.add_option(name, target, help);
}

void CommandLine::exclusive(CLI::Option* a, CLI::Option* b) {
    a->excludes(b);
    exclusive_.emplace_back(a, b);
}

int CommandLine::usage_error(const std::string& message) {
    last_error_ = message;
    std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", program_.c_str(), message.c_str(), program_.c_str());
    return 2;
}

std::string CommandLine::suggestion_for(const std::string& unknown) const {
    // Ranked by edit distance (twice the edits), a candidate the typo starts
    // or ends with (a letter too many or too few) ranking half an edit better.
    std::string best;
    size_t best_rank = 5;  // more than two edits apart is not a typo
    for (const CLI::Option* option : app_.get_options()) {
        for (const auto& long_name : option->get_lnames()) {
            std::string candidate = "--" + long_name;
            size_t rank = 2 * distance(unknown, candidate);
            if (unknown.starts_with(candidate) || (candidate.starts_with(unknown) && unknown.size() >= 4))
                rank = rank ? rank - 1 : 0;
            if (rank < best_rank) {
                best_rank = rank;
                best = candidate;
            }
        }
    }
    return best.empty() ? std::string() : " (did you mean " + best + "?)";
}

// What CLI11 would report in its own words, found first and said in ours:
// unknown options, options missing their value, and conflicting options.
std::optional<std::string> CommandLine::find_mistake(const std::vector<std::string>& args) const {
    std::vector<const CLI::Option*> given;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--")
            break;
        if (arg.size() < 2 || arg[0] != '-' || is_negative_number(arg))
            continue;
        std::string name = option_name(arg);
        const CLI::Option* option = app_.get_option_no_throw(name);
        if (!option)
            return name + ": unknown option" + suggestion_for(name);
        given.push_back(option);
        bool takes_value = option->get_items_expected_min() > 0;
        if (!takes_value || arg.find('=') != std::string::npos)
            continue;
        bool value_follows = i + 1 < args.size() && (args[i + 1].empty() || args[i + 1][0] != '-' ||
                                                     is_negative_number(args[i + 1]) || args[i + 1] == "-");
        if (!value_follows)
            return name + ": needs a value (" + option->get_type_name() + ")";
        ++i;
    }
    for (const auto& [a, b] : exclusive_)
        if (std::find(given.begin(), given.end(), a) != given.end() &&
            std::find(given.begin(), given.end(), b) != given.end())
            return a->get_name() + " and " + b->get_name() + " cannot be used together";
    return std::nullopt;
}

std::optional<int> CommandLine::parse(int argc, char** argv) {
    std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
    bool asks_for_help = std::any_of(args.begin(), args.end(), [this](const std::string& arg) {
        const CLI::Option* option = app_.get_option_no_throw(arg);
        return (arg == "-h" || arg == "--help" || arg == "--version") && option &&
               option->get_items_expected_min() == 0;
    });
    if (!asks_for_help)
        if (auto mistake = find_mistake(args))
            return usage_error(*mistake);
    try {
        app_.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::cout << app_.help();
        return 0;
    } catch (const CLI::CallForVersion& version) {
        std::cout << version.what() << "\n";
        return 0;
    } catch (const CLI::ExtrasError& extras) {
        // Only positionals can get here: options were checked above.
        std::string first = app_.remaining().empty() ? std::string() : app_.remaining().front();
        return usage_error("unexpected argument '" + first + "'");
    } catch (const CLI::ParseError& error) {
        return usage_error(error.what());
    }
    return std::nullopt;
}

CLI::Option* add_policy_dir(CommandLine& cli, std::filesystem::path& target) {
    if (target.empty())
        target = installed::kPolicyDir;
    // A --policy-dir given by hand that names no directory is a mistake in
    // the command, refused before anything is loaded. Falling back to the
    // last good policy (choose_policy) is for a policy directory that is
    // invalid, or for the default one gone missing: the check runs only when
    // the option is given.
    return cli.path("--policy-dir", target, "policy files (*.toml)")
        ->check(CLI::Validator(
            [](std::string& value) -> std::string {
                std::error_code ignored;
                if (std::filesystem::is_directory(value, ignored))
                    return {};
                return "'" + value + "' does not exist (or is not a directory)";
            },
            "", "existing directory"));
}

CLI::Option* add_image_dir(CommandLine& cli, std::filesystem::path& target) {
    if (target.empty())
        target = installed::kImageDir;
    return cli.path("--image-dir,--images", target, "signed BPF images (*.bpf.o, manifest, manifest.sig)");
}

CLI::Option* add_keys_dir(CommandLine& cli, std::filesystem::path& target) {
    if (target.empty())
        target = installed::kKeysDir;
    return cli.path("--keys-dir,--keys", target, "trusted public keys (*.pem)");
}

CLI::Option* add_state_dir(CommandLine& cli, std::filesystem::path& target) {
    if (target.empty())
        target = installed::kStateDir;
    return cli.path("--state-dir", target, "anti-rollback floor and last good policy");
}

CLI::Option* add_require_signed_policy(CommandLine& cli, bool& target) {
    return cli.flag("--require-signed-policy", target,
                    "apply the policy directory only as a signed policy bundle that verifies against the trusted "
                    "keys ('bpfwardenctl policy sign'); anything else is refused and the running policy stays");
}

CLI::Option* add_pin_root(CommandLine& cli, std::filesystem::path& target) {
    if (target.empty())
        target = "/sys/fs/bpf/bpfwarden";
    return cli.path("--pin-root", target, "bpffs directory of bpfwarden's pins");
}

CLI::Option* add_json(CommandLine& cli, bool& target) {
    return cli.flag("--json", target, "print JSON instead of text");
}

void add_logging(CommandLine& cli, LogTarget& target, bool& verbose) {
    auto* option = cli.app().add_option_function<std::string>(
        "--log-target", [&target](const std::string& value) { target = *parse_log_target(value); },
        "where log lines go: auto (the journal when run by systemd), stderr or journal (default auto)");
    last_wins(option)->type_name("auto|stderr|journal");
    option->check(CLI::Validator(
        [](std::string& value) -> std::string {
            return parse_log_target(value) ? std::string() : "'" + value + "' is not one of auto, stderr, journal";
        },
        "", "log target"));
    cli.flag("-v,--verbose", verbose, "also log libbpf's messages (verifier output on load failures)");
}

}  // namespace bpfwarden
