#!/bin/bash
# Guest: what bpfwarden's self-protection programs (the self_guard object:
# lsm/bpf, lsm/bpf_map, lsm/task_kill, ...) and the bpf() audit tracepoint
# add to a bpf()-heavy and a signal-heavy loop, in three states of one boot:
#   not attached                   no pins;
#   attached, protect = false      bpfwardend --exit-after-setup, by hand;
#   attached, protect = true       the same programs, protection turned on.
# Protection on cannot be turned off again by hand in the same boot (a
# hand-run --unpin is then refused: that is the point of it), so the first two
# states alternate over rounds (not attached,attached | attached,not attached
# | ...), as in bench_hooks.sh, and protect = true is measured last, in
# blocks. Every batch is divided by a paired reference batch of user-space
# work, which is what makes states measured a minute apart comparable.
# Prints figures, asserts nothing; exits non-zero only when it cannot run.
#
# Environment: BW_BUILD, BW_SRC (as for the suites); optional
# BW_PROTECTION_LOOP (default $BW_BUILD/bench/protection_loop),
# BW_BENCH_ROUNDS (7: rounds of the first two states, and blocks of the
# third), BW_BENCH_BATCHES (41), BW_BENCH_ITERATIONS (500).
. "$(dirname "$0")/lib.sh"

protection_loop=${BW_PROTECTION_LOOP:-$BW_BUILD/bench/protection_loop}
rounds=${BW_BENCH_ROUNDS:-7}
batches=${BW_BENCH_BATCHES:-41}
iterations=${BW_BENCH_ITERATIONS:-500}
[ -x "$protection_loop" ] || { echo "bench_protection: $protection_loop not built"; exit 1; }
[ -x "$BW_TRY" ] || { echo "bench_protection: $BW_TRY not built"; exit 1; }

work=/tmp/bw-protection
mkdir -p "$work"
mount -t tmpfs -o mode=0755 bw-protection "$work" || { echo "bench_protection: cannot mount tmpfs on $work"; exit 1; }
mkdir -p "$work/policy-off.d" "$work/policy-on.d"

cases=(bpf-lookup bpf-get-fd kill-0 kill-usr1 getppid)
labels=("bpf() map lookup" "bpf() map fd by id + close" "kill(child, 0)" "SIGUSR1 to child (ignored)"
        "getppid() (floor)")

# [bpf] as the shipped default policy has it: every bpf() call is checked
# against the restricted commands (none of the loop's are restricted).
for value in false true; do
  dir=$work/policy-off.d
  [ "$value" = true ] && dir=$work/policy-on.d
  cat >"$dir/50-bench.toml" <<TOML
protect = $value

[bpf]
mode = "deny"
TOML
done

state=none # none | attached | protected
log="$work/daemon.log"

# run_daemon POLICY_DIR: one bpfwardend --exit-after-setup by hand, as lib.sh
# starts it.
run_daemon() {
  "$BW_DAEMON" --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" \
    --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$BW_CANARY" \
    --log-target stderr --stats-interval 0 --policy-dir "$1" --exit-after-setup >"$log" 2>&1
}

# try_result ARGS...: the result=... word of one bw-try call.
try_result() { "$BW_TRY" "$@" 2>&1 | tail -n 1 | sed -n 's/.*result=\([A-Za-z0-9]*\).*/\1/p'; }

# The hooks the loop passes through are attached and deciding: a program
# load by a process not allowed is refused (lsm/bpf), and a writable fd to
# bpfwarden's settings is given (protect = false) or refused (protect = true:
# lsm/bpf_map).
check_hooks() {
  local want_map=$1 link got
  for link in bw_bpf_audit bw_bpf bw_bpf_map bw_task_kill; do
    [ -e "$BW_PINS/links/$link" ] || { echo "bench_protection: $link is not attached; log:"; cat "$log"; return 1; }
  done
  got=$(try_result prog-load)
  [ "$got" = EPERM ] || { echo "bench_protection: a foreign program load gave '$got', not EPERM; log:"; cat "$log"; return 1; }
  got=$(try_result map-get-pin "$BW_PINS/maps/bpfw_settings" rw)
  [ "$got" = "$want_map" ] ||
    { echo "bench_protection: a writable fd to bpfw_settings gave '$got', not $want_map; log:"; cat "$log"; return 1; }
}

