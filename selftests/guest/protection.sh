#!/bin/bash
# Guest suite, run with run-vm.sh --systemd: self-protection. bpfwardend and
# the watchdog run as their systemd units (the shipped units, pointed at this
# build), with the shipped default policy (protect = true). Then root attacks
# them as bpftool or a small C attacker (bw-try) would: every attempt must fail
# with EPERM and be reported, a canary must never open the denied file, and
# what systemd itself does (stop, restart) keeps working.
. "$(dirname "$0")/lib.sh"

work=/tmp/pt
state=/var/lib/bpfwarden
policy_dir=/etc/bpfwarden/policy.d
mkdir -p "$work" "$policy_dir"
echo secret >"$work/secret"
echo public >"$work/public"
cp "$BW_TRY" "$work/allowed-loader"
cp "$BW_SRC/policy/default.toml" "$policy_dir/00-default.toml"
cat >"$policy_dir/50-selftest.toml" <<TOML
[[file]]
path = "$work/secret"
action = "deny"

[bpf]
allow = ["$work/allowed-loader"]
TOML

# The shipped units, run from this build, with the images and keys where a
# package installs them (the build's are on a read-only mount here);
# bpfwardend on the guest's system bus (with the shipped busconfig) for the
# break-glass unlock.
images=/usr/lib/bpfwarden/images
keys=/etc/bpfwarden/keys
mkdir -p "$(dirname "$images")" "$keys"
cp -r "$BW_IMAGES" "$images"
cp "$BW_KEYS"/* "$keys/"
common_args="--image-dir $images --keys-dir $keys --state-dir $state --policy-dir $policy_dir \
--daemon-exe $BW_DAEMON --watchdog-exe $BW_WATCHDOG --canary $state/canary"
sed "s|^ExecStart=.*|ExecStart=$BW_DAEMON $common_args|" "$BW_SRC/units/bpfwardend.service" \
  >/etc/systemd/system/bpfwardend.service
sed "s|^ExecStart=.*|ExecStart=$BW_WATCHDOG $common_args --no-dbus --status-file /run/bpfwarden-watchdog/status.json|" \
  "$BW_SRC/units/bpfwarden-watchdog.service" >/etc/systemd/system/bpfwarden-watchdog.service
mkdir -p /etc/dbus-1/system.d
cp "$BW_SRC/units/org.bpfwarden.conf" /etc/dbus-1/system.d/
systemctl daemon-reload
systemctl start dbus.socket dbus.service && pass system_bus_starts || fail system_bus_starts "$(systemctl status dbus --no-pager | tail -5)"

# journal_has UNIT PATTERN: the unit's journal shows a matching line within
# 20 s. Only its last 5000 lines are read: every exec and bpf() call is
# logged, and scanning the whole journal each time takes minutes under TCG.
journal_has() {
  local deadline=$((SECONDS + 20))
  while [ $SECONDS -le $deadline ]; do
    journalctl -b --no-pager -o cat -n 5000 -u "$1" 2>/dev/null | grep -qE -- "$2" && return 0
    sleep 0.5
  done
  return 1
}
expect_journal() {
  if journal_has "$2" "$3"; then pass "$1"; else fail "$1" "no line matching /$3/ in the journal of $2"; fi
}
main_pid() { systemctl show -P MainPID "$1"; }

echo "== kernel $(uname -r), $(systemctl --version | head -n1)"
systemctl start bpfwardend.service && pass daemon_unit_starts || fail daemon_unit_starts "$(systemctl status bpfwardend --no-pager 2>&1 | tail -20)"
systemctl start bpfwarden-watchdog.service && pass watchdog_unit_starts ||
  fail watchdog_unit_starts "$(systemctl status bpfwarden-watchdog --no-pager 2>&1 | tail -20)"
expect_journal protection_on bpfwardend.service "policy: .*self-protection on"
expect_journal watchdog_healthy bpfwarden-watchdog.service "(^|: )healthy"
daemon=$(main_pid bpfwardend.service)
watchdog=$(main_pid bpfwarden-watchdog.service)

# The canary: opens the denied file for the whole attack.
nice -n 19 "$BW_TRY" open-loop "$work/secret" >"$BW_OUT/canary.log" 2>&1 &
canary=$!

# --- Our maps: read-only fds for anyone, writable ones for nobody else ------------
for map in bpfw_file_rules bpfw_exec_rules bpfw_dirents bpfw_dir_rules bpfw_dir_bloom bpfw_bpf_allow \
  bpfw_bpf_policy bpfw_settings bpfw_self_exes bpfw_scopes bpfw_exec_allowed bpfw_lift bpfw_tasks; do
  expect_try "${map}_writable_fd_eperm" EPERM map-get-pin "$BW_PINS/maps/$map" rw
done
expect_try policy_map_read_only_fd_ok ok map-get-pin "$BW_PINS/maps/bpfw_file_rules" ro
expect_try bpf_policy_update_eperm EPERM map-update "$BW_PINS/maps/bpfw_bpf_policy" 00000000 00
expect_try settings_update_eperm EPERM map-update "$BW_PINS/maps/bpfw_settings" 00000000 00
expect_try file_rules_delete_eperm EPERM map-delete "$BW_PINS/maps/bpfw_file_rules" 00
expect_try file_rules_freeze_eperm EPERM map-freeze "$BW_PINS/maps/bpfw_file_rules"
expect_try delete_then_open_race_eperm EPERM map-delete-race "$BW_PINS/maps/bpfw_file_rules" 00 00 "$work/secret" 1000
# By id: the ids of our maps, read through read-only fds (what listing needs).
map_ids=$(python3 - <<'PY'
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
SYS_bpf, MAP_GET_NEXT_ID, MAP_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, F_RDONLY = 321, 12, 14, 15, 1 << 3
def bpf(cmd, attr): return libc.syscall(SYS_bpf, cmd, attr, len(attr))
ident = 0
while True:
    attr = ctypes.create_string_buffer(struct.pack("II", ident, 0), 128)
    if bpf(MAP_GET_NEXT_ID, attr) != 0: break
    ident = struct.unpack_from("I", attr, 4)[0]
    attr = ctypes.create_string_buffer(struct.pack("III", ident, 0, F_RDONLY), 128)
    fd = bpf(MAP_GET_FD_BY_ID, attr)
    if fd < 0: continue
    info = ctypes.create_string_buffer(256)
    attr = ctypes.create_string_buffer(struct.pack("IIQ", fd, 256, ctypes.addressof(info)), 128)
    if bpf(OBJ_GET_INFO_BY_FD, attr) == 0 and info.raw[24:29] == b"bpfw_": print(ident)
    libc.close(fd)
PY
)
[ -n "$map_ids" ] && pass our_maps_listed_read_only || fail our_maps_listed_read_only "no bpfw_ map found by id"
for id in $map_ids; do
  expect_try "map_${id}_by_id_writable_eperm" EPERM map-get-id "$id" rw
done
# Programs and links: a loaded program cannot be changed, so an fd to one is
# read access (bpftool prog list keeps working); what changes enforcement,
# detaching a link or swapping its program, is refused.
prog_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["programs"][0]["prog_id"])' \
  /run/bpfwarden-watchdog/status.json 2>/dev/null)
[ -n "$prog_id" ] && pass program_ids_in_status || fail program_ids_in_status "no programs in the watchdog's status file"
expect_try link_update_eperm EPERM link-update "$BW_PINS/links/bw_file_open" "prog:${prog_id:-1}"
expect_try link_detach_eperm EPERM link-detach "$BW_PINS/links/bw_file_open"
expect_try prog_with_our_map_eperm EPERM prog-load-with-map "$BW_PINS/maps/bpfw_file_rules"
if bpftool map delete pinned "$BW_PINS/maps/bpfw_file_rules" key hex 00 >"$BW_OUT/bpftool-delete.log" 2>&1; then
  fail bpftool_map_delete_refused "bpftool succeeded"
else
  grep -q "Operation not permitted" "$BW_OUT/bpftool-delete.log" && pass bpftool_map_delete_refused ||
    fail bpftool_map_delete_refused "$(cat "$BW_OUT/bpftool-delete.log")"
fi
expect_journal map_tamper_reported bpfwardend.service "tamper deny .*comm=\"bw-try\".* op=map_write"

# --- Our pins ----------------------------------------------------------------------
rm -rf "$BW_PINS" 2>"$BW_OUT/rm.log"
[ -e "$BW_PINS/links/bw_file_open" ] && [ -e "$BW_PINS/maps/bpfw_file_rules" ] && pass rm_rf_pins_refused ||
  fail rm_rf_pins_refused "pins gone: $(ls -R "$BW_PINS" 2>&1 | head -5)"
grep -q "Operation not permitted" "$BW_OUT/rm.log" && pass rm_rf_pins_eperm || fail rm_rf_pins_eperm "$(head -3 "$BW_OUT/rm.log")"
expect_try unlink_link_pin_eperm EPERM unlink "$BW_PINS/links/bw_bprm_check"
expect_try rename_pin_tree_eperm EPERM rename "$BW_PINS" /sys/fs/bpf/moved
expect_try rename_map_pin_eperm EPERM rename "$BW_PINS/maps/bpfw_file_rules" /sys/fs/bpf/stolen
mount -t tmpfs none "$BW_PINS" 2>"$BW_OUT/mount.log" && { fail mount_over_pins_refused "mounted"; umount "$BW_PINS"; } ||
  pass mount_over_pins_refused
umount -l /sys/fs/bpf 2>"$BW_OUT/umount.log" && fail umount_bpffs_refused "unmounted" || pass umount_bpffs_refused
expect_journal pin_tamper_reported bpfwardend.service "tamper deny .* op=(unlink|rename_from|rmdir)"

# --- Our files: images, keys and state only bpfwarden changes; policy stays the admin's ---
expect_try image_write_eperm EPERM open-write "$images/manifest"
expect_try image_unlink_eperm EPERM unlink "$images/file_guard.bpf.o"
expect_try stray_image_file_eperm EPERM create "$images/stray.bpf.o"
expect_try image_dir_rename_eperm EPERM rename "$images" "$images.old"
expect_try key_truncate_eperm EPERM truncate "$keys/$(ls "$keys" | head -n 1)"
expect_try stray_key_eperm EPERM create "$keys/attacker.pem"
expect_try rollback_state_write_eperm EPERM open-write "$state/image-set-version"
expect_try last_good_policy_write_eperm EPERM open-write "$state/last-good-policy"
expect_try state_file_create_eperm EPERM create "$state/forged"
expect_try policy_dir_stays_editable ok create "$policy_dir/99-admin-note.toml"
rm -f "$policy_dir/99-admin-note.toml"
expect_try unrelated_file_write_ok ok open-write "$work/public"
expect_journal file_tamper_reported bpfwardend.service "tamper deny .*manifest.* op=open_write"

# --- Our processes -------------------------------------------------------------------
for who in daemon watchdog; do
  pid=${!who}
  expect_try "${who}_sigkill_eperm" EPERM kill "$pid" KILL
  expect_try "${who}_sigstop_eperm" EPERM kill "$pid" STOP
  expect_try "${who}_sigterm_eperm" EPERM kill "$pid" TERM
  expect_try "${who}_ptrace_attach_eperm" EPERM ptrace-attach "$pid"
  expect_try "${who}_ptrace_seize_eperm" EPERM ptrace-seize "$pid"
  expect_try "${who}_process_vm_eperm" EPERM vm-write "$pid"
  expect_try "${who}_pidfd_getfd_eperm" EPERM pidfd-getfd "$pid" 3
  # /proc/PID/mem answers a refused ptrace check with EACCES.
  expect_try "${who}_proc_mem_refused" EACCES proc-mem "$pid"
done
sleep 60 &
bystander=$!
expect_try unrelated_process_signal_ok ok kill "$bystander" TERM
[ "$(main_pid bpfwardend.service)" = "$daemon" ] && pass daemon_survived || fail daemon_survived "main pid changed"
[ "$(main_pid bpfwarden-watchdog.service)" = "$watchdog" ] && pass watchdog_survived ||
  fail watchdog_survived "main pid changed"
expect_journal signal_tamper_reported bpfwardend.service "tamper deny .*op=signal target=$daemon"

# --- bpf(): foreign loads, our binaries by hand, LD_PRELOAD ---------------------------------
expect_try foreign_prog_load_eperm EPERM prog-load
line=$("$work/allowed-loader" prog-load | tail -n 1)
case "$line" in *result=ok*) pass allowlisted_loader_loads ;; *) fail allowlisted_loader_loads "$line" ;; esac
line=$(LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6 "$work/allowed-loader" prog-load | tail -n 1)
case "$line" in *result=EPERM*) pass ld_preload_loses_allowance ;; *) fail ld_preload_loses_allowance "$line" ;; esac
# An attacker's own key and image set, signed and complete, and a pin root of its own.
mkdir -p "$work/evil/state" "$work/evil/keys" "$work/evil/policy.d"
cp -r "$BW_IMAGES" "$work/evil/images"
"$BW_BUILD/ctl/bpfwardenctl" keygen --private "$work/evil/key.pem" --public "$work/evil/keys/evil.pem" >/dev/null
"$BW_BUILD/ctl/bpfwardenctl" sign --key "$work/evil/key.pem" --version 1 --images "$work/evil/images" >/dev/null
"$BW_DAEMON" --image-dir "$work/evil/images" --keys-dir "$work/evil/keys" --state-dir "$work/evil/state" \
  --pin-root /sys/fs/bpf/evil --policy-dir "$policy_dir" --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" \
  --canary "$work/evil/canary" --no-dbus --exit-after-setup --log-target stderr >"$BW_OUT/hand-daemon.log" 2>&1
rc=$?
[ "$rc" != 0 ] && pass hand_run_daemon_fails || fail hand_run_daemon_fails "exit 0"
if [ -n "$(ls /sys/fs/bpf/evil/links 2>/dev/null)" ]; then
  fail hand_run_daemon_attaches_nothing "$(ls /sys/fs/bpf/evil/links)"
else
  pass hand_run_daemon_attaches_nothing
fi
grep -q "Operation not permitted\|not the bpfwarden service" "$BW_OUT/hand-daemon.log" && pass hand_run_daemon_says_why ||
  fail hand_run_daemon_says_why "$(tail -3 "$BW_OUT/hand-daemon.log")"
"$BW_WATCHDOG" --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$state" --policy-dir "$work/evil/policy.d" \
  --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$state/canary" --no-dbus --once \
  --log-target stderr >"$BW_OUT/hand-watchdog.log" 2>&1
grep -q "not the bpfwarden service" "$BW_OUT/hand-watchdog.log" && pass hand_run_watchdog_refused ||
  fail hand_run_watchdog_refused "$(tail -3 "$BW_OUT/hand-watchdog.log")"
expect_journal bpf_denial_reported bpfwardend.service "bpf_check deny .*cmd=prog_load"

# --- What systemd does keeps working, and enforcement never lapses --------------------------
systemctl restart bpfwardend.service && pass systemctl_restart_daemon || fail systemctl_restart_daemon "exit $?"
new_daemon=$(main_pid bpfwardend.service)
[ "$new_daemon" != "$daemon" ] && [ "$new_daemon" != 0 ] && pass daemon_restarted || fail daemon_restarted "pid $new_daemon"
expect_journal restarted_daemon_admitted bpfwardend.service "ready: logging events"
# The maps already hold the policy: a restart rewrites none of their entries.
expect_journal restart_rewrites_no_entry bpfwardend.service "policy maps: 0 entries written, 0 removed"
expect_try restarted_daemon_protected EPERM kill "$new_daemon" KILL
systemctl restart bpfwarden-watchdog.service && pass systemctl_restart_watchdog || fail systemctl_restart_watchdog "exit $?"
expect_try denied_file_still_denied EPERM open "$work/secret"
expect_try unrelated_file_ok ok open "$work/public"

kill -TERM "$canary"
wait "$canary"
line=$(tail -n 1 "$BW_OUT/canary.log")
case "$line" in
  *"successes=0 "*) pass canary_never_opened_denied_file ;;
  *)
    fail canary_never_opened_denied_file "$line"
    # What the journal says around the first success.
    at=$(sed -n 's/.* opened at \([0-9]*\)\..*/\1/p' "$BW_OUT/canary.log" | head -n 1)
    [ -n "$at" ] && journalctl -o short-precise --no-pager --since "@$((at - 2))" --until "@$((at + 2))" \
      >"$BW_OUT/canary-window.log" 2>&1
    ;;
