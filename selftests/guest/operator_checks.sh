# Sourced by package.sh (the installed package under systemd, with journald):
# what an operator runs to see and act on what bpfwarden does. Uses
# package.sh's $ctl, check/expect helpers and lib.sh.

# json_lines_check FILE PYTHON: every line of FILE is one JSON object; PYTHON
# (an expression over `events`, the list of parsed objects) must be true.
json_lines_check() {
  python3 - "$1" "$2" <<'PY'
import json, sys, time
events = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
now = time.time()
def wall(e):  # "2026-12-03T13:40:00.123456Z" -> seconds
    import datetime
    return datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# events_checks DENIED_PATH: a deny rule on DENIED_PATH is in force.
events_checks() {
  local denied=$1 follower out i
  local is_denial="e['kind'] == 'file_open' and e['action'] == 'deny' and e['path'] == '$denied'"
  "$ctl" events --follow --kind file_open --action deny --json >"$BW_OUT/events-follow.json" 2>"$BW_OUT/events-follow.err" &
  follower=$!
  sleep 2
  expect_try events_denial_made EPERM open "$denied"
  local denier=$TRY_PID
  expect_try events_unrelated_open_ok ok open /etc/hostname
  for ((i = 0; i < 40; i++)); do
    grep -q "\"path\":\"$denied\"" "$BW_OUT/events-follow.json" && break
    sleep 0.5
  done
  kill "$follower" && wait "$follower" 2>/dev/null
  json_lines_check "$BW_OUT/events-follow.json" \
    "any($is_denial and e['tgid'] == $denier and abs(wall(e) - now) < 120 for e in events)" &&
    pass events_follow_shows_the_denial_as_json ||
    fail events_follow_shows_the_denial_as_json "$(cat "$BW_OUT/events-follow.json" "$BW_OUT/events-follow.err" | tail -n 5)"
  json_lines_check "$BW_OUT/events-follow.json" "all(e['kind'] == 'file_open' and e['action'] == 'deny' for e in events)" &&
    pass events_follow_keeps_to_its_filters || fail events_follow_keeps_to_its_filters "$(tail -n 5 "$BW_OUT/events-follow.json")"

  "$ctl" events --action deny --comm bw-try --pid "$denier" --since -10min --json >"$BW_OUT/events-history.json" 2>&1
  json_lines_check "$BW_OUT/events-history.json" "len(events) >= 1 and all($is_denial and e['comm'] == 'bw-try' for e in events)" &&
    pass events_history_filtered_by_pid_comm_action ||
    fail events_history_filtered_by_pid_comm_action "$(tail -n 5 "$BW_OUT/events-history.json")"
  "$ctl" events --action deny --pid "$denier" --json --anonymize "$BW_OUT/event-salt" >"$BW_OUT/events-anon.json" 2>&1
  json_lines_check "$BW_OUT/events-anon.json" "len(events) >= 1 and all(str(e['tgid']).startswith('h:') and
      e['tgid'] == e['pid'] and e['path'] == '$denied' for e in events)" &&
    [ "$(stat -c %a "$BW_OUT/event-salt")" = 600 ] && pass events_anonymized_with_a_private_salt ||
    fail events_anonymized_with_a_private_salt "$(head -c 600 "$BW_OUT/events-anon.json")"
  out=$("$ctl" events --action deny --uid 4242 --since -10min 2>&1)
  check events_uid_filter_excludes_others "" "$out"
  out=$("$ctl" events --action deny --since "@$(($(date +%s) + 60))" 2>&1)
  check events_since_excludes_earlier "" "$out"
  out=$("$ctl" events --action deny --pid "$denier" 2>&1)
  grep -qE "^20[0-9-]+T[0-9:.]+Z file_open deny .*path=\"$denied\"" <<<"$out" && pass events_text_lines_start_with_kernel_time ||
    fail events_text_lines_start_with_kernel_time "$out"
  out=$("$ctl" events --comm averyveryverylongname 2>&1)
  [ $? = 2 ] && grep -q "at most 15" <<<"$out" && pass events_bad_filter_is_an_error || fail events_bad_filter_is_an_error "$out"

  # The journal: every field, the catalog's explanation.
  journalctl -b -o json --no-pager MESSAGE_ID=7b9176337fc347bab652948d4fe1a557 "BPFWARDEN_TGID=$denier" \
    >"$BW_OUT/events-journal.json" 2>&1
  json_lines_check "$BW_OUT/events-journal.json" "any(e.get('BPFWARDEN_PATH') == '$denied' and e.get('BPFWARDEN_COMM') == 'bw-try'
      and e.get('BPFWARDEN_UID') == '0' and e.get('BPFWARDEN_OP', '').startswith('open') and e.get('BPFWARDEN_RULE', '').isdigit()
      and e.get('BPFWARDEN_RULE_PATH') == '$denied' and e.get('OBJECT_PID') == '$denier' and 'BPFWARDEN_TIME' in e
      and json.loads(e.get('BPFWARDEN_JSON', '{}')).get('path') == '$denied' for e in events)" &&
    pass journal_has_every_event_field || fail journal_has_every_event_field "$(head -c 2000 "$BW_OUT/events-journal.json")"
  out=$(journalctl -b -x --no-pager MESSAGE_ID=7b9176337fc347bab652948d4fe1a557 "BPFWARDEN_TGID=$denier" 2>&1)
  grep -q "bpfwardenctl policy show" <<<"$out" && grep -q "file_open open[a-z_]* $denied by process $denier (bw-try, uid 0)" <<<"$out" &&
    pass journalctl_x_explains_the_denial || fail journalctl_x_explains_the_denial "$(tail -n 12 <<<"$out")"
}

