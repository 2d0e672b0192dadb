#!/bin/bash
# Guest suite: real BPF LSM enforcement. Runs inside the VM as root.
. "$(dirname "$0")/lib.sh"

work=/tmp/bw
mkdir -p "$work/policy.d"
echo secret >"$work/secret"
echo public >"$work/public"
echo watched >"$work/watched"
ln "$work/secret" "$work/secret-hardlink"
cp /bin/true "$work/denied-bin"
cp /bin/true "$work/allowed-bin"
cp "$BW_TRY" "$work/allowed-loader"
cat >"$work/policy.d/50-selftest.toml" <<'TOML'
# Run by hand, not by systemd: the suite tests rules, not self-protection.
protect = false

[[file]]
path = "/tmp/bw/secret"
action = "deny"

[[file]]
path = "/tmp/bw/watched"
action = "audit"

[[exec]]
path = "/tmp/bw/denied-bin"
action = "deny"

[bpf]
mode = "deny"
allow = ["/tmp/bw/allowed-loader"]
TOML
log="$BW_OUT/daemon-1.log"

echo "== kernel $(uname -r), LSMs: $(cat /sys/kernel/security/lsm)"
start_daemon "$log" --policy-dir "$work/policy.d" || { fail daemon_start "see $log"; finish; exit; }
expect_log daemon_reports_enforcing "$log" "mode: enforcing"

# File opens.
expect_try open_denied_file_eperm EPERM open "$work/secret"
expect_log open_denial_event "$log" "file_open deny .*pid=$TRY_PID .*comm=\"bw-try\" path=\"$work/secret\""
expect_try open_hardlink_of_denied_file_eperm EPERM open "$work/secret-hardlink"
expect_try open_unrelated_file_ok ok open "$work/public"
expect_try open_audited_file_ok ok open "$work/watched"
expect_log open_audit_event "$log" "file_open audit .*pid=$TRY_PID .*path=\"$work/watched\""

# Executions.
expect_try exec_denied_binary_eperm EPERM exec "$work/denied-bin"
expect_log exec_denial_event "$log" "exec_check deny .*pid=$TRY_PID .*path=\"$work/denied-bin\""
expect_try exec_unrelated_binary_ok ok exec "$work/allowed-bin"
expect_log exec_audit_trail_event "$log" "exec none .*pid=$TRY_PID .*exe=\"$work/allowed-bin\""

# bpf(): outside the allowlist program load is refused, inside it works.
expect_try prog_load_outside_allowlist_eperm EPERM prog-load
expect_log bpf_denial_event "$log" "bpf_check deny .*pid=$TRY_PID .*comm=\"bw-try\".*cmd=prog_load"
"$work/allowed-loader" prog-load | grep -q "result=ok" && pass prog_load_by_allowlisted_executable \
  || fail prog_load_by_allowlisted_executable "allowlisted loader was refused"
# The bpf() audit (lsm/bpf here) reports the load that went ahead; the
# refused one is reported by its refusal above.
expect_log bpf_call_audit_event "$log" "bpf_call none .*comm=\"allowed-loader\" cmd=prog_load"

# Live policy edits: a saved file applies on its own, an invalid one changes
# nothing, and SIGHUP re-reads the directory at once.
cat >"$work/policy.d/60-live.toml" <<'TOML'
[[file]]
path = "/tmp/bw/public"
action = "deny"
TOML
expect_log policy_edit_applied_live "$log" "policy: applied the edited policy directory \([0-9]+ rules, generation 2; policy directory changed \(60-live.toml\)\)"
expect_try live_rule_denies EPERM open "$work/public"
echo 'this is = = not toml' >"$work/policy.d/70-broken.toml"
expect_log invalid_edit_refused "$log" "policy directory changed \(70-broken.toml\): .*70-broken.toml:1.*keeping the running policy"
kill -HUP "$DAEMON_PID"
expect_log invalid_reload_refused "$log" "^bpfwardend: policy: .*70-broken.toml:1.*keeping the running policy"
expect_try invalid_edit_keeps_rules EPERM open "$work/public"
rm -f "$work/policy.d/60-live.toml" "$work/policy.d/70-broken.toml"
expect_log removal_applied_live "$log" "policy: applied the edited policy directory \([0-9]+ rules, generation 3;"
expect_try removed_rule_no_longer_denies ok open "$work/public"
kill -HUP "$DAEMON_PID"
expect_log sighup_reloads "$log" "policy: reloaded \([0-9]+ rules, generation 4\)"

