#!/bin/bash
# `bpfwardenctl doctor`, the BPF hardening checklist, on this machine and on
# fake systems (--root) made here:
#   - on this host: every check reports once, in text and in --json; bpf-lsm,
#     unprivileged-bpf and jit-harden agree with what this test reads from
#     /proc and /sys itself; the exit status is the one the worst finding
#     calls for (3 for any failure); it runs as nobody too;
#   - a hardened fake system exits 0; one warning exits 1; a missing bpf LSM,
#     a development key or a wide pin directory exit 3 with their exact fix;
#   - mistakes in the command exit 2 with a clear message; --help exits 0.
#   doctor_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/doctor-out"
. "$BW_SRC/selftests/guest/lib.sh"
CTL="$BW_BUILD/ctl/bpfwardenctl"
work=$(mktemp -d /tmp/bpfwarden-doctor.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT"
chmod 0755 "$work"
ids="bpf-lsm unprivileged-bpf jit-enabled jit-harden lockdown bpf-stats bpffs pin-directory btf units
development-key trusted-keys memlock"

# severity_of FILE ID: the severity --json output in FILE gives check ID.
severity_of() {
  python3 -c 'import json,sys
checks = {c["id"]: c for c in json.load(open(sys.argv[1]))["checks"]}
print(checks[sys.argv[2]]["severity"] if sys.argv[2] in checks else "absent")' "$1" "$2"
}
# field_of FILE ID FIELD: summary or fix of check ID.
field_of() {
  python3 -c 'import json,sys
checks = {c["id"]: c for c in json.load(open(sys.argv[1]))["checks"]}
print(checks[sys.argv[2]][sys.argv[3]] or "")' "$1" "$2" "$3"
}
# rc_for_worst FILE: the exit status the worst finding in FILE calls for.
rc_for_worst() {
  python3 -c 'import json,sys
print({"ok": 0, "info": 0, "warning": 1, "failure": 3}[json.load(open(sys.argv[1]))["worst"]])' "$1"
}
# expect_severity NAME FILE ID SEVERITY
expect_severity() {
  local got
  got=$(severity_of "$2" "$3")
  [ "$got" = "$4" ] && pass "$1" || fail "$1" "$3 is $got, want $4: $(field_of "$2" "$3" summary)"
}
# expect_field NAME FILE ID FIELD PATTERN (grep -E)
expect_field() {
  local text
  text=$(field_of "$2" "$3" "$4")
  grep -qE -- "$5" <<<"$text" && pass "$1" || fail "$1" "$3's $4 does not match /$5/: $text"
}

# 1. This host.
"$CTL" doctor >"$BW_OUT/host.txt" 2>"$BW_OUT/host.err"
text_rc=$?
"$CTL" doctor --json >"$BW_OUT/host.json" 2>>"$BW_OUT/host.err"
json_rc=$?
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$BW_OUT/host.json" && pass host_json_parses ||
  fail host_json_parses "$(cat "$BW_OUT/host.json")"
missing=""
for id in $ids; do
  [ "$(severity_of "$BW_OUT/host.json" "$id")" = absent ] && missing="$missing $id (json)"
  grep -qE "^(ok|info|warning|failure) +$id +[^ ]" "$BW_OUT/host.txt" || missing="$missing $id (text)"
done
[ -z "$missing" ] && pass host_reports_every_check || fail host_reports_every_check "missing:$missing"
count=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["checks"]))' "$BW_OUT/host.json")
[ "$count" = 13 ] && pass host_one_finding_per_check || fail host_one_finding_per_check "$count findings"
want_rc=$(rc_for_worst "$BW_OUT/host.json")
[ "$json_rc" = "$want_rc" ] && [ "$text_rc" = "$want_rc" ] && pass host_exit_status_is_the_worst_finding ||
  fail host_exit_status_is_the_worst_finding "text $text_rc, json $json_rc, worst calls for $want_rc"
if grep -q '"severity":"failure"' "$BW_OUT/host.json"; then
  [ "$text_rc" = 3 ] && pass host_failure_exits_3 || fail host_failure_exits_3 "exit $text_rc"
fi
# Every finding worse than info comes with a fix, in both forms.
python3 -c 'import json,sys
bad = [c["id"] for c in json.load(open(sys.argv[1]))["checks"] if c["severity"] in ("warning", "failure") and not c["fix"]]
sys.exit(1 if bad else 0)' "$BW_OUT/host.json" && pass host_problems_have_fixes || fail host_problems_have_fixes \
  "$(cat "$BW_OUT/host.json")"
