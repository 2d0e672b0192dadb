#!/bin/bash
# org.bpfwarden.Enforcer1 and org.bpfwarden.Watchdog1 against a real, private
# dbus-daemon (the system bus's policy plus units/org.bpfwarden.conf), the
# real bpfwardend (audit-only on this kernel) and the real watchdog, on a
# private pin root: every property read with busctl get-property, every
# method called with busctl call, signals seen by busctl monitor, privileged
# methods refused to an unprivileged uid, malformed arguments refused with a
# named error and nothing changed, runtime edits persisted across a restart,
# the bus optional (absent, lost, back), and bpfwardenctl status.
#   dbus_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/dbus-out"
. "$BW_SRC/selftests/guest/lib.sh"
. "$BW_SRC/selftests/guest/lib_dbus.sh"
BW_PINS=/sys/fs/bpf/bpfwarden-dbustest-$$
work=$(mktemp -d /tmp/bpfwarden-dbustest.XXXXXX)
chmod 755 "$work"   # the unprivileged test user must reach the bus socket below it
BW_STATE="$work/state"
BW_CANARY="$work/state/canary"
POLICY="$work/policy.d"
RUNTIME="$POLICY/90-runtime.toml"
CTL="$BW_BUILD/ctl/bpfwardenctl"
MONITOR_PID=""
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT" "$POLICY" "$BW_STATE"
cleanup() {
  stop_watchdog
  stop_daemon
  [ -n "$MONITOR_PID" ] && kill "$MONITOR_PID" 2>/dev/null && wait "$MONITOR_PID" 2>/dev/null
  stop_private_bus
  "$BW_DAEMON" --unpin --yes --pin-root "$BW_PINS" --log-target stderr >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

unprivileged() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# A non-root caller that holds CAP_SYS_ADMIN (ambient, so busctl keeps it).
cap_sys_admin() { setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+sys_admin --ambient-caps=+sys_admin "$@"; }

cp "$BW_SRC/policy/default.toml" "$POLICY/00-default.toml"
echo data >"$work/guarded"
echo data >"$work/other"
# The second rule's directory does not exist: a policy warning.
cat >"$POLICY/50-test.toml" <<TOML
[[file]]
path = "$work/guarded"
action = "audit"

[[file]]
path = "$work/no-such-dir/file"
action = "audit"
TOML

# Oracle for the mode, as daemon_host_test.sh: can bpftool load an LSM program here?
probe_pin="/sys/fs/bpf/bpfwarden-dbustest-probe-$$"
if bpftool prog load "$BW_IMAGES/lsm_probe.bpf.o" "$probe_pin" >"$BW_OUT/bpftool-probe.log" 2>&1; then
  rm -f "$probe_pin"
  expected_mode=enforcing
else
  expected_mode=audit-only
fi

start_private_bus "$work/bus" || { fail private_bus_starts "see $work/bus/bus.log"; finish; exit; }
pass private_bus_starts
busctl --system monitor org.bpfwarden.Enforcer1 org.bpfwarden.Watchdog1 >"$BW_OUT/monitor.log" 2>&1 &
MONITOR_PID=$!
sleep 0.5

dlog="$BW_OUT/daemon-1.log"
start_daemon "$dlog" --policy-dir "$POLICY" --pin-root "$BW_PINS" || { fail daemon_start "see $dlog"; finish; exit; }
expect_log daemon_serves_enforcer1 "$dlog" "D-Bus: serving org.bpfwarden.Enforcer1 on the system bus"
wlog="$BW_OUT/watchdog-1.log"
start_watchdog "$wlog" --policy-dir "$POLICY" --pin-root "$BW_PINS" --interval-ms 2000 ||
  { fail watchdog_start "see $wlog"; finish; exit; }
expect_log watchdog_serves_watchdog1 "$wlog" "D-Bus: serving org.bpfwarden.Watchdog1 on the system bus"

# state_digest: the runtime file, the policy directory listing, every policy
# map's contents (lib/loading/bpf_objects.h kPolicyMaps) and the policy
# generation. "Nothing changed" means this is equal; a map that cannot be
# dumped makes every digest differ.
POLICY_MAPS="bpfw_file_rules bpfw_exec_rules bpfw_dirents bpfw_dir_rules bpfw_dir_bloom bpfw_bpf_allow bpfw_bpf_policy
  bpfw_settings bpfw_self_exes bpfw_scopes bpfw_exec_allowed"
state_digest() {
  {
    cat "$RUNTIME" 2>/dev/null || echo "(no runtime file)"
    ls -a "$POLICY"
    for map in $POLICY_MAPS; do
      bpftool map dump pinned "$BW_PINS/maps/$map" 2>&1 || echo "dump of $map failed at $(date +%s%N)"
    done
    prop "$ENFORCER" PolicyGeneration
  } | sha256sum | cut -d' ' -f1
}
in_map() {  # in_map MAP FILE: MAP holds an entry for FILE's inode (key_of)
  # shellcheck disable=SC2046
  bpftool map lookup pinned "$BW_PINS/maps/$1" key hex $(key_of "$2") >/dev/null 2>&1
}
not_in_map() {  # not_in_map MAP FILE: MAP is there and has no entry for FILE's inode
  # shellcheck disable=SC2046
  bpftool map lookup pinned "$BW_PINS/maps/$1" key hex $(key_of "$2") 2>&1 | grep -qx "Not found"
}
# expect_bus_error NAME ERROR_NAME MESSAGE_PATTERN -- COMMAND...: the call
# fails, busctl prints a message matching the pattern, and the monitor saw the
# reply carry ERROR_NAME with that message.
expect_bus_error() {
  local name=$1 error_name=$2 pattern=$3 out waited=0
  shift 4
  out=$("$@" 2>&1)
  local rc=$?
  if [ $rc = 0 ] || ! echo "$out" | grep -qE -- "$pattern"; then
    fail "$name" "expected a failure matching /$pattern/, got exit $rc: $out"
    return
  fi
  while ! grep -F "ErrorName=$error_name " "$BW_OUT/monitor.log" | grep -qE -- "$pattern"; do
    if [ "$waited" -ge 50 ]; then
      fail "$name" "the monitor saw no $error_name reply matching /$pattern/"
      return
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  pass "$name"
}
# expect_unchanged NAME DIGEST_BEFORE
expect_unchanged() {
  local now
  now=$(state_digest)
  [ "$now" = "$2" ] && pass "$1" || fail "$1" "policy file, maps or generation changed"
}
# expect_signal NAME PATTERN: the monitor saw a line matching PATTERN (grep -E) within 5 s.
expect_signal() {
  if wait_for_log "$BW_OUT/monitor.log" "$2" 5; then pass "$1"; else fail "$1" "no /$2/ in the monitor log"; fi
}

# --- Introspection documents the API -----------------------------------------
expect_members enforcer_introspection_lists_every_member org.bpfwarden.Enforcer1 /org/bpfwarden/Enforcer1 "$ENFORCER_MEMBERS"
expect_members watchdog_introspection_lists_every_member org.bpfwarden.Watchdog1 /org/bpfwarden/Watchdog1 "$WATCHDOG_MEMBERS"
xml=$(busctl --system introspect --xml-interface org.bpfwarden.Enforcer1 /org/bpfwarden/Enforcer1)
echo "$xml" >"$BW_OUT/enforcer1.xml"
echo "$xml" | grep -q '<arg type="s" name="kind" direction="in"/>' && echo "$xml" | grep -q '<arg type="t" name="generation" direction="out"/>' &&
  echo "$xml" | grep -q '<arg type="u" name="pid"/>' && pass introspection_names_arguments ||
  fail introspection_names_arguments "argument names missing from the XML"
echo "$xml" | grep -A1 '<property name="Denials"' | grep -q 'EmitsChangedSignal" value="false"' &&
  echo "$xml" | grep -A1 '<property name="Mode"' | grep -q 'EmitsChangedSignal" value="const"' &&
  pass introspection_annotates_change_signals || fail introspection_annotates_change_signals "annotations missing"
busctl --system introspect --xml-interface org.bpfwarden.Watchdog1 /org/bpfwarden/Watchdog1 >"$BW_OUT/watchdog1.xml"
unprivileged busctl --system introspect org.bpfwarden.Enforcer1 /org/bpfwarden/Enforcer1 >/dev/null 2>&1 &&
  pass introspection_open_to_unprivileged || fail introspection_open_to_unprivileged "nobody cannot introspect"

# --- Every Enforcer1 property ---------------------------------------------------
[ "$(prop "$ENFORCER" Version)" = "\"$("$BW_DAEMON" --version | cut -d' ' -f2)\"" ] && pass prop_version ||
  fail prop_version "$(prop "$ENFORCER" Version)"
[ "$(prop "$ENFORCER" Mode)" = "\"$expected_mode\"" ] && pass prop_mode || fail prop_mode "$(prop "$ENFORCER" Mode)"
reason=$(grep -o "mode: $expected_mode (.*)" "$dlog" | sed -E "s/^mode: $expected_mode \((.*)\)$/\1/")
[ -n "$reason" ] && [ "$(prop "$ENFORCER" ModeReason)" = "\"$reason\"" ] && pass prop_mode_reason_matches_log ||
  fail prop_mode_reason_matches_log "$(prop "$ENFORCER" ModeReason) vs log '$reason'"
[ "$(prop "$ENFORCER" KernelRelease)" = "\"$(uname -r)\"" ] && pass prop_kernel_release || fail prop_kernel_release "$(prop "$ENFORCER" KernelRelease)"
lsms=$(tr ',' '\n' </sys/kernel/security/lsm | grep -c .)
lsm_words=$(tr ',' ' ' </sys/kernel/security/lsm | sed 's/ *$//; s/\([^ ]*\)/"\1"/g')
[ "$(prop "$ENFORCER" ActiveLSMs)" = "$lsms $lsm_words" ] && pass prop_active_lsms || fail prop_active_lsms "$(prop "$ENFORCER" ActiveLSMs) vs $lsms $lsm_words"
if [ "$expected_mode" = enforcing ]; then want_usable=true; else want_usable=false; fi
[ "$(prop "$ENFORCER" BpfLsmUsable)" = "$want_usable" ] && pass prop_bpf_lsm_usable || fail prop_bpf_lsm_usable "$(prop "$ENFORCER" BpfLsmUsable)"
if [ "$expected_mode" = enforcing ]; then
  [ "$(prop "$ENFORCER" BpfLsmStatus)" = '"usable"' ] && pass prop_bpf_lsm_status || fail prop_bpf_lsm_status "$(prop "$ENFORCER" BpfLsmStatus)"
else
  prop "$ENFORCER" BpfLsmStatus | grep -q "kernel refused to load a BPF LSM program" && pass prop_bpf_lsm_status ||
    fail prop_bpf_lsm_status "$(prop "$ENFORCER" BpfLsmStatus)"
fi
manifest_version=$(sed -n 's/^version \([0-9]*\)$/\1/p; s/^version=\([0-9]*\)$/\1/p' "$BW_IMAGES/manifest" | head -n 1)
[ "$(prop "$ENFORCER" ImageSetVersion)" = "${manifest_version:-1}" ] && pass prop_image_set_version ||
  fail prop_image_set_version "$(prop "$ENFORCER" ImageSetVersion) vs manifest ${manifest_version:-?}"
[ "$(prop "$ENFORCER" PolicyGeneration)" = 1 ] && pass prop_policy_generation_starts_at_1 || fail prop_policy_generation_starts_at_1 "$(prop "$ENFORCER" PolicyGeneration)"
[ "$(prop "$ENFORCER" PolicyDirectory)" = "\"$POLICY\"" ] && pass prop_policy_directory || fail prop_policy_directory "$(prop "$ENFORCER" PolicyDirectory)"
[ "$(prop "$ENFORCER" RuntimePolicyFile)" = "\"$RUNTIME\"" ] && pass prop_runtime_policy_file || fail prop_runtime_policy_file "$(prop "$ENFORCER" RuntimePolicyFile)"
rules=$(busctl --system call $ENFORCER ListRules | awk '{print $2}')
[ "$(prop "$ENFORCER" RuleCount)" = "$rules" ] && pass prop_rule_count_matches_list_rules || fail prop_rule_count_matches_list_rules "$(prop "$ENFORCER" RuleCount) vs $rules"
# (busctl escapes the quotes.)
prop "$ENFORCER" PolicyWarnings |
  grep -qxF "1 \"$POLICY/50-test.toml:6: the directory of \\'$work/no-such-dir/file\\' does not exist yet: rule inactive until it does (file rule)\"" &&
  pass prop_policy_warnings ||
  fail prop_policy_warnings "$(prop "$ENFORCER" PolicyWarnings)"
programs=$(busctl --system --json=short get-property $ENFORCER Programs)
echo "$programs" >"$BW_OUT/programs.json"
# Each pinned program's id and tag as bpftool sees them.
# Every program of lib/loading/bpf_objects.cpp this kernel has the hook for
# (expected_programs, lib.sh: read from the kernel's BTF).
if python3 - "$BW_PINS" "$expected_mode" "$programs" "$(expected_programs "$expected_mode")" >"$BW_OUT/programs-check.log" 2>&1 <<'PY'
import json, subprocess, sys
pins, mode, programs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])["data"]
want = set(sys.argv[4].split())
assert want, "no expected programs"
seen = {p[0]: p for p in programs}
assert len(seen) == len(programs), "a program listed twice"
assert set(seen) == want, (sorted(set(seen) - want), sorted(want - set(seen)))
for name, hook, prog_id, tag, pinned, attached, state in programs:
    lsm = hook.startswith("lsm/")
    if lsm and mode != "enforcing":
        assert (prog_id, tag, pinned, attached) == (0, "", False, False) and state.startswith("skipped"), (name, state)
        continue
    link = json.loads(subprocess.check_output(["bpftool", "-j", "link", "show", "pinned", f"{pins}/links/{name}"]))
    prog = json.loads(subprocess.check_output(["bpftool", "-j", "prog", "show", "id", str(link["prog_id"])]))
    assert (prog_id, tag, pinned, attached) == (link["prog_id"], prog["tag"], True, True), (name, prog_id, tag, link, prog["tag"])
    assert state in ("loaded", "adopted"), state
