#!/bin/bash
# Signed policy bundles on a host run with --require-signed-policy: the real
# bpfwardend (audit-only, private pin root, private dbus-daemon) and
# bpfwarden-watchdog --check, keys made by `bpfwardenctl keygen`:
#   - a signed directory is applied at start and shown with its rules;
#   - a file edited after signing, an unlisted file, an older bundle (a
#     replayed earlier signed directory) and a runtime AddRule are each
#     refused with the reason, and the running rules and generation stay;
#   - a newly signed bundle is applied and raises the bundles' floor;
#     `policy show`, its JSON and PolicyBundleVersion/-Signer name it;
#   - the watchdog refuses the same tampered directory (it falls back to the
#     last good policy and says why);
#   - `policy sign` refuses an invalid directory and signs nothing;
#     `policy verify` names each problem, exit 1.
#   signed_policy_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/signed-policy-out"
. "$BW_SRC/selftests/guest/lib.sh"
. "$BW_SRC/selftests/guest/lib_dbus.sh"
BW_PINS=/sys/fs/bpf/bpfwarden-signedtest-$$
work=$(mktemp -d /tmp/bpfwarden-signedtest.XXXXXX)
BW_STATE="$work/state"
BW_CANARY="$work/state/canary"
POLICY="$work/policy.d"
FILES="$work/files"
CTL="$BW_BUILD/ctl/bpfwardenctl"
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT" "$POLICY" "$BW_STATE" "$FILES" "$work/keys" "$work/private"
chmod 700 "$BW_STATE" "$work/private"
cleanup() {
  stop_daemon
  stop_private_bus
  "$BW_DAEMON" --unpin --yes --pin-root "$BW_PINS" --log-target stderr >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

generation() { prop "$ENFORCER" PolicyGeneration; }
# expect_refused NAME PATTERN: the daemon logs PATTERN (after its directory
# watch saw the change) and keeps generation $kept and the deny rule.
expect_refused() {
  wait_for_log "$dlog" "$2" 20 && pass "$1_refused" || fail "$1_refused" "no /$2/ in $dlog"
  [ "$(generation)" = "$kept" ] && pass "$1_generation_kept" || fail "$1_generation_kept" "$(generation) != $kept"
  expect "$1_rules_kept" 0 " file +deny +everyone +$FILES/guarded " "$CTL" policy show
}
sign() { "$CTL" policy sign "$POLICY" --key "$work/private/fleet.key" --version "$1" >"$BW_OUT/sign-$1.log" 2>&1; }
rule() { printf '[[file]]\npath = "%s"\naction = "%s"\n' "$FILES/guarded" "$1"; }

# The image set's development key and the fleet's policy key, side by side
# in one trusted directory, as on a host.
cp "$BW_KEYS"/* "$work/keys/"
BW_KEYS="$work/keys"
"$CTL" keygen --private "$work/private/fleet.key" --public "$work/keys/fleet.pem" >/dev/null ||
  { fail keygen "keygen failed"; finish; exit; }
echo data >"$FILES/guarded"
cp "$BW_SRC/policy/default.toml" "$POLICY/00-default.toml"
rule audit >"$POLICY/50-test.toml"
sign 2 && pass sign_v2 || fail sign_v2 "$(cat "$BW_OUT/sign-2.log")"
cp -a "$POLICY" "$work/replay-v2"  # an older signed directory, for the rollback

# --- policy sign / verify without a daemon ---------------------------------------
expect verify_ok 0 "^OK: 2 policy files verified\$" "$CTL" policy verify "$POLICY" --keys "$BW_KEYS" --state-dir "$BW_STATE"
mkdir -p "$work/invalid"
printf '[[file]\npath = "/x"\n' >"$work/invalid/10-broken.toml"
expect sign_refuses_invalid_policy 1 "10-broken.toml:1:.*nothing was signed" \
  "$CTL" policy sign "$work/invalid" --key "$work/private/fleet.key" --version 1
[ ! -e "$work/invalid/policy-bundle" ] && pass sign_wrote_nothing || fail sign_wrote_nothing "policy-bundle written"

# --- the daemon applies the signed directory ---------------------------------------
start_private_bus "$work/bus" || { fail private_bus_starts "see $work/bus/bus.log"; finish; exit; }
dlog="$BW_OUT/daemon.log"
start_daemon "$dlog" --audit-only --require-signed-policy --policy-dir "$POLICY" --pin-root "$BW_PINS" ||
  { fail daemon_start "see $dlog"; finish; exit; }
wait_for_name org.bpfwarden.Enforcer1 10 || { fail daemon_on_bus "see $dlog"; finish; exit; }
grep -q "signed policy bundle version 2 .*signed by fleet.pem (ed25519" "$dlog" && pass daemon_applies_signed_bundle ||
  fail daemon_applies_signed_bundle "$(cat "$dlog")"
expect show_signed_rule 0 " file +audit +everyone +$FILES/guarded " "$CTL" policy show

# --- a newly signed bundle is applied and raises the floor -----------------------------
before=$(generation)
rule deny >"$POLICY/50-test.toml"
sign 3 || fail sign_v3 "$(cat "$BW_OUT/sign-3.log")"
wait_for_log "$dlog" "signed policy bundle version 3 " 20 && pass new_bundle_applied || fail new_bundle_applied "$(cat "$dlog")"
kept=$(generation)
[ "$kept" -gt "$before" ] && pass new_bundle_new_generation || fail new_bundle_new_generation "$before -> $kept"
expect show_new_rule 0 " file +deny +everyone +$FILES/guarded " "$CTL" policy show
expect show_names_the_bundle 0 "^signed policy bundle version 3, signed by fleet.pem \(ed25519, sha256:[0-9a-f]{64}\)\$" \
  "$CTL" policy show
[ "$(prop "$ENFORCER" PolicyBundleVersion)" = 3 ] && prop "$ENFORCER" PolicyBundleSigner | grep -q '^"fleet.pem (ed25519' &&
  pass bundle_properties || fail bundle_properties "$(prop "$ENFORCER" PolicyBundleVersion) $(prop "$ENFORCER" PolicyBundleSigner)"
"$CTL" policy show --json >"$BW_OUT/show.json" 2>&1
python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["bundle"]; sys.exit(0 if b["version"] == 3 and b["signer"].startswith("fleet.pem (ed25519") else 1)' \
  "$BW_OUT/show.json" && pass show_json_bundle || fail show_json_bundle "$(cat "$BW_OUT/show.json")"
[ "$(cat "$BW_STATE/policy-bundle-version")" = 3 ] && pass bundle_floor_raised ||
  fail bundle_floor_raised "$(cat "$BW_STATE/policy-bundle-version" 2>&1)"

# --- what is refused, each with the running policy kept ----------------------------------
rule audit >"$POLICY/50-test.toml"  # weakened after signing
expect_refused edited_file "50-test.toml' does not match the signed policy bundle"
expect apply_refuses_edited 2 "does not match the signed policy bundle.*the running policy stays" "$CTL" policy apply

# The watchdog reads the directory the same way: it refuses the edit too.
"$BW_WATCHDOG" --check --require-signed-policy --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" \
  --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$BW_CANARY" --pin-root "$BW_PINS" --no-dbus \
  --policy-dir "$POLICY" --log-target stderr >"$BW_OUT/watchdog-check.json" 2>"$BW_OUT/watchdog-check.log"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if j["policy_source"] == "last good policy" and "does not match the signed policy bundle" in j["policy_problem"] else 1)
' "$BW_OUT/watchdog-check.json" && pass watchdog_refuses_edited_file ||
  fail watchdog_refuses_edited_file "$(cat "$BW_OUT/watchdog-check.json" "$BW_OUT/watchdog-check.log")"

rule deny >"$POLICY/50-test.toml"
printf '[[file]]\npath = "%s"\naction = "audit"\n' "$FILES/other" >"$POLICY/60-unlisted.toml"
expect_refused unlisted_file "60-unlisted.toml' is not in the signed policy bundle"
rm "$POLICY/60-unlisted.toml"

cp -a "$work/replay-v2/." "$POLICY/"  # into the watched directory
expect_refused older_bundle "policy bundle version 2 is older than the highest accepted version 3"
expect verify_refuses_older 1 "allow-downgrade --policy 2" "$CTL" policy verify "$POLICY" --keys "$BW_KEYS" \
  --state-dir "$BW_STATE"

out=$(busctl --system call $ENFORCER AddRule sss file "$FILES/other" deny 2>&1)
grep -q "require-signed-policy is set" <<<"$out" && pass runtime_rule_refused || fail runtime_rule_refused "$out"
[ ! -e "$POLICY/90-runtime.toml" ] && pass runtime_rule_wrote_nothing || fail runtime_rule_wrote_nothing "written"
[ "$(generation)" = "$kept" ] && pass runtime_rule_generation_kept || fail runtime_rule_generation_kept "$(generation)"

finish
