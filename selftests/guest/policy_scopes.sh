#!/bin/bash
# Guest suite: who a rule is for, and audit modes (docs/POLICY.md, "Scopes"
# and "Audit mode"). A scoped deny is EPERM inside its scope (unit, cgroup,
# uid, gid, executable) while the same open outside succeeds; a unit's scope
# follows the unit to a new cgroup of the same name, and a same-named cgroup
# in another slice (a user's own manager) is not the unit; an entry's rule
# for everyone still applies outside the scope; a scope's audit mode and the
# policy's audit mode, switched live, let the open through and report
# "would-deny", while the watchdog's canary stays denied; a bpf.allow entry
# holds in its scope only; 110 000 rules apply live; a signed policy
# bundle is enforced and a file weakened after signing is refused. Runs in
# the VM as root, with cgroup2 at /sys/fs/cgroup (no systemd: the cgroups a
# unit would get are made by hand).
. "$(dirname "$0")/lib.sh"

work=/tmp/scopes
cg=/sys/fs/cgroup
unit_cg="$cg/system.slice/bwscope.service"
user_cg="$cg/user.slice/bwscope.service"
plain_cg="$cg/bwscope-plain"
mkdir -p "$work/policy.d" "$work/bin" "$unit_cg/worker" "$user_cg" "$plain_cg"
cleanup_cgroups() {
  for dir in "$unit_cg/worker" "$unit_cg" "$user_cg" "$cg/user.slice" "$plain_cg" "$cg/system.slice"; do
    rmdir "$dir" 2>/dev/null
  done
}
trap cleanup_cgroups EXIT
for name in unit-secret user-secret cgroup-secret exe-secret gid-secret mixed-secret audit-secret always-secret public; do
  echo "$name" >"$work/$name"
  chmod 644 "$work/$name"
done
chmod 755 "$work" "$work/bin"
cp "$BW_TRY" "$work/bin/scoped-try"   # the exe scope's executable: a copy of bw-try
cp /bin/true "$work/bin/listed-true"  # listed in the allowlists below
cp /bin/true "$work/bin/copy-true"    # a copy of it: not listed
cp "$BW_TRY" "$work/bin/scoped-loader" # allowed bpf() in the plain cgroup only

cat >"$work/policy.d/50-scopes.toml" <<TOML
protect = false

[scope.worker]
uid = 4321

[[file]]
path = "$work/unit-secret"
action = "deny"
scope = { unit = "bwscope.service" }

[[file]]
path = "$work/user-secret"
action = "deny"
scope = "worker"

[[file]]
path = "$work/cgroup-secret"
action = "deny"
scope = { cgroup = "$plain_cg" }

[[file]]
path = "$work/exe-secret"
action = "deny"
scope = { exe = "$work/bin/scoped-try" }

[[file]]
path = "$work/gid-secret"
action = "deny"
scope = { gid = 4322 }

# For everyone: audit; for the worker: deny.
[[file]]
path = "$work/mixed-secret"
action = "audit"

[[file]]
path = "$work/mixed-secret"
action = "deny"
scope = "worker"

[[file]]
path = "$work/audit-secret"
action = "deny"
scope = { uid = 4323, mode = "audit" }

# Denied to everyone in every policy of the live applies below.
[[file]]
path = "$work/always-secret"
action = "deny"

# uid 4330 runs bw-try, one copy of true, and the libraries under /usr/lib.
[[allowlist]]
scope = { uid = 4330 }
exec = ["$BW_TRY", "$work/bin/listed-true", "/usr/lib/"]

# uid 4331: the same list, reported only.
[[allowlist]]
scope = { uid = 4331 }
exec = ["$BW_TRY", "$work/bin/listed-true", "/usr/lib/"]
mode = "audit"

# Program loads: only by the scoped loader, and only in the plain cgroup.
[bpf]
mode = "deny"
allow = [{ path = "$work/bin/scoped-loader", scope = { cgroup = "$plain_cg" } }]
TOML

