#!/bin/bash
# bpfwarden-watchdog on this machine's kernel (root, tracepoint programs and
# the policy store): every tamper kind is detected by event (the interval is
# set to a minute, so only event-driven detection can pass the time limits)
# and healed, with and without the daemon; a tampered image on disk at heal
# time is never read: reloads load the images verified at start.
#   watchdog_host_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/watchdog-out"
. "$BW_SRC/selftests/guest/lib.sh"
BW_PINS=/sys/fs/bpf/bpfwarden-wdtest-$$
work=$(mktemp -d /tmp/bpfwarden-wdtest.XXXXXX)
BW_STATE="$work/state"
BW_CANARY="$work/canary"
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT" "$work/policy.d" "$BW_STATE"
cleanup() {
  stop_watchdog
  stop_daemon
  "$BW_DAEMON" --unpin --yes --pin-root "$BW_PINS" --log-target stderr >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

echo secret >"$work/secret"
cat >"$work/policy.d/50-test.toml" <<TOML
[[file]]
path = "$work/secret"
action = "deny"
TOML
cp -r "$BW_IMAGES" "$work/images"
BW_IMAGES="$work/images"

start_daemon "$BW_OUT/daemon.log" --policy-dir "$work/policy.d" --pin-root "$BW_PINS" || fail daemon_start "see $BW_OUT/daemon.log"

wlog="$BW_OUT/watchdog.log"
start_watchdog "$wlog" --policy-dir "$work/policy.d" --pin-root "$BW_PINS" --interval-ms 60000 \
  --status-file "$work/status.json" || fail watchdog_start "see $wlog"
expect_log watchdog_ready "$wlog" "ready: checking every 60000 ms"
expect_log watchdog_healthy_at_start "$wlog" "bpfwarden-watchdog: healthy"
grep -q '"healthy":true' "$work/status.json" && pass status_file_reports_healthy || fail status_file_reports_healthy "$(cat "$work/status.json")"

heals() { grep -c "heal: " "$wlog"; }
# expect_heal NAME PATTERN: a new heal line matching PATTERN within 3 s (the interval is 60 s).
expect_heal() {
  local name=$1 pattern=$2 before=$3 waited=0
  while [ "$waited" -lt 30 ]; do
    if [ "$(heals)" -gt "$before" ] && tail -n +1 "$wlog" | grep "heal: " | tail -n 1 | grep -qE -- "$pattern"; then
      pass "$name"
      return
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  fail "$name" "no heal matching /$pattern/ within 3 s; last lines: $(tail -n 3 "$wlog")"
}
# expect_link_ok PROGRAM: the pin holds an attached link to the program of that name.
# in_file_rules FILE: bpfw_file_rules holds an entry for FILE's inode.
in_file_rules() { bpftool map lookup pinned "$BW_PINS/maps/bpfw_file_rules" key hex $(key_of "$1") >/dev/null 2>&1; }
expect_link_ok() {
  local program=$1 name=$2 prog_id
  prog_id=$(bpftool link show pinned "$BW_PINS/links/$program" 2>/dev/null | sed -n 's/.* prog \([0-9]*\).*/\1/p')
  if [ -n "$prog_id" ] && bpftool prog show id "$prog_id" | grep -q "name $program"; then pass "$name"
  else fail "$name" "link pin holds prog '${prog_id:-none}': $(bpftool link show pinned "$BW_PINS/links/$program" 2>&1)"; fi
}

# 1. Delete a pin.
n=$(heals); rm "$BW_PINS/links/bw_tp_exec"
expect_heal deleted_pin_healed_by_event "bw_tp_exec on .*: pin-missing.*pin directory changed.*-> re-pinned the held links of exec_audit in" "$n"
expect_link_ok bw_tp_exec deleted_pin_restored

# 2. Replace the program behind a pin (another of our links renamed over it).
n=$(heals); mv "$BW_PINS/links/bw_tp_bpf" "$BW_PINS/links/bw_tp_exec"
expect_heal replaced_program_healed "bw_tp_exec on .*: wrong-program.*-> re-pinned the held links of bpf_audit, re-pinned the held links of exec_audit in" "$n"
expect_link_ok bw_tp_exec replaced_program_restored
expect_link_ok bw_tp_bpf moved_away_pin_restored

# 2b. The same swap back to back, each as soon as the pins are back: a tamper
# landing while a check is half done must still be healed in full.
python3 - "$BW_PINS/links" <<'PY'
import os, sys, time
links = sys.argv[1]
deadline = time.monotonic() + 1
while time.monotonic() < deadline:
    try:
        os.rename(f"{links}/bw_tp_bpf", f"{links}/bw_tp_exec")
    except FileNotFoundError:
        pass
PY
expect_status_healthy() {
  local name=$1
  for _ in $(seq 1 30); do
    [ -e "$BW_PINS/links/bw_tp_bpf" ] && grep -q '"healthy":true' "$work/status.json" && { pass "$name"; return; }
    sleep 0.1
  done
  fail "$name" "$(cat "$work/status.json")"
}
expect_status_healthy repeated_swaps_end_healthy
expect_link_ok bw_tp_exec repeated_swaps_restored
expect_link_ok bw_tp_bpf repeated_swaps_moved_away_pin_restored

# 3. Corrupt a policy map entry (the bpf() guard's policy: mode switched off).
n=$(heals)
bpftool map update pinned "$BW_PINS/maps/bpfw_bpf_policy" key hex 00 00 00 00 \
  value hex 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 || fail corrupt_policy_map "bpftool map update failed"
expect_heal corrupted_policy_map_healed_by_bpf_event "policy map 'bpfw_bpf_policy' differs.*bpf\(map_update_elem\) by pid.*rewrote policy maps" "$n"
value=$(bpftool map lookup pinned "$BW_PINS/maps/bpfw_bpf_policy" key hex 00 00 00 00 -j | tr -d ' \n')
case "$value" in *'"value":["0x00","0x00"'*|"") fail policy_map_restored "$value" ;; *) pass policy_map_restored ;; esac

