#!/bin/bash
# Guest suite: the watchdog against an attacker with root and bpftool, on a
# kernel with BPF LSM. Every tamper kind is healed while a canary process
# keeps trying to open a denied file: it must never succeed (no gap).
. "$(dirname "$0")/lib.sh"

work=/tmp/bw
mkdir -p "$work/policy.d"
echo secret >"$work/secret"   # the canary process's target: never tampered with
echo victim >"$work/victim"   # the attacker weakens this file's rule
echo public >"$work/public"   # under no rule: opens throughout
cp /bin/true "$work/denied-bin"
cp /bin/true "$work/allowed-bin"
cat >"$work/policy.d/50-selftest.toml" <<'TOML'
# Run by hand, not by systemd: the suite tests rules, not self-protection.
protect = false

[[file]]
path = "/tmp/bw/secret"
action = "deny"

[[file]]
path = "/tmp/bw/victim"
action = "deny"

[[exec]]
path = "/tmp/bw/denied-bin"
action = "deny"

[bpf]
mode = "deny"
allow = ["/usr/sbin/bpftool"]   # the attacker may use bpf(), to show that heals work anyway
TOML
log="$BW_OUT/daemon.log"
wlog="$BW_OUT/watchdog.log"
echo "== kernel $(uname -r)"

start_daemon "$log" --policy-dir "$work/policy.d" || { fail daemon_start "see $log"; finish; exit; }
start_watchdog "$wlog" --policy-dir "$work/policy.d" --interval-ms 1000 --status-file "$work/status.json" \
  || { fail watchdog_start "see $wlog"; finish; exit; }
expect_log watchdog_expects_enforcement "$wlog" "expecting enforcing \(BPF LSM active\)"
expect_log watchdog_healthy "$wlog" "bpfwarden-watchdog: healthy"

"$BW_TRY" open-loop "$work/secret" >"$BW_OUT/canary.log" 2>&1 &
canary=$!

heals() { grep -c "heal: " "$wlog"; }
# expect_link_ok PROGRAM NAME: the pin named PROGRAM holds a link to the
# program of that name.
expect_link_ok() {
  local got
  got=$(link_prog "$BW_PINS/links/$1")
  [ "${got##* }" = "$1" ] && pass "$2" || fail "$2" "links/$1 holds: ${got:-no link}"
}
# expect_rule NAME KEY ACTION: bpfw_file_rules holds KEY (key_of) with ACTION
# (enum bw_action: 2 deny).
expect_rule() {
  local value
  # shellcheck disable=SC2086
  value=$(bpftool -j map lookup pinned "$BW_PINS/maps/bpfw_file_rules" key hex $2 2>&1 | tr -d ' \n')
  case "$value" in
    *'"value":["0x0'"$3"'","0x00","0x00","0x00",'*) pass "$1" ;;
    *) fail "$1" "bpfw_file_rules entry: $value" ;;
  esac
}
# expect_heal NAME PATTERN COUNT_BEFORE [SECONDS]: a new heal matching PATTERN
# within SECONDS (default 20) of wall-clock time.
expect_heal() {
  local deadline=$((SECONDS + ${4:-20}))
  while [ "$SECONDS" -le "$deadline" ]; do
    if [ "$(heals)" -gt "$3" ] && grep "heal: " "$wlog" | tail -n 1 | grep -qE -- "$2"; then
      pass "$1"
      return
    fi
    sleep 0.1
  done
  fail "$1" "no heal matching /$2/ within ${4:-20} s; last lines: $(tail -n 3 "$wlog")"
}

# 1. rm of a link pin: the very same link is pinned again.
link_before=$(link_prog "$BW_PINS/links/bw_file_open")
n=$(heals); rm "$BW_PINS/links/bw_file_open"
expect_heal pin_removal_healed "bw_file_open on lsm/file_open: pin-missing.*-> re-pinned the held links of file_guard in" "$n"
link_after=$(link_prog "$BW_PINS/links/bw_file_open")
[ -n "$link_before" ] && [ "$link_after" = "$link_before" ] && pass same_link_pinned_again \
  || fail same_link_pinned_again "before: '$link_before', after: '$link_after'"
expect_try denial_after_pin_heal EPERM open "$work/secret"
expect_try unrelated_open_after_pin_heal ok open "$work/public"