log="$BW_OUT/daemon.log"
wlog="$BW_OUT/watchdog.log"
echo "== kernel $(uname -r)"
start_daemon "$log" --policy-dir "$work/policy.d" || { fail daemon_start "see $log"; finish; exit; }
start_watchdog "$wlog" --policy-dir "$work/policy.d" --interval-ms 500 --status-file "$BW_STATE/status.json" ||
  fail watchdog_start "see $wlog"
expect_log watchdog_healthy_at_start "$wlog" "bpfwarden-watchdog: healthy"

# in_cgroup DIR CMD...: CMD as a process of cgroup DIR (as systemd starts a unit's).
in_cgroup() {
  local dir=$1
  shift
  sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$dir" "$@"
}
# as_ids UID GID CMD...
as_ids() { setpriv --reuid="$1" --regid="$2" --clear-groups "${@:3}"; }

# expect_try_in NAME RESULT PREFIX... -- BW-TRY-ARGS...: expect_try, run through PREFIX.
expect_try_in() {
  local name=$1 want=$2
  shift 2
  local prefix=()
  while [ "$1" != "--" ]; do prefix+=("$1"); shift; done
  shift
  TRY_LINE=$("${prefix[@]}" "$BW_TRY" "$@" 2>&1 | tail -n 1)
  TRY_PID=$(echo "$TRY_LINE" | sed -n 's/.*child=\([0-9]*\).*/\1/p')
  [ -n "$TRY_PID" ] || TRY_PID=$(echo "$TRY_LINE" | sed -n 's/^bw-try pid=\([0-9]*\) .*/\1/p')
  case "$TRY_LINE" in
    *"result=$want"*) pass "$name" ;;
    *) fail "$name" "expected result=$want, got: $TRY_LINE" ;;
  esac
}

# --- Unit scope: by the cgroup's name and its slice's -----------------------
expect_try_in unit_scope_denies_inside EPERM in_cgroup "$unit_cg" -- open "$work/unit-secret"
expect_log scoped_denial_reported "$log" "file_open deny .*pid=$TRY_PID .*path=\"$work/unit-secret\""
expect_try_in unit_scope_other_file_opens ok in_cgroup "$unit_cg" -- open "$work/public"
expect_try unit_scope_outside_opens ok open "$work/unit-secret"
expect_try_in unit_scope_covers_sub_cgroups EPERM in_cgroup "$unit_cg/worker" -- open "$work/unit-secret"
expect_try_in same_name_in_user_slice_is_not_the_unit ok in_cgroup "$user_cg" -- open "$work/unit-secret"
# A restart: the unit's cgroup is removed and made anew (a new cgroup id).
if rmdir "$unit_cg/worker" "$unit_cg" && mkdir "$unit_cg"; then
  expect_try_in unit_scope_follows_a_new_cgroup EPERM in_cgroup "$unit_cg" -- open "$work/unit-secret"
else
  fail unit_scope_follows_a_new_cgroup "could not remove and re-create $unit_cg"
fi

# --- cgroup, uid, gid and executable scopes ---------------------------------
expect_try_in cgroup_scope_denies_inside EPERM in_cgroup "$plain_cg" -- open "$work/cgroup-secret"
expect_try cgroup_scope_outside_opens ok open "$work/cgroup-secret"
expect_try_in uid_scope_denies_the_uid EPERM as_ids 4321 100 -- open "$work/user-secret"
expect_try_in uid_scope_other_uid_opens ok as_ids 4320 100 -- open "$work/user-secret"
expect_try uid_scope_root_opens ok open "$work/user-secret"
expect_try_in gid_scope_denies_the_gid EPERM as_ids 100 4322 -- open "$work/gid-secret"
expect_try_in gid_scope_other_gid_opens ok as_ids 100 4320 -- open "$work/gid-secret"
expect_try_in gid_scope_denies_a_supplementary_group EPERM \
  setpriv --reuid=100 --regid=100 --groups=4320,4322 -- open "$work/gid-secret"
