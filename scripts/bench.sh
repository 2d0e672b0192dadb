#!/usr/bin/env bash
# Benchmarks: printed figures, never pass/fail on a number. Exit status is
# non-zero only when a benchmark cannot run.
#   1. CPU per watchdog verification cycle for 5, 20, 100 pinned programs,
#      side by side with shelling out to bpftool per program, and the CPU per
#      check of the real watchdog process with the service's own pins;
#      applying a policy of 100 000 file + 10 000 exec rules (time per step,
#      process and kernel memory); audit-trail events a second delivered with
#      none lost on this kernel, and decode + format + log per event and core;
#      the real services' start-up time, memory at 10 and 100 000 rules and
#      after shrinking back, and the watchdog's CPU with 100 000 rules;
#   2. tamper-to-detection and detection-to-healed latency per tamper kind on
#      this kernel (tracepoint programs) and in a VM (BPF LSM programs);
#   3. in the VM: what the file hooks add to open() + close(), attached vs not
#      attached, by where the file lies relative to the policy's rules;
#   4. in the VM: what the self-protection programs add to bpf() and kill(),
#      not attached vs attached with protect = false vs protect = true;
#   5. in the VM: denials made during a flood of execs and bpf() calls, and
#      how many of each class reached the log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
status=0
. "$root/selftests/vm/guest_stall.sh"

# vm_bench SCRIPT CONSOLE_LOG PATTERN: selftests/guest/SCRIPT in a 6.12 guest,
# printing its lines that match PATTERN; run once more when the guest stalled
# through no fault of bpfwarden's (guest_stall.sh), as the VM suites are.
vm_bench() {
  local script=$1 console=$2 pattern=$3 attempt rc why
  for attempt in 1 2; do
    set +e
    "$root/selftests/vm/run-vm.sh" --kernel 6.12 --script "$root/selftests/guest/$script" --keep-path "$root" \
      --keep-path "$build" --env "BW_BUILD=$build" --env "BW_SRC=$root" --log "$console" --timeout 600 |
      grep -a -E "$pattern"
    rc=${PIPESTATUS[0]}
    set -e
    why=$(guest_stall_reason "$rc" "$console")
    [[ -n "$why" && $attempt == 1 ]] || break
    echo "bench: $script: $why; running it once more (first attempt: $console.attempt-1)"
    mv "$console" "$console.attempt-1"
  done
  return "$rc"
}

echo "==> watchdog cycle cost"
"$build/bench/watchdog_cycle_bench" || status=1
echo
echo "==> applying 100 000 file + 10 000 exec rules"
"$build/bench/policy_apply_bench" || status=1
echo
echo "==> audit-trail events a second delivered with none lost (this kernel)"
"$build/bench/event_rate_bench" || status=1
echo
echo "==> decode + sanitize + format + log per event, on one core"
"$build/bench/event_pipeline_bench" --benchmark_min_time=0.2 || status=1
echo
echo "==> footprint of the real services: start-up, memory with 10 and 100 000 rules, watchdog CPU"
python3 "$root/bench/service_footprint.py" --build "$build" || status=1
echo
echo "==> CPU per check of the real watchdog process"
python3 "$root/bench/watchdog_cpu.py" --build "$build" || status=1
echo
echo "==> heal latency on this kernel"
python3 "$root/bench/heal_latency.py" --build "$build" --rounds 10 || status=1
echo
echo "==> heal latency in a VM with BPF LSM (Debian 6.12)"
out="$build/bench/vm"
mkdir -p "$out"
vm_bench bench.sh "$out/console.log" "^bench|^  |^heal_latency|^vm:" || status=1
echo
echo "==> file hooks' cost on open() + close() in a VM with BPF LSM (Debian 6.12)"
vm_bench bench_hooks.sh "$out/console-hooks.log" "^bench_hooks|^  |^vm:" || status=1
echo
echo "==> self-protection's cost on bpf() and kill() in a VM with BPF LSM (Debian 6.12)"
vm_bench bench_protection.sh "$out/console-protection.log" "^bench_protection|^  |^vm:" || status=1
echo
echo "==> denials during an exec and bpf() flood in a VM with BPF LSM (Debian 6.12)"
vm_bench bench_flood.sh "$out/console-flood.log" "^bench_flood|^  |^vm:" || status=1
exit $status