# 2. bpftool link detach: the kernel either refuses it or the watchdog heals it.
n=$(heals)
if bpftool link detach pinned "$BW_PINS/links/bw_bprm_check" >"$BW_OUT/detach.log" 2>&1; then
  expect_heal link_detach_healed "bw_bprm_check on .*reloaded exec_guard" "$n"
else
  grep -qi "not supported" "$BW_OUT/detach.log" && pass link_detach_refused_by_kernel \
    || fail link_detach_refused_by_kernel "$(cat "$BW_OUT/detach.log")"
fi
expect_try exec_denial_after_detach EPERM exec "$work/denied-bin"
expect_try unrelated_exec_after_detach ok exec "$work/allowed-bin"

# 3. Another program's link renamed over a pin: both objects' held links are
# pinned again, each under its own name.
n=$(heals); mv "$BW_PINS/links/bw_bprm_check" "$BW_PINS/links/bw_file_open"
expect_heal replaced_program_healed \
  "bw_file_open on lsm/file_open: wrong-program.*-> re-pinned the held links of file_guard, re-pinned the held links of exec_guard in" "$n"
expect_link_ok bw_file_open replaced_pin_restored
expect_link_ok bw_bprm_check moved_away_pin_restored
expect_try exec_denial_after_replace EPERM exec "$work/denied-bin"
expect_try unrelated_exec_after_replace ok exec "$work/allowed-bin"
expect_try denial_after_replace EPERM open "$work/secret"

# 4. A policy entry weakened from deny to audit (struct bw_rule: action 1,
# rule_id, flags, else_action, scope, else_rule_id, else_flags).
victim_key=$(key_of "$work/victim")
n=$(heals)
bpftool map update pinned "$BW_PINS/maps/bpfw_file_rules" key hex $victim_key \
  value hex 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ||
  fail weaken_entry "bpftool map update failed"
# Detected by the map-write event, or by the interval check when that runs
# first (a race with a 500 ms interval; either way the heal must follow).
expect_heal weakened_entry_healed \
  "policy map 'bpfw_file_rules' differs.*(bpf\(map_update_elem\) by pid [0-9]+ \(bpftool\)|detected by interval).*rewrote policy maps" "$n"
expect_rule weakened_entry_restored "$victim_key" 2
expect_try weakened_entry_denies_again EPERM open "$work/victim"
expect_try unrelated_open_after_weakening ok open "$work/public"

# 5. A policy entry deleted. (The rule's name entry in bpfw_dirents alone
# would deny the open: that the inode entry is back is checked in the map.)
n=$(heals)
bpftool map delete pinned "$BW_PINS/maps/bpfw_file_rules" key hex $victim_key \
  || fail delete_entry "bpftool map delete failed"
expect_heal deleted_entry_healed "policy map 'bpfw_file_rules' differs.*bpf\(map_delete_elem\).*rewrote policy maps" "$n"
expect_rule deleted_entry_restored "$victim_key" 2
expect_try deleted_entry_denies_again EPERM open "$work/victim"
expect_try unrelated_open_after_deletion ok open "$work/public"

# 6. The daemon killed with SIGKILL, then a pin removed: healed without it.
kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
n=$(heals); rm "$BW_PINS/links/bw_bpf"
expect_heal healed_without_daemon "bw_bpf on lsm/bpf: pin-missing.*-> re-pinned the held links of self_guard in" "$n"
expect_try prog_load_still_refused EPERM prog-load
# The allowlisted bpftool still loads programs (loaded and pinned, never attached).
probe_pin=/sys/fs/bpf/bw-selftest-probe
if bpftool prog load "$BW_IMAGES/lsm_probe.bpf.o" "$probe_pin" >"$BW_OUT/allowed-load.log" 2>&1; then
  pass allowlisted_prog_load_ok
else
  fail allowlisted_prog_load_ok "$(cat "$BW_OUT/allowed-load.log")"
fi
rm -f "$probe_pin"

# 7. A policy-map pin removed: the very same map is pinned again.
map_before=$(bpftool map show pinned "$BW_PINS/maps/bpfw_file_rules" | cut -d: -f1)
n=$(heals); rm "$BW_PINS/maps/bpfw_file_rules"
expect_heal map_pin_removal_healed "-> re-pinned the held map bpfw_file_rules in" "$n"
map_after=$(bpftool map show pinned "$BW_PINS/maps/bpfw_file_rules" 2>&1 | cut -d: -f1)
[ -n "$map_before" ] && [ "$map_after" = "$map_before" ] && pass same_map_pinned_again \
  || fail same_map_pinned_again "map id '$map_before' before, now: $map_after"

