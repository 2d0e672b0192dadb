// The `bpfwardenctl policy` subcommands, shared between the files that make
// them: `check` (policy_command.cpp) needs nothing but the files; `show`,
// `diff` and `apply` (policy_running_commands.cpp) talk to bpfwardend over
// D-Bus. Each takes its own arguments (argv[0] is the subcommand's name) and
// returns the exit status.
#pragma once

#include <filesystem>

#include "policy/policy_compiler.h"
#include "support/error.h"

namespace bpfwarden::ctl {

// A policy directory (every *.toml in it, merged) or one policy file,
// loaded and compiled exactly as bpfwardend loads it, with its paths
// resolved on this machine now. An error names file:line (and the column of
// a TOML syntax error).
Result<CompiledPolicy> compile_policy_target(const std::filesystem::path& target);

int policy_show(int argc, char** argv);
int policy_diff(int argc, char** argv);
int policy_apply(int argc, char** argv);
// `sign` and `verify` (policy_bundle_commands.cpp): signed policy bundles.
int policy_sign(int argc, char** argv);
int policy_verify(int argc, char** argv);

}  // namespace bpfwarden::ctl