esac
case "$line" in *"attempts=0 "*) fail canary_ran "$line" ;; *) pass canary_ran ;; esac

# --- Break-glass: a signed, expiring, single-use unlock token -------------------------------
ctl="$BW_BUILD/ctl/bpfwardenctl"
enforcer_property() { busctl get-property org.bpfwarden.Enforcer1 /org/bpfwarden/Enforcer1 org.bpfwarden.Enforcer1 "$1"; }
enforcer_property Protection | grep -q '"enforced"' && pass protection_property_enforced ||
  fail protection_property_enforced "$(enforcer_property Protection 2>&1)"
# A Tamper signal for an attempt on our processes, and the counter.
timeout 15 busctl monitor --match "type='signal',interface='org.bpfwarden.Enforcer1',member='Tamper'" \
  >"$BW_OUT/tamper-signal.log" 2>&1 &
monitor=$!
sleep 2
expect_try tamper_for_signal_eperm EPERM kill "$(main_pid bpfwardend.service)" KILL
wait "$monitor"
grep -q '"signal"' "$BW_OUT/tamper-signal.log" && grep -q '"refused"' "$BW_OUT/tamper-signal.log" &&
  pass tamper_signal_emitted || fail tamper_signal_emitted "$(head -c 600 "$BW_OUT/tamper-signal.log")"