BW_TRY="$work/bin/scoped-try" expect_try exe_scope_denies_the_executable EPERM open "$work/exe-secret"
BW_TRY="$work/bin/scoped-try" expect_try exe_scope_other_file_opens ok open "$work/public"
expect_try exe_scope_other_executable_opens ok open "$work/exe-secret"
# An upgrade replaces the scope's executable (a new inode): the daemon follows.
cp "$BW_TRY" "$work/bin/scoped-try.new" && mv -f "$work/bin/scoped-try.new" "$work/bin/scoped-try"
expect_log exe_scope_re_resolved_after_replacement "$log" "policy: re-resolved rule paths"
BW_TRY="$work/bin/scoped-try" expect_try_within exe_scope_follows_a_replaced_executable EPERM 10 \
  open "$work/exe-secret"

# A cgroup removed and made again (a new id): the daemon follows its path.
if rmdir "$plain_cg" && mkdir "$plain_cg"; then
  expect_log cgroup_scope_re_resolved_after_recreation "$log" "policy: re-resolved rule paths.*bwscope-plain"
  # (the removal and the creation may be applied one after the other)
  for _ in $(seq 50); do
    TRY_LINE=$(in_cgroup "$plain_cg" "$BW_TRY" open "$work/cgroup-secret" 2>&1 | tail -n 1)
    case "$TRY_LINE" in *result=EPERM*) break ;; esac
    sleep 0.2
  done
  case "$TRY_LINE" in
    *result=EPERM*) pass cgroup_scope_follows_a_new_cgroup ;;
    *) fail cgroup_scope_follows_a_new_cgroup "not denied within 10 s: $TRY_LINE" ;;
  esac
else
  fail cgroup_scope_follows_a_new_cgroup "could not remove and re-create $plain_cg"
fi

# --- A scoped bpf.allow entry: the loader may load programs in its scope only
BW_TRY="$work/bin/scoped-loader" expect_try_in scoped_bpf_allow_loads_in_scope ok in_cgroup "$plain_cg" -- prog-load
BW_TRY="$work/bin/scoped-loader" expect_try scoped_bpf_allow_refused_outside EPERM prog-load
expect_log scoped_bpf_allow_refusal_reported "$log" "bpf_check deny .*pid=$TRY_PID .*cmd=prog_load"
expect_try_in unlisted_loader_refused_in_scope EPERM in_cgroup "$plain_cg" -- prog-load

# --- One file: a rule for the worker, and one for everyone else --------------
expect_try_in scoped_rule_applies_in_scope EPERM as_ids 4321 100 -- open "$work/mixed-secret"
expect_try_in rule_for_everyone_applies_outside ok as_ids 4320 100 -- open "$work/mixed-secret"
expect_log rule_for_everyone_audits_outside "$log" "file_open audit .*pid=$TRY_PID .*path=\"$work/mixed-secret\""

# --- A scope's audit mode ---------------------------------------------------
expect_try_in scope_audit_mode_lets_through ok as_ids 4323 100 -- open "$work/audit-secret"
expect_log scope_audit_mode_reports_would_deny "$log" "file_open would-deny .*pid=$TRY_PID .*path=\"$work/audit-secret\""
expect_try_in scope_audit_mode_leaves_others_alone ok as_ids 4320 100 -- open "$work/audit-secret"

# --- Exec allowlists ----------------------------------------------------------
expect_try_in allowlisted_binary_runs ok as_ids 4330 100 -- exec "$work/bin/listed-true"
expect_try_in copy_of_listed_binary_refused EPERM as_ids 4330 100 -- exec "$work/bin/copy-true"
expect_log allowlist_refusal_reported "$log" "exec_check deny .*pid=$TRY_PID .*path=\"$work/bin/copy-true\""
expect_try_in ldso_of_unlisted_binary_refused EPERM as_ids 4330 100 -- ldso-exec "$work/bin/copy-true"
expect_try_in ldso_of_listed_binary_runs ok as_ids 4330 100 -- ldso-exec "$work/bin/listed-true"
expect_try_in mmap_exec_of_unlisted_file_refused EPERM as_ids 4330 100 -- mmap-exec "$work/bin/copy-true"
expect_try_in mmap_exec_of_listed_file_ok ok as_ids 4330 100 -- mmap-exec "$work/bin/listed-true"
expect_try_in memfd_copy_of_listed_binary_refused EPERM as_ids 4330 100 -- memfd-exec "$work/bin/listed-true"
expect_try unlisted_binary_runs_outside_the_scope ok exec "$work/bin/copy-true"
expect_try_in audit_allowlist_lets_unlisted_run ok as_ids 4331 100 -- exec "$work/bin/copy-true"
expect_log audit_allowlist_reports_would_deny "$log" \
  "exec_check would-deny .*pid=$TRY_PID .*path=\"$work/bin/copy-true\""

