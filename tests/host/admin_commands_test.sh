#!/bin/bash
# Admin commands that cannot destroy or mislead, on this machine (root):
#   - `bpfwardenctl unpin` (and `bpfwardend --unpin`) against a scratch
#     directory full of files, a bpffs directory of foreign pins, our pin root
#     with foreign entries inside, and our pin root while the watchdog runs:
#     nothing foreign is ever removed, and the report matches what is left;
#   - `bpfwarden-watchdog --check` against a healthy, a tampered and an empty
#     pin root: nothing is attached, pinned or written (pin tree and program
#     list unchanged), and the exit status tells the three apart;
#   - `bpfwardenctl verify --state-dir` naming a directory that does not exist.
#   admin_commands_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/admin-out"
. "$BW_SRC/selftests/guest/lib.sh"
CTL="$BW_BUILD/ctl/bpfwardenctl"
BW_PINS=/sys/fs/bpf/bpfwarden-admintest-$$
foreign_root=/sys/fs/bpf/bpfwarden-admintest-foreign-$$
work=$(mktemp -d /tmp/bpfwarden-admintest.XXXXXX)
BW_STATE="$work/state"
BW_CANARY="$work/canary"
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT" "$work/policy.d" "$BW_STATE"
cleanup() {
  stop_watchdog
  "$CTL" unpin --yes --pin-root "$BW_PINS" >/dev/null 2>&1
  # Only what this test pinned itself, by name.
  rm -f "$foreign_root/foreign_map" "$BW_PINS/links/foreign_map" 2>/dev/null
  rmdir "$BW_PINS/other" "$BW_PINS/links" "$BW_PINS/maps" "$BW_PINS" "$foreign_root" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

set_up_pins() {
  "$BW_DAEMON" --policy-dir "$work/policy.d" --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" \
    --canary "$BW_CANARY" --pin-root "$BW_PINS" --log-target stderr --exit-after-setup >"$BW_OUT/setup.log" 2>&1
}
pin_foreign_map() {  # PATH: a map that is not bpfwarden's, pinned at PATH
  bpftool map create "$1" type array key 4 value 4 entries 1 name foreign_map
}
# unpin_expect NAME RC PATTERN ARGS...: exit status and a line of its output.
unpin_expect() {
  local name=$1 want_rc=$2 pattern=$3 out rc
  shift 3
  out=$("$CTL" unpin "$@" 2>&1 </dev/null)
  rc=$?
  echo "$out" >"$BW_OUT/$name.out"
  if [ "$rc" = "$want_rc" ] && grep -qE -- "$pattern" <<<"$out"; then pass "$name"
  else fail "$name" "exit $rc (want $want_rc), output: $out"; fi
}
tree_of() { find "$1" -printf '%p %y %m\n' 2>/dev/null | sort; }
prog_ids() { bpftool prog list -j | python3 -c 'import json,sys; print(sorted(p["id"] for p in json.load(sys.stdin)))'; }

# 1. A scratch directory with files (as /tmp would be): refused, untouched.
scratch="$work/scratch"
mkdir -p "$scratch/links" "$scratch/maps"
echo keep >"$scratch/somebody-elses-file"
touch "$scratch/links/bw_file_open" "$scratch/maps/bpfw_file_rules"
before=$(tree_of "$scratch")
unpin_expect unpin_refuses_non_bpffs 1 "is on [a-z0-9]+, not on a bpf filesystem.*nothing was removed" \
  --pin-root "$scratch" --yes
[ "$(tree_of "$scratch")" = "$before" ] && pass unpin_leaves_scratch_untouched \
  || fail unpin_leaves_scratch_untouched "the scratch directory changed"

# 2. A bpffs directory of foreign pins (as /sys/fs/bpf would be): refused.
mkdir "$foreign_root"
pin_foreign_map "$foreign_root/foreign_map"
unpin_expect unpin_refuses_foreign_bpffs_dir 1 "holds no bpfwarden pins.*foreign_map.*nothing was removed" \
  --pin-root "$foreign_root" --yes
[ -e "$foreign_root/foreign_map" ] && pass unpin_keeps_foreign_pins || fail unpin_keeps_foreign_pins "foreign pin gone"
unpin_expect unpin_refuses_bpffs_mount_root 1 "not a bpfwarden pin root" --pin-root /sys/fs/bpf --yes
unpin_expect unpin_refuses_missing_root 1 "pin root '$BW_PINS-missing'.*No such file" --pin-root "$BW_PINS-missing" --yes

# 3. Our pin root with a foreign pin and a foreign directory inside.
set_up_pins || fail pins_set_up "$(cat "$BW_OUT/setup.log")"
pin_foreign_map "$BW_PINS/links/foreign_map"
mkdir "$BW_PINS/other"
# The programs behind our link pins, by id: they must be gone after unpin.
linked_ids=$(for link in "$BW_PINS"/links/bw_*; do
  bpftool -j link show pinned "$link" | python3 -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])'