# Enforcement outlives the daemon: the pins hold it.
stop_daemon
expect_log daemon_stops_cleanly "$log" "stopping on signal 15; pinned programs keep enforcing"
expect_try denial_persists_without_daemon EPERM open "$work/secret"
expect_try exec_denial_persists_without_daemon EPERM exec "$work/denied-bin"

# A tampered image on disk is refused, and the pinned programs keep denying.
cp -r "$BW_IMAGES" "$work/tampered-images"
printf '\x01' | dd of="$work/tampered-images/file_guard.bpf.o" bs=1 seek=200 conv=notrunc status=none
"$BW_DAEMON" --policy-dir "$work/policy.d" --image-dir "$work/tampered-images" --keys-dir "$BW_KEYS" \
  --state-dir "$BW_STATE" --log-target stderr >"$BW_OUT/tampered.log" 2>&1
rc=$?
[ $rc = 1 ] && pass tampered_image_refused || fail tampered_image_refused "daemon exited $rc"
expect_log tampered_image_reason_logged "$BW_OUT/tampered.log" \
  "images: image 'file_guard' .* does not match the SHA-256 in the signed manifest.*pinned programs keep enforcing"
expect_try denial_persists_after_refused_image EPERM open "$work/secret"

# A restarted daemon adopts the pins instead of loading a second copy.
log2="$BW_OUT/daemon-2.log"
start_daemon "$log2" --policy-dir "$work/policy.d" || fail daemon_restart "see $log2"
expect_log restart_adopts_pins "$log2" "file_guard \(file rules\): adopted existing pins"
count=$(bpftool prog show | grep -c "name bw_file_open")
[ "$count" = 1 ] && pass single_copy_after_restart || fail single_copy_after_restart "$count bw_file_open programs loaded"
stop_daemon

# Removing one pin ends that program's enforcement; the daemon reloads it: a
# program load while the bpf() guard denies others. The daemon is a copy of the
# binary (a new inode, as after an upgrade): with protection off it marks itself
# as bpfwarden in the pinned store before loading.
rm "$BW_PINS/links/bw_bprm_check"
expect_try_within exec_allowed_once_pin_removed ok 10 exec "$work/denied-bin"
log3="$BW_OUT/daemon-3.log"
installed_daemon=$BW_DAEMON
cp "$BW_DAEMON" "$work/bpfwardend-upgraded"
BW_DAEMON="$work/bpfwardend-upgraded"
start_daemon "$log3" --policy-dir "$work/policy.d" || fail daemon_restart_reload "see $log3"
BW_DAEMON=$installed_daemon
expect_log daemon_reloads_missing_program "$log3" "exec_guard \(exec rules\): loaded and pinned"
expect_try exec_denied_again_after_reload EPERM exec "$work/denied-bin"
expect_try prog_load_still_refused_for_others EPERM prog-load
stop_daemon

# --unpin --yes ends enforcement.
"$BW_DAEMON" --unpin --yes --log-target stderr >"$BW_OUT/unpin.log" 2>&1 && pass unpin_succeeds || fail unpin_succeeds "$(cat "$BW_OUT/unpin.log")"
expect_try open_allowed_after_unpin ok open "$work/secret"
expect_try exec_allowed_after_unpin ok exec "$work/denied-bin"
expect_try prog_load_allowed_after_unpin ok prog-load
left=$(bpftool prog show | grep -c "name bw_" || true)
[ "$left" = 0 ] && pass no_programs_left_after_unpin || fail no_programs_left_after_unpin "$left bw_ programs still loaded"

finish
