#!/bin/bash
# Guest suite: the watchdog against an attacker with root and bpftool, on a
# kernel with BPF LSM. Every tamper kind is healed while a canary process
# keeps trying to open a denied file: it must never succeed (no gap).
. "$(dirname "$0")/lib.sh"

work=/tmp/bw
mkdir -p "$work/policy.d"
echo secret >"$work/secret"   # the canary process's target: never tampered with
echo victim >"$work/victim"   # the attacker weakens this file's rule
cp /bin/true "$work/denied-bin"
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
expect_heal() {  # NAME PATTERN COUNT_BEFORE: a new heal matching PATTERN within 20 s
  local waited=0
  while [ "$waited" -lt 200 ]; do
    if [ "$(heals)" -gt "$3" ] && grep "heal: " "$wlog" | tail -n 1 | grep -qE -- "$2"; then
      pass "$1"
      return
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  fail "$1" "no heal matching /$2/; last lines: $(tail -n 3 "$wlog")"
}

# 1. rm of a link pin.
n=$(heals); rm "$BW_PINS/links/bw_file_open"
expect_heal pin_removal_healed "bw_file_open on lsm/file_open: pin-missing.*re-pinned the held link of bw_file_open" "$n"
expect_try denial_after_pin_heal EPERM open "$work/secret"

# 2. bpftool link detach: the kernel either refuses it or the watchdog heals it.
n=$(heals)
if bpftool link detach pinned "$BW_PINS/links/bw_bprm_check" >"$BW_OUT/detach.log" 2>&1; then
  expect_heal link_detach_healed "bw_bprm_check on .*reloaded bw_bprm_check" "$n"
else
  grep -qi "not supported" "$BW_OUT/detach.log" && pass link_detach_refused_by_kernel \
    || fail link_detach_refused_by_kernel "$(cat "$BW_OUT/detach.log")"
fi
expect_try exec_denial_after_detach EPERM exec "$work/denied-bin"

# 3. Another program's link renamed over a pin.
n=$(heals); mv "$BW_PINS/links/bw_bprm_check" "$BW_PINS/links/bw_file_open"
expect_heal replaced_program_healed "bw_file_open on lsm/file_open: wrong-program.*re-pinned" "$n"
expect_try exec_denial_after_replace EPERM exec "$work/denied-bin"

# 4. A policy entry weakened from deny to audit.
n=$(heals)
bpftool map update pinned "$BW_PINS/maps/file_rules" key hex $(key_of "$work/victim") value hex 01 00 00 00 00 00 00 00
expect_heal weakened_entry_healed "policy map 'file_rules' differs.*bpf\(map_update_elem\) by pid [0-9]+ \(bpftool\).*rewrote policy maps" "$n"
expect_try weakened_entry_denies_again EPERM open "$work/victim"

# 5. A policy entry deleted.
n=$(heals)
bpftool map delete pinned "$BW_PINS/maps/file_rules" key hex $(key_of "$work/victim")
expect_heal deleted_entry_healed "policy map 'file_rules' differs.*bpf\(map_delete_elem\).*rewrote policy maps" "$n"
expect_try deleted_entry_denies_again EPERM open "$work/victim"

# 6. The daemon killed with SIGKILL, then a pin removed: healed without it.
kill -9 "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=""
n=$(heals); rm "$BW_PINS/links/bw_bpf"
expect_heal healed_without_daemon "bw_bpf on lsm/bpf: pin-missing.*re-pinned" "$n"
expect_try prog_load_still_refused EPERM prog-load

# 7. A policy-map pin removed: the very same map is pinned again.
n=$(heals); rm "$BW_PINS/maps/file_rules"
expect_heal map_pin_removal_healed "re-pinned the held map file_rules in" "$n"

# 8. A policy map frozen (never writable again): new maps, filled before the
# reloaded programs attach.
n=$(heals); bpftool map freeze pinned "$BW_PINS/maps/file_rules"
expect_heal frozen_map_healed "was frozen.*reloaded policy_maps, rewrote policy maps, reloaded bw_file_open, reloaded bw_bprm_check, reloaded bw_bpf" "$n"
expect_try denial_after_map_reload EPERM open "$work/victim"
expect_try exec_denial_after_map_reload EPERM exec "$work/denied-bin"
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
expect_try denial_still_in_force EPERM open "$work/secret"

sleep 1.2
grep -q '"healthy":true' "$work/status.json" && grep -qE '"heal_count":([6-9]|[1-9][0-9])' "$work/status.json" \
  && pass status_healthy_with_heal_count || fail status_healthy_with_heal_count "$(cat "$work/status.json")"

stop_watchdog
"$BW_DAEMON" --unpin --yes --log-target stderr >/dev/null 2>&1
finish