print("ok")
PY
then pass prop_programs_match_bpftool; else fail prop_programs_match_bpftool "$(cat "$BW_OUT/programs-check.log")"; fi
[ "$(prop "$ENFORCER" PolicySource)" = '"policy directory"' ] && [ "$(prop "$ENFORCER" PolicyProblem)" = '""' ] &&
  pass prop_policy_source || fail prop_policy_source "$(prop "$ENFORCER" PolicySource) $(prop "$ENFORCER" PolicyProblem)"
[ "$(prop "$ENFORCER" PolicyBundleVersion)" = 0 ] && [ "$(prop "$ENFORCER" PolicyBundleSigner)" = '""' ] &&
  pass prop_no_policy_bundle || fail prop_no_policy_bundle "$(prop "$ENFORCER" PolicyBundleVersion)"
[ "$(prop "$ENFORCER" DriftedRules)" = "0" ] && pass prop_drifted_rules_empty || fail prop_drifted_rules_empty "$(prop "$ENFORCER" DriftedRules)"
[ "$(prop "$ENFORCER" TamperAttempts)" = 0 ] && [ "$(prop "$ENFORCER" LiftedUntil)" = 0 ] && pass prop_protection_counters ||
  fail prop_protection_counters "TamperAttempts $(prop "$ENFORCER" TamperAttempts), LiftedUntil $(prop "$ENFORCER" LiftedUntil)"