# applied_after N [SECONDS]: the daemon applied an edit of its directory more
# than N times (within SECONDS, default 10).
applies() { grep -c "policy: applied the edited policy directory" "$log"; }
applied_after() {
  local before=$1 limit=${2:-10} waited=0
  while [ "$(applies)" -le "$before" ]; do
    [ "$waited" -ge $((limit * 10)) ] && return 1
    sleep 0.1
    waited=$((waited + 1))
  done
}

# --- Live applies never open a gap --------------------------------------------
# Rules in both the old and the new policy (one for everyone, one scoped) stay
# denied while scoped rules come and go.
nice -n 19 "$BW_TRY" open-loop "$work/always-secret" >"$BW_OUT/canary.log" 2>&1 &
canary=$!
# (setpriv itself, not the as_ids function: $! must be the canary's pid)
setpriv --reuid=4321 --regid=100 --clear-groups nice -n 19 "$BW_TRY" open-loop "$work/mixed-secret" \
  >"$BW_OUT/scoped-canary.log" 2>&1 &
scoped_canary=$!
churn_ok=1
for round in 1 2 3; do
  before=$(applies)
  printf '[[file]]\npath = "%s"\naction = "deny"\nscope = { uid = %d }\n' "$work/public" $((5000 + round)) \
    >"$work/policy.d/60-churn.toml"
  applied_after "$before" || churn_ok=0
  before=$(applies)
  rm -f "$work/policy.d/60-churn.toml"
  applied_after "$before" || churn_ok=0
done
[ "$churn_ok" = 1 ] && pass live_applies_done || fail live_applies_done "an edit was not applied within 10 s"
kill -TERM "$canary" "$scoped_canary"
wait "$canary" "$scoped_canary"
for file in canary scoped-canary; do
  line=$(tail -n 1 "$BW_OUT/$file.log")
  case "$line" in
    *"attempts=0 "*) fail "${file//-/_}_never_opened_during_applies" "it never ran: $line" ;;
    *" successes=0 "*) pass "${file//-/_}_never_opened_during_applies" ;;
    *) fail "${file//-/_}_never_opened_during_applies" "$line" ;;
  esac
done

# --- The policy's audit mode, switched live (the daemon follows its directory)
before=$(applies)
printf 'mode = "audit"\n' >"$work/policy.d/10-mode.toml"
applied_after "$before" && pass audit_mode_applied_live || fail audit_mode_applied_live "not applied within 10 s"
expect_try_in policy_audit_mode_lets_through ok as_ids 4321 100 -- open "$work/user-secret"
expect_log policy_audit_mode_reports_would_deny "$log" "file_open would-deny .*pid=$TRY_PID .*path=\"$work/user-secret\""
expect_try canary_still_denied_in_audit_mode EPERM open "$BW_CANARY"
before=$(applies)
rm -f "$work/policy.d/10-mode.toml"
applied_after "$before" && pass enforce_mode_applied_live || fail enforce_mode_applied_live "not applied within 10 s"
expect_try_in policy_enforces_again EPERM as_ids 4321 100 -- open "$work/user-secret"
expect_log watchdog_stays_healthy "$wlog" "bpfwarden-watchdog: healthy"
if grep -q "rewrote policy maps" "$wlog"; then
  fail watchdog_agrees_with_scoped_maps "$(grep -m1 "rewrote policy maps" "$wlog")"
