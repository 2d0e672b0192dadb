#!/bin/bash
# The admin's policy workflow against the real bpfwardend (audit-only, on a
# private pin root) on a private dbus-daemon:
#   - `policy show`: every rule with its state (active, "inactive: path
#     missing", "drifted: ..."), generation, directory, warnings; --json;
#     as nobody;
#   - `policy diff`: the daemon's own directory and an identical staging copy
#     give "no changes" and exit 0; a staging directory with a rule added,
#     one removed and one changed lists them and exits 1; --json; a drifted
#     rule is a state change; an invalid directory gives check's file:line
#     message and exit 2;
#   - `policy apply`: a staging directory is refused (exit 2, generation
#     unchanged); an invalid file in the daemon's directory is refused before
#     anything is sent (exit 2, generation and rules unchanged); a caller the
#     daemon refuses gets its D-Bus error and "unchanged"; the daemon's own
#     directory is applied with a higher generation; --json;
#   - bad arguments exit 2; the daemon gone: exit 2 with the reason.
# The daemon applies edits of its own directory by itself (0.2 s after they
# settle), so what is compared is written to a staging directory, which is
# exactly what an admin does.
#   policy_workflow_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/policy-workflow-out"
. "$BW_SRC/selftests/guest/lib.sh"
. "$BW_SRC/selftests/guest/lib_dbus.sh"
BW_PINS=/sys/fs/bpf/bpfwarden-workflowtest-$$
work=$(mktemp -d /tmp/bpfwarden-workflowtest.XXXXXX)
chmod 755 "$work"  # nobody must reach the bus socket and the policy below it
BW_STATE="$work/state"
BW_CANARY="$work/state/canary"
POLICY="$work/policy.d"
STAGING="$work/staging"
FILES="$work/files"
CTL="$BW_BUILD/ctl/bpfwardenctl"
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT" "$POLICY" "$BW_STATE" "$FILES/v1" "$FILES/v2" "$work/links"
cleanup() {
  stop_daemon
  stop_private_bus
  "$BW_DAEMON" --unpin --yes --pin-root "$BW_PINS" --log-target stderr >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

unprivileged() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# expect_json NAME RC PYTHON COMMAND...: exit status RC, stdout one JSON
# object (python3 -m json.tool) for which the Python expression PYTHON, with
# the object as `j`, is true.
expect_json() {
  local name=$1 want_rc=$2 check=$3 rc
  shift 3
  "$@" >"$BW_OUT/$name.json" 2>"$BW_OUT/$name.err" </dev/null
  rc=$?
  if [ "$rc" != "$want_rc" ]; then
    fail "$name" "exit $rc (want $want_rc): $(cat "$BW_OUT/$name.json" "$BW_OUT/$name.err")"
  elif ! python3 -m json.tool "$BW_OUT/$name.json" >/dev/null 2>&1; then
    fail "$name" "not JSON: $(cat "$BW_OUT/$name.json")"
  elif python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($check) else 1)" "$BW_OUT/$name.json"; then
    pass "$name"
  else
    fail "$name" "($check) is false for $(cat "$BW_OUT/$name.json")"
  fi
}
generation() { prop "$ENFORCER" PolicyGeneration; }
# settle: wait until the generation has not moved for a second (the daemon
# applies edits of its directory by itself, 0.2 s after they settle).
settle() {
  local last now waited=0
  last=$(generation)
  while [ $waited -lt 30 ]; do
    sleep 1
    now=$(generation)
    [ "$now" = "$last" ] && return 0
    last=$now
    waited=$((waited + 1))
  done
}

# The rules' files live apart from the staging directory: bpfwardend watches
# the directories its rules name, and nothing here should move them.
echo data >"$FILES/guarded"
mkdir -p "$FILES/tree"
echo data >"$FILES/tool"
echo one >"$FILES/v1/f"
echo two >"$FILES/v2/f"
ln -s "$FILES/v1" "$work/links/current"
cp "$BW_SRC/policy/default.toml" "$POLICY/00-default.toml"
test_policy() {  # test_policy LAST_BLOCK: 50-test.toml, its last rule given
  cat <<TOML
[[file]]
path = "$FILES/guarded"
action = "audit"

[[file]]
path = "$work/no-such-dir/file"
action = "audit"

[[file]]
path = "$work/links/current/f"
action = "audit"

$1

[[file]]
path = "$FILES/guarded"
action = "deny"
scope = { uid = 4242, mode = "audit" }

[[file]]
path = "$FILES/tree/"
action = "audit"
TOML
}
test_policy "$(printf '[[exec]]\npath = "%s"\naction = "audit"' "$FILES/tool")" >"$POLICY/50-test.toml"