# 8. A policy map frozen (never writable again): new maps, filled before the
# reloaded programs attach.
n=$(heals); bpftool map freeze pinned "$BW_PINS/maps/bpfw_file_rules" || fail freeze_map "bpftool map freeze failed"
# (Loading and verifying some 30 programs takes half a minute under TCG.)
expect_heal frozen_map_healed \
  "policy map 'bpfw_file_rules' was frozen.*-> reloaded policy_maps, rewrote policy maps, reloaded bpf_audit, reloaded exec_audit, reloaded self_guard, reloaded file_guard, reloaded exec_guard in" "$n" 120
bpftool map show pinned "$BW_PINS/maps/bpfw_file_rules" >"$BW_OUT/new-store.txt" 2>&1
[ -n "$map_before" ] && ! grep -q frozen "$BW_OUT/new-store.txt" && [ "$(cut -d: -f1 "$BW_OUT/new-store.txt")" != "$map_before" ] \
  && pass fresh_policy_map_pinned || fail fresh_policy_map_pinned "map id $map_before before, now: $(cat "$BW_OUT/new-store.txt")"
expect_rule fresh_policy_map_filled "$victim_key" 2
expect_try denial_after_map_reload EPERM open "$work/victim"
expect_try exec_denial_after_map_reload EPERM exec "$work/denied-bin"
expect_try unrelated_open_after_map_reload ok open "$work/public"
expect_try unrelated_exec_after_map_reload ok exec "$work/allowed-bin"
# The superseded programs are gone at once, not left attached beside the new ones.
count=$(bpftool prog show | grep -c "name bw_file_open")
[ "$count" = 1 ] && pass superseded_program_released || fail superseded_program_released "$count bw_file_open loaded"
grep -q "foreign program" "$wlog" && fail no_foreign_program_after_reload "$(grep "foreign program" "$wlog" | head -n 1)" \
  || pass no_foreign_program_after_reload

kill -TERM "$canary"; wait "$canary"
result=$(tail -n 1 "$BW_OUT/canary.log")
case "$result" in
  *"successes=0 other_errors=0"*) attempts=${result#*attempts=}; attempts=${attempts%% *}
    [ "$attempts" -gt 0 ] && pass "no_gap_canary_never_opened ($attempts attempts)" || fail no_gap_canary_never_opened "$result" ;;
  *) fail no_gap_canary_never_opened "$result" ;;
esac

# Self-protection: once bpftool is off the allowlist, its detach and load are refused.
sed -i '/^allow = /d' "$work/policy.d/50-selftest.toml"
expect_log watchdog_follows_policy_edit "$wlog" "policy: policy directory changed.*desired policy recompiled"
expect_log policy_edit_applied_not_healed "$wlog" "policy: applied the edited policy directory to the maps"
sleep 0.5
bpftool link detach pinned "$BW_PINS/links/bw_file_open" >"$BW_OUT/detach-denied.log" 2>&1
grep -q "Operation not permitted" "$BW_OUT/detach-denied.log" && pass link_detach_denied_outside_allowlist \
  || fail link_detach_denied_outside_allowlist "$(cat "$BW_OUT/detach-denied.log")"
# Only restricted commands are refused: looking at the link still works.
bpftool link show pinned "$BW_PINS/links/bw_file_open" >"$BW_OUT/link-show.log" 2>&1 && grep -q "prog [0-9]" "$BW_OUT/link-show.log" \
  && pass link_show_allowed_outside_allowlist || fail link_show_allowed_outside_allowlist "$(cat "$BW_OUT/link-show.log")"
expect_try denial_still_in_force EPERM open "$work/secret"
expect_try unrelated_open_still_ok ok open "$work/public"

sleep 1.2
grep -q '"healthy":true' "$work/status.json" && grep -qE '"heal_count":([6-9]|[1-9][0-9])' "$work/status.json" \
  && pass status_healthy_with_heal_count || fail status_healthy_with_heal_count "$(cat "$work/status.json")"

stop_watchdog
"$BW_DAEMON" --unpin --yes --log-target stderr >/dev/null 2>&1
finish