if [ "$expected_mode" = enforcing ]; then want_protection='"off"'; else want_protection='"not enforceable"'; fi
prop "$ENFORCER" Protection | grep -q "^$want_protection " && pass prop_protection || fail prop_protection "$(prop "$ENFORCER" Protection)"
before=$(prop "$ENFORCER" Events)
"$BW_TRY" exec /bin/true >/dev/null 2>&1
waited=0
while [ "$(prop "$ENFORCER" Events)" -le "$before" ] && [ $waited -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
[ "$(prop "$ENFORCER" Events)" -gt "$before" ] && pass prop_events_counts_live || fail prop_events_counts_live "Events stayed $before"
for counter in Denials Audits Drops RateLimited DeniedSignalsSuppressed; do
  value=$(prop "$ENFORCER" $counter)
  [[ "$value" =~ ^[0-9]+$ ]] && pass "prop_${counter,,}_readable" || fail "prop_${counter,,}_readable" "$value"
done
[ "$(unprivileged busctl --system get-property $ENFORCER Mode 2>&1)" = "s \"$expected_mode\"" ] && pass properties_open_to_unprivileged ||
  fail properties_open_to_unprivileged "$(unprivileged busctl --system get-property $ENFORCER Mode 2>&1)"

# --- Every Watchdog1 property ---------------------------------------------------
[ "$(prop "$WATCHDOG" Version)" = "\"$("$BW_WATCHDOG" --version | cut -d' ' -f2)\"" ] && pass wd_prop_version || fail wd_prop_version "$(prop "$WATCHDOG" Version)"
[ "$(prop "$WATCHDOG" Healthy)" = true ] && pass wd_prop_healthy || fail wd_prop_healthy "$(prop "$WATCHDOG" Healthy) $(prop "$WATCHDOG" Reasons)"
[ "$(prop "$WATCHDOG" Reasons)" = 0 ] && pass wd_prop_reasons_empty || fail wd_prop_reasons_empty "$(prop "$WATCHDOG" Reasons)"
[ "$(prop "$WATCHDOG" Mode)" = "\"$expected_mode\"" ] && pass wd_prop_mode || fail wd_prop_mode "$(prop "$WATCHDOG" Mode)"
prop "$WATCHDOG" ModeReason | grep -q . && pass wd_prop_mode_reason || fail wd_prop_mode_reason "empty"
[ "$(prop "$WATCHDOG" ImageSetVersion)" = "${manifest_version:-1}" ] && pass wd_prop_image_set_version || fail wd_prop_image_set_version "$(prop "$WATCHDOG" ImageSetVersion)"
[ "$(prop "$WATCHDOG" CheckInterval)" = 2000000 ] && pass wd_prop_check_interval || fail wd_prop_check_interval "$(prop "$WATCHDOG" CheckInterval)"
[ "$(prop "$WATCHDOG" Checks)" -ge 1 ] && pass wd_prop_checks || fail wd_prop_checks "$(prop "$WATCHDOG" Checks)"
last=$(prop "$WATCHDOG" LastCheck)
now_usec=$(($(date +%s) * 1000000))
[ "$last" -gt $((now_usec - 60000000)) ] && [ "$last" -le $((now_usec + 2000000)) ] && pass wd_prop_last_check_is_recent ||
  fail wd_prop_last_check_is_recent "$last vs now $now_usec"
prop "$WATCHDOG" LastTrigger | grep -q '^"' && pass wd_prop_last_trigger || fail wd_prop_last_trigger "$(prop "$WATCHDOG" LastTrigger)"
# A check takes some microseconds, never a whole interval.
took=$(prop "$WATCHDOG" LastCheckDuration)
[[ "$took" =~ ^[0-9]+$ ]] && [ "$took" -gt 0 ] && [ "$took" -lt 2000000 ] && pass wd_prop_last_check_duration ||
  fail wd_prop_last_check_duration "$took"
heals_before=$(prop "$WATCHDOG" HealCount)
[[ "$heals_before" =~ ^[0-9]+$ ]] && pass wd_prop_heal_count || fail wd_prop_heal_count "$heals_before"
prop "$WATCHDOG" LastHeal | grep -qE '^"[^"]*" [0-9]+$' && pass wd_prop_last_heal || fail wd_prop_last_heal "$(prop "$WATCHDOG" LastHeal)"
prop "$WATCHDOG" Programs | grep -q '"bw_tp_exec" "tracepoint/sched/sched_process_exec" [1-9][0-9]* "[0-9a-f]\{16\}" "ok"' &&
  pass wd_prop_programs || fail wd_prop_programs "$(prop "$WATCHDOG" Programs)"

# --- Methods as root ---------------------------------------------------------------
digest=$(state_digest)
out=$(busctl --system call $ENFORCER AddRule sss file "$work/other" deny 2>&1)
[ "$out" = "tb 2 true" ] && pass add_rule_returns_generation_and_active || fail add_rule_returns_generation_and_active "$out"
grep -q "path = '$work/other'" "$RUNTIME" && grep -q "action = 'deny'" "$RUNTIME" && pass add_rule_persisted_to_runtime_file ||
  fail add_rule_persisted_to_runtime_file "$(cat "$RUNTIME" 2>&1)"
in_map bpfw_file_rules "$work/other" && pass add_rule_reaches_the_map || fail add_rule_reaches_the_map "no bpfw_file_rules entry for $work/other"
[ "$(prop "$ENFORCER" PolicyGeneration)" = 2 ] && pass add_rule_increments_generation || fail add_rule_increments_generation "$(prop "$ENFORCER" PolicyGeneration)"
busctl --system call $ENFORCER ListRules | grep -q "\"file\" \"$work/other\" \"deny\" \"$RUNTIME:[0-9]*\" true" &&
  pass list_rules_shows_runtime_rule || fail list_rules_shows_runtime_rule "$(busctl --system call $ENFORCER ListRules)"
expect_signal policy_changed_signal_on_add_rule "Member=PolicyChanged"
expect_signal properties_changed_on_add_rule 'STRING "PolicyGeneration";'
grep -A8 "Member=PolicyChanged" "$BW_OUT/monitor.log" | grep -q "STRING \"AddRule file '$work/other' deny by uid 0" &&
  pass policy_changed_names_change_and_caller || fail policy_changed_names_change_and_caller "$(grep -A8 Member=PolicyChanged "$BW_OUT/monitor.log" | head -n 20)"
# Inactive: its directory does not exist. (A missing file in a directory that
# exists is active: its name there is covered until it appears.)
out=$(busctl --system call $ENFORCER AddRule sss exec "$work/not-yet/there" audit 2>&1)
[ "$out" = "tb 3 false" ] && pass add_rule_for_missing_path_is_inactive || fail add_rule_for_missing_path_is_inactive "$out"
out=$(busctl --system call $ENFORCER AddRule sss file "$work/other" deny 2>&1)
[ "$out" = "tb 3 true" ] && pass add_rule_again_changes_nothing || fail add_rule_again_changes_nothing "$out"
[ "$(unprivileged busctl --system call $ENFORCER ListRules | awk '{print $2}')" = "$(prop "$ENFORCER" RuleCount)" ] &&
  pass list_rules_open_to_unprivileged || fail list_rules_open_to_unprivileged "nobody cannot list rules"

# Quotes, backslashes and non-ASCII UTF-8 in a path round-trip through the TOML file.
odd="$work/it's \"quoted\" \\ ünïcødé"
echo data >"$odd"
out=$(busctl --system call $ENFORCER AddRule sss file "$odd" deny 2>&1)
[ "$out" = "tb 4 true" ] && in_map bpfw_file_rules "$odd" && pass add_rule_odd_path || fail add_rule_odd_path "$out"
busctl --system --json=short call $ENFORCER ListRules | python3 -c 'import json,sys; sys.exit(0 if any(r[2] == sys.argv[1] and r[4].startswith(sys.argv[2]) for r in json.load(sys.stdin)["data"][0]) else 1)' "$odd" "$RUNTIME" &&
  pass odd_path_round_trips || fail odd_path_round_trips "$(busctl --system call $ENFORCER ListRules)"
out=$(busctl --system call $ENFORCER RemoveRule ss file "$odd" 2>&1)
[ "$out" = "t 5" ] && not_in_map bpfw_file_rules "$odd" && pass remove_rule_odd_path || fail remove_rule_odd_path "$out"

# Runtime edits survive a restart.
stop_daemon
dlog="$BW_OUT/daemon-2.log"
# Limits it is sure to pass, checked every second: self-monitoring speaks.
start_daemon "$dlog" --policy-dir "$POLICY" --pin-root "$BW_PINS" --monitor-interval 1 --warn-event-rate 1 \
  --warn-memory-mib 1 || fail daemon_restart "see $dlog"
wait_for_name org.bpfwarden.Enforcer1 10
for ((i = 0; i < 30; i++)); do /bin/true; sleep 0.1; done
expect_signal self_warning_signal_on_event_rate 'STRING "event-rate"'
expect_signal self_warning_signal_on_memory 'STRING "memory"'
wait_for_log "$dlog" "self-monitoring: [0-9]+ events a second, over the limit of 1 \(--warn-event-rate\)" 5 &&
  pass self_warning_logged || fail self_warning_logged "$(grep self-monitoring "$dlog")"
busctl --system call $ENFORCER ListRules | grep -q "\"file\" \"$work/other\" \"deny\" \"$RUNTIME:[0-9]*\" true" &&
  pass runtime_rule_survives_restart || fail runtime_rule_survives_restart "$(busctl --system call $ENFORCER ListRules 2>&1)"
in_map bpfw_file_rules "$work/other" && pass runtime_rule_in_map_after_restart || fail runtime_rule_in_map_after_restart "no map entry"

out=$(busctl --system call $ENFORCER RemoveRule ss exec "$work/not-yet/there" 2>&1)
[ "$out" = "t 2" ] && pass remove_rule_returns_generation || fail remove_rule_returns_generation "$out"
! grep -q "not-yet/there" "$RUNTIME" && pass remove_rule_persisted || fail remove_rule_persisted "$(cat "$RUNTIME")"
out=$(busctl --system call $ENFORCER ReloadPolicy 2>&1)
[ "$out" = "t 3" ] && pass reload_policy_returns_generation || fail reload_policy_returns_generation "$out"
grep -q "policy: reloaded .*ReloadPolicy by uid 0" "$dlog" && pass reload_policy_logged_with_caller || fail reload_policy_logged_with_caller "no log line"
checks=$(prop "$WATCHDOG" Checks)
out=$(busctl --system call $WATCHDOG CheckNow 2>&1)
[ "$out" = "bas true 0" ] && pass check_now_returns_health || fail check_now_returns_health "$out"
[ "$(prop "$WATCHDOG" Checks)" -gt "$checks" ] && pass check_now_runs_a_check || fail check_now_runs_a_check "Checks stayed $checks"
grep -qE "check: CheckNow by uid 0 pid [0-9]+ \(:[0-9.]+\)" "$wlog" && pass check_now_logged_with_caller ||
  fail check_now_logged_with_caller "$(tail -n 3 "$wlog")"

# --- Callers other than root are refused, and nothing changes -------------------------
# This bus has no polkitd: only uid 0 from the bus credentials counts, and
# capabilities never do (a CAP_SYS_ADMIN caller is refused like any other).
digest=$(state_digest)
expect_bus_error cap_sys_admin_caller_refused org.bpfwarden.Error.AccessDenied \
  "ReloadPolicy .*needs root or polkit's authorization for org.bpfwarden.manage-policy.*uid 65534.*polkit is not running, so only root is allowed" -- \
  cap_sys_admin busctl --system call $ENFORCER ReloadPolicy
expect_bus_error unprivileged_add_rule_denied org.bpfwarden.Error.AccessDenied "AddRule .*needs root or polkit's authorization.*uid 65534" -- \
  unprivileged busctl --system call $ENFORCER AddRule sss file "$work/guarded" deny
expect_bus_error unprivileged_remove_rule_denied org.bpfwarden.Error.AccessDenied "RemoveRule .*needs root or polkit's authorization" -- \
  unprivileged busctl --system call $ENFORCER RemoveRule ss file "$work/other"
expect_bus_error unprivileged_reload_denied org.bpfwarden.Error.AccessDenied "ReloadPolicy .*needs root or polkit's authorization" -- \
  unprivileged busctl --system call $ENFORCER ReloadPolicy
expect_bus_error unprivileged_check_now_denied org.bpfwarden.Error.AccessDenied "CheckNow .*needs root or polkit's authorization" -- \
  unprivileged busctl --system call $WATCHDOG CheckNow
expect_bus_error unprivileged_unlock_denied org.bpfwarden.Error.AccessDenied "Unlock .*needs root or polkit's authorization" -- \
  unprivileged busctl --system call $ENFORCER Unlock s "not a token"
# A user namespace of its own gives uid 65534 a full CapEff there, and nothing here.
expect_bus_error user_namespace_caps_denied org.bpfwarden.Error.AccessDenied "RemoveRule .*needs root or polkit's authorization.*uid 65534" -- \
  unprivileged unshare -Ur busctl --system call $ENFORCER RemoveRule ss file "$work/other"
expect_bus_error user_namespace_caps_add_rule_denied org.bpfwarden.Error.AccessDenied "AddRule .*needs root or polkit's authorization" -- \
  unprivileged unshare -Ur busctl --system call $ENFORCER AddRule sss exec /usr/lib/x86_64-linux-gnu/libc.so.6 deny
expect_unchanged unprivileged_calls_change_nothing "$digest"
# Unlock where protection is not enforced: refused, says why, lifts nothing.
if [ "$expected_mode" = enforcing ]; then
  expect_bus_error unlock_refused_without_protection org.bpfwarden.Error.InvalidArgument "nothing to lift" -- \
    busctl --system call $ENFORCER Unlock s "not a token"
else
  expect_bus_error unlock_refused_without_protection org.bpfwarden.Error.Failed "not enforced on this kernel .*nothing to lift" -- \
    busctl --system call $ENFORCER Unlock s "not a token"
fi
[ "$(prop "$ENFORCER" LiftedUntil)" = 0 ] && pass refused_unlock_lifts_nothing || fail refused_unlock_lifts_nothing "$(prop "$ENFORCER" LiftedUntil)"
# The busconfig: only root owns the names; no property is writable.
out=$(unprivileged dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
  org.freedesktop.DBus.RequestName string:org.bpfwarden.Enforcer1 uint32:0 2>&1)
echo "$out" | grep -q "org.freedesktop.DBus.Error.AccessDenied" && pass busconfig_only_root_owns_names || fail busconfig_only_root_owns_names "$out"
out=$(busctl --system set-property $ENFORCER Mode s enforcing 2>&1)
[ $? != 0 ] && [ "$(prop "$ENFORCER" Mode)" = "\"$expected_mode\"" ] && pass properties_are_read_only || fail properties_are_read_only "$out"

# --- Malformed arguments: a named error, nothing changed -----------------------------
digest=$(state_digest)
expect_bus_error wrong_signature_refused org.freedesktop.DBus.Error.InvalidArgs "Invalid arguments 'ss' to call org.bpfwarden.Enforcer1.AddRule\(\), expecting 'sss'" -- \
  busctl --system call $ENFORCER AddRule ss file "$work/guarded"
expect_bus_error bytes_instead_of_string_refused org.freedesktop.DBus.Error.InvalidArgs "Invalid arguments 'says'" -- \
  busctl --system call $ENFORCER AddRule says file 5 47 116 109 112 255 deny
expect_bus_error empty_path_refused org.bpfwarden.Error.InvalidArgument "the path is empty" -- \
  busctl --system call $ENFORCER AddRule sss file "" deny
expect_bus_error relative_path_refused org.bpfwarden.Error.InvalidArgument "relative path 'etc/shadow': rule paths must be absolute" -- \
  busctl --system call $ENFORCER AddRule sss file etc/shadow deny
expect_bus_error huge_path_refused org.bpfwarden.Error.InvalidArgument "the path is 100001 bytes long; a rule path may have at most 4095 bytes" -- \
  busctl --system call $ENFORCER AddRule sss file "/$(head -c 100000 /dev/zero | tr '\0' a)" deny
expect_bus_error control_character_refused org.bpfwarden.Error.InvalidArgument "control character \(0x0a at byte 4\)" -- \
  busctl --system call $ENFORCER AddRule sss file "$(printf '/tmp\n[[file]]')" deny
expect_bus_error toml_injection_refused org.bpfwarden.Error.InvalidArgument "control character" -- \
  busctl --system call $ENFORCER AddRule sss exec "$(printf "/x'\n[bpf]\nmode = 'off'")" deny
expect_bus_error unknown_kind_refused org.bpfwarden.Error.InvalidArgument "kind 'directory' is not a rule kind: use \"file\"" -- \
  busctl --system call $ENFORCER AddRule sss directory /tmp deny
expect_bus_error unknown_action_refused org.bpfwarden.Error.InvalidArgument "action 'allow' is not a rule action: use \"deny\"" -- \
  busctl --system call $ENFORCER AddRule sss file /tmp allow
expect_bus_error remove_missing_rule_not_found org.bpfwarden.Error.NotFound "there is no file rule for '/nonexistent' \(ListRules lists the rules in force\)" -- \
  busctl --system call $ENFORCER RemoveRule ss file /nonexistent
expect_bus_error remove_rule_of_another_file_not_found org.bpfwarden.Error.NotFound "file rule for '$work/guarded' is defined in $POLICY/50-test.toml:2, not in the runtime policy file" -- \
  busctl --system call $ENFORCER RemoveRule ss file "$work/guarded"
# A non-UTF-8 path cannot even be sent: D-Bus strings are UTF-8, and busctl
# (like every sd-bus or libdbus client, and dbus-daemon itself) refuses it.
out=$(busctl --system call $ENFORCER AddRule sss file "$(printf '/tmp/\xff\xfe')" deny 2>&1)
[ $? != 0 ] && pass non_utf8_path_cannot_be_sent || fail non_utf8_path_cannot_be_sent "$out"
expect_unchanged malformed_arguments_change_nothing "$digest"

# A policy directory that would not be valid after the edit: refused, file:line named.
printf '[[file]]\npath = "relative"\naction = "deny"\n' >"$POLICY/60-broken.toml"
digest=$(state_digest)
expect_bus_error edit_with_invalid_policy_refused org.bpfwarden.Error.PolicyInvalid "$POLICY/60-broken.toml:2: .*relative.*nothing was changed" -- \
  busctl --system call $ENFORCER AddRule sss file "$work/guarded" deny
expect_bus_error reload_of_invalid_policy_refused org.bpfwarden.Error.PolicyInvalid "60-broken.toml:2.*the running policy stays" -- \
  busctl --system call $ENFORCER ReloadPolicy
expect_unchanged invalid_policy_edit_changes_nothing "$digest"
rm "$POLICY/60-broken.toml"
# A hand-broken runtime file: refused, named; left as it is.
cp "$RUNTIME" "$work/runtime.good"
echo "this = = broken" >>"$RUNTIME"
digest=$(state_digest)
expect_bus_error broken_runtime_file_refused org.bpfwarden.Error.PolicyInvalid "$RUNTIME:[0-9]+: .*fix or remove the runtime policy file" -- \
  busctl --system call $ENFORCER AddRule sss file "$work/guarded" deny
expect_unchanged broken_runtime_file_left_alone "$digest"
cp "$work/runtime.good" "$RUNTIME"

# --- Signals -----------------------------------------------------------------------------
kill -HUP "$DAEMON_PID"
expect_signal policy_changed_on_sighup 'STRING "SIGHUP";'
# A saved edit of the policy directory applies without a reload call.
generation=$(prop "$ENFORCER" PolicyGeneration)
printf '[[file]]\npath = "%s"\naction = "audit"\n' "$work/live-edit" >"$POLICY/70-live.toml"
expect_signal policy_changed_on_directory_edit 'STRING "policy directory edited";'
[ "$(prop "$ENFORCER" PolicyGeneration)" = $((generation + 1)) ] && pass directory_edit_increments_generation ||
  fail directory_edit_increments_generation "$(prop "$ENFORCER" PolicyGeneration) after $generation"
busctl --system call $ENFORCER ListRules | grep -q "\"$work/live-edit\"" && pass directory_edit_listed ||
  fail directory_edit_listed "$(busctl --system call $ENFORCER ListRules)"
rm "$POLICY/70-live.toml"
# The watchdog heals a removed pin and says so.
heals=$(prop "$WATCHDOG" HealCount)
rm "$BW_PINS/links/bw_tp_exec"
# (Policy edits are applied, not healed; an earlier Healed signal can still
# come from a check that caught the daemon halfway through applying one.)
expect_signal healed_signal "Member=Healed"
waited=0
until grep -A6 "Member=Healed" "$BW_OUT/monitor.log" | grep -q 'STRING ".*bw_tp_exec.*pin-missing'; do
  [ $waited -ge 50 ] && break
  sleep 0.1
  waited=$((waited + 1))
done
grep -A6 "Member=Healed" "$BW_OUT/monitor.log" | grep -q 'STRING ".*bw_tp_exec.*pin-missing' && pass healed_signal_names_the_reason ||
  fail healed_signal_names_the_reason "$(grep -A6 Member=Healed "$BW_OUT/monitor.log" | tail -n 8)"
waited=0
while [ "$(prop "$WATCHDOG" HealCount)" -le "$heals" ] && [ $waited -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
[ "$(prop "$WATCHDOG" HealCount)" -gt "$heals" ] && pass heal_count_increments || fail heal_count_increments "$(prop "$WATCHDOG" HealCount)"
prop "$WATCHDOG" LastHeal | grep -q "bw_tp_exec" && pass last_heal_names_the_heal || fail last_heal_names_the_heal "$(prop "$WATCHDOG" LastHeal)"
prop "$WATCHDOG" HealsByKind | grep -qE '^[1-9][0-9]* (.* )?"link-broken" [1-9]' && pass heals_by_kind_counts_the_heal ||
  fail heals_by_kind_counts_the_heal "$(prop "$WATCHDOG" HealsByKind)"
grep -B2 -A12 'Member=PropertiesChanged' "$BW_OUT/monitor.log" | grep -q 'STRING "HealCount";' && pass properties_changed_on_heal ||
  fail properties_changed_on_heal "no PropertiesChanged for HealCount"

# --- bpfwardenctl status ------------------------------------------------------------------
"$CTL" status >"$BW_OUT/status.txt" 2>&1
rc=$?
if [ "$expected_mode" = enforcing ]; then want_rc=0; else want_rc=1; fi
[ $rc = $want_rc ] && pass ctl_status_exit_code || fail ctl_status_exit_code "exit $rc, expected $want_rc: $(cat "$BW_OUT/status.txt")"
grep -q "^bpfwardend .* $expected_mode (" "$BW_OUT/status.txt" && grep -q "^bpfwarden-watchdog  healthy" "$BW_OUT/status.txt" &&
  grep -q "program  *bw_tp_exec .*attached" "$BW_OUT/status.txt" && pass ctl_status_summary || fail ctl_status_summary "$(cat "$BW_OUT/status.txt")"
grep -q "heals by kind  *.*link-broken [1-9]" "$BW_OUT/status.txt" && pass ctl_status_heals_by_kind ||
  fail ctl_status_heals_by_kind "$(grep -A1 "last heal" "$BW_OUT/status.txt")"
unprivileged "$CTL" status --json >"$BW_OUT/status.json" 2>&1
python3 - "$BW_OUT/status.json" "$expected_mode" <<'PY' && pass ctl_status_json_unprivileged || fail ctl_status_json_unprivileged "$(cat "$BW_OUT/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["enforcer"]["mode"] == sys.argv[2], s["enforcer"]["mode"]
assert s["watchdog"]["healthy"] is True
assert s["watchdog"]["heals_by_kind"]["link-broken"] >= 1, s["watchdog"]["heals_by_kind"]
assert s["watchdog"]["last_check_duration_usec"] > 0
assert s["status"] == ("ok" if sys.argv[2] == "enforcing" else "degraded")
assert any(p["name"] == "bw_tp_exec" and p["attached"] for p in s["enforcer"]["programs"])
PY
"$CTL" status --bogus >/dev/null 2>&1
[ $? = 2 ] && pass ctl_status_usage_error_exit_2 || fail ctl_status_usage_error_exit_2 "exit $?"
stop_watchdog
"$CTL" status >"$BW_OUT/status-no-watchdog.txt" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "bpfwarden-watchdog  unreachable: org.bpfwarden.Watchdog1 is not on the system bus" "$BW_OUT/status-no-watchdog.txt" &&
  pass ctl_status_watchdog_unreachable || fail ctl_status_watchdog_unreachable "exit $rc: $(cat "$BW_OUT/status-no-watchdog.txt")"

# --- Drift: a rule whose path names another file now ---------------------------------------
# Through a symlinked directory: switching the symlink changes what the path
# names without touching the directory bpfwardend watches (the file's own),
# so the rule drifts until a reload, and DriftedRules says so.
mkdir -p "$work/drift/v1" "$work/drift/v2"
echo one >"$work/drift/v1/file"
echo two >"$work/drift/v2/file"
ln -s v1 "$work/drift/current"
busctl --system call $ENFORCER AddRule sss file "$work/drift/current/file" audit >/dev/null ||
  fail drift_rule_added "AddRule failed"
ln -sfn v2 "$work/drift/current.new" && mv -T "$work/drift/current.new" "$work/drift/current"
drift=$(prop "$ENFORCER" DriftedRules)
case "$drift" in
  "1 "*"\"$work/drift/current/file\" \"names inode $(stat -c %i "$work/drift/v2/file") on device "*"now, applied to inode $(stat -c %i "$work/drift/v1/file") "*)
    pass drifted_rule_reported ;;
  *) fail drifted_rule_reported "$drift" ;;