# 4. Delete a policy entry (the deny rule for the secret file).
n=$(heals)
bpftool map dump pinned "$BW_PINS/maps/bpfw_file_rules" -j >"$BW_OUT/file_rules.json"
bpftool map delete pinned "$BW_PINS/maps/bpfw_file_rules" key hex $(key_of "$work/secret") || fail delete_policy_entry "bpftool map delete failed"
expect_heal deleted_policy_entry_healed "policy map 'bpfw_file_rules' differs.*rewrote policy maps" "$n"
in_file_rules "$work/secret" && pass deleted_policy_entry_restored || fail deleted_policy_entry_restored "no entry for $work/secret"
count=$(bpftool map dump pinned "$BW_PINS/maps/bpfw_file_rules" -j | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$count" = "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$BW_OUT/file_rules.json")" ] \
  && pass policy_entries_restored || fail policy_entries_restored "$count entries"

# 5. Detach a link: refused by the kernel for tracepoint links, else healed.
n=$(heals)
if bpftool link detach pinned "$BW_PINS/links/bw_tp_exec" >"$BW_OUT/detach.log" 2>&1; then
  expect_heal detached_link_healed "bw_tp_exec on .*reloaded" "$n"
else
  grep -qi "not supported\|operation not supported" "$BW_OUT/detach.log" && pass detach_refused_by_kernel \
    || fail detach_refused_by_kernel "$(cat "$BW_OUT/detach.log")"
fi

# 6. Without the daemon (killed with SIGKILL) the watchdog still heals.
kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
n=$(heals); rm "$BW_PINS/links/bw_tp_bpf"
expect_heal healed_without_daemon "bw_tp_bpf on .*pin-missing.*-> re-pinned the held links of bpf_audit in" "$n"

# 7. Map pins removed: the very same maps are pinned again, nothing reloaded.
n=$(heals); events_id=$(bpftool map show pinned "$BW_PINS/maps/bpfw_events" | cut -d: -f1)
rm "$BW_PINS/maps/bpfw_events" "$BW_PINS/maps/bpfw_file_rules" "$BW_PINS/maps/exec_audit_counters"
expect_heal map_pins_healed_by_repin "-> re-pinned the held map bpfw_events, re-pinned the held map bpfw_file_rules, re-pinned the held map exec_audit_counters in" "$n"
[ -n "$events_id" ] && [ "$(bpftool map show pinned "$BW_PINS/maps/bpfw_events" | cut -d: -f1)" = "$events_id" ] && pass same_event_map_pinned_again \
  || fail same_event_map_pinned_again "$(bpftool map show pinned "$BW_PINS/maps/bpfw_events" 2>&1)"

