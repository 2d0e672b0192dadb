#!/bin/bash
# Guest: what bpfwarden's file hooks add to open() + close(), attached vs not
# attached in the same boot, by where the file lies relative to the policy's
# rules. Rounds alternate the order of the two states (off,on | on,off | ...);
# each figure is the median over rounds of open_loop's median over batches.
# Prints figures, asserts nothing; exits non-zero only when it cannot run.
#
# Environment: BW_BUILD, BW_SRC (as for the suites); optional BW_OPEN_LOOP
# (default $BW_BUILD/bench/open_loop), BW_BENCH_ROUNDS (7),
# BW_BENCH_BATCHES (41), BW_BENCH_ITERATIONS (500).
. "$(dirname "$0")/lib.sh"

open_loop=${BW_OPEN_LOOP:-$BW_BUILD/bench/open_loop}
rounds=${BW_BENCH_ROUNDS:-7}
batches=${BW_BENCH_BATCHES:-41}
iterations=${BW_BENCH_ITERATIONS:-500}
[ -x "$open_loop" ] || { echo "bench_hooks: $open_loop not built"; exit 1; }

# Trees on tmpfs mounts of their own, so that how many directories the walk
# up from a file meets is known exactly: it stops at its filesystem's root.
work=/tmp/bw-hooks
mkdir -p "$work"
mount -t tmpfs -o mode=0755 bw-hooks "$work" || { echo "bench_hooks: cannot mount tmpfs on $work"; exit 1; }
mkdir -p "$work/plain" "$work/watched" "$work/ruled" "$work/deep" "$work/policy.d"
mount -t tmpfs -o mode=0755 bw-hooks-deep "$work/deep" || { echo "bench_hooks: cannot mount tmpfs on $work/deep"; exit 1; }
echo x >"$work/plain/file"
echo x >"$work/watched/file"
echo x >"$work/watched/rule-target"
echo x >"$work/ruled/file"

# deep_file N: a file N directories below the root of $work/deep (the root
# itself is the Nth).
deep_file() {
  local path="$work/deep" n
  for n in $(seq 1 $(($1 - 1))); do path="$path/d$n"; done
  mkdir -p "$path"
  echo x >"$path/file"
  echo "$path/file"
}

labels=("(a) no rule near it" "(b) in a watched directory" "(c) depth 1" "(c) depth 8" "(c) depth 32"
        "(c) depth 40, past the limit" "getppid(), no LSM hook (floor)")
paths=("$work/plain/file" "$work/watched/file" "$(deep_file 1)" "$(deep_file 8)" "$(deep_file 32)" "$(deep_file 40)")
row_depth1=3 row_depth32=5 # rows of open_loop's output: index in paths[] + 1

cat >"$work/policy.d/50-bench.toml" <<TOML
# Run by hand, not as the systemd unit that self-protection recognises.
protect = false

# Makes $work/watched a watched directory: a rule on another name in it.
[[file]]
path = "$work/watched/rule-target"
action = "deny"

# A subtree rule on a sibling of every benchmarked file: each walk up
# searches for one and finds none, so no verdict, no event.
[[file]]
path = "$work/ruled/"
action = "deny"
TOML

attached=0
log="$work/daemon.log"

attach() {
  local start=$SECONDS
  if ! "$BW_DAEMON" --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" \
      --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$BW_CANARY" \
      --log-target stderr --stats-interval 0 --policy-dir "$work/policy.d" --exit-after-setup >"$log" 2>&1; then
    echo "bench_hooks: bpfwardend --exit-after-setup failed; log:"; cat "$log"
    return 1
  fi
  attached=1
  if ! grep -q "mode: enforcing" "$log" || [ ! -e "$BW_PINS/links/bw_file_open" ]; then
    echo "bench_hooks: bw_file_open is not attached with BPF LSM; log:"; cat "$log"
    return 1
  fi
  # The rules are live (the walk runs), else the figures would be of nothing.
  if (: <"$work/ruled/file") 2>/dev/null || (: <"$work/watched/rule-target") 2>/dev/null; then
    echo "bench_hooks: the policy's rules do not deny; log:"; cat "$log"
    return 1
  fi
  attach_seconds="$attach_seconds $((SECONDS - start))"
}

# Removing the pins drops the last reference to the links; the kernel
# detaches and frees the programs after that, asynchronously: wait until the
# subtree rule no longer denies and none of our programs is left.
detach() {
  local waited=0
  "$BW_DAEMON" --unpin --yes --log-target stderr >"$work/unpin.log" 2>&1 ||
    { echo "bench_hooks: bpfwardend --unpin failed:"; cat "$work/unpin.log"; return 1; }
  attached=0
  until (: <"$work/ruled/file") 2>/dev/null && ! bpftool prog show 2>/dev/null | grep -q " name bw_"; do
    [ "$waited" -ge 300 ] && { echo "bench_hooks: bpfwarden's programs still there 30 s after unpinning"; return 1; }
    sleep 0.1
    waited=$((waited + 1))
  done
}

trap '[ "$attached" = 1 ] && "$BW_DAEMON" --unpin --yes --log-target stderr >/dev/null 2>&1' EXIT

# measure STATE ROUND: one open_loop run over every case, its output in
# $work/STATE.ROUND: the rows of paths[], then getppid, then the reference.
measure() {
  "$open_loop" --batches "$batches" --iterations "$iterations" --floor "${paths[@]}" >"$work/$1.$2" ||
    { echo "bench_hooks: open_loop failed in state '$1'"; return 1; }
  tail -n 1 "$work/$1.$2" | grep -q " reference$" ||
    { echo "bench_hooks: $open_loop prints no reference line: a build older than this script?"; return 1; }
}

