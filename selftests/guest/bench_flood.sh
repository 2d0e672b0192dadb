#!/bin/bash
# Guest: do denials still arrive while other processes flood the audit trail?
# bpfwardend runs as the service does (serving, logging every event), with one
# deny rule. Denied opens are made by separate processes (one each, so no
# per-process budget applies to them), first on a quiet machine, then while
#   - two loops of fork+exec run as uid 65534 (every child a new process),
#   - one loop of bpf(BPF_MAP_CREATE) runs as root (on Debian an unprivileged
#     bpf() is refused before any hook sees it: kernel.unprivileged_bpf_disabled),
# and what reached the daemon's log is counted per class. Rule matches have a
# ring buffer and a per-process budget of their own; the audit trail has a
# per-uid budget (--trail-rate-limit), so the flood is bounded and summarised
# by the counters, never allowed to push a denial out.
# Prints figures, asserts nothing; exits non-zero only when it cannot run.
#
# Environment: BW_BUILD, BW_SRC (as for the suites); optional
# BW_FLOOD_DENIALS (200: denied opens per phase), BW_FLOOD_SECONDS (60).
. "$(dirname "$0")/lib.sh"

denials=${BW_FLOOD_DENIALS:-200}
seconds=${BW_FLOOD_SECONDS:-60}
[ -x "$BW_TRY" ] || { echo "bench_flood: $BW_TRY not built"; exit 1; }

work=/tmp/bw-flood
mkdir -p "$work"
mount -t tmpfs -o mode=0755 bw-flood "$work" || { echo "bench_flood: cannot mount tmpfs on $work"; exit 1; }
mkdir -p "$work/policy.d"
echo secret >"$work/secret"
# protect = false: the bench stops the daemon with a signal at the end.
cat >"$work/policy.d/50-bench.toml" <<TOML
protect = false

[[file]]
path = "$work/secret"
action = "deny"
TOML

log="$work/daemon.log"
"$BW_DAEMON" --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" \
  --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$BW_CANARY" \
  --log-target stderr --stats-interval 0 --no-dbus --policy-dir "$work/policy.d" >"$log" 2>&1 &
daemon=$!
for _ in $(seq 120); do grep -q "ready: logging events" "$log" && break; sleep 0.5; done
grep -q "ready: logging events" "$log" || { echo "bench_flood: bpfwardend did not start; log:"; cat "$log"; exit 1; }

# deny_lines: denials of the secret in the log so far.
deny_lines() { grep -c "file_open deny .*comm=\"bw-try\" path=\"$work/secret\"" "$log"; }

# make_denials: $denials denied opens, one process each; the denials counted
# from the log once it has settled.
make_denials() {
  local before=$1 i now last=-1
  for i in $(seq "$denials"); do "$BW_TRY" open "$work/secret" >/dev/null 2>&1; done
  # Settled: the count stopped moving for two seconds.
  while now=$(deny_lines); [ "$now" != "$last" ]; do last=$now; sleep 2; done
  echo $((now - before))
}

echo "bench_flood: $denials denied opens per phase, one process each; flood for ${seconds}s"
quiet=$(make_denials "$(deny_lines)")

exec_before=$(grep -c "exec none .* uid=65534 " "$log")
flooders=()
for _ in 1 2; do
  setpriv --reuid=65534 --regid=65534 --clear-groups "$BW_TRY" loop-exec /bin/true "$seconds" >"$work/exec-flood.$_.txt" 2>&1 &
  flooders+=($!)
done
"$BW_TRY" loop-bpf "$seconds" >"$work/bpf-flood.txt" 2>&1 &
bpf_flooder=$!
flooders+=("$bpf_flooder")
sleep 2
started=$SECONDS
during=$(make_denials "$(deny_lines)")
took=$((SECONDS - started))
wait "${flooders[@]}"
sleep 3

runs=$(cat "$work"/exec-flood.*.txt | sed -n 's/.* runs=\([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n + 0 }')
exec_events=$(($(grep -c "exec none .* uid=65534 " "$log") - exec_before))
calls=$(sed -n 's/.* calls=\([0-9]*\).*/\1/p' "$work/bpf-flood.txt")
bpf_events=$(grep -c "bpf_call none pid=$bpf_flooder " "$log")
kill -TERM "$daemon"
wait "$daemon"
stopped=$(grep "stopping on signal" "$log" | tail -n 1)

printf '  %-44s %10s %10s %10s\n' "class" "made" "reported" "lost"
printf '  %-44s %10d %10d %10d\n' "denials, quiet machine" "$denials" "$quiet" $((denials - quiet))
printf '  %-44s %10d %10d %10d\n' "denials, during the flood" "$denials" "$during" $((denials - during))
printf '  %-44s %10d %10d %10s\n' "exec trail, uid 65534 (2 fork+exec loops)" "$runs" "$exec_events" "budget"
printf '  %-44s %10d %10d %10s\n' "bpf() trail, root (map_create loop)" "${calls:-0}" "$bpf_events" "budget"
echo "  denials during the flood took ${took}s (2 s after it began; it ran ${seconds}s)"
stopped=${stopped#*(}
echo "  counters at exit: ${stopped%)}"
cat <<NOTES
  Notes:
  - "lost" for denials must be 0: rule matches have their own ring buffer
    (bpfw_alerts) and a per-process budget (--rate-limit), which one open per
    process never reaches.
  - The trail's "reported" (log lines) is bounded twice: in the kernel by
    its per-uid budget (--trail-rate-limit, 1024 a second; the rest is
    counted as rate_limited, a full ring as dropped), and in the daemon by
    200 log lines a second per class (summed up in "events not logged"
    notices). Neither bound is shared with rule matches.
NOTES
