#!/bin/bash
# bpfwardend end to end on this machine's kernel (root): it must say exactly
# why it cannot enforce, keep the tracepoint audit running and report what
# its rules would refuse, drop privileges,
# survive restarts through its pins, refuse a bad policy edit without touching
# what runs, start on the last good policy when the policy directory is
# invalid, and remove everything with --unpin --yes.
#   daemon_host_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/host-out"
. "$BW_SRC/selftests/guest/lib.sh"
BW_PINS=/sys/fs/bpf/bpfwarden-hosttest-$$
work=$(mktemp -d /tmp/bpfwarden-hosttest.XXXXXX)
BW_STATE="$work/state"
BW_CANARY="$work/canary"
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT" "$work/policy.d" "$BW_STATE"
cleanup() {
  stop_daemon
  "$BW_DAEMON" --unpin --yes --pin-root "$BW_PINS" --log-target stderr >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

cp "$BW_SRC/policy/default.toml" "$work/policy.d/00-default.toml"
echo data >"$work/audited"
# The second rule names a file in a directory that does not exist: reported,
# kept inactive. (A missing file in a directory that exists is not reported:
# its name in the directory is covered until it appears.)
cat >"$work/policy.d/50-test.toml" <<TOML
[[file]]
path = "$work/audited"
action = "deny"

[[file]]
path = "$work/no-such-dir/file"
action = "audit"
TOML
cp /bin/true "$work/marker-bin"
# Created now: a file appearing beside a rule's file later makes the daemon
# re-resolve the rules, which would race with the live edit below.
echo live >"$work/live-target"

# Oracle for the expected mode: can bpftool load an LSM program here?
probe_pin="/sys/fs/bpf/bpfwarden-hosttest-probe-$$"
if bpftool prog load "$BW_IMAGES/lsm_probe.bpf.o" "$probe_pin" >"$BW_OUT/bpftool-probe.log" 2>&1; then
  rm -f "$probe_pin"
  expected_mode="enforcing"
elif grep -q "Operation not permitted" "$BW_OUT/bpftool-probe.log"; then
  expected_mode="audit-only \(kernel refused to load a BPF LSM program: Operation not permitted \(BPF trampolines unavailable on this kernel\)"
else
  expected_mode="audit-only \(kernel refused to load a BPF LSM program"
fi

log="$BW_OUT/daemon-1.log"
start_daemon "$log" --policy-dir "$work/policy.d" --pin-root "$BW_PINS" || fail daemon_start "see $log"
expect_log mode_and_reason_reported "$log" "mode: $expected_mode"
# One line per object, not per program.
expect_log tracepoint_audit_loaded "$log" "exec_audit \(exec audit\): loaded and pinned"
expect_log bpf_audit_loaded "$log" "bpf_audit \(bpf\(\) audit\): loaded and pinned"
expect_log nonexistent_policy_path_reported "$log" \
  "policy: $work/policy.d/50-test.toml:[0-9]+: the directory of '$work/no-such-dir/file' does not exist yet: rule inactive until it does \(file rule\)"

expect_try exec_runs ok exec "$work/marker-bin"
expect_log exec_audit_event "$log" "exec none pid=$TRY_PID .*exe=\"$work/marker-bin\""
# Without BPF LSM the deny rule cannot refuse, yet it reports what it would
# have refused (rule_audit's tracepoints); with BPF LSM file_guard refuses.
if [ "$expected_mode" = enforcing ]; then
  expect_log rule_audit_not_loaded "$log" "rule_audit \(.*\): not loaded \(not needed: BPF LSM serves\)"
  expect_try deny_rule_refuses eperm open "$work/audited"
else
  expect_log rule_audit_loaded "$log" "rule_audit \(file and exec rules, reported without BPF LSM\): loaded and pinned"
  expect_try deny_rule_cannot_refuse_without_bpf_lsm ok open "$work/audited"
  expect_log deny_rule_reported_as_would_deny "$log" "file_open would-deny .*pid=$TRY_PID .*path=\"$work/audited\""
fi
expect_try bpf_call_runs_on_host ok prog-load
expect_log bpf_call_audit_event "$log" "bpf_call none pid=$TRY_PID .*comm=\"bw-try\" cmd=prog_load"
# Its own calls (loading, pinning, applying the policy) are not bpf() audit.
own_calls=$(grep -c "bpf_call none pid=[0-9]* tgid=$DAEMON_PID " "$log")
[ "$own_calls" = 0 ] && pass own_bpf_calls_not_reported || fail own_bpf_calls_not_reported "$own_calls of its own calls logged"

capeff=$(sed -n 's/^CapEff:\s*//p' "/proc/$DAEMON_PID/status")
[ "$capeff" = "0000008000000004" ] && pass capabilities_dropped_to_bpf_and_dac_read_search \
  || fail capabilities_dropped_to_bpf_and_dac_read_search "CapEff=$capeff"
mode=$(stat -c %a "$BW_PINS")
[ "$mode" = 700 ] && pass pin_root_is_0700 || fail pin_root_is_0700 "mode $mode"

linked_prog() { bpftool link show pinned "$BW_PINS/links/$1" 2>/dev/null | sed -n 's/.* prog \([0-9]*\).*/\1/p'; }
prog_before=$(linked_prog bw_tp_exec)
stop_daemon
expect_log stop_leaves_pins "$log" "pinned programs keep enforcing"
[ -e "$BW_PINS/links/bw_tp_exec" ] && pass pins_survive_daemon_exit || fail pins_survive_daemon_exit "link pin gone"
# Audit keeps recording while no daemon runs; the next one drains it.
expect_try exec_while_daemon_down ok exec "$work/marker-bin"
down_pid=$TRY_PID

log2="$BW_OUT/daemon-2.log"
start_daemon "$log2" --policy-dir "$work/policy.d" --pin-root "$BW_PINS" || fail daemon_restart "see $log2"
expect_log restart_adopts_pins "$log2" "exec_audit \(exec audit\): adopted existing pins"
expect_log events_from_downtime_delivered "$log2" "exec none pid=$down_pid .*exe=\"$work/marker-bin\""
# The same program (by id) still sits behind the pin: adopted, not reloaded.
prog_after=$(linked_prog bw_tp_exec)
[ -n "$prog_before" ] && [ "$prog_before" = "$prog_after" ] && pass restart_does_not_load_a_second_copy \
  || fail restart_does_not_load_a_second_copy "program behind the pin was ${prog_before:-none}, now ${prog_after:-none}"

# A saved edit applies without SIGHUP: the rule reaches the map and the
# generation moves on. A file the loader ignores, an invalid edit and its
# removal apply nothing; the invalid edit is named once.
printf '[[file]]\npath = "%s"\naction = "deny"\n' "$work/live-target" >"$work/policy.d/55-live.toml"
expect_log policy_edit_applied_live "$log2" "policy: applied the edited policy directory \([0-9]+ rules, generation 2; policy directory changed \(55-live.toml\)\)"
bpftool -j map lookup pinned "$BW_PINS/maps/bpfw_file_rules" key hex $(key_of "$work/live-target") >"$BW_OUT/live-lookup.log" 2>&1 \
  && python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["value"]; sys.exit(0 if int(v[0],16)==2 else 1)' "$BW_OUT/live-lookup.log" \
  && pass live_edit_reaches_map || fail live_edit_reaches_map "no deny entry in bpfw_file_rules: $(cat "$BW_OUT/live-lookup.log")"
echo notes >"$work/policy.d/README.txt"
printf '[[file]]\npath = "relative"\naction = "deny"\n' >"$work/policy.d/56-broken.toml"
expect_log invalid_live_edit_refused "$log2" "policy directory changed \(.*56-broken.toml.*\): policy: .*56-broken.toml:2: .*keeping the running policy"
touch "$work/policy.d/56-broken.toml"
rm "$work/policy.d/56-broken.toml" "$work/policy.d/README.txt"
sleep 1
applied=$(grep -c "applied the edited policy directory" "$log2")
refused=$(grep -c "56-broken.toml:2" "$log2")
[ "$applied" = 1 ] && [ "$refused" = 1 ] && pass live_apply_only_on_real_change \
  || fail live_apply_only_on_real_change "$applied applies, $refused refusals logged"
rm "$work/policy.d/55-live.toml"
expect_log policy_removal_applied_live "$log2" "policy: applied the edited policy directory \([0-9]+ rules, generation 3;"
bpftool map lookup pinned "$BW_PINS/maps/bpfw_file_rules" key hex $(key_of "$work/live-target") >"$BW_OUT/removed-lookup.log" 2>&1
grep -qx "Not found" "$BW_OUT/removed-lookup.log" && pass removed_rule_leaves_map \
  || fail removed_rule_leaves_map "$(cat "$BW_OUT/removed-lookup.log")"

# SIGHUP with an invalid policy: refused with file and line, nothing changes.
printf '[[file]]\npath = "relative/path"\naction = "deny"\n' >"$work/policy.d/60-bad.toml"
kill -HUP "$DAEMON_PID"
expect_log bad_policy_reload_refused "$log2" "60-bad.toml:2.*keeping the running policy"
kill -0 "$DAEMON_PID" 2>/dev/null && pass daemon_survives_bad_policy || fail daemon_survives_bad_policy "daemon exited"
stop_daemon

# Start-up with an invalid policy: the last good policy (the one applied last,
# saved in the state directory) is enforced instead and the problem named
# with file and line; the pinned programs stay. The rule for the audited file
# is taken out of the map first: only applying the last good policy puts it
# back. (--exit-after-setup: a daemon that started would otherwise run on;
# timeout: should it not exit, that is a failure, not a test killed by ctest
# before its cleanup.)
bpftool map delete pinned "$BW_PINS/maps/bpfw_file_rules" key hex $(key_of "$work/audited") >"$BW_OUT/bad-start-delete.log" 2>&1 \
  || fail bad_policy_start_setup "$(cat "$BW_OUT/bad-start-delete.log")"
timeout 60 "$BW_DAEMON" --policy-dir "$work/policy.d" --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" \
  --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$BW_CANARY" --pin-root "$BW_PINS" \
  --log-target stderr --no-dbus --exit-after-setup >"$BW_OUT/bad-start.log" 2>&1
rc=$?
[ $rc = 0 ] && pass bad_policy_start_runs || fail bad_policy_start_runs "exit $rc: $(cat "$BW_OUT/bad-start.log")"
grep -qE "policy: [0-9]+ rules from the last good policy" "$BW_OUT/bad-start.log" && pass bad_policy_start_uses_last_good \
  || fail bad_policy_start_uses_last_good "$(cat "$BW_OUT/bad-start.log")"
grep -q "policy: NOT the policy directory's: .*60-bad.toml:2: .*enforcing the last good policy until the directory is fixed" \
  "$BW_OUT/bad-start.log" && pass bad_policy_start_names_file_and_line \
  || fail bad_policy_start_names_file_and_line "$(cat "$BW_OUT/bad-start.log")"
bpftool map lookup pinned "$BW_PINS/maps/bpfw_file_rules" key hex $(key_of "$work/audited") >/dev/null 2>&1 \
  && pass bad_policy_start_applies_last_good || fail bad_policy_start_applies_last_good "no entry for $work/audited"
[ -e "$BW_PINS/links/bw_tp_exec" ] && pass bad_policy_start_keeps_pins || fail bad_policy_start_keeps_pins "pin gone"
rm "$work/policy.d/60-bad.toml"

# Bad command-line input: exit 2 with the option named.
"$BW_DAEMON" --rate-limit lots >"$BW_OUT/bad-arg.log" 2>&1
rc=$?
[ $rc = 2 ] && grep -q -- "--rate-limit: 'lots' is not a whole number" "$BW_OUT/bad-arg.log" && pass bad_argument_rejected \
  || fail bad_argument_rejected "exit $rc: $(cat "$BW_OUT/bad-arg.log")"
"$BW_DAEMON" --help | grep -q -- "--unpin" && pass help_documents_options || fail help_documents_options "no --unpin in --help"

# --unpin --yes removes everything bpfwarden pinned.
"$BW_DAEMON" --unpin --yes --pin-root "$BW_PINS" --log-target stderr >"$BW_OUT/unpin.log" 2>&1 && pass unpin_succeeds \
  || fail unpin_succeeds "$(cat "$BW_OUT/unpin.log")"
[ ! -e "$BW_PINS" ] && pass unpin_removes_pin_root || fail unpin_removes_pin_root "$BW_PINS still exists"

# The unit this build installs is valid systemd syntax (started from the
# build tree; its man page from the build's man/).
sed "s|^ExecStart=[^ ]*/bpfwardend|ExecStart=$BW_DAEMON|" "$BW_BUILD/units/bpfwardend.service" >"$work/bpfwardend.service"
mkdir -p "$work/man/man8"
ln -sf "$BW_BUILD"/man/*.8.gz "$work/man/man8/"
if out=$(MANPATH="$work/man" systemd-analyze verify "$work/bpfwardend.service" 2>&1); then pass unit_file_verifies
else fail unit_file_verifies "$out"; fi

finish