esac
"$BW_BUILD/ctl/bpfwardenctl" status >"$BW_OUT/status-drift.txt" 2>&1
grep -q "rule drift .*$work/drift/current/file names inode" "$BW_OUT/status-drift.txt" && pass ctl_status_shows_drift ||
  fail ctl_status_shows_drift "$(cat "$BW_OUT/status-drift.txt")"
busctl --system call $ENFORCER ReloadPolicy >/dev/null
[ "$(prop "$ENFORCER" DriftedRules)" = 0 ] && pass reload_clears_drift || fail reload_clears_drift "$(prop "$ENFORCER" DriftedRules)"
busctl --system call $ENFORCER RemoveRule ss file "$work/drift/current/file" >/dev/null

# --- A typo at start: the last good policy, said on D-Bus and by status --------------------
stop_daemon
printf 'action = = "deny"\n' >"$POLICY/80-typo.toml"
dlog="$BW_OUT/daemon-last-good.log"
start_daemon "$dlog" --policy-dir "$POLICY" --pin-root "$BW_PINS" || fail daemon_starts_despite_typo "see $dlog"
wait_for_name org.bpfwarden.Enforcer1 10
[ "$(prop "$ENFORCER" PolicySource)" = '"last good policy"' ] && prop "$ENFORCER" PolicyProblem | grep -q "80-typo.toml:1" &&
  pass prop_policy_source_last_good || fail prop_policy_source_last_good "$(prop "$ENFORCER" PolicySource) $(prop "$ENFORCER" PolicyProblem)"