# doctor_report FILE: bpfwardenctl doctor --json into FILE; its exit status.
doctor_report() {
  "$ctl" doctor --json >"$1" 2>&1
}
# severity_of FILE ID: a check's severity in a doctor report.
severity_of() {
  python3 -c 'import json,sys; print(next(c["severity"] for c in json.load(open(sys.argv[1]))["checks"] if c["id"] == sys.argv[2]))' "$1" "$2" 2>&1
}

# doctor_checks: the installed package enforcing under systemd is what the
# checklist wants; a hardening sysctl changed moves its finding.
doctor_checks() {
  local report=$BW_OUT/doctor.json rc worst harden
  doctor_report "$report"
  rc=$?
  for id in bpf-lsm bpffs pin-directory btf units development-key trusted-keys; do
    check "doctor_${id//-/_}_ok_on_the_installed_package" ok "$(severity_of "$report" "$id")"
  done
  worst=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["worst"])' "$report" 2>&1)
  case "$worst:$rc" in ok:0|info:0|warning:1|failure:3) pass doctor_exit_status_is_the_worst_finding ;;
    *) fail doctor_exit_status_is_the_worst_finding "worst $worst, exit $rc" ;; esac
  harden=$(sysctl -n net.core.bpf_jit_harden)
  sysctl -qw net.core.bpf_jit_harden=0
  doctor_report "$BW_OUT/doctor-unhardened.json"
  check doctor_jit_harden_0_is_a_warning warning "$(severity_of "$BW_OUT/doctor-unhardened.json" jit-harden)"
  sysctl -qw net.core.bpf_jit_harden=2
  doctor_report "$BW_OUT/doctor-hardened.json"
  check doctor_jit_harden_2_is_ok ok "$(severity_of "$BW_OUT/doctor-hardened.json" jit-harden)"
  sysctl -qw net.core.bpf_jit_harden="$harden"
  systemctl stop bpfwarden-watchdog.service
  doctor_report "$BW_OUT/doctor-stopped.json"
  rc=$?
  [ "$(severity_of "$BW_OUT/doctor-stopped.json" units)" = failure ] && [ "$rc" = 3 ] &&
    grep -q "systemctl enable --now bpfwarden-watchdog.service" "$BW_OUT/doctor-stopped.json" &&
    pass doctor_stopped_watchdog_is_a_failure_with_its_fix ||
    fail doctor_stopped_watchdog_is_a_failure_with_its_fix "exit $rc: $(head -c 800 "$BW_OUT/doctor-stopped.json")"
  systemctl start bpfwarden-watchdog.service
}