attach_seconds=""
started=$SECONDS
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="off on"; else order="on off"; fi
  for state in $order; do
    if [ "$state" = on ] && [ "$attached" = 0 ]; then attach || exit 1; fi
    if [ "$state" = off ] && [ "$attached" = 1 ]; then detach || exit 1; fi
    measure "$state" "$round" || exit 1
  done
done
[ "$attached" = 1 ] && detach
elapsed=$((SECONDS - started))

# figures STATE ROW COLUMN: that figure of every round, one a line. Column 1:
# ns; column 2: ns relative to the paired reference batch.
figures() {
  local state=$1 row=$2 column=$3 round
  for round in $(seq 1 "$rounds"); do awk -v row="$row" -v c="$column" 'NR == row { print $c }' "$work/$state.$round"; done
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The per-round ratios' range: how far a single round could be trusted.
ratio_range() {
  paste <(figures off "$1" 2) <(figures on "$1" 2) |
    awk '{ r = $2 / $1; if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r }
         END { printf "%.2f-%.2f", lo, hi }'
}

# Relative figures are shown as ns at the run's median speed: times the
# median of every measurement's median reference batch.
reference_row=$((${#paths[@]} + 2))
references=$( (figures off $reference_row 1; figures on $reference_row 1) | sort -g)
scale=$(echo "$references" | median)

echo "bench_hooks: open()+close() with bpfwarden's file hooks, $(uname -r) in qemu TCG"
echo "bench_hooks: $rounds rounds in $elapsed s (attaching took${attach_seconds} s); per state and round the median" \
  "of $batches batches of $iterations, each relative to a paired reference batch, then the median over rounds"
# The reference must not depend on the state (it measures the machine only).
awk -v off="$(figures off $reference_row 1 | median)" -v on="$(figures on $reference_row 1 | median)" \
  -v lo="$(echo "$references" | head -n 1)" -v hi="$(echo "$references" | tail -n 1)" \
  'BEGIN { printf "bench_hooks: reference batch: median %.3f ms not attached, %.3f ms attached;" \
                  " %.3f-%.3f ms over the run (the machine'"'"'s speed varied %.2fx)\n", off / 1e6, on / 1e6, lo / 1e6, hi / 1e6, hi / lo }'
printf '  %-30s %13s %9s %8s %6s %10s %9s\n' "case" "not attached" "attached" "added" "ratio" "per round" "unscaled"
printf '  %-30s %13s %9s %8s %6s %10s %9s\n' "" "ns" "ns" "ns" "" "ratios" "ratio"
for row in $(seq 1 ${#labels[@]}); do
  awk -v label="${labels[row - 1]}" -v scale="$scale" -v range="$(ratio_range "$row")" \
    -v off="$(figures off "$row" 2 | median)" -v on="$(figures on "$row" 2 | median)" \
    -v off_ns="$(figures off "$row" 1 | median)" -v on_ns="$(figures on "$row" 1 | median)" \
    'BEGIN { printf "  %-30s %13.0f %9.0f %+8.0f %5.2fx %10s %8.2fx\n",
                    label, off * scale, on * scale, (on - off) * scale, on / off, range, on_ns / off_ns }'
done
# The walk's price per directory, from the two ends of the depth cases.
added() { awk -v off="$(figures off "$1" 2 | median)" -v on="$(figures on "$1" 2 | median)" 'BEGIN { print on - off }'; }
awk -v d1="$(added $row_depth1)" -v d32="$(added $row_depth32)" -v scale="$scale" \
  'BEGIN { printf "  walk up: about %.0f ns per directory ((added at depth 32) - (added at depth 1)) / 31\n",
                  (d32 - d1) * scale / 31 }'
cat <<NOTES
  Notes:
  - bw_file_open looks every opened file up by inode, then, as soon as the
    policy has any directory rule (in practice always: the watchdog's canary is
    a rule on a name in the state directory), walks up its parent directories:
    per directory two pointer reads and one bloom-filter word, plus a hash
    lookup where the filter says a rule may sit, up to 32 directories or its
    filesystem's root. The policy's subtree rule sits on a sibling tree
    ($work/ruled/), so every walk here goes the whole way and matches
    nothing: no verdict, no event, no logging in the figures.
  - (a) and (b) lie 2 directories below the root of a tmpfs of their own, so
    each walk meets 2 directories. (b)'s directory holds a [[file]] rule on
    another name in it: (b) - (a) is the directory's hash lookup plus reading,
    hashing and looking up the file's name.
  - (c) depth N: the file lies N directories below the root of another tmpfs,
    so the walk meets exactly N (it follows dentries and stops at a
    filesystem's root, not at a mount). Depth 40 lies past the 32-directory
    limit: its added ns should match depth 32's within the rounds' spread (its
    not-attached figure is higher: path lookup resolves 40 components).
  - getppid(): no LSM hook runs and, with BPF LSM, no syscall tracepoint is
    attached (the bpf() audit runs from lsm/bpf): what every syscall pays
    while bpfwarden is attached, 1.00x within the spread.
  - Rescaling: qemu TCG on a shared host runs at a speed that drifts by tens of
    percent over seconds, more than the effect measured. Each batch is divided
    by a reference batch of user-space work run just before it (no hook can
    touch it), which cancels the drift; "ns" are those ratios at the run's
    median speed, "unscaled ratio" the same ratio from raw ns for comparison.
  - TCG emulates every instruction: absolute ns are many times a real CPU's,
    and relative costs are distorted too; read the ratios as estimates.
NOTES
