// `bpfwardenctl unpin` (and its alias `bpfwardend --unpin`): ending
// enforcement on purpose, removing bpfwarden's pins and nothing else.
#pragma once

#include <filesystem>
#include <string>

namespace bpfwarden::ctl {

struct UnpinOptions {
    std::filesystem::path pin_root;
    bool yes = false;            // do not ask
    bool stop_watchdog = false;  // stop bpfwarden-watchdog.service first
    bool json = false;
};

// `program` names the command in messages. Exit status: 0 the pins are
// removed (the report says whether anything still enforces), 1 refused or
// failed (nothing foreign was touched), 2 invalid arguments.
int run_unpin(const UnpinOptions& options, const std::string& program);

// What `bpfwardenctl unpin --help` and `bpfwardend --help` say about it.
extern const char* const kUnpinExplanation;

}  // namespace bpfwarden::ctl