done)
unpin_expect unpin_without_confirmation_refused 1 "without confirmation: run again with --yes" --pin-root "$BW_PINS"
[ -e "$BW_PINS/links/bw_tp_exec" ] && pass unconfirmed_unpin_removes_nothing || fail unconfirmed_unpin_removes_nothing "pin gone"
unpin_expect unpin_removes_only_own_pins 0 "^removed [0-9]+ bpfwarden pins under $BW_PINS$" --pin-root "$BW_PINS" --yes
grep -q "left: $BW_PINS/links/foreign_map: not bpfwarden's, left in place" "$BW_OUT/unpin_removes_only_own_pins.out" \
  && grep -q "left: $BW_PINS/other: not bpfwarden's" "$BW_OUT/unpin_removes_only_own_pins.out" \
  && pass unpin_reports_what_it_left || fail unpin_reports_what_it_left "$(cat "$BW_OUT/unpin_removes_only_own_pins.out")"
[ -e "$BW_PINS/links/foreign_map" ] && [ -d "$BW_PINS/other" ] && [ ! -e "$BW_PINS/links/bw_tp_exec" ] \
  && [ ! -e "$BW_PINS/maps" ] && pass unpin_tree_matches_report || fail unpin_tree_matches_report "$(tree_of "$BW_PINS")"
# The kernel frees a program once its last link is gone, asynchronously.
programs_gone() {
  local id
  for id in $linked_ids; do bpftool prog show id "$id" >/dev/null 2>&1 && return 1; done
  return 0
}
for _ in $(seq 1 50); do programs_gone && break; sleep 0.1; done
[ -n "$linked_ids" ] && grep -q "enforcement: ended" "$BW_OUT/unpin_removes_only_own_pins.out" && programs_gone \
  && pass unpin_reports_enforcement_ended \
  || fail unpin_reports_enforcement_ended "programs ${linked_ids//$'\n'/ } of our links: $(for id in $linked_ids; do bpftool prog show id "$id" 2>&1 | head -n 1; done)"
rm -f "$BW_PINS/links/foreign_map"
rmdir "$BW_PINS/other" "$BW_PINS/links" "$BW_PINS"

# 4. Our pin root while the watchdog runs: refused, nothing removed; the
# watchdog holds our links, which is how unpin finds it.
set_up_pins || fail pins_set_up_again "$(cat "$BW_OUT/setup.log")"
start_watchdog "$BW_OUT/watchdog.log" --policy-dir "$work/policy.d" --pin-root "$BW_PINS" --interval-ms 60000 \
  --no-dbus || fail watchdog_start "see $BW_OUT/watchdog.log"
before=$(tree_of "$BW_PINS")
unpin_expect unpin_refuses_while_watchdog_runs 1 \
  "bpfwarden-watchdog \(pid $WATCHDOG_PID \(bpfwarden-watch\)\) is running and would restore the pins.*--stop-watchdog" \
  --pin-root "$BW_PINS" --yes