"$CTL" status >"$BW_OUT/status-last-good.txt" 2>&1
rc=$?
[ $rc = 1 ] && grep -q -- "- bpfwardend: enforcing the last good policy: .*80-typo.toml:1" "$BW_OUT/status-last-good.txt" &&
  pass ctl_status_names_last_good || fail ctl_status_names_last_good "exit $rc: $(cat "$BW_OUT/status-last-good.txt")"
rm -f "$POLICY/80-typo.toml"
for ((i = 0; i < 50; i++)); do
  [ "$(prop "$ENFORCER" PolicySource)" = '"policy directory"' ] && break
  sleep 0.2
done
[ "$(prop "$ENFORCER" PolicySource)" = '"policy directory"' ] && [ "$(prop "$ENFORCER" PolicyProblem)" = '""' ] &&
  pass fixed_directory_back_in_force || fail fixed_directory_back_in_force "$(prop "$ENFORCER" PolicySource)"

# --- The bus is optional --------------------------------------------------------------------
# Lost and back: the daemon keeps running and comes back on the bus by itself.
stop_private_bus
expect_log bus_loss_logged "$dlog" "D-Bus: connection to the system bus lost"
kill -0 "$DAEMON_PID" 2>/dev/null && pass daemon_survives_bus_loss || fail daemon_survives_bus_loss "daemon exited"
start_private_bus "$work/bus" || fail private_bus_restarts "see $work/bus/bus.log"
if wait_for_name org.bpfwarden.Enforcer1 15; then pass daemon_reconnects_to_new_bus; else fail daemon_reconnects_to_new_bus "$(tail -n 3 "$dlog")"; fi
[ "$(prop "$ENFORCER" Mode)" = "\"$expected_mode\"" ] && pass properties_after_reconnect || fail properties_after_reconnect "$(prop "$ENFORCER" Mode)"
stop_daemon
# No bus at all: both start, and each logs one warning, not one per retry
# (the retry interval is 10 s).
dlog="$BW_OUT/daemon-nobus.log"
wlog="$BW_OUT/watchdog-nobus.log"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/no-such-socket" start_daemon "$dlog" --policy-dir "$POLICY" --pin-root "$BW_PINS" ||
  fail daemon_start_without_bus "see $dlog"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/no-such-socket" start_watchdog "$wlog" --policy-dir "$POLICY" --pin-root "$BW_PINS" ||
  fail watchdog_start_without_bus "see $wlog"