attempts=$(enforcer_property TamperAttempts | awk '{print $2}')
[ "${attempts:-0}" -gt 0 ] && pass tamper_attempts_counted || fail tamper_attempts_counted "TamperAttempts ${attempts:-?}"
# Every Unlock, refused or not, is a Tamper signal too.
timeout 60 busctl monitor --match "type='signal',interface='org.bpfwarden.Enforcer1',member='Tamper'" \
  >"$BW_OUT/unlock-signal.log" 2>&1 &
unlock_monitor=$!
sleep 2
# Tokens the service must refuse: another key's, and one of ours already expired.
"$ctl" unlock --key "$work/evil/key.pem" --for 60s --output "$work/evil.token" 2>/dev/null
"$ctl" unlock --token "$work/evil.token" >"$BW_OUT/unlock-evil.log" 2>&1 && fail foreign_token_refused "accepted" ||
  { grep -q "does not verify" "$BW_OUT/unlock-evil.log" && pass foreign_token_refused ||
    fail foreign_token_refused "$(cat "$BW_OUT/unlock-evil.log")"; }
"$ctl" unlock --key "$BW_BUILD/keys/dev-signing.key" --for 1s --output "$work/short.token" 2>/dev/null
sleep 2
"$ctl" unlock --token "$work/short.token" >"$BW_OUT/unlock-expired.log" 2>&1 && fail expired_token_refused "accepted" ||
  { grep -q "expired" "$BW_OUT/unlock-expired.log" && pass expired_token_refused ||
    fail expired_token_refused "$(cat "$BW_OUT/unlock-expired.log")"; }
