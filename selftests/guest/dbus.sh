#!/bin/bash
# Guest suite: the full stack on a system bus, on a kernel with BPF LSM. A
# private dbus-daemon configured like the system bus (with
# units/org.bpfwarden.conf) serves bpfwardend and the watchdog; busctl shows
# the documented API with real values (mode "enforcing", Healthy true), the
# denial counter and the rule's hit counter rising after a denied open (and a
# bpf.allow entry's after an allowed program load), the
# rate-limited Denied signal, and runtime rules that enforce at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_dbus.sh"

work=/tmp/bw
mkdir -p "$work/policy.d"
echo secret >"$work/secret"
echo public >"$work/public"
cp /bin/true "$work/denied-bin"
cp "$BW_TRY" "$work/bpf-loader"
cat >"$work/policy.d/50-selftest.toml" <<'TOML'
# Run by hand, not by systemd: the suite tests rules, not self-protection.
protect = false

[[file]]
path = "/tmp/bw/secret"
action = "deny"

[[exec]]
path = "/tmp/bw/denied-bin"
action = "deny"

[bpf]
allow = ["/tmp/bw/bpf-loader"]
TOML
MONITOR_PID=""
LISTENER_PID=""
cleanup() {
  stop_watchdog
  stop_daemon
  [ -n "$MONITOR_PID" ] && kill "$MONITOR_PID" 2>/dev/null && wait "$MONITOR_PID" 2>/dev/null
  [ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null && wait "$LISTENER_PID" 2>/dev/null
  stop_private_bus
  "$BW_DAEMON" --unpin --yes --log-target stderr >/dev/null 2>&1
}
trap cleanup EXIT
unprivileged() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
monitor="$BW_OUT/monitor.log"

echo "== kernel $(uname -r), LSMs: $(cat /sys/kernel/security/lsm)"
start_private_bus /run/bw-bus || { fail private_bus_starts "$(cat /run/bw-bus/bus.log)"; finish; exit; }
pass private_bus_starts
busctl --system monitor org.bpfwarden.Enforcer1 org.bpfwarden.Watchdog1 >"$monitor" 2>&1 &
MONITOR_PID=$!

log="$BW_OUT/daemon.log"
start_daemon "$log" --policy-dir "$work/policy.d" || { fail daemon_start "see $log"; finish; exit; }
expect_log daemon_reports_enforcing "$log" "mode: enforcing"
expect_log daemon_on_the_bus "$log" "D-Bus: serving org.bpfwarden.Enforcer1"
wlog="$BW_OUT/watchdog.log"
start_watchdog "$wlog" --policy-dir "$work/policy.d" --interval-ms 1000 || { fail watchdog_start "see $wlog"; finish; exit; }
expect_log watchdog_on_the_bus "$wlog" "D-Bus: serving org.bpfwarden.Watchdog1"

# The documented API, as an administrator would look at it.
busctl --system introspect org.bpfwarden.Enforcer1 /org/bpfwarden/Enforcer1 >"$BW_OUT/introspect-enforcer.txt" 2>&1
busctl --system introspect org.bpfwarden.Watchdog1 /org/bpfwarden/Watchdog1 >"$BW_OUT/introspect-watchdog.txt" 2>&1
expect_members enforcer_introspection_lists_every_member org.bpfwarden.Enforcer1 /org/bpfwarden/Enforcer1 "$ENFORCER_MEMBERS"
expect_members watchdog_introspection_lists_every_member org.bpfwarden.Watchdog1 /org/bpfwarden/Watchdog1 "$WATCHDOG_MEMBERS"
grep -qE '^\.Mode +property +s +"enforcing"' "$BW_OUT/introspect-enforcer.txt" && pass introspect_shows_mode_enforcing ||
  fail introspect_shows_mode_enforcing "$(grep '^\.Mode ' "$BW_OUT/introspect-enforcer.txt")"
grep -qE '^\.Healthy +property +b +true' "$BW_OUT/introspect-watchdog.txt" && pass introspect_shows_healthy_true ||
  fail introspect_shows_healthy_true "$(grep -E '^\.(Healthy|Reasons) ' "$BW_OUT/introspect-watchdog.txt")"
[ "$(prop "$ENFORCER" Mode)" = '"enforcing"' ] && pass mode_enforcing || fail mode_enforcing "$(prop "$ENFORCER" Mode)"
[ "$(prop "$ENFORCER" ModeReason)" = '"BPF LSM active"' ] && pass mode_reason || fail mode_reason "$(prop "$ENFORCER" ModeReason)"
[ "$(prop "$ENFORCER" BpfLsmUsable)" = true ] && pass bpf_lsm_usable || fail bpf_lsm_usable "$(prop "$ENFORCER" BpfLsmUsable)"
prop "$ENFORCER" ActiveLSMs | grep -q '"bpf"' && pass active_lsms_include_bpf || fail active_lsms_include_bpf "$(prop "$ENFORCER" ActiveLSMs)"
[ "$(prop "$ENFORCER" KernelRelease)" = "\"$(uname -r)\"" ] && pass kernel_release || fail kernel_release "$(prop "$ENFORCER" KernelRelease)"
# Every program this kernel runs (expected_programs, from its BTF) is listed
# once, pinned and attached, and is what the kernel has: the link pinned under
# its name runs the program of that id, name, type and tag, and no other link
# runs a program of ours (but for the watchdog's tripwire).
expected_programs >"$BW_OUT/expected-programs.txt"
busctl --system --json=short get-property $ENFORCER Programs >"$BW_OUT/programs.json" 2>&1
if python3 - "$BW_PINS" "$BW_OUT/expected-programs.txt" "$BW_OUT/programs.json" >"$BW_OUT/programs-check.log" 2>&1 <<'PY'
import json, subprocess, sys
pins, want_file, programs_file = sys.argv[1:]
want = set(open(want_file).read().split())
programs = json.load(open(programs_file))["data"]
seen = {p[0]: p for p in programs}
assert len(want) >= 28, f"only {len(want)} expected programs"
assert len(seen) == len(programs), "a program listed twice"
assert set(seen) == want, ("unexpected:", sorted(set(seen) - want), "missing:", sorted(want - set(seen)))
def bpftool(*args):
    return json.loads(subprocess.check_output(["bpftool", "-j", *args]))
ours = set()
for name, hook, prog_id, tag, pinned, attached, state in programs:
    assert (pinned, attached, state) == (True, True, "loaded"), (name, pinned, attached, state)
    assert prog_id > 0 and len(tag) == 16, (name, prog_id, tag)
    link = bpftool("link", "show", "pinned", f"{pins}/links/{name}")
    prog = bpftool("prog", "show", "id", str(link["prog_id"]))
    kind = "lsm" if hook.startswith("lsm/") else "tracepoint"
    assert (prog_id, tag, name, kind) == (link["prog_id"], prog["tag"], prog["name"], prog["type"]), (name, hook, prog_id, tag, link, prog)
    ours.add(prog_id)
links = {}
for link in bpftool("link", "show"):
    links.setdefault(link["prog_id"], []).append(link["id"])
assert all(len(links.get(prog_id, [])) == 1 for prog_id in ours), ("programs not attached exactly once:",
    {prog_id: links.get(prog_id) for prog_id in ours if len(links.get(prog_id, [])) != 1})
# The watchdog's own tripwire (bpf/trace/tamper_watch.bpf.c) is attached
# beside them, unpinned, once each: its fentry/fexit form, as this kernel runs
# trampolines.
tripwire = {"bw_tw_fentry", "bw_tw_fexit"}
others = [(p["id"], p["name"]) for p in bpftool("prog", "show")
          if p["name"].startswith("bw_") and p["id"] in links and p["id"] not in ours]
strays = [p for p in others if p[1] not in tripwire]
assert not strays, ("other links run programs of ours:", strays)
assert sorted(name for _, name in others) == sorted(tripwire), ("the watchdog's tripwire:", others)
assert all(len(links[prog_id]) == 1 for prog_id, _ in others), ("tripwire attached more than once:", others)
print(f"ok: {len(programs)} programs")
PY
then pass all_programs_pinned_and_attached
else fail all_programs_pinned_and_attached "$(tail -n 1 "$BW_OUT/programs-check.log")"; fi
# No syscall tracepoint: with BPF LSM, the bpf() audit runs from lsm/bpf and
# the tripwire from fentry/fexit, so no syscall of any process pays for a
# traced entry. The one tracepoint program left is the exec audit's
# (sched_process_exec, not a syscall).
tracepoints=$(bpftool -j prog show | python3 -c 'import json,sys
print(" ".join(sorted(p["name"] for p in json.load(sys.stdin) if p["type"] == "tracepoint" and p["name"].startswith("bw_"))))')
[ "$tracepoints" = bw_tp_exec ] && pass no_syscall_tracepoint_attached ||
  fail no_syscall_tracepoint_attached "tracepoint programs of ours: $tracepoints"
[ "$(prop "$WATCHDOG" Healthy)" = true ] && pass watchdog_healthy || fail watchdog_healthy "$(prop "$WATCHDOG" Reasons)"
[ "$(prop "$WATCHDOG" Mode)" = '"enforcing"' ] && pass watchdog_expects_enforcing || fail watchdog_expects_enforcing "$(prop "$WATCHDOG" Mode)"
# The watchdog checks the very same programs (by id and tag) and finds each ok.
busctl --system --json=short get-property $WATCHDOG Programs >"$BW_OUT/watchdog-programs.json" 2>&1
if python3 - "$BW_OUT/expected-programs.txt" "$BW_OUT/programs.json" "$BW_OUT/watchdog-programs.json" \
    >"$BW_OUT/watchdog-programs-check.log" 2>&1 <<'PY'
import json, sys
want = set(open(sys.argv[1]).read().split())
enforcer = {p[0]: (p[1], p[2], p[3]) for p in json.load(open(sys.argv[2]))["data"]}
programs = json.load(open(sys.argv[3]))["data"]
checked = {p[0]: p for p in programs}
assert len(checked) == len(programs), "a program listed twice"
assert set(checked) == want, ("unexpected:", sorted(set(checked) - want), "missing:", sorted(want - set(checked)))
for name, hook, prog_id, tag, status in programs:
    assert status == "ok", (name, status)
    assert (hook, prog_id, tag) == enforcer.get(name), (name, hook, prog_id, tag, enforcer.get(name))
print(f"ok: {len(programs)} programs")
PY
then pass watchdog_programs_ok
else fail watchdog_programs_ok "$(tail -n 1 "$BW_OUT/watchdog-programs-check.log")"; fi

# An unprivileged listener for every Enforcer1 signal: the busconfig gives it
# PolicyChanged but never Denied (it names other users' processes and files).
unprivileged dbus-monitor --system "type='signal',interface='org.bpfwarden.Enforcer1'" >"$BW_OUT/unprivileged-listener.log" 2>&1 &
LISTENER_PID=$!
sleep 0.5

# A denied open: EPERM, the counter moves, a Denied signal names it.
before=$(prop "$ENFORCER" Denials)
expect_try open_denied_file_eperm EPERM open "$work/secret"
waited=0
while [ "$(prop "$ENFORCER" Denials)" -le "$before" ] && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
after=$(prop "$ENFORCER" Denials)
[ "$after" -gt "$before" ] && pass busctl_shows_denials_increase || fail busctl_shows_denials_increase "Denials $before -> $after"
echo "== Denials $before -> $after"
if wait_for_log "$monitor" "Member=Denied" 10 &&
   grep -A10 "Member=Denied" "$monitor" | tr -d '\n' | grep -qE "STRING \"file_open\";\s*STRING \"$work/secret\";\s*UINT32 $TRY_PID;"; then
  pass denied_signal_names_kind_path_pid
else
  fail denied_signal_names_kind_path_pid "$(grep -A10 Member=Denied "$monitor" | head -n 12)"
fi
expect_try exec_denied_binary_eperm EPERM exec "$work/denied-bin"
wait_for_log "$monitor" 'STRING "exec_check";' 10 && pass denied_signal_for_exec || fail denied_signal_for_exec "no exec_check Denied signal"

# A flood of denials: the signal is rate-limited, the counter keeps counting.
signals_before=$(grep -c "Member=Denied" "$monitor")
"$BW_TRY" open-loop "$work/secret" >"$BW_OUT/flood.log" 2>&1 &
flood=$!
sleep 3
kill -TERM "$flood"
wait "$flood"
sleep 1
signals=$(( $(grep -c "Member=Denied" "$monitor") - signals_before ))
suppressed=$(prop "$ENFORCER" DeniedSignalsSuppressed)
echo "== flood: $(cat "$BW_OUT/flood.log"); $signals Denied signals, $suppressed suppressed"
[ "$signals" -gt 0 ] && [ "$signals" -le 100 ] && [ "$suppressed" -gt 0 ] && pass denied_signal_rate_limited ||
  fail denied_signal_rate_limited "$signals signals, $suppressed suppressed"
[ "$(prop "$ENFORCER" Denials)" -gt $((after + signals)) ] && pass denial_counter_counts_beyond_signals ||
  fail denial_counter_counts_beyond_signals "Denials $(prop "$ENFORCER" Denials)"

# Rule hit counters (RuleHits, shown by policy show): every match of a rule
# counts, the flood's too (past the signal's and the events' rate limits);
# an apply starts them from 0, since rule ids then name other rules.
hits_of() {  # PATH: the hits `policy show --json` gives the rule on PATH
  "$BW_CTL" policy show --json | python3 -c '
import json, sys
print(next(r["hits"] for r in json.load(sys.stdin)["rules"] if r["path"] == sys.argv[1]))' "$1"
}
flooded=$(sed -n 's/.*attempts=\([0-9]*\).*/\1/p' "$BW_OUT/flood.log" | tail -n 1)
h1=$(hits_of "$work/secret")
[ -n "$flooded" ] && [ "$h1" -ge "$flooded" ] && pass rule_hits_count_the_flood ||
  fail rule_hits_count_the_flood "hits $h1, flood attempts ${flooded:-?}"
expect_try hit_counted_open_eperm EPERM open "$work/secret"
h2=$(hits_of "$work/secret")
[ "$h2" = $((h1 + 1)) ] && pass rule_hits_count_each_denial || fail rule_hits_count_each_denial "$h1 -> $h2"
[ "$(hits_of "$work/denied-bin")" -ge 1 ] && pass rule_hits_count_exec_denials ||
  fail rule_hits_count_exec_denials "$(hits_of "$work/denied-bin")"
"$work/bpf-loader" prog-load >/dev/null 2>&1
[ "$(hits_of "$work/bpf-loader")" -ge 1 ] && pass rule_hits_count_allowed_bpf_calls ||
  fail rule_hits_count_allowed_bpf_calls "$(hits_of "$work/bpf-loader")"

# Runtime rules enforce at once, and only root may add them.
expect_try public_open_ok_before_rule ok open "$work/public"
out=$(unprivileged busctl --system call $ENFORCER AddRule sss file "$work/public" deny 2>&1)
echo "$out" | grep -q "needs root or polkit's authorization" && pass unprivileged_add_rule_refused || fail unprivileged_add_rule_refused "$out"
expect_try public_open_ok_after_refused_rule ok open "$work/public"
out=$(busctl --system call $ENFORCER AddRule sss file "$work/public" deny 2>&1)
[ "$out" = "tb 2 true" ] && pass add_rule_over_dbus || fail add_rule_over_dbus "$out"
expect_try runtime_rule_denies EPERM open "$work/public"
[ "$(hits_of "$work/secret")" = 0 ] && [ "$(hits_of "$work/public")" = 1 ] && pass rule_hits_start_over_on_apply ||
  fail rule_hits_start_over_on_apply "secret $(hits_of "$work/secret"), public $(hits_of "$work/public")"
wait_for_log "$monitor" 'Member=PolicyChanged' 5 && pass policy_changed_signal || fail policy_changed_signal "no PolicyChanged"
wait_for_log "$BW_OUT/unprivileged-listener.log" "member=PolicyChanged" 5 && pass unprivileged_listener_gets_policy_changed ||
  fail unprivileged_listener_gets_policy_changed "$(head -n 5 "$BW_OUT/unprivileged-listener.log")"
! grep -q "member=Denied" "$BW_OUT/unprivileged-listener.log" && pass denied_signal_not_delivered_to_unprivileged ||
  fail denied_signal_not_delivered_to_unprivileged "$(grep -A3 member=Denied "$BW_OUT/unprivileged-listener.log" | head -n 4)"
out=$(busctl --system call $ENFORCER RemoveRule ss file "$work/public" 2>&1)
[ "$out" = "t 3" ] && pass remove_rule_over_dbus || fail remove_rule_over_dbus "$out"
expect_try removed_runtime_rule_allows ok open "$work/public"

out=$(busctl --system call $WATCHDOG CheckNow 2>&1)
[ "$out" = "bas true 0" ] && pass check_now_healthy || fail check_now_healthy "$out"
"$BW_BUILD/ctl/bpfwardenctl" status >"$BW_OUT/status.txt" 2>&1
rc=$?
[ $rc = 0 ] && grep -q "^status: ok (enforcing, watchdog healthy)" "$BW_OUT/status.txt" && pass ctl_status_ok_exit_0 ||
  fail ctl_status_ok_exit_0 "exit $rc: $(cat "$BW_OUT/status.txt")"
cat "$BW_OUT/status.txt"

finish