awk '/^(warning|failure) / { want = 1; next } want && !/^ +fix: / { print "no fix after: " prev; bad = 1 }
  { want = 0; prev = $0 } END { exit bad }' "$BW_OUT/host.txt" && pass host_text_fix_lines ||
  fail host_text_fix_lines "$(cat "$BW_OUT/host.txt")"

# What this test reads itself must be what the doctor says.
if grep -qw bpf /sys/kernel/security/lsm 2>/dev/null; then
  expect_severity host_bpf_lsm_matches_lsm_list "$BW_OUT/host.json" bpf-lsm ok
else
  expect_severity host_bpf_lsm_matches_lsm_list "$BW_OUT/host.json" bpf-lsm failure
  expect_field host_bpf_lsm_fix_adds_bpf "$BW_OUT/host.json" bpf-lsm fix \
    "lsm=$(tr -d '\n' </sys/kernel/security/lsm),bpf"
  [ "$text_rc" = 3 ] && pass host_no_bpf_lsm_exits_3 || fail host_no_bpf_lsm_exits_3 "exit $text_rc"
fi
case "$(cat /proc/sys/kernel/unprivileged_bpf_disabled 2>/dev/null)" in
  0) want=failure ;; 1 | 2) want=ok ;; *) want="" ;;
esac
[ -n "$want" ] && expect_severity host_unprivileged_bpf_matches "$BW_OUT/host.json" unprivileged-bpf "$want"
case "$(cat /proc/sys/net/core/bpf_jit_harden 2>/dev/null)" in
  0) want=warning ;; 1) want=info ;; 2) want=ok ;; *) want="" ;;
esac
[ -n "$want" ] && expect_severity host_jit_harden_matches "$BW_OUT/host.json" jit-harden "$want"
if [ ! -d /run/systemd/system ]; then
  expect_field host_units_not_checked_without_systemd "$BW_OUT/host.json" units summary \
    "not checked: systemd is not running"
fi

setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" doctor --json >"$BW_OUT/nobody.json" 2>&1
rc=$?
python3 -c 'import json,sys; sys.exit(0 if len(json.load(open(sys.argv[1]))["checks"]) == 13 else 1)' \
  "$BW_OUT/nobody.json" && [ "$rc" = "$(rc_for_worst "$BW_OUT/nobody.json")" ] && pass runs_as_nobody ||
  fail runs_as_nobody "exit $rc: $(cat "$BW_OUT/nobody.json")"

# 2. Fake systems under --root.
# hardened_tree DIR: a system as the checklist wants it.
hardened_tree() {
  local root=$1
  mkdir -p "$root/proc/sys/kernel" "$root/proc/sys/net/core" "$root/sys/kernel/security" "$root/sys/kernel/btf" \
    "$root/etc/bpfwarden/keys" "$root/sys/fs/bpf/bpfwarden" "$root/run/systemd/system"
  echo 2 >"$root/proc/sys/kernel/unprivileged_bpf_disabled"
  echo 1 >"$root/proc/sys/net/core/bpf_jit_enable"
  echo 2 >"$root/proc/sys/net/core/bpf_jit_harden"
  echo 0 >"$root/proc/sys/kernel/bpf_stats_enabled"
  echo 6.1.0-13-amd64 >"$root/proc/sys/kernel/osrelease"
  echo "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro quiet" >"$root/proc/cmdline"
  printf 'sysfs /sys sysfs rw 0 0\nbpf /sys/fs/bpf bpf rw,nosuid,mode=700 0 0\n' >"$root/proc/mounts"
  echo "lockdown,capability,landlock,yama,apparmor,bpf" >"$root/sys/kernel/security/lsm"
  echo "none [integrity] confidentiality" >"$root/sys/kernel/security/lockdown"
  head -c 4096 /dev/zero >"$root/sys/kernel/btf/vmlinux"
  chmod 0700 "$root/sys/fs/bpf/bpfwarden"
  chmod 0755 "$root/etc/bpfwarden/keys"
  "$CTL" keygen --private "$root/host-signing.key" --public "$root/etc/bpfwarden/keys/host-signing.pem" >/dev/null
}
# doctor_on NAME ROOT [ARGS...]: --json into $BW_OUT/NAME.json, exit status in $rc.
doctor_on() {
  local name=$1 root=$2
  shift 2
  "$CTL" doctor --json --root "$root" "$@" >"$BW_OUT/$name.json" 2>&1
  rc=$?
}