start_private_bus "$work/bus" || { fail private_bus_starts "see $work/bus/bus.log"; finish; exit; }
dlog="$BW_OUT/daemon.log"
start_daemon "$dlog" --audit-only --policy-dir "$POLICY" --pin-root "$BW_PINS" ||
  { fail daemon_start "see $dlog"; finish; exit; }
wait_for_name org.bpfwarden.Enforcer1 10 || { fail daemon_on_bus "see $dlog"; finish; exit; }
pass daemon_start

# --- show ------------------------------------------------------------------------
rules=$(busctl --system call $ENFORCER ListRules | awk '{print $2}')
expect show_header 0 "^policy generation 1, $rules rules from $POLICY\$" "$CTL" policy show
expect show_active_rule 0 "^[0-9]+ +file +audit +everyone +$FILES/guarded +50-test.toml:2 +0 +active\$" "$CTL" policy show
expect show_inactive_rule 0 "^[0-9]+ +file +audit +everyone +$work/no-such-dir/file +50-test.toml:6 +0 +inactive: path missing\$" \
  "$CTL" policy show
expect show_scoped_rule 0 "^[0-9]+ +file +deny +uid=4242 \(audit\) +$FILES/guarded +50-test.toml:18 +0 +active\$" \
  "$CTL" policy show
scopes=$(busctl --system get-property $ENFORCER RuleScopes)
case "$scopes" in
  'a(uss) 1 '[0-9]*' "uid=4242" "audit"') pass rule_scopes_property ;;
  *) fail rule_scopes_property "$scopes" ;;
esac
expect show_subtree_rule_as_written 0 "^[0-9]+ +file +audit +everyone +$FILES/tree/ +50-test.toml:23 +0 +active\$" \
  "$CTL" policy show
expect show_warning 0 "^warning: $POLICY/50-test.toml:6: the directory of '$work/no-such-dir/file' does not exist yet" \
  "$CTL" policy show
# Aligned: every row's PATH column starts where the header's does.
"$CTL" policy show >"$BW_OUT/show-table.txt" 2>&1
python3 - "$BW_OUT/show-table.txt" <<'PY' && pass show_table_aligned || fail show_table_aligned "$(cat "$BW_OUT/show-table.txt")"
import sys
lines = open(sys.argv[1]).read().splitlines()
header = next(i for i, l in enumerate(lines) if l.startswith("ID "))
column = lines[header].index("PATH")
rows = [l for l in lines[header + 1:] if not l.startswith("warning: ")]
assert len(rows) >= 5, rows
for row in rows:
    assert row[column] == "/" and row[column - 2:column] == "  ", row
PY
expect_json show_json 0 \
  "j['generation'] == 1 and j['directory'] == '$POLICY' and len(j['rules']) == $rules and
   any(r['path'] == '$work/no-such-dir/file' and r['state'] == 'inactive: path missing' and r['kind'] == 'file' and
       r['source'] == '$POLICY/50-test.toml:6' for r in j['rules']) and
   any(r['path'] == '$FILES/guarded' and r['state'] == 'active' and r['action'] == 'audit' for r in j['rules']) and
   any(r['scope'] == 'uid=4242' and r['mode'] == 'audit' and r['action'] == 'deny' for r in j['rules']) and
   all(r['hits'] == 0 for r in j['rules']) and
   all(r['scope'] is None for r in j['rules'] if r['path'] != '$FILES/guarded' or r['action'] != 'deny') and
   len(j['warnings']) == 1" \
  "$CTL" policy show --json
expect show_as_nobody 0 "$FILES/guarded .* active" unprivileged "$CTL" policy show

# --- diff: nothing to change -------------------------------------------------------
expect diff_own_directory_unchanged 0 "^no changes: $POLICY matches the running policy \(generation 1\)\$" \
  "$CTL" policy diff
cp -a "$POLICY" "$STAGING"
expect diff_identical_staging_unchanged 0 "^no changes: $STAGING matches" "$CTL" policy diff "$STAGING"

# --- diff: a staging directory that adds, removes and changes -----------------------
# The exec rule (the last block) becomes a new file rule, guarded goes from
# audit to deny, and 60-extra.toml adds a rule whose directory is missing.
test_policy "$(printf '[[file]]\npath = "%s"\naction = "deny"' "$FILES/new")" |
  sed "0,/action = \"audit\"/s//action = \"deny\"/" >"$STAGING/50-test.toml"
printf '[[exec]]\npath = "%s"\naction = "deny"\n' "$work/missing-dir/tool" >"$STAGING/60-extra.toml"
"$CTL" policy diff "$STAGING" >"$BW_OUT/diff.txt" 2>&1
rc=$?
[ $rc = 1 ] && pass diff_differences_exit_1 || fail diff_differences_exit_1 "exit $rc: $(cat "$BW_OUT/diff.txt")"
grep -qxF "+ file $FILES/new deny (50-test.toml:14)" "$BW_OUT/diff.txt" && pass diff_shows_added ||
  fail diff_shows_added "$(cat "$BW_OUT/diff.txt")"