else
  pass watchdog_agrees_with_scoped_maps
fi

# --- 100 000 file rules and 10 000 exec rules, applied live ---------------------
# One file adds them (on files of their own, so every rule takes map entries),
# the deny holds on the first and the last of them, an open no rule names
# still succeeds, and removing the file gives the files back.
big="$work/big"
mkdir -p "$big"
python3 - "$big" "$work/policy.d/60-big.toml.new" <<'PY'
import os, sys
big, out = sys.argv[1], sys.argv[2]
lines = ["max_rules = 100100\n"]
for kind, count in (("file", 100000), ("exec", 10000)):
    for i in range(count):
        path = f"{big}/{kind}-{i}"
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o755))
        lines.append(f'[[{kind}]]\npath = "{path}"\naction = "deny"\n')
with open(out, "w") as f:
    f.writelines(lines)
PY
before=$(applies)
started=$(date +%s.%N)
mv "$work/policy.d/60-big.toml.new" "$work/policy.d/60-big.toml"
if applied_after "$before" 300; then
  pass hundred_thousand_rules_applied
  echo "   110 000 rules applied in $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $started }") s (emulated guest)"
  grep "policy: applied the edited policy directory" "$log" | tail -n 1
else
  fail hundred_thousand_rules_applied "not applied within 300 s: $(grep -m1 "60-big" "$log")"
fi
expect_try hundred_thousand_rules_first_denied EPERM open "$big/file-0"
expect_try hundred_thousand_rules_last_denied EPERM open "$big/file-99999"
expect_try ten_thousand_exec_rules_last_denied EPERM exec "$big/exec-9999"
expect_try hundred_thousand_rules_unrelated_open_ok ok open "$work/public"
before=$(applies)
rm -f "$work/policy.d/60-big.toml"
applied_after "$before" 300 && pass hundred_thousand_rules_removed_live ||
  fail hundred_thousand_rules_removed_live "not applied within 300 s"
expect_try hundred_thousand_rules_gone_file_opens ok open "$big/file-99999"
rm -rf "$big"

# --- Signed policy bundles (docs/POLICY.md, "Signed policy bundles") -----------
# A new daemon with --require-signed-policy adopts the pins and enforces a
# signed directory; a file weakened after signing is refused and the deny
# holds, while an open the policy does not name still succeeds.
stop_watchdog
stop_daemon
mkdir -p "$work/keys" "$work/signed.d"
cp "$BW_KEYS"/* "$work/keys/"
BW_KEYS="$work/keys"
"$BW_CTL" keygen --private "$work/fleet.key" --public "$work/keys/fleet.pem" >/dev/null
echo signed-secret >"$work/signed-secret"
# (protect = false: the suite stops this daemon with SIGTERM, as the first one)
printf 'protect = false\n[[file]]\npath = "%s"\naction = "deny"\n' "$work/signed-secret" >"$work/signed.d/50-signed.toml"
"$BW_CTL" policy sign "$work/signed.d" --key "$work/fleet.key" --version 1 >"$BW_OUT/sign.log" 2>&1 ||
  fail policy_signed "$(cat "$BW_OUT/sign.log")"
slog="$BW_OUT/daemon-signed.log"
if start_daemon "$slog" --require-signed-policy --policy-dir "$work/signed.d"; then
  expect_log signed_bundle_in_force "$slog" "signed policy bundle version 1 .*signed by fleet.pem"
  expect_try signed_bundle_denies EPERM open "$work/signed-secret"
  expect_try signed_bundle_unrelated_open_allowed ok open "$work/public"
  printf 'protect = false\n[[file]]\npath = "%s"\naction = "audit"\n' "$work/signed-secret" >"$work/signed.d/50-signed.toml"
  expect_log weakened_file_refused "$slog" "50-signed.toml' does not match the signed policy bundle"
  expect_try weakened_file_deny_holds EPERM open "$work/signed-secret"
  stop_daemon
else
  fail signed_daemon_start "see $slog"
fi

finish