expect_try still_protected_after_refusals EPERM map-update "$BW_PINS/maps/bpfw_settings" 00000000 00
# A good token lifts protection until it expires: root may then change our
# maps, and the watchdog reports the lift instead of healing it back.
lift_seconds=30
"$ctl" unlock --key "$BW_BUILD/keys/dev-signing.key" --for ${lift_seconds}s --output "$work/good.token" 2>/dev/null
lifted_at=$SECONDS
"$ctl" unlock --token "$work/good.token" >"$BW_OUT/unlock-good.log" 2>&1 &&
  grep -q "protection lifted until" "$BW_OUT/unlock-good.log" && pass good_token_lifts ||
  fail good_token_lifts "$(cat "$BW_OUT/unlock-good.log")"
enforcer_property Protection | grep -q '"lifted"' && pass protection_property_lifted ||
  fail protection_property_lifted "$(enforcer_property Protection 2>&1)"
expect_journal lift_logged bpfwardend.service "protection: LIFTED until .* signed by dev-signing.pem"
kill "$unlock_monitor" 2>/dev/null
wait "$unlock_monitor"
grep -q '"unlock"' "$BW_OUT/unlock-signal.log" && grep -q '"refused: .*does not verify' "$BW_OUT/unlock-signal.log" &&
  grep -q '"lifted until ' "$BW_OUT/unlock-signal.log" && pass unlock_attempts_signalled ||
  fail unlock_attempts_signalled "$(grep -a STRING "$BW_OUT/unlock-signal.log" | head -20)"