# metrics_checks: the shipped oneshot unit, sandboxed as it ships, writes the
# node_exporter textfile.
metrics_checks() {
  local textfile=/var/lib/prometheus/node-exporter/bpfwarden.prom
  mkdir -p /var/lib/prometheus/node-exporter
  if systemctl start bpfwarden-metrics.service; then pass metrics_unit_runs; else
    fail metrics_unit_runs "$(journalctl -b --no-pager -u bpfwarden-metrics.service | tail -n 5)"
  fi
  grep -q '^bpfwarden_up{service="bpfwardend"} 1$' "$textfile" 2>/dev/null &&
    grep -q '^bpfwarden_up{service="bpfwarden-watchdog"} 1$' "$textfile" &&
    grep -q '^bpfwarden_enforcing 1$' "$textfile" && pass metrics_textfile_written_by_the_unit ||
    fail metrics_textfile_written_by_the_unit "$(head -n 20 "$textfile" 2>&1)"
  check metrics_textfile_0644 644 "$(stat -c %a "$textfile" 2>&1)"
  systemctl start bpfwarden-metrics.timer && check metrics_timer_active active "$(systemctl is-active bpfwarden-metrics.timer)"
  systemctl stop bpfwarden-metrics.timer
  rm -f "$textfile"
}

# inventory_checks: a program loaded with bpftool is unknown, ours and
# systemd's are not; contain removes it and refuses ours.
inventory_checks() {
  local work=/tmp/bw-inventory foreign=/sys/fs/bpf/bwtest-foreign id ours rc since
  local report=$BW_OUT/inventory.json allow=$config/policy.d/60-selftest-bpftool.toml
  mkdir -p "$work"
  # The default policy refuses program loads from executables it does not list.
  since=$(cursor)
  # A copy on tmpfs: this guest's root is an overlay, and a running file of
  # its lower layer has another identity than stat() gives (docs/POLICY.md).
  cp /usr/sbin/bpftool "$work/bpftool"
  printf '[bpf]\nallow = ["%s"]\n' "$work/bpftool" >"$allow"
  systemctl reload bpfwardend.service
  expect_journal inventory_bpftool_allowed bpfwardend.service "policy: reloaded" "$since"
  busctl --system monitor org.bpfwarden.Watchdog1 >"$BW_OUT/watchdog-monitor.log" 2>&1 &
  local monitor=$!
  sleep 1
  clang -O2 -g --target=bpf -I"/usr/include/$(gcc -dumpmachine)" -c "$BW_SRC/tests/host/foreign.bpf.c" \
    -o "$work/foreign.bpf.o" >"$BW_OUT/foreign-build.log" 2>&1
  if "$work/bpftool" prog load "$work/foreign.bpf.o" "$foreign" >>"$BW_OUT/foreign-build.log" 2>&1; then
    pass inventory_foreign_program_loaded_with_bpftool
  else
    fail inventory_foreign_program_loaded_with_bpftool "$(tail -n 3 "$BW_OUT/foreign-build.log";
      "$ctl" events --kind bpf_check --lines 3; "$ctl" policy show | grep -i -A2 bpftool)"
  fi
  id=$(bpftool prog show pinned "$foreign" 2>/dev/null | sed -n '1s/^\([0-9]*\):.*/\1/p')
  # The watchdog looks soon after a load, and says so once.
  wait_for_log "$BW_OUT/watchdog-monitor.log" "Member=UnknownProgram" 20
  kill "$monitor" 2>/dev/null
  wait "$monitor" 2>/dev/null
  grep -A8 "Member=UnknownProgram" "$BW_OUT/watchdog-monitor.log" | grep -q "UINT32 ${id:-none};" &&
    grep -A8 "Member=UnknownProgram" "$BW_OUT/watchdog-monitor.log" | grep -q 'STRING "invtest_foreign";' &&
    pass watchdog_signals_the_unknown_program || fail watchdog_signals_the_unknown_program "$(tail -n 20 "$BW_OUT/watchdog-monitor.log")"
  journalctl -b --no-pager -u bpfwarden-watchdog.service "BPFWARDEN_UNKNOWN_PROGRAM=${id:-none}" -o cat 2>/dev/null |
    grep -q "inventory: unknown BPF program ${id:-none} 'invtest_foreign'" && pass watchdog_journals_the_unknown_program ||
    fail watchdog_journals_the_unknown_program "$(journalctl -b --no-pager -u bpfwarden-watchdog.service | grep inventory | tail -n 3)"
  "$ctl" inventory --json >"$report" 2>"$BW_OUT/inventory.err"
  python3 - "$report" "${id:-0}" <<'PY' && pass inventory_flags_only_the_foreign_program ||