unpin_expect unpin_will_not_stop_unmanaged_watchdog 1 "is not run by systemd as bpfwarden-watchdog.service" \
  --pin-root "$BW_PINS" --yes --stop-watchdog
[ "$(tree_of "$BW_PINS")" = "$before" ] && pass watchdog_refusal_removes_nothing \
  || fail watchdog_refusal_removes_nothing "the pin tree changed"

# 5. --check: healthy, tampered, empty. Nothing attached, pinned or written.
check_expect() {  # NAME RC PATTERN
  local out rc tree_before ids_before
  tree_before=$(tree_of "$BW_PINS")
  ids_before=$(prog_ids)
  out=$("$BW_WATCHDOG" --check --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" \
    --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$BW_CANARY" --policy-dir "$work/policy.d" \
    --pin-root "$BW_PINS" --log-target stderr 2>"$BW_OUT/$1.err")
  rc=$?
  echo "$out" >"$BW_OUT/$1.json"
  if [ "$rc" = "$2" ] && grep -qE -- "$3" <<<"$out$(cat "$BW_OUT/$1.err")"; then pass "$1"; else fail "$1" "exit $rc: $out"; fi
  [ "$(tree_of "$BW_PINS")" = "$tree_before" ] && [ "$(prog_ids)" = "$ids_before" ] && pass "$1_changes_nothing" \
    || fail "$1_changes_nothing" "pins or loaded programs changed"
}
check_expect check_healthy 0 '"healthy":true'
stop_watchdog  # it would heal the tamper below at once
bpftool map update pinned "$BW_PINS/maps/bpfw_bpf_policy" key hex 00 00 00 00 value hex 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
  || fail tamper_for_check "bpftool map update failed"
check_expect check_tampered 1 "\"healthy\":false.*policy map 'bpfw_bpf_policy' differs"
grep -q "heal" "$BW_OUT/check_tampered.err" && fail check_does_not_heal "$(cat "$BW_OUT/check_tampered.err")" \
  || pass check_does_not_heal
"$CTL" unpin --yes --pin-root "$BW_PINS" >/dev/null 2>&1
mkdir -p "$BW_PINS"
check_expect check_empty_pin_root 3 "nothing to check: no bpfwarden pins under '$BW_PINS'"
rmdir "$BW_PINS"

# 6. --status-file replaces only a status file of its own.
echo "somebody else's file" >"$work/not-ours"
"$BW_WATCHDOG" --once --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" --no-dbus \
  --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$BW_CANARY" --policy-dir "$work/policy.d" \
  --pin-root "$BW_PINS" --log-target stderr --status-file "$work/not-ours" >/dev/null 2>"$BW_OUT/status-file.err"
[ "$(cat "$work/not-ours")" = "somebody else's file" ] && grep -q "was not written by bpfwarden" "$BW_OUT/status-file.err" \
  && pass status_file_refuses_foreign_file || fail status_file_refuses_foreign_file "$(cat "$BW_OUT/status-file.err")"
"$CTL" unpin --yes --pin-root "$BW_PINS" >/dev/null 2>&1

# 7. A state directory that does not exist is named, never skipped.
out=$("$CTL" verify --images "$BW_IMAGES" --keys "$BW_KEYS" --state-dir "$work/typo" 2>&1)
rc=$?
[ $rc = 1 ] && grep -q "state directory '$work/typo' does not exist" <<<"$out" && pass verify_missing_state_dir_named \
  || fail verify_missing_state_dir_named "exit $rc: $out"
out=$("$CTL" verify --images "$BW_IMAGES" --keys "$BW_KEYS" --no-rollback-check 2>&1)
[ $? = 0 ] && pass verify_no_rollback_check_skips_explicitly || fail verify_no_rollback_check_skips_explicitly "$out"

finish
