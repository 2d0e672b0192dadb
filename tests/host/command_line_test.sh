#!/bin/bash
# Every option of bpfwardend, bpfwarden-watchdog and each bpfwardenctl
# command, as --help lists it: a missing value, a bad value and a misspelt
# name each exit 2 with a message naming the option and the reason, in the
# same words for every program. Directories the services need that do not
# exist are named, never skipped.
#   command_line_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/command-line-out"
. "$BW_SRC/selftests/guest/lib.sh"
CTL="$BW_BUILD/ctl/bpfwardenctl"
work=$(mktemp -d /tmp/bpfwarden-clitest.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT"

# expect_usage NAME PATTERN COMMAND...: exit 2 and stderr matching PATTERN.
expect_usage() {
  local name=$1 pattern=$2 err rc
  shift 2
  err=$("$@" 2>&1 >/dev/null </dev/null)
  rc=$?
  if [ $rc = 2 ] && grep -qE -- "$pattern" <<<"$err"; then pass "$name"
  else fail "$name" "exit $rc, stderr: $err"; fi
}

# The options of a command that take a value: "NAME VALUE" per line.
options_with_values() {
  "$@" --help | sed -nE 's/^  (-[a-z],)?(--[a-z-]+)(,--[a-z-]+)? ([A-Za-z|]+)( .*)?$/\2 \4/p'
}

sweep() {  # LABEL COMMAND...: every option of COMMAND
  local label=$1 option value prog count=0
  shift
  prog=$(basename "$1")
  [ $# -gt 1 ] && prog="$prog $2"
  while read -r option value; do
    count=$((count + 1))
    expect_usage "${label}_${option#--}_missing_value" "^$prog: $option: needs a value \($value\)$" "$@" "$option"
    case "$value" in
      N|S|VERSION)
        expect_usage "${label}_${option#--}_not_a_number" "^$prog: $option: 'lots' is not a whole number \(expected [0-9]+\.\.[0-9]+\)$" \
          "$@" "$option" lots ;;
      *"|"*)
        expect_usage "${label}_${option#--}_bad_choice" "^$prog: $option: 'bogus' is not one of " "$@" "$option" bogus ;;
    esac
    expect_usage "${label}_${option#--}_misspelt" "^$prog: ${option}x: unknown option \(did you mean $option\?\)$" \
      "$@" "${option}x" value
  done < <(options_with_values "$@")
  swept=$((swept + count))
  expect_usage "${label}_unknown_option" "^$prog: --no-such-option: unknown option$" "$@" --no-such-option
  grep -q "^Try '$prog --help'.$" < <("$@" --no-such-option 2>&1) && pass "${label}_points_to_help" \
    || fail "${label}_points_to_help" "no hint"
}

swept=0
sweep daemon "$BW_DAEMON"
sweep watchdog "$BW_WATCHDOG"
for command in status metrics doctor unpin keygen sign verify allow-downgrade events inventory contain; do
  sweep "ctl_${command//-/_}" "$CTL" "$command"
done

[ "$swept" -ge 30 ] && pass "options_swept ($swept)" || fail options_swept "only $swept options found in --help"

# Ranges in messages match the help.
"$BW_DAEMON" --help | grep -q -- "--rate-limit N .*(1..1000000; default 64)" && pass rate_limit_range_in_help \
  || fail rate_limit_range_in_help "$("$BW_DAEMON" --help | grep rate-limit)"
expect_usage rate_limit_zero_out_of_range "^bpfwardend: --rate-limit: '0' is out of range \(expected 1\.\.1000000\)$" \
  "$BW_DAEMON" --rate-limit 0
expect_usage conflicting_options_named "^bpfwarden-watchdog: --once and --check cannot be used together$" \
  "$BW_WATCHDOG" --once --check
expect_usage required_option_named "^bpfwardenctl sign: --key is required$" "$CTL" sign --version 2
expect_usage unexpected_argument_named "^bpfwardend: unexpected argument 'stray'$" "$BW_DAEMON" stray
expect_usage unknown_command_suggested "^bpfwardenctl: unknown command 'stauts' \(did you mean 'status'\?\)$" "$CTL" stauts