secret_key=$(key_of "$work/secret")
# in_file_rules: bpfw_file_rules holds the secret's key, read through a
# read-only fd (bpftool asks for a writable one, which protection refuses).
in_file_rules() {
  python3 - "$BW_PINS/maps/bpfw_file_rules" $secret_key <<'PY'
import ctypes, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_bpf, MAP_LOOKUP_ELEM, OBJ_GET, F_RDONLY = 321, 1, 7, 1 << 3
path = ctypes.create_string_buffer(sys.argv[1].encode())
attr = ctypes.create_string_buffer(struct.pack("QII", ctypes.addressof(path), 0, F_RDONLY), 128)
fd = libc.syscall(SYS_bpf, OBJ_GET, attr, 128)
if fd < 0: sys.exit(2)
key = ctypes.create_string_buffer(bytes(int(b, 16) for b in sys.argv[2:]))
value = ctypes.create_string_buffer(64)
attr = ctypes.create_string_buffer(struct.pack("IIQQQ", fd, 0, ctypes.addressof(key), ctypes.addressof(value), 0), 128)
sys.exit(0 if libc.syscall(SYS_bpf, MAP_LOOKUP_ELEM, attr, 128) == 0 else 1)
PY
}
bpftool map delete pinned "$BW_PINS/maps/bpfw_file_rules" key hex $secret_key >"$BW_OUT/lifted-delete.log" 2>&1 &&
  pass lifted_map_write_allowed || fail lifted_map_write_allowed "$(cat "$BW_OUT/lifted-delete.log")"