import json, sys
d = json.load(open(sys.argv[1]))
owner = {p["id"]: p["owner"] for p in d["programs"]}
ours = [p for p in d["programs"] if p["name"].startswith("bw_")]
assert owner.get(int(sys.argv[2])) == "unknown", ("foreign", owner.get(int(sys.argv[2])))
assert ours and all(p["owner"] == "bpfwarden" for p in ours), [(p["name"], p["owner"]) for p in ours]
assert any(o == "systemd" for o in owner.values()), "no program of systemd's"
assert [p["name"] for p in d["programs"] if p["owner"] == "unknown"] == ["invtest_foreign"], \
    [(p["id"], p["name"]) for p in d["programs"] if p["owner"] == "unknown"]
PY
    fail inventory_flags_only_the_foreign_program "see $report ($(head -c 300 "$BW_OUT/inventory.err"))"
  "$ctl" inventory --unknown >"$BW_OUT/inventory-unknown.txt" 2>&1
  rc=$?
  [ "$rc" = 1 ] && grep -q "invtest_foreign" "$BW_OUT/inventory-unknown.txt" && pass inventory_unknown_lists_it_and_exits_1 ||
    fail inventory_unknown_lists_it_and_exits_1 "exit $rc: $(head -n 20 "$BW_OUT/inventory-unknown.txt")"

  ours=$(bpftool link show pinned /sys/fs/bpf/bpfwarden/links/bw_file_open 2>/dev/null | sed -n '1s/.* prog \([0-9]*\).*/\1/p')
  "$ctl" contain "${ours:-0}" --yes >"$BW_OUT/contain-ours.txt" 2>&1
  rc=$?
  [ "$rc" = 1 ] && [ -e /sys/fs/bpf/bpfwarden/links/bw_file_open ] && pass contain_refuses_ours ||
    fail contain_refuses_ours "exit $rc: $(cat "$BW_OUT/contain-ours.txt")"
  "$ctl" contain "${id:-0}" --yes >"$BW_OUT/contain.txt" 2>&1
  rc=$?
  [ "$rc" = 0 ] && [ ! -e "$foreign" ] && ! bpftool prog show id "${id:-0}" >/dev/null 2>&1 &&
    pass contain_removes_the_foreign_program || fail contain_removes_the_foreign_program "exit $rc: $(cat "$BW_OUT/contain.txt")"
  journalctl -b --no-pager -t bpfwardenctl 2>/dev/null | grep -q "$foreign" && pass contain_actions_in_the_journal ||
    fail contain_actions_in_the_journal "$(journalctl -b --no-pager -t bpfwardenctl | tail -n 5)"
  "$ctl" inventory --unknown >"$BW_OUT/inventory-after.txt" 2>&1 && pass inventory_clean_after_contain ||
    fail inventory_clean_after_contain "$(head -n 20 "$BW_OUT/inventory-after.txt")"
  rm -f "$allow" "$foreign"
  systemctl reload bpfwardend.service
}