# Directories the services need: a missing one is named.
service_args=(--image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$work/state" --policy-dir "$work/policy.d"
              --canary "$work/state/canary" --pin-root "/sys/fs/bpf/bpfwarden-clitest-$$" --log-target stderr
              --no-dbus)
mkdir -p "$work/state" "$work/policy.d"
expect_named() {  # NAME PROGRAM OPTION: PROGRAM with OPTION pointing nowhere names it
  local out rc
  out=$("$2" "${service_args[@]}" "$3" "$work/missing" --exit-after-setup 2>&1)
  rc=$?
  if [ $rc != 0 ] && grep -q "'$work/missing" <<<"$out"; then pass "$1"; else fail "$1" "exit $rc: $out"; fi
}
for option in --policy-dir --image-dir --keys-dir --state-dir; do
  expect_named "daemon_missing_${option#--}_named" "$BW_DAEMON" "$option"
done
# A --policy-dir given that names no directory is a mistake in the command
# (exit 2), not an invalid policy: the last good policy stands in only for a
# policy directory that exists but does not compile, or for the default one
# gone missing (tests/unit/last_good_policy_test.cpp).
expect_usage daemon_missing_policy_dir_is_usage_error \
  "^bpfwardend: --policy-dir: '$work/missing' does not exist \(or is not a directory\)$" \
  "$BW_DAEMON" "${service_args[@]}" --policy-dir "$work/missing" --exit-after-setup
expect_usage watchdog_missing_policy_dir_is_usage_error \
  "^bpfwarden-watchdog: --policy-dir: '$work/missing' does not exist \(or is not a directory\)$" \
  "$BW_WATCHDOG" --check --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$work/state" \
  --pin-root "/sys/fs/bpf/bpfwarden-clitest-$$" --log-target stderr --policy-dir "$work/missing"
[ ! -e "/sys/fs/bpf/bpfwarden-clitest-$$" ] && pass missing_directories_load_nothing \
  || { fail missing_directories_load_nothing "pins were created"; "$CTL" unpin --yes --pin-root "/sys/fs/bpf/bpfwarden-clitest-$$"; }
out=$("$BW_WATCHDOG" --check --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$work/missing" \
  --policy-dir "$work/policy.d" --pin-root "/sys/fs/bpf/bpfwarden-clitest-$$" --log-target stderr 2>&1)
rc=$?
[ $rc = 1 ] && grep -q "state directory '$work/missing' does not exist" <<<"$out" \
  && pass watchdog_missing_state_dir_named || fail watchdog_missing_state_dir_named "exit $rc: $out"

# events: filters that could never match are refused, naming the reason.
expect_usage events_comm_too_long "^bpfwardenctl events: --comm: 'averyveryverylongname' is 21 bytes; the kernel keeps at most 15" \
  "$CTL" events --comm averyveryverylongname
expect_usage events_comm_bad_character "^bpfwardenctl events: --comm: 'a/b' has '/': a command name filter takes only" \
  "$CTL" events --comm a/b
expect_usage events_since_not_a_time "^bpfwardenctl events: --since: 'yesterday' is not a time" "$CTL" events --since yesterday
expect_usage events_since_and_lines_conflict "^bpfwardenctl events: --since and --lines cannot be used together$" \
  "$CTL" events --since -1h --lines 5

# --log-target journal where no journald listens: everything still reaches
# stderr, after a warning that says why (a mount namespace hides the socket
# where this host has one).
out=$(unshare -m sh -c 'if [ -d /run/systemd/journal ]; then mount -t tmpfs bw-nojournal /run/systemd/journal; fi
  exec "$@"' sh "$BW_WATCHDOG" --check --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$work/missing" \
  --policy-dir "$work/policy.d" --pin-root "/sys/fs/bpf/bpfwarden-clitest-$$" --log-target journal 2>&1)
grep -q "warning: no journal to log to (/run/systemd/journal/socket: No such file or directory); logging to stderr instead" <<<"$out" &&
  grep -q "state directory '$work/missing' does not exist" <<<"$out" && pass log_target_journal_falls_back_to_stderr ||
  fail log_target_journal_falls_back_to_stderr "$out"

finish