rm "$BW_PINS/links/bw_bprm_check" 2>"$BW_OUT/lifted-rm.log" && pass lifted_pin_unlink_allowed ||
  fail lifted_pin_unlink_allowed "$(cat "$BW_OUT/lifted-rm.log")"
sleep 3
if in_file_rules || [ -e "$BW_PINS/links/bw_bprm_check" ]; then
  fail watchdog_does_not_heal_while_lifted "entry or pin back during the lift"
else
  pass watchdog_does_not_heal_while_lifted
fi
grep -q '"self-protection lifted for another' /run/bpfwarden-watchdog/status.json && pass watchdog_reports_lift ||
  fail watchdog_reports_lift "$(cat /run/bpfwarden-watchdog/status.json)"
"$ctl" unlock --token "$work/good.token" >"$BW_OUT/unlock-reuse.log" 2>&1 && fail used_token_refused "accepted twice" ||
  { grep -q "already used" "$BW_OUT/unlock-reuse.log" && pass used_token_refused ||
    fail used_token_refused "$(cat "$BW_OUT/unlock-reuse.log")"; }
# When the lift ends, protection is back and the watchdog heals what changed.
sleep $((lift_seconds + 2 - (SECONDS - lifted_at)))
for ((i = 0; i < 40; i++)); do
  in_file_rules && [ -e "$BW_PINS/links/bw_bprm_check" ] && break
  sleep 0.5
done
in_file_rules && [ -e "$BW_PINS/links/bw_bprm_check" ] && pass healed_after_lift_ends ||
  fail healed_after_lift_ends "entry or pin still missing 20 s after the lift ended"
expect_try denied_after_lift EPERM open "$work/secret"
expect_try unrelated_open_after_lift ok open "$work/public"
expect_try protected_again_after_lift EPERM map-update "$BW_PINS/maps/bpfw_settings" 00000000 00
enforcer_property Protection | grep -q '"enforced"' && pass protection_property_enforced_again ||
  fail protection_property_enforced_again "$(enforcer_property Protection 2>&1)"

systemctl stop bpfwarden-watchdog.service bpfwardend.service
finish
