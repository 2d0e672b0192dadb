#!/usr/bin/env bash
# Runs one guest selftest suite in a VM booting one of Debian's kernels.
#
#   run-selftests.sh --kernel 6.1|6.12 --suite enforcement|watchdog|no_bpf_lsm|...
#                    [--append "kernel args"] [--build-dir DIR] [--timeout S]
#                    [--systemd]   (systemd as the guest's PID 1: run-vm.sh --systemd)
#
# Per-test results, daemon logs and the guest console are kept in
# <build-dir>/selftests/out/<suite>-<kernel>/. Exit status: 0 when every
# check passed; non-zero on any failed check or infrastructure failure
# (qemu missing, kernel not downloadable, panic, timeout), never a skip.
# A guest that stalled through no fault of the suite (frozen emulator,
# unanswered virtiofs request) is reported and the suite is run once more.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
kernel="" suite="" append="" build="$src/build" timeout=600 systemd=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --kernel) kernel=$2; shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --build-dir) build=$(cd "$2" && pwd); shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --systemd) systemd=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run-selftests: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -n "$kernel" && -n "$suite" ]] || { echo "run-selftests: --kernel and --suite are required" >&2; exit 2; }
guest_script="$src/selftests/guest/$suite.sh"
[[ -x "$guest_script" ]] || { echo "run-selftests: no suite '$suite' ($guest_script)" >&2; exit 2; }
for binary in daemon/bpfwardend watchdog/bpfwarden-watchdog selftests/bw-try; do
  [[ -x "$build/$binary" ]] || { echo "run-selftests: $build/$binary not built" >&2; exit 2; }
done

out="$build/selftests/out/$suite-$kernel"
rm -rf "$out"
mkdir -p "$out"
vm_args=(--kernel "$kernel" --script "$guest_script" --log "$out/console.log" --quiet
         --keep-path "$src" --keep-path "$build" --rw-dir "$out" --env "BW_BUILD=$build" --env "BW_SRC=$src" --env "BW_OUT=$out" --timeout "$timeout")
[[ -n "$append" ]] && vm_args+=(--append "$append")
((systemd)) && vm_args+=(--systemd)

run_suite() {  # one VM run; sets rc
  set +e
  "$src/selftests/vm/run-vm.sh" "${vm_args[@]}" 2>"$out/harness.err"
  rc=$?
  set -e
}

. "$src/selftests/vm/guest_stall.sh"

start=$(date +%s)
run_suite
why=$(guest_stall_reason "$rc" "$out/console.log")
if [[ -n "$why" ]]; then
  echo "vm[$suite/$kernel]: $why; retrying the suite once (first attempt: $out/attempt-1)" >&2
  mkdir "$out/attempt-1"
  find "$out" -maxdepth 1 -type f -exec mv -t "$out/attempt-1" {} +
  run_suite
fi
elapsed=$(( $(date +%s) - start ))

grep -a "^SELFTEST " "$out/console.log" | tr -d '\r' >"$out/results.txt" || true
grep -a "SELFTEST FAIL" "$out/results.txt" || true
passed=$(grep -c "^SELFTEST PASS" "$out/results.txt" || true)
failed=$(grep -c "^SELFTEST FAIL" "$out/results.txt" || true)
if [[ $rc -ne 0 && $failed -eq 0 ]]; then
  # The guest did not report a failed check: the VM itself failed.
  echo "vm[$suite/$kernel]: no check failed, but the VM run did (exit $rc): $(cat "$out/harness.err")" >&2
  echo "vm[$suite/$kernel]: console log: $out/console.log" >&2
  failed=$((failed + 1))
fi
if [[ $passed -eq 0 ]]; then
  echo "vm[$suite/$kernel]: no check ran" >&2
  rc=${rc/#0/1}
fi
if [[ $rc -ne 0 || $failed -ne 0 ]]; then
  # The guest's own logs explain most failures; CI keeps only this output.
  for f in "$out"/*.log; do
    [[ -f "$f" && "$f" != */console.log && -s "$f" ]] || continue
    echo "--- vm[$suite/$kernel]: last 15 lines of $(basename "$f") ---" >&2
    tail -n 15 "$f" | tr -d '\r' >&2
  done
fi
echo "vm[$suite/$kernel]: $passed passed, $failed failed in ${elapsed}s${why:+ on a second attempt (the first: $why)} (logs: $out)"
[[ $rc -eq 0 && $failed -eq 0 && $passed -gt 0 ]]