attach() {
  local start=$SECONDS
  run_daemon "$work/policy-off.d" ||
    { echo "bench_protection: bpfwardend --exit-after-setup failed; log:"; cat "$log"; return 1; }
  state=attached
  grep -q "mode: enforcing" "$log" || { echo "bench_protection: not enforcing with BPF LSM; log:"; cat "$log"; return 1; }
  check_hooks ok || return 1
  attach_seconds="$attach_seconds $((SECONDS - start))"
}

# Removing the pins drops the last reference to the links; the kernel
# detaches and frees the programs after that, asynchronously: wait until a
# foreign program load is allowed again and none of our programs is left.
detach() {
  local waited=0
  "$BW_DAEMON" --unpin --yes --log-target stderr >"$work/unpin.log" 2>&1 ||
    { echo "bench_protection: bpfwardend --unpin failed:"; cat "$work/unpin.log"; return 1; }
  state=none
  until [ "$(try_result prog-load)" = ok ] && ! bpftool prog show 2>/dev/null | grep -q " name bw_"; do
    [ "$waited" -ge 300 ] && { echo "bench_protection: bpfwarden's programs still there 30 s after unpinning"; return 1; }
    sleep 0.1
    waited=$((waited + 1))
  done
}

# A second hand-run daemon with a protect = true policy on the attached
# store: protection is off, so it may mark itself as bpfwarden, adopts the
# programs (same links, same program ids) and turns protection on.
protect() {
  local start=$SECONDS
  programs_before=$(link_prog "$BW_PINS/links/bw_bpf")
  run_daemon "$work/policy-on.d" ||
    { echo "bench_protection: bpfwardend --exit-after-setup (protect = true) failed; log:"; cat "$log"; return 1; }
  state=protected
  grep -q "self-protection on" "$log" ||
    { echo "bench_protection: the daemon did not turn self-protection on; log:"; cat "$log"; return 1; }
  check_hooks EPERM || return 1
  programs_after=$(link_prog "$BW_PINS/links/bw_bpf")
  protect_seconds=$((SECONDS - start))
}

# Protected pins stay: a hand-run --unpin is refused, and the guest powers
# off after the script anyway.
trap '[ "$state" = attached ] && "$BW_DAEMON" --unpin --yes --log-target stderr >/dev/null 2>&1' EXIT

# measure STATE ROUND: one protection_loop run over every case, its output in
# $work/STATE.ROUND: the rows of cases[], then the reference.
measure() {
  "$protection_loop" --batches "$batches" --iterations "$iterations" "${cases[@]}" >"$work/$1.$2" ||
    { echo "bench_protection: protection_loop failed in state '$1'"; return 1; }
  tail -n 1 "$work/$1.$2" | grep -q " reference$" ||
    { echo "bench_protection: $protection_loop prints no reference line"; return 1; }
}

attach_seconds=""
started=$SECONDS
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order="none attached"; else order="attached none"; fi
  for want in $order; do
    if [ "$want" = attached ] && [ "$state" = none ]; then attach || exit 1; fi
    if [ "$want" = none ] && [ "$state" = attached ]; then detach || exit 1; fi
    measure "$want" "$round" || exit 1
  done
done
if [ "$state" = none ]; then attach || exit 1; fi
protect || exit 1
for round in $(seq 1 "$rounds"); do measure protected "$round" || exit 1; done
elapsed=$((SECONDS - started))

# figures STATE ROW COLUMN: that figure of every round, one a line. Column 1:
# ns; column 2: ns relative to the paired reference batch.
figures() {
  local state=$1 row=$2 column=$3 round
  for round in $(seq 1 "$rounds"); do awk -v row="$row" -v c="$column" 'NR == row { print $c }' "$work/$state.$round"; done
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }
# Ratios of the paired rounds (not attached, attached): how far one round
# could be trusted.
round_ratios() { paste <(figures none "$1" 2) <(figures attached "$1" 2) | awk '{ print $2 / $1 }' | range; }
# Each protected block against the attached median: there is no pairing.
block_ratios() { figures protected "$1" 2 | awk -v base="$(figures attached "$1" 2 | median)" '{ print $1 / base }' | range; }

