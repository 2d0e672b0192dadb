#!/bin/bash
# Guest suite, negative control: the kernel is booted with an lsm= list that
# lacks `bpf`. LSM programs would attach and enforce nothing; the daemon must
# notice, say why, keep the tracepoint audit running, and report from
# tracepoints what its file and exec rules would do (rule_audit).
. "$(dirname "$0")/lib.sh"

work=/tmp/bw
mkdir -p "$work/policy.d"
echo secret >"$work/secret"
cp /bin/true "$work/some-bin"
cat >"$work/policy.d/50-selftest.toml" <<'TOML'
# Run by hand, not by systemd: the suite tests rules, not self-protection.
protect = false

[[file]]
path = "/tmp/bw/secret"
action = "deny"

[[exec]]
path = "/tmp/bw/some-bin"
action = "audit"
TOML
log="$BW_OUT/daemon.log"

lsms=$(cat /sys/kernel/security/lsm)
echo "== kernel $(uname -r), LSMs: $lsms"
case ",$lsms," in
  *,bpf,*) fail lsm_list_lacks_bpf "booted with bpf in the LSM list: $lsms" ;;
  *) pass lsm_list_lacks_bpf ;;
esac

start_daemon "$log" --policy-dir "$work/policy.d" || { fail daemon_start "see $log"; finish; exit; }
expect_log daemon_reports_audit_only "$log" "mode: audit-only \(BPF LSM program attached but never ran"
expect_log daemon_names_active_lsms "$log" "active LSMs: $lsms"
expect_log lsm_programs_not_loaded "$log" "file_guard \(file rules\): not loaded \(needs BPF LSM\)"
# The suite itself detects that the policy is not enforced here.
expect_try enforcement_absent_is_detected ok open "$work/secret"
# ... yet the rules report from tracepoints what they would do.
expect_log deny_rule_reports_would_deny "$log" "file_open would-deny .*pid=$TRY_PID .*path=\"$work/secret\""
expect_try exec_audit_still_runs ok exec "$work/some-bin"
expect_log exec_audit_event_logged "$log" "exec none .*pid=$TRY_PID .*exe=\"$work/some-bin\""
expect_log exec_audit_rule_reports "$log" "exec_check audit .*pid=$TRY_PID .*path=\"$work/some-bin\""
# The hardening check says the same, with the kernel command line that fixes it.
"$BW_CTL" doctor --json >"$BW_OUT/doctor.json" 2>&1
rc=$?
python3 - "$BW_OUT/doctor.json" "$lsms" <<'PY' && [ "$rc" = 3 ] && pass doctor_names_the_missing_bpf_lsm ||
import json, sys
report = json.load(open(sys.argv[1]))
lsm = next(c for c in report["checks"] if c["id"] == "bpf-lsm")
sys.exit(0 if report["worst"] == "failure" and lsm["severity"] == "failure" and "lsm=" + sys.argv[2] + ",bpf" in lsm["fix"] else 1)
PY
  fail doctor_names_the_missing_bpf_lsm "exit $rc: $(head -c 1500 "$BW_OUT/doctor.json")"
count=$(bpftool prog show | grep -c "name bw_file_open" || true)
[ "$count" = 0 ] && pass no_lsm_program_left_loaded || fail no_lsm_program_left_loaded "$count loaded"
stop_daemon

# The watchdog's canary notices what the attach alone hides: told to expect
# enforcement, it loads the LSM programs, finds the canary openable, and says so.
"$BW_WATCHDOG" --once --require-enforcement --policy-dir "$work/policy.d" --image-dir "$BW_IMAGES" \
  --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" \
  --canary "$BW_CANARY" --log-target stderr >"$BW_OUT/watchdog-once.json" 2>"$BW_OUT/watchdog-once.log"
rc=$?
[ $rc = 1 ] && pass watchdog_reports_unhealthy || fail watchdog_reports_unhealthy "exit $rc"
grep -q '"healthy":false' "$BW_OUT/watchdog-once.json" \
  && grep -q "canary '$BW_CANARY' opened although the policy denies it: enforcement is silently broken" "$BW_OUT/watchdog-once.json" \
  && pass canary_reason_reported || fail canary_reason_reported "$(cat "$BW_OUT/watchdog-once.json")"

"$BW_DAEMON" --unpin --yes --log-target stderr >/dev/null 2>&1
finish