# 8. A frozen policy map can never be updated again: only a new store, loaded
# from the images, heals it, with the objects that read its maps (the
# tracepoints read its settings) in the same heal. The images on disk are
# tampered with first: reloads load the images verified at start, never the
# files as they are now, so the heal succeeds.
printf '\x01' | dd of="$work/images/policy_maps.bpf.o" bs=1 seek=300 conv=notrunc status=none
printf '\x01' | dd of="$work/images/exec_audit.bpf.o" bs=1 seek=300 conv=notrunc status=none
"$BW_BUILD/ctl/bpfwardenctl" verify --images "$work/images" --keys "$BW_KEYS" --no-rollback-check >"$BW_OUT/tampered-verify.log" 2>&1 \
  && fail tampered_images_fail_verification "$(cat "$BW_OUT/tampered-verify.log")" || pass tampered_images_fail_verification
n=$(heals); store_id=$(bpftool map show pinned "$BW_PINS/maps/bpfw_file_rules" | cut -d: -f1)
bpftool map freeze pinned "$BW_PINS/maps/bpfw_file_rules" || fail freeze_policy_map "bpftool map freeze failed"
expect_heal frozen_map_healed_from_verified_images "policy map 'bpfw_file_rules' was frozen.*-> reloaded policy_maps, rewrote policy maps, reloaded bpf_audit, reloaded exec_audit, reloaded rule_audit in" "$n"
new_store=$(bpftool map show pinned "$BW_PINS/maps/bpfw_file_rules")
if echo "$new_store" | grep -q frozen || [ -z "$store_id" ] || [ "$(echo "$new_store" | cut -d: -f1)" = "$store_id" ]; then
  fail fresh_policy_map_pinned "map id ${store_id:-none} before, now: $new_store"
else pass fresh_policy_map_pinned; fi
in_file_rules "$work/secret" && pass fresh_policy_map_filled || fail fresh_policy_map_filled "no entry for $work/secret"
sleep 0.3   # the status file is written at the end of the cycle
expect_status_healthy status_healthy_after_store_reload
expect_link_ok bw_tp_bpf programs_kept_during_store_reload
expect_link_ok bw_tp_exec all_programs_kept_during_store_reload
cp "$BW_BUILD/bpf/images/policy_maps.bpf.o" "$work/images/policy_maps.bpf.o"
cp "$BW_BUILD/bpf/images/exec_audit.bpf.o" "$work/images/exec_audit.bpf.o"

# 9. The whole pin tree removed: rebuilt by event with the held links and maps,
# and the new directories are watched (a later pin removal is seen by event).
n=$(heals); rm -rf "$BW_PINS"
expect_heal removed_pin_tree_healed "pin directory .*: No such file.*re-pinned the held map bpfw_events.*re-pinned the held links of exec_audit" "$n"
expect_link_ok bw_tp_exec removed_pin_tree_restored
sleep 0.3
n=$(heals); rm "$BW_PINS/links/bw_tp_exec"
expect_heal rebuilt_pin_tree_watched_again "bw_tp_exec on .*pin-missing.*pin directory changed" "$n"

# 11. A policy edit while bpfwardend is not running: the watchdog applies it
# to the maps, as an apply, not a heal.
n=$(heals)
echo other >"$work/other"
printf '[[file]]\npath = "%s"\naction = "deny"\n' "$work/other" >"$work/policy.d/60-edit.toml"
expect_log policy_edit_applied "$wlog" "policy: applied the edited policy directory to the maps"
[ "$(heals)" = "$n" ] && pass policy_edit_is_not_a_heal || fail policy_edit_is_not_a_heal "$(grep "heal: " "$wlog" | tail -n 1)"
# A file the policy loader ignores (an editor's swap file) changes nothing.
recompiles=$(grep -c "desired policy recompiled" "$wlog")
echo swap >"$work/policy.d/.60-edit.toml.swp"
sleep 0.5
[ "$(grep -c "desired policy recompiled" "$wlog")" = "$recompiles" ] && pass ignored_file_recompiles_nothing ||
  fail ignored_file_recompiles_nothing "$(grep "desired policy recompiled" "$wlog" | tail -n 1)"