# Relative figures are shown as ns at the run's median speed: times the
# median of every measurement's median reference batch.
reference_row=$((${#cases[@]} + 1))
references=$(for s in none attached protected; do figures $s $reference_row 1; done | sort -g)
scale=$(echo "$references" | median)

echo "bench_protection: bpf() and kill() with bpfwarden's self-protection programs, $(uname -r) in qemu TCG"
echo "bench_protection: $rounds rounds of (not attached, attached with protect = false) in alternating order, then" \
  "$rounds blocks with protect = true, in $elapsed s (attaching took${attach_seconds} s, turning protection on" \
  "${protect_seconds} s); per measurement the median of $batches batches of $iterations, each relative to a paired" \
  "reference batch, then the median over rounds or blocks"
same=no
[ -n "$programs_before" ] && [ "${programs_before#* }" = "${programs_after#* }" ] && same=yes
echo "bench_protection: protect = true was measured last, after a second bpfwardend --exit-after-setup with a" \
  "protect = true policy adopted the attached programs (same program behind bw_bpf: $same) and turned protection" \
  "on; it cannot be turned off again in this boot, so its blocks are not interleaved with the other states and" \
  "its ratios rest on the reference rescaling (the unscaled ratio is shown beside it)"
awk -v none="$(figures none $reference_row 1 | median)" -v att="$(figures attached $reference_row 1 | median)" \
  -v prot="$(figures protected $reference_row 1 | median)" \
  -v lo="$(echo "$references" | head -n 1)" -v hi="$(echo "$references" | tail -n 1)" \
  'BEGIN { printf "bench_protection: reference batch: median %.3f ms not attached, %.3f ms attached, %.3f ms" \
                  " protected; %.3f-%.3f ms over the run (the machine'"'"'s speed varied %.2fx)\n",
                  none / 1e6, att / 1e6, prot / 1e6, lo / 1e6, hi / 1e6, hi / lo }'
printf '  %-26s %8s %8s %9s %6s %6s %6s %10s %10s %10s\n' \
  "case" "not att." "attached" "protected" "att." "prot." "prot." "per round" "per block" "unscaled"
printf '  %-26s %8s %8s %9s %6s %6s %6s %10s %10s %10s\n' \
  "" "ns" "ns" "ns" "/not" "/not" "/att." "att./not" "prot./att." "prot./att."
for row in $(seq 1 ${#cases[@]}); do
  awk -v label="${labels[row - 1]}" -v scale="$scale" -v rounds="$(round_ratios "$row")" \
    -v blocks="$(block_ratios "$row")" -v none="$(figures none "$row" 2 | median)" \
    -v att="$(figures attached "$row" 2 | median)" -v prot="$(figures protected "$row" 2 | median)" \
    -v att_ns="$(figures attached "$row" 1 | median)" -v prot_ns="$(figures protected "$row" 1 | median)" \
    'BEGIN { printf "  %-26s %8.0f %8.0f %9.0f %5.2fx %5.2fx %5.2fx %10s %10s %9.2fx\n", label, none * scale,
                    att * scale, prot * scale, att / none, prot / none, prot / att, rounds, blocks, prot_ns / att_ns }'
done
cat <<NOTES
  Notes:
  - "attached" is protect = false, "protected" protect = true; both run the
    same programs. "att./not" is what bpfwarden costs these calls at all,
    "prot./att." what turning protection on adds to it.
  - bpf(): each call runs two lsm/bpf programs: the audit (bw_bpf_audit,
    which reports state-changing commands only, so none of these) and
    bw_bpf (task-storage lookup, the [bpf] policy's restricted-command
    check; mode = "deny" here, as shipped). "fd by id" adds lsm/bpf_map
    (bw_bpf_map: reads the map's name).
  - kill(): lsm/task_kill (bw_task_kill). Signal 0 returns at once; SIGUSR1
    (stops or kills by default) looks up the target's task storage, finds it
    is not bpfwarden's, and allows.
  - Where protect is read: only after a program found that the object or
    process is bpfwarden's own (its maps, links, pins, processes). None of
    these calls touches one, so protect = true should cost them nothing more:
    "prot./att." near 1.00x, within the spread of the blocks.
  - getppid(): no LSM hook runs, and with BPF LSM no syscall tracepoint is
    attached (the bpf() audit runs from lsm/bpf), so "att./not" should be
    1.00x within the spread: what every syscall pays for bpfwarden. (With
    the audit on sys_enter_bpf it was 1.32x under icount: every syscall took
    the traced entry path.) Nothing in it changes with protect, so its
    "prot./att." is the error of comparing across the two phases: how far
    from 1.00x the other rows' may stray for that reason alone.
  - "per round": the lowest and highest of the rounds' own attached / not
    attached ratios. "per block": each protected block against the attached
    median. "unscaled": prot./att. from raw ns, without the reference
    rescaling (how far the machine's speed moved between the phases).
  - TCG emulates every instruction: absolute ns are many times a real CPU's,
    and relative costs are distorted too; read the ratios as estimates.
NOTES
