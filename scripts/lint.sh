#!/usr/bin/env bash
# Style and static checks of the whole tree, as CI runs them:
#   clang-format-19 (.clang-format; bpf/.clang-format for BPF C): every C/C++
#     file the repository tracks, except the generated vmlinux.h;
#   clang-tidy-19 (.clang-tidy): every source file of lib/, daemon/,
#     watchdog/, dbus/ and ctl/, with the compile commands of BUILD_DIR.
#   lint.sh [BUILD_DIR]   (default: build/; it must have been configured)
# Exit status 0 when both are clean. A missing tool is a failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
cd "$root"

for tool in clang-format-19 clang-tidy-19; do
  command -v "$tool" >/dev/null || { echo "lint: $tool not found (run scripts/install-deps.sh)" >&2; exit 1; }
done
[[ -f "$build/compile_commands.json" ]] || { echo "lint: $build/compile_commands.json missing: configure $build first" >&2; exit 1; }

status=0
mapfile -t formatted < <(git ls-files '*.c' '*.h' '*.cpp' | grep -v '/vmlinux\.h$')
if ! clang-format-19 --dry-run -Werror "${formatted[@]}"; then
  echo "lint: clang-format: the files above differ from the style (clang-format-19 -i FILE fixes them)" >&2
  status=1
else
  echo "lint: clang-format: ${#formatted[@]} files clean"
fi

mapfile -t sources < <(git ls-files 'lib/*.cpp' 'daemon/*.cpp' 'watchdog/*.cpp' 'dbus/*.cpp' 'ctl/*.cpp')
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy-19 -p "$build" --quiet >"$log" 2>&1; then
  echo "lint: clang-tidy: ${#sources[@]} files clean"
else
  grep -E "(error|warning):" "$log" | sort -u >&2 || cat "$log" >&2
  echo "lint: clang-tidy found the problems above" >&2
  status=1
fi
exit $status