grep -q "ready: logging events" "$dlog" && pass daemon_ready_without_bus || fail daemon_ready_without_bus "$(cat "$dlog")"
grep -q "ready: checking" "$wlog" && pass watchdog_ready_without_bus || fail watchdog_ready_without_bus "$(cat "$wlog")"
sleep 11
[ "$(grep -c "D-Bus: not available" "$dlog")" = 1 ] && pass daemon_one_warning_without_bus || fail daemon_one_warning_without_bus "$(grep D-Bus "$dlog")"
[ "$(grep -c "D-Bus: not available" "$wlog")" = 1 ] && pass watchdog_one_warning_without_bus || fail watchdog_one_warning_without_bus "$(grep D-Bus "$wlog")"
kill -0 "$DAEMON_PID" 2>/dev/null && kill -0 "$WATCHDOG_PID" 2>/dev/null && pass both_keep_running_without_bus ||
  fail both_keep_running_without_bus "a process exited"
stop_watchdog
stop_daemon
# --no-dbus: not on the bus, no D-Bus line at all.
dlog="$BW_OUT/daemon-nodbus.log"
start_daemon "$dlog" --policy-dir "$POLICY" --pin-root "$BW_PINS" --no-dbus || fail daemon_start_no_dbus "see $dlog"
sleep 0.5
! busctl --system status org.bpfwarden.Enforcer1 >/dev/null 2>&1 && ! grep -q "D-Bus" "$dlog" && pass no_dbus_option ||
  fail no_dbus_option "$(grep D-Bus "$dlog")"
stop_daemon
"$BW_WATCHDOG" --help | grep -q -- "--no-dbus" && "$BW_DAEMON" --help | grep -q -- "--no-dbus" && pass help_documents_no_dbus ||
  fail help_documents_no_dbus "--no-dbus missing from --help"

finish
