#!/bin/bash
# bpfwardenctl metrics end to end, the way a fleet collects it: the real
# bpfwardend (audit-only on this kernel) and bpfwarden-watchdog on a private
# pin root and a private dbus-daemon (selftests/guest/lib_dbus.sh, as
# dbus_test.sh), the exposition written with --textfile into a directory that
# the real node_exporter (prometheus-node-exporter, textfile collector only)
# serves, and scraped over HTTP:
#   - the counters and state node_exporter serves are the file's, and lie
#     between busctl's readings before and after the export (the counters
#     move with every exec on the host); no textfile parse error;
#   - the file is replaced atomically, mode 0644, no temporary file left, and
#     a *.prom file that bpfwardenctl did not write is never replaced;
#   - readable as nobody; with the watchdog stopped a new export has its
#     bpfwarden_up 0 and none of its other metrics, and still exits 0;
#   - a missing directory exits 1, bad arguments exit 2.
#   metrics_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/metrics-out"
work=$(mktemp -d /tmp/bpfwarden-metricstest.XXXXXX)
chmod 755 "$work"  # nobody must reach the bus socket below it
BW_STATE="$work/state"
BW_CANARY="$work/state/canary"
. "$BW_SRC/selftests/guest/lib.sh"
. "$BW_SRC/selftests/guest/lib_dbus.sh"
BW_PINS=/sys/fs/bpf/bpfwarden-metricstest-$$
POLICY="$work/policy.d"
TEXTFILES="$work/textfile"
PROM="$TEXTFILES/bpfwarden.prom"
CTL="$BW_BUILD/ctl/bpfwardenctl"
EXPORTER=prometheus-node-exporter
EXPORTER_PID=""
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT" "$POLICY" "$TEXTFILES"
cleanup() {
  if [ -n "$EXPORTER_PID" ]; then
    kill -TERM "$EXPORTER_PID" 2>/dev/null
    wait "$EXPORTER_PID" 2>/dev/null
  fi
  stop_watchdog
  stop_daemon
  stop_private_bus
  "$BW_DAEMON" --unpin --yes --pin-root "$BW_PINS" --log-target stderr >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

unprivileged() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# scrape FILE: node_exporter's /metrics into FILE.
scrape() {
  python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
    "http://127.0.0.1:$PORT/metrics" >"$1" 2>"$1.err"
}

# readings FILE: the D-Bus values the exposition is made of, "Name value" a line.
readings() {
  local name
  {
    for name in Events Denials Audits Drops RateLimited DeniedSignalsSuppressed TamperAttempts PolicyGeneration \
      RuleCount Mode; do
      echo "Enforcer.$name $(prop "$ENFORCER" "$name" | tr -d '"')"
    done
    for name in Checks HealCount Healthy; do
      echo "Watchdog.$name $(prop "$WATCHDOG" "$name")"
    done
  } >"$1"
}

# check_exposition NAME PYTHON: the Python statements (asserts) hold, with
#   scraped: {sample as written, "name{labels}": value} from node_exporter,
#   written: the same from $PROM, before/after: readings() around the export.
check_exposition() {
  local name=$1 check=$2
  if python3 - "$BW_OUT/scraped.txt" "$PROM" "$BW_OUT/before.txt" "$BW_OUT/after.txt" "$check" \
    >"$BW_OUT/$name.log" 2>&1 <<'PY'; then
import sys
def samples(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        key, value = line.rstrip("\n").rsplit(" ", 1)
        out[key] = float(value)
    return out
def values(path):
    return dict(line.rstrip("\n").split(" ", 1) for line in open(path))
scraped, written = samples(sys.argv[1]), samples(sys.argv[2])
before, after = values(sys.argv[3]), values(sys.argv[4])
def between(metric, prop):
    assert metric in scraped, f"{metric} not served"
    assert scraped[metric] == written[metric], f"{metric}: served {scraped[metric]}, written {written[metric]}"
    low, high = int(before[prop]), int(after[prop])
    assert low <= scraped[metric] <= high, f"{metric} = {scraped[metric]}, D-Bus {prop} read {low} then {high}"
exec(sys.argv[5])
PY
    pass "$name"
  else
    fail "$name" "$(cat "$BW_OUT/$name.log")"
  fi
}

# --- Arguments, without any service -----------------------------------------------------------------
expect help_explains_textfile_collector 0 "textfile collector" "$CTL" metrics --help
expect help_names_the_timer 0 "bpfwarden-metrics.timer" "$CTL" metrics --help
expect help_says_no_json 0 "--json is not available" "$CTL" metrics --help
expect help_exit_status 0 "Exit status: 0 .*1 it could not be written; 2 invalid" \
  bash -c "'$CTL' metrics --help | tr '\n' ' '"
expect json_refused 2 "--json: not available for metrics" "$CTL" metrics --json
expect textfile_needs_prom 2 "does not end in .prom: node_exporter's textfile collector reads only \*.prom files" \
  "$CTL" metrics --textfile "$TEXTFILES/bpfwarden.txt"
expect textfile_needs_value 2 "--textfile: needs a value" "$CTL" metrics --textfile
expect unknown_argument 2 "unexpected argument 'extra'" "$CTL" metrics extra
expect missing_directory 1 "--textfile: '/nonexistent/dir' does not exist" \
  "$CTL" metrics --textfile /nonexistent/dir/x.prom
[ ! -e /nonexistent ] && pass missing_directory_not_created || fail missing_directory_not_created "/nonexistent exists"

if ! command -v "$EXPORTER" >/dev/null; then
  fail node_exporter_installed "$EXPORTER not found: install prometheus-node-exporter (scripts/install-deps.sh)"
  finish
  exit
fi

# --- The services ----------------------------------------------------------------------------------
cp "$BW_SRC/policy/default.toml" "$POLICY/00-default.toml"
start_private_bus "$work/bus" || { fail private_bus_starts "see $work/bus/bus.log"; finish; exit; }
start_daemon "$BW_OUT/daemon.log" --policy-dir "$POLICY" --pin-root "$BW_PINS" ||
  { fail daemon_starts "see $BW_OUT/daemon.log"; finish; exit; }
start_watchdog "$BW_OUT/watchdog.log" --policy-dir "$POLICY" --pin-root "$BW_PINS" --interval-ms 2000 ||
  { fail watchdog_starts "see $BW_OUT/watchdog.log"; finish; exit; }
wait_for_name org.bpfwarden.Enforcer1 10 && wait_for_name org.bpfwarden.Watchdog1 10 && pass services_on_the_bus ||
  fail services_on_the_bus "$(tail -n 3 "$BW_OUT/daemon.log" "$BW_OUT/watchdog.log")"

# An exec moves the event counter, so that what is compared is not all zeros.
events_at_start=$(prop "$ENFORCER" Events)
"$BW_TRY" exec /bin/true >/dev/null 2>&1
for ((i = 0; i < 50; i++)); do
  [ "$(prop "$ENFORCER" Events)" -gt "$events_at_start" ] && break
  sleep 0.1
done
[ "$(prop "$ENFORCER" Events)" -gt "$events_at_start" ] && pass exec_counted ||
  fail exec_counted "Events stayed $events_at_start"

# --- node_exporter serves the file -------------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$EXPORTER" --collector.disable-defaults --collector.textfile --collector.textfile.directory="$TEXTFILES" \
  --web.listen-address="127.0.0.1:$PORT" >"$BW_OUT/node-exporter.log" 2>&1 &
EXPORTER_PID=$!
for ((i = 0; i < 100; i++)); do
  scrape "$BW_OUT/scraped.txt" && break
  kill -0 "$EXPORTER_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q "^node_textfile_scrape_error 0" "$BW_OUT/scraped.txt" && pass node_exporter_serves_textfiles ||
  fail node_exporter_serves_textfiles "$(cat "$BW_OUT/scraped.txt.err" "$BW_OUT/node-exporter.log")"

readings "$BW_OUT/before.txt"
expect export_exits_0 0 "" "$CTL" metrics --textfile "$PROM"
readings "$BW_OUT/after.txt"
scrape "$BW_OUT/scraped.txt" || fail scrape "$(cat "$BW_OUT/scraped.txt.err")"
cp "$PROM" "$BW_OUT/bpfwarden.prom"

grep -qx "node_textfile_scrape_error 0" "$BW_OUT/scraped.txt" && pass no_textfile_parse_error ||
  fail no_textfile_parse_error "$(grep node_textfile "$BW_OUT/scraped.txt"; grep -i error "$BW_OUT/node-exporter.log")"
! grep -q "level=error" "$BW_OUT/node-exporter.log" && pass node_exporter_logs_no_error ||
  fail node_exporter_logs_no_error "$(grep "level=error" "$BW_OUT/node-exporter.log")"
check_exposition both_up 'assert scraped["bpfwarden_up{service=\"bpfwardend\"}"] == 1
assert scraped["bpfwarden_up{service=\"bpfwarden-watchdog\"}"] == 1'
check_exposition counters_match_dbus 'between("bpfwarden_events_total", "Enforcer.Events")
between("bpfwarden_denials_total", "Enforcer.Denials")
between("bpfwarden_audits_total", "Enforcer.Audits")
between("bpfwarden_events_dropped_total", "Enforcer.Drops")
between("bpfwarden_events_rate_limited_total", "Enforcer.RateLimited")
between("bpfwarden_denied_signals_suppressed_total", "Enforcer.DeniedSignalsSuppressed")
between("bpfwarden_tamper_attempts_total", "Enforcer.TamperAttempts")
between("bpfwarden_checks_total", "Watchdog.Checks")
between("bpfwarden_heals_total", "Watchdog.HealCount")
assert scraped["bpfwarden_events_total"] > 0'
check_exposition state_matches_dbus 'assert before["Enforcer.PolicyGeneration"] == after["Enforcer.PolicyGeneration"]
assert scraped["bpfwarden_policy_generation"] == int(after["Enforcer.PolicyGeneration"])
assert scraped["bpfwarden_policy_rules"] == int(after["Enforcer.RuleCount"])
mode = after["Enforcer.Mode"]
assert scraped["bpfwarden_mode{mode=\"%s\"}" % mode] == 1
assert sum(v for k, v in scraped.items() if k.startswith("bpfwarden_mode{")) == 1
assert scraped["bpfwarden_enforcing"] == (mode == "enforcing")
assert scraped["bpfwarden_watchdog_healthy"] == (after["Watchdog.Healthy"] == "true")'
check_exposition programs_listed 'attached = [k for k in scraped if k.startswith("bpfwarden_program_attached{")]
assert len(attached) == scraped["bpfwarden_programs"] > 0
assert sum(scraped[k] for k in attached) == scraped["bpfwarden_programs_attached"] > 0'
# Every family node_exporter serves has our HELP and its TYPE once.
if python3 - "$BW_OUT/scraped.txt" "$PROM" >"$BW_OUT/families.log" 2>&1 <<'PY'; then
import collections, sys
for path in sys.argv[1:]:
    kinds = collections.Counter(tuple(line.split()[1:3]) for line in open(path) if line.startswith("# ")
                                and line.split()[2].startswith("bpfwarden_"))
    assert kinds and all(n == 1 for n in kinds.values()), (path, kinds)
    helps = {name for kind, name in kinds if kind == "HELP"}
    types = {name for kind, name in kinds if kind == "TYPE"}
    assert helps == types, (path, helps ^ types)
PY
  pass families_declared_once
else
  fail families_declared_once "$(cat "$BW_OUT/families.log")"
fi

# --- The file ---------------------------------------------------------------------------------------
[ "$(stat -c %a "$PROM")" = 644 ] && pass textfile_mode_0644 || fail textfile_mode_0644 "$(stat -c %a "$PROM")"
inode_before=$(stat -c %i "$PROM")
expect export_replaces_own_file 0 "" "$CTL" metrics --textfile "$PROM"
[ "$(stat -c %i "$PROM")" != "$inode_before" ] && pass textfile_renamed_into_place ||
  fail textfile_renamed_into_place "same inode: written in place"
[ "$(find "$TEXTFILES" -name '.*' -type f | wc -l)" = 0 ] && pass no_temporary_file_left ||
  fail no_temporary_file_left "$(ls -a "$TEXTFILES")"
printf '# HELP other_metric not ours\n# TYPE other_metric gauge\nother_metric 1\n' >"$TEXTFILES/other.prom"
expect foreign_file_refused 1 "other.prom' exists and was not written by bpfwarden: refusing to replace it" \
  "$CTL" metrics --textfile "$TEXTFILES/other.prom"
grep -qx "other_metric 1" "$TEXTFILES/other.prom" && pass foreign_file_unchanged || fail foreign_file_unchanged "$(cat "$TEXTFILES/other.prom")"
rm -f "$TEXTFILES/other.prom"

# --- Anyone may read; stdout is the same exposition -------------------------------------------------
unprivileged "$CTL" metrics >"$BW_OUT/nobody.txt" 2>"$BW_OUT/nobody.err"
rc=$?
[ $rc = 0 ] && grep -qx 'bpfwarden_up{service="bpfwardend"} 1' "$BW_OUT/nobody.txt" &&
  grep -qx 'bpfwarden_up{service="bpfwarden-watchdog"} 1' "$BW_OUT/nobody.txt" &&
  grep -q '^bpfwarden_events_total [0-9]' "$BW_OUT/nobody.txt" && pass readable_by_nobody ||
  fail readable_by_nobody "exit $rc: $(cat "$BW_OUT/nobody.err")"
diff <(grep '^# ' "$BW_OUT/nobody.txt") <(grep '^# ' "$PROM") >"$BW_OUT/stdout-vs-file.diff" &&
  pass stdout_same_families_as_textfile || fail stdout_same_families_as_textfile "$(cat "$BW_OUT/stdout-vs-file.diff")"

# --- The watchdog stopped: up 0, its metrics gone, still exit 0 -------------------------------------
stop_watchdog
expect export_with_watchdog_down 0 "bpfwarden-watchdog unreachable: org.bpfwarden.Watchdog1 is not on the system bus" \
  "$CTL" metrics --textfile "$PROM"
readings "$BW_OUT/before.txt"
cp "$BW_OUT/before.txt" "$BW_OUT/after.txt"
scrape "$BW_OUT/scraped.txt" || fail scrape "$(cat "$BW_OUT/scraped.txt.err")"
cp "$PROM" "$BW_OUT/bpfwarden-watchdog-down.prom"
check_exposition watchdog_down_is_up_0 'assert scraped["bpfwarden_up{service=\"bpfwarden-watchdog\"}"] == 0
assert scraped["bpfwarden_up{service=\"bpfwardend\"}"] == 1
gone = [k for k in scraped if k.split("{")[0] in ("bpfwarden_watchdog_healthy", "bpfwarden_checks_total",
        "bpfwarden_heals_total", "bpfwarden_watchdog_last_check_timestamp_seconds")
        or (k.startswith("bpfwarden_version_info{") and "service=\"bpfwarden-watchdog\"" in k)]
assert not gone, gone
assert "bpfwarden_events_total" in scraped'
grep -qx "node_textfile_scrape_error 0" "$BW_OUT/scraped.txt" && pass watchdog_down_no_parse_error ||
  fail watchdog_down_no_parse_error "$(grep node_textfile "$BW_OUT/scraped.txt")"

# --- Both stopped: only bpfwarden_up ----------------------------------------------------------------
stop_daemon
expect export_with_both_down 0 "bpfwardend unreachable: org.bpfwarden.Enforcer1 is not on the system bus" \
  "$CTL" metrics --textfile "$PROM"
[ "$(grep -v '^#' "$PROM")" = 'bpfwarden_up{service="bpfwardend"} 0
bpfwarden_up{service="bpfwarden-watchdog"} 0' ] && pass both_down_only_up || fail both_down_only_up "$(cat "$PROM")"

finish
