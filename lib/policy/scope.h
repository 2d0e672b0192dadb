// Rule scopes: who a rule is for (docs/POLICY.md, "Scopes"). The checks a
// scope's text must pass, shared by the parser and the compiler, and the key
// the programs find a scope by.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/policy.h"

namespace bpfwarden {

// Where the unified cgroup hierarchy is mounted; a cgroup scope names a
// directory beneath it.
inline constexpr std::string_view kCgroupRoot = "/sys/fs/cgroup";

// Longest unit or slice name a scope may name (bw_scope.unit, NUL excluded).
inline constexpr std::size_t kMaxScopeUnitName = 63;

// nullopt if `name` is a unit name systemd could give a cgroup
// ("nginx.service", "getty@tty1.service", "session-3.scope", "web.slice");
// otherwise why not, in words.
std::optional<std::string> unit_name_problem(std::string_view name);

// nullopt if `path` names a cgroup below kCgroupRoot; otherwise why not.
std::optional<std::string> cgroup_path_problem(std::string_view path);

// The key of bpfw_scopes for a selector (ScopeSpec::selector()): never 0,
// which means "every process" in bw_rule.scope.
uint64_t scope_key(std::string_view selector);

// The slice a unit runs in unless its scope says otherwise: "system.slice",
// or for a slice its parent slice ("a-b.slice" → "a.slice"; "-.slice" is the
// root, shown as "").
std::string default_slice_of(std::string_view unit);

// Whether systemd knows the unit here: a unit file (or its template) in the
// usual directories, or a built-in slice. Only for warnings: a scope on an
// unknown unit applies as soon as a unit of that name runs.
bool unit_known(std::string_view unit);

}  // namespace bpfwarden
