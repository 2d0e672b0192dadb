// Command lines of bpfwardend, bpfwarden-watchdog and bpfwardenctl: one way
// to declare options (CLI11 underneath) and one wording for every mistake,
// whichever program it is made with:
//
//   bpfwardend: --polcy-dir: unknown option (did you mean --policy-dir?)
//   bpfwardend: --policy-dir: needs a value (DIR)
//   bpfwardend: --rate-limit: '0' is out of range (expected 1..1000000)
//   bpfwarden-watchdog: --once and --check cannot be used together
//   bpfwardenctl sign: --key is required
//   Try 'bpfwardend --help'.
//
// A mistake exits 2; --help and --version exit 0.
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/log.h"

namespace bpfwarden {

class CommandLine {
public:
    // `program` names the command in messages ("bpfwardenctl sign");
    // `synopsis` follows it in the usage line; `description` and `footer`
    // frame the option list in --help.
    CommandLine(std::string program, std::string synopsis, std::string description, std::string footer = {});

    CLI::Option* path(const std::string& name, std::filesystem::path& target, const std::string& help,
                      const std::string& value_name = "DIR");
    CLI::Option* text(const std::string& name, std::string& target, const std::string& help,
                      const std::string& value_name);
    CLI::Option* flag(const std::string& name, bool& target, const std::string& help);
    // One of `choices`; the help lists them.
    CLI::Option* choice(const std::string& name, std::string& target, const std::vector<std::string>& choices,
                        const std::string& help);
    // A whole number in [min, max]; the help gives the range and the default
    // (target's value when declared), exactly as errors quote it.
    template <typename T>
    CLI::Option* number(const std::string& name, T& target, T min, T max, const std::string& help,
                        const std::string& value_name = "N");
    // Positional arguments, in order.
    CLI::Option* arguments(const std::string& name, std::vector<std::string>& target, const std::string& help);

    // Options that must not be given together.
    void exclusive(CLI::Option* a, CLI::Option* b);

    // Parses argv (argv[0] is skipped). nullopt: go on. Otherwise the exit
    // status to return now: 0 after --help or --version, 2 after a mistake,
    // which has been printed to stderr.
    std::optional<int> parse(int argc, char** argv);

    CLI::App& app() { return app_; }
    const std::string& program() const { return program_; }

    // "<program>: <message>" and the --help hint on stderr; returns 2.
    int usage_error(const std::string& message);
    // The message of the last mistake parse() reported ("" if none).
    const std::string& last_error() const { return last_error_; }

private:
    std::optional<std::string> find_mistake(const std::vector<std::string>& args) const;
    std::string suggestion_for(const std::string& unknown) const;

    std::string program_;
    CLI::App app_;
    std::vector<std::pair<CLI::Option*, CLI::Option*>> exclusive_;
    std::string last_error_;
};

// Given twice, a single-value option takes the last value (as getopt did).
CLI::Option* last_wins(CLI::Option* option);

// "1..1000000": how ranges are written in help and in errors.
std::string range_text(uint64_t min, uint64_t max);

// Checks one whole number against [min, max]; the error says why, quoting
// the text ("'0' is out of range (expected 1..1000000)").
std::optional<std::string> check_whole_number(const std::string& text, uint64_t min, uint64_t max);

template <typename T>
CLI::Option* CommandLine::number(const std::string& name, T& target, T min, T max, const std::string& help,
                                 const std::string& value_name) {
    std::string full = help + " (" + range_text(min, max) + "; default " + std::to_string(target) + ")";
    auto* option = last_wins(app_.add_option(name, target, full)->type_name(value_name));
    option->check(CLI::Validator(
        [min, max](std::string& value) -> std::string {
            auto problem = check_whole_number(value, static_cast<uint64_t>(min), static_cast<uint64_t>(max));
            return problem ? *problem : std::string();
        },
        "", "whole number"));
    return option;
}

// Options the programs share, declared once so that they are spelled,
// described and checked the same everywhere. Defaults come from the build
// (the installed locations).
CLI::Option* add_policy_dir(CommandLine& cli, std::filesystem::path& target);
CLI::Option* add_image_dir(CommandLine& cli, std::filesystem::path& target);
CLI::Option* add_keys_dir(CommandLine& cli, std::filesystem::path& target);
CLI::Option* add_state_dir(CommandLine& cli, std::filesystem::path& target);
CLI::Option* add_pin_root(CommandLine& cli, std::filesystem::path& target);
// --require-signed-policy: bpfwardend and bpfwarden-watchdog read the policy
// directory only through its verified signed bundle.
CLI::Option* add_require_signed_policy(CommandLine& cli, bool& target);
CLI::Option* add_json(CommandLine& cli, bool& target);
// --log-target auto|stderr|journal and -v/--verbose.
void add_logging(CommandLine& cli, LogTarget& target, bool& verbose);

}  // namespace bpfwarden