hardened_tree "$work/hardened"
doctor_on hardened "$work/hardened"
[ "$rc" = 0 ] && pass hardened_root_exits_0 || fail hardened_root_exits_0 "exit $rc: $(cat "$BW_OUT/hardened.json")"
python3 -c 'import json,sys
checks = json.load(open(sys.argv[1]))["checks"]
sys.exit(0 if all(c["severity"] in ("ok", "info") for c in checks) and len(checks) == 13 else 1)' \
  "$BW_OUT/hardened.json" && pass hardened_root_all_ok || fail hardened_root_all_ok "$(cat "$BW_OUT/hardened.json")"
# Another system's systemd cannot be asked: this host's must not answer for it.
expect_field root_units_not_asked "$BW_OUT/hardened.json" units summary "is not the running system"
expect "hardened_root_text" 0 "^ok +trusted-keys +/etc/bpfwarden/keys: 1 trusted key \(host-signing.pem ed25519\)" \
  "$CTL" doctor --root "$work/hardened"

cp -a "$work/hardened" "$work/soft"
echo 0 >"$work/soft/proc/sys/net/core/bpf_jit_harden"
doctor_on soft "$work/soft"
[ "$rc" = 1 ] && pass one_warning_exits_1 || fail one_warning_exits_1 "exit $rc: $(cat "$BW_OUT/soft.json")"
expect_field jit_harden_fix "$BW_OUT/soft.json" jit-harden fix "^sysctl -w net.core.bpf_jit_harden=2"

cp -a "$work/hardened" "$work/nolsm"
echo "lockdown,capability,landlock,yama,apparmor" >"$work/nolsm/sys/kernel/security/lsm"
doctor_on nolsm "$work/nolsm"
[ "$rc" = 3 ] && pass no_bpf_lsm_exits_3 || fail no_bpf_lsm_exits_3 "exit $rc: $(cat "$BW_OUT/nolsm.json")"
expect_field no_bpf_lsm_fix "$BW_OUT/nolsm.json" bpf-lsm fix \
  "^add lsm=lockdown,capability,landlock,yama,apparmor,bpf to the kernel command line \(GRUB_CMDLINE_LINUX"
expect "no_bpf_lsm_text" 3 "^failure +bpf-lsm +bpf is not an active LSM" "$CTL" doctor --root "$work/nolsm"

cp -a "$work/hardened" "$work/devkey"
mkdir -p "$work/devkey/opt/keys"
"$CTL" keygen --private "$work/dev-signing.key" --public "$work/devkey/opt/keys/dev-signing.pem" >/dev/null
doctor_on devkey "$work/devkey" --keys-dir /opt/keys
[ "$rc" = 3 ] && pass development_key_exits_3 || fail development_key_exits_3 "exit $rc: $(cat "$BW_OUT/devkey.json")"
expect_severity development_key_failure "$BW_OUT/devkey.json" development-key failure
expect_field development_key_removed "$BW_OUT/devkey.json" development-key fix "^rm /opt/keys/dev-signing.pem$"

chmod 0755 "$work/soft/sys/fs/bpf/bpfwarden"
doctor_on widepins "$work/soft"
[ "$rc" = 3 ] && pass wide_pin_directory_exits_3 || fail wide_pin_directory_exits_3 "exit $rc"
expect_field wide_pin_directory_fix "$BW_OUT/widepins.json" pin-directory fix "^chmod 0700 /sys/fs/bpf/bpfwarden$"
doctor_on otherpins "$work/hardened" --pin-root /sys/fs/bpf/elsewhere
expect_field pin_root_option "$BW_OUT/otherpins.json" pin-directory summary "^/sys/fs/bpf/elsewhere does not exist"

# 3. The command line.
expect help_exits_0 0 "Exit status: 0 nothing worse than info; 1 .*warning" "$CTL" doctor --help
help=$("$CTL" doctor --help | tr '\n' ' ')
unlisted=""
for id in $ids; do
  grep -qE "[ :]$id[,.]" <<<"$help" || unlisted="$unlisted $id"
done
[ -z "$unlisted" ] && pass help_lists_every_check || fail help_lists_every_check "not in --help:$unlisted"
expect usage_lists_doctor 0 "^  doctor +" "$CTL" --help
expect unknown_option_exits_2 2 "bpfwardenctl doctor: --bogus: unknown option" "$CTL" doctor --bogus
expect missing_root_exits_2 2 "bpfwardenctl doctor: --root: '$work/none' does not exist" \
  "$CTL" doctor --root "$work/none"
expect root_needs_value_exits_2 2 "bpfwardenctl doctor: --root: needs a value" "$CTL" doctor --root
expect extra_argument_exits_2 2 "bpfwardenctl doctor: unexpected argument 'now'" "$CTL" doctor now

finish