grep -qxF "+ exec $work/missing-dir/tool deny (60-extra.toml:2), inactive: path missing" "$BW_OUT/diff.txt" &&
  pass diff_shows_added_inactive || fail diff_shows_added_inactive "$(cat "$BW_OUT/diff.txt")"
grep -qxF -- "- exec $FILES/tool audit (50-test.toml:14)" "$BW_OUT/diff.txt" && pass diff_shows_removed ||
  fail diff_shows_removed "$(cat "$BW_OUT/diff.txt")"
grep -qxF "~ file $FILES/guarded audit → deny (50-test.toml:2)" "$BW_OUT/diff.txt" && pass diff_shows_changed ||
  fail diff_shows_changed "$(cat "$BW_OUT/diff.txt")"
grep -qxF "2 added, 1 removed, 1 changed, 0 would change state" "$BW_OUT/diff.txt" && pass diff_summary ||
  fail diff_summary "$(cat "$BW_OUT/diff.txt")"
[ "$(grep -c '^[-+~!] ' "$BW_OUT/diff.txt")" = 4 ] && pass diff_lists_nothing_else || fail diff_lists_nothing_else "$(cat "$BW_OUT/diff.txt")"
expect_json diff_json 1 \
  "j['differences'] and j['running']['generation'] == 1 and j['directory'] == '$STAGING' and
   sorted(r['path'] for r in j['added']) == sorted(['$FILES/new', '$work/missing-dir/tool']) and
   [r['path'] for r in j['removed']] == ['$FILES/tool'] and
   [(c['path'], c['running']['action'], c['compiled']['action']) for c in j['changed']] == [('$FILES/guarded', 'audit', 'deny')] and
   j['state_changes'] == []" \
  "$CTL" policy diff "$STAGING" --json
expect_json diff_json_unchanged 0 "not j['differences'] and j['added'] == j['removed'] == j['changed'] == []" \
  "$CTL" policy diff --json
expect diff_as_nobody 1 "2 added, 1 removed, 1 changed" unprivileged "$CTL" policy diff "$STAGING"

# --- diff: errors ---------------------------------------------------------------------
broken="$work/broken"
cp -a "$POLICY" "$broken"
printf '[[file]\npath = "/etc/shadow"\n' >"$broken/70-broken.toml"
check_message=$("$CTL" policy check "$broken" 2>&1 | sed 's/^bpfwardenctl policy check: //')
expect diff_invalid_directory_exit_2 2 "^bpfwardenctl policy diff: $broken/70-broken.toml:1:8: " "$CTL" policy diff "$broken"
[ -n "$check_message" ] && [ "$(sed 's/^bpfwardenctl policy diff: //' "$BW_OUT/diff_invalid_directory_exit_2.log")" = "$check_message" ] &&
  pass diff_invalid_says_what_check_says ||
  fail diff_invalid_says_what_check_says "check: $check_message; diff: $(cat "$BW_OUT/diff_invalid_directory_exit_2.log")"
expect diff_missing_directory_exit_2 2 "'$work/nonexistent': no such file or directory" "$CTL" policy diff "$work/nonexistent"
expect diff_file_not_directory_exit_2 2 "is not a directory" "$CTL" policy diff "$POLICY/50-test.toml"
expect diff_two_directories_exit_2 2 "one DIR at a time \(got 2\)" "$CTL" policy diff "$POLICY" "$STAGING"
expect diff_unknown_option_exit_2 2 "--bogus" "$CTL" policy diff --bogus
expect show_extra_argument_exit_2 2 "." "$CTL" policy show extra
expect apply_unknown_option_exit_2 2 "--bogus" "$CTL" policy apply --bogus

# --- apply: refused, nothing changes ---------------------------------------------------
before=$(generation)
expect apply_staging_refused 2 "refused: bpfwardend reads its policy from '$POLICY', not from '$STAGING'.*follow only that directory" \
  "$CTL" policy apply "$STAGING"
[ "$(generation)" = "$before" ] && pass apply_staging_changes_nothing || fail apply_staging_changes_nothing "generation $(generation), was $before"
expect_json apply_staging_refused_json 2 "j['applied'] is False and j['generation'] == $before and 'refused' in j['error']" \
  "$CTL" policy apply "$STAGING" --json

# An invalid file in the daemon's own directory: bpfwardend keeps its policy
# by itself, and apply refuses before sending anything.
printf '[[file]]\npath = "relative"\naction = "deny"\n' >"$POLICY/70-broken.toml"
wait_for_log "$dlog" "70-broken.toml:2: .*keeping the running policy" 10 && pass daemon_keeps_policy_on_broken_file ||
  fail daemon_keeps_policy_on_broken_file "no refusal in $dlog"