rm "$work/policy.d/.60-edit.toml.swp"
rules=$(bpftool map dump pinned "$BW_PINS/maps/bpfw_file_rules" -j | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$rules" = "$(( $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$BW_OUT/file_rules.json") + 1 ))" ] \
  && pass edited_rule_in_map || fail edited_rule_in_map "$rules entries"

# 12. The policy directory swapped for a new one (how configuration tools
# deploy atomically): the new directory is followed, the old one no longer.
applies() { grep -c "applied the edited policy directory to the maps" "$wlog"; }
wait_applies_above() {  # N: up to 10 s for more than N applies
  local waited=0
  while [ "$(applies)" -le "$1" ] && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
}
echo swapped >"$work/swapped"
echo later >"$work/later"
cp -a "$work/policy.d" "$work/policy.d.new"
printf '[[file]]\npath = "%s"\naction = "deny"\n' "$work/swapped" >"$work/policy.d.new/70-swap.toml"
n=$(applies)
mv "$work/policy.d" "$work/policy.d.old" && mv "$work/policy.d.new" "$work/policy.d"
wait_applies_above "$n"
in_file_rules "$work/swapped" && pass swapped_policy_directory_applied || fail swapped_policy_directory_applied "$(tail -n 3 "$wlog")"
n=$(applies)
printf '[[file]]\npath = "%s"\naction = "deny"\n' "$work/later" >"$work/policy.d/75-later.toml"
wait_applies_above "$n"
in_file_rules "$work/later" && pass edit_in_swapped_directory_followed || fail edit_in_swapped_directory_followed "$(tail -n 3 "$wlog")"
recompiles=$(grep -c "desired policy recompiled" "$wlog")
printf '[[file]]\npath = "%s"\naction = "deny"\n' "$work/stale" >"$work/policy.d.old/80-stale.toml"
sleep 0.5
[ "$(grep -c "desired policy recompiled" "$wlog")" = "$recompiles" ] && pass old_policy_directory_ignored ||
  fail old_policy_directory_ignored "$(grep "desired policy recompiled" "$wlog" | tail -n 1)"

# 10. A pin directory opened up: restored to 0700.
n=$(heals); chmod 0755 "$BW_PINS/maps"
expect_heal loosened_pin_directory_healed "pin directory '$BW_PINS/maps' is a directory with mode 0755" "$n"
[ "$(stat -c %a "$BW_PINS/maps")" = 700 ] && pass pin_directory_mode_restored \
  || fail pin_directory_mode_restored "mode $(stat -c %a "$BW_PINS/maps")"

grep -qE '"heal_count":[1-9]' "$work/status.json" && pass status_counts_heals || fail status_counts_heals "$(cat "$work/status.json")"
"$BW_WATCHDOG" --interval-ms 5 >"$BW_OUT/bad-arg.log" 2>&1
[ $? = 2 ] && grep -q -- "--interval-ms: '5' is out of range (expected 10..3600000)" "$BW_OUT/bad-arg.log" && pass bad_interval_rejected \
  || fail bad_interval_rejected "$(cat "$BW_OUT/bad-arg.log")"
sed "s|^ExecStart=[^ ]*/bpfwarden-watchdog|ExecStart=$BW_WATCHDOG|" "$BW_BUILD/units/bpfwarden-watchdog.service" \
  >"$work/bpfwarden-watchdog.service"
mkdir -p "$work/man/man8"
ln -sf "$BW_BUILD"/man/*.8.gz "$work/man/man8/"
if out=$(MANPATH="$work/man" systemd-analyze verify "$work/bpfwarden-watchdog.service" 2>&1); then pass watchdog_unit_verifies
else fail watchdog_unit_verifies "$out"; fi

finish