expect apply_invalid_refused 2 "^bpfwardenctl policy apply: $POLICY/70-broken.toml:2: .*relative.*nothing was changed \(generation $before\)" \
  "$CTL" policy apply
[ "$(generation)" = "$before" ] && pass apply_invalid_changes_nothing || fail apply_invalid_changes_nothing "generation $(generation), was $before"
busctl --system call $ENFORCER ListRules | grep -qF "\"file\" \"$FILES/guarded\" \"audit\"" && pass apply_invalid_keeps_rules ||
  fail apply_invalid_keeps_rules "$(busctl --system call $ENFORCER ListRules)"
rm -f "$POLICY/70-broken.toml"
settle
before=$(generation)

# bpfwardend's own refusal (nobody may not reload): its error name and
# message, and the generation read again.
expect apply_refused_by_daemon 2 "^the running policy is unchanged \(generation $before\)\$" \
  unprivileged "$CTL" policy apply "$POLICY"
grep -q "^bpfwardenctl policy apply: org\.bpfwarden\.Error\.AccessDenied: .*ReloadPolicy" "$BW_OUT/apply_refused_by_daemon.log" &&
  pass apply_refusal_names_the_dbus_error || fail apply_refusal_names_the_dbus_error "$(cat "$BW_OUT/apply_refused_by_daemon.log")"
[ "$(generation)" = "$before" ] && pass apply_refused_changes_nothing || fail apply_refused_changes_nothing "generation $(generation), was $before"

# --- a drifted rule: show and diff say so ------------------------------------------------------
ln -sfn "$FILES/v2" "$work/links/current.new" && mv -T "$work/links/current.new" "$work/links/current"
expect show_drifted_rule 0 "^[0-9]+ +file +audit +everyone +$work/links/current/f +50-test.toml:10 +0 +drifted: names inode $(stat -c %i "$FILES/v2/f")" \
  "$CTL" policy show
expect diff_drifted_rule_is_a_state_change 1 \
  "^! file $work/links/current/f audit \(50-test.toml:10\): drifted: names inode .* → active\$" "$CTL" policy diff
expect diff_drift_summary 1 "^0 added, 0 removed, 0 changed, 1 would change state\$" "$CTL" policy diff

# --- apply: the daemon's own directory ---------------------------------------------------------
before=$(generation)
expect apply_own_directory 0 "^applied: generation $((before + 1)) \(was $before\), $rules rules\$" "$CTL" policy apply
[ "$(generation)" = $((before + 1)) ] && pass apply_raises_generation || fail apply_raises_generation "generation $(generation), was $before"
grep -q "policy: reloaded .*ReloadPolicy by uid 0" "$dlog" && pass apply_logged_by_daemon || fail apply_logged_by_daemon "no log line"
expect show_after_apply_active 0 "^[0-9]+ +file +audit +everyone +$work/links/current/f +50-test.toml:10 +0 +active\$" "$CTL" policy show
expect diff_after_apply_unchanged 0 "^no changes" "$CTL" policy diff
before=$(generation)
expect_json apply_json 0 \
  "j['applied'] is True and j['generation'] == $before + 1 and j['previous_generation'] == $before and
   j['rules'] == $rules and j['directory'] == '$POLICY'" \
  "$CTL" policy apply "$work/links/../policy.d" --json

# --- help -----------------------------------------------------------------------------------------
expect policy_help_lists_show 0 "^  show  " "$CTL" policy --help
expect policy_help_lists_diff 0 "^  diff \[DIR\]  " "$CTL" policy --help
expect policy_help_lists_apply 0 "^  apply \[DIR\]  " "$CTL" policy --help
for sub in show diff apply; do
  expect "${sub}_help" 0 "Usage: bpfwardenctl policy $sub" "$CTL" policy "$sub" --help
done
expect diff_help_exit_status 0 "0 no difference, 1 differences, 2 an error" "$CTL" policy diff --help

# --- bpfwardend gone ----------------------------------------------------------------------------
stop_daemon
expect show_unreachable 2 "cannot read the running policy: org.bpfwarden.Enforcer1 is not on the system bus" "$CTL" policy show
expect diff_unreachable 2 "cannot read the running policy: org.bpfwarden.Enforcer1 is not on the system bus" \
  "$CTL" policy diff "$STAGING"
expect diff_default_unreachable 2 "is not on the system bus" "$CTL" policy diff
expect apply_unreachable 2 "cannot reach bpfwardend: .*is not on the system bus.*nothing was changed" "$CTL" policy apply "$POLICY"
expect_json show_unreachable_json 2 "'not on the system bus' in j['error']" "$CTL" policy show --json

finish
