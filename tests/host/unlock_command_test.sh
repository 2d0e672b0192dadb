#!/bin/bash
# `bpfwardenctl unlock`, both forms, without bpfwardend:
#   - --key makes a token of the documented shape, whose signature the stock
#     openssl CLI verifies with the public key, valid for exactly --for;
#   - bad durations, a missing key, conflicting or missing options are named;
#   - --output writes mode 0600 and never overwrites without --force;
#   - --token refuses a garbled token before it contacts D-Bus (a fake bus
#     socket records any connection), and a well-formed token with no bus
#     fails with "cannot reach bpfwardend".
# The round trip through bpfwardend's Unlock method is not tested here.
#   unlock_command_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/unlock-command-out"
. "$BW_SRC/selftests/guest/lib.sh"
CTL="$BW_BUILD/ctl/bpfwardenctl"
work=$(mktemp -d /tmp/bpfwarden-unlocktest.XXXXXX)
listener_pid=""
cleanup() {
  [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT"
# No test may reach a real bus by accident.
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/no-bus"

# expect NAME RC PATTERN COMMAND...: exit status RC and stderr matching PATTERN.
expect() {
  local name=$1 want_rc=$2 pattern=$3 err rc
  shift 3
  err=$("$@" 2>&1 >"$BW_OUT/$name.stdout" </dev/null)
  rc=$?
  echo "$err" >"$BW_OUT/$name.stderr"
  if [ "$rc" = "$want_rc" ] && grep -qE -- "$pattern" <<<"$err"; then pass "$name"
  else fail "$name" "exit $rc (want $want_rc), stderr: $err"; fi
}
field() { sed -n "s/^$1 //p" "$2"; }  # field NAME TOKEN_FILE

"$CTL" keygen --private "$work/signer.key" --public "$work/signer.pub" >/dev/null \
  || { fail keygen "no key pair"; finish; exit 1; }

# 1. Making tokens.
expect make_token 0 "^token valid until [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z \(single use\)$" \
  "$CTL" unlock --key "$work/signer.key" --for 10m
token="$BW_OUT/make_token.stdout"
if [ "$(wc -l <"$token")" = 5 ] && sed -n 1p "$token" | grep -qx "bpfwarden-unlock-token 1" \
  && sed -n 2p "$token" | grep -qE "^nonce [0-9a-f]{32}$" && sed -n 3p "$token" | grep -qE "^issued [1-9][0-9]*$" \
  && sed -n 4p "$token" | grep -qE "^expires [1-9][0-9]*$" \
  && sed -n 5p "$token" | grep -qE "^signature [A-Za-z0-9+/]{86}==$"; then pass token_shape
else fail token_shape "$(cat "$token")"; fi
now=$(date +%s)
issued=$(field issued "$token")
[ $((issued - now)) -le 0 ] && [ $((now - issued)) -le 60 ] && pass token_issued_now \
  || fail token_issued_now "issued $issued, now $now"
valid_until=$(date -u -d "@$(field expires "$token")" +%Y-%m-%dT%H:%M:%SZ)
grep -q "until $valid_until " "$BW_OUT/make_token.stderr" && pass stderr_names_expiry \
  || fail stderr_names_expiry "want $valid_until: $(cat "$BW_OUT/make_token.stderr")"

# The signature is plain Ed25519 over the first four lines: the openssl CLI agrees.
head -n 4 "$token" >"$work/signed"
field signature "$token" | base64 -d >"$work/signature"
openssl pkeyutl -verify -pubin -inkey "$work/signer.pub" -rawin -in "$work/signed" -sigfile "$work/signature" \
  >/dev/null 2>&1 && pass openssl_verifies_token || fail openssl_verifies_token "openssl pkeyutl -verify refused it"
sed -i 's/^issued .*/issued 1/' "$work/signed"
! openssl pkeyutl -verify -pubin -inkey "$work/signer.pub" -rawin -in "$work/signed" -sigfile "$work/signature" \
  >/dev/null 2>&1 && pass openssl_refuses_changed_token || fail openssl_refuses_changed_token "still verifies"

for spec in 90s:90 10m:600 2h:7200 45:45 24h:86400 1s:1; do
  "$CTL" unlock --key "$work/signer.key" --for "${spec%%:*}" >"$work/t" 2>/dev/null
  lifetime=$(( $(field expires "$work/t") - $(field issued "$work/t") ))
  [ "$lifetime" = "${spec#*:}" ] && pass "lifetime_${spec%%:*}" || fail "lifetime_${spec%%:*}" "lifetime $lifetime"
done
nonce_a=$(field nonce "$token")
"$CTL" unlock --key "$work/signer.key" --for 10m >"$work/t2" 2>/dev/null
[ -n "$nonce_a" ] && [ "$nonce_a" != "$(field nonce "$work/t2")" ] && pass fresh_nonce_each_time \
  || fail fresh_nonce_each_time "nonce repeated: $nonce_a"

# 2. Mistakes: exit 2 with the option and the reason, 1 for a missing key.
expect for_zero 2 "^bpfwardenctl unlock: --for: '0' is out of range \(expected 1s\.\.24h\)$" \
  "$CTL" unlock --key "$work/signer.key" --for 0
expect for_25h 2 "^bpfwardenctl unlock: --for: '25h' is out of range \(expected 1s\.\.24h\)$" \
  "$CTL" unlock --key "$work/signer.key" --for 25h
expect for_abc 2 "^bpfwardenctl unlock: --for: 'abc' is not a duration \(expected e\.g\. 90s, 10m, 2h, or plain seconds\)$" \
  "$CTL" unlock --key "$work/signer.key" --for abc
expect for_missing_value 2 "^bpfwardenctl unlock: --for: needs a value \(DURATION\)$" \
  "$CTL" unlock --key "$work/signer.key" --for
expect for_required_with_key 2 "^bpfwardenctl unlock: --for is required with --key$" \
  "$CTL" unlock --key "$work/signer.key"
expect key_or_token_required 2 "^bpfwardenctl unlock: --key \(make a token\) or --token \(use one\) is required$" \
  "$CTL" unlock
expect key_and_token_conflict 2 "^bpfwardenctl unlock: --key and --token cannot be used together$" \
  "$CTL" unlock --key "$work/signer.key" --for 10m --token "$token"
expect for_with_token_refused 2 "^bpfwardenctl unlock: --for and --token cannot be used together$" \
  "$CTL" unlock --token "$token" --for 10m
expect force_needs_output 2 "^bpfwardenctl unlock: --force needs --output$" \
  "$CTL" unlock --key "$work/signer.key" --for 10m --force
expect misspelt_option 2 "^bpfwardenctl unlock: --tokn: unknown option \(did you mean --token\?\)$" \
  "$CTL" unlock --tokn "$token"
expect points_to_help 2 "^Try 'bpfwardenctl unlock --help'\.$" "$CTL" unlock --no-such-option
expect missing_key_file 1 "^bpfwardenctl unlock: .*open private key '$work/absent\.key': No such file or directory$" \
  "$CTL" unlock --key "$work/absent.key" --for 10m
expect public_key_refused 1 "is a public key: signing needs the private key" \
  "$CTL" unlock --key "$work/signer.pub" --for 10m
help=$("$CTL" unlock --help)
grep -q -- "--key PRIVATE_KEY --for DURATION" <<<"$help" && grep -q -- "--token FILE|- \[--json\]" <<<"$help" \
  && pass help_shows_both_forms || fail help_shows_both_forms "$help"

# 3. --output: 0600, never overwritten without --force.
expect output_written 0 "^token valid until .* \(single use\)$" \
  "$CTL" unlock --key "$work/signer.key" --for 10m --output "$work/out.token"
[ "$(stat -c %a "$work/out.token")" = 600 ] && [ ! -s "$BW_OUT/output_written.stdout" ] \
  && [ "$(wc -l <"$work/out.token")" = 5 ] && pass output_mode_0600 \
  || fail output_mode_0600 "mode $(stat -c %a "$work/out.token"), stdout: $(cat "$BW_OUT/output_written.stdout")"
before=$(cat "$work/out.token")
expect output_not_overwritten 1 "refusing to overwrite existing '$work/out\.token': add --force" \
  "$CTL" unlock --key "$work/signer.key" --for 10m --output "$work/out.token"
[ "$(cat "$work/out.token")" = "$before" ] && pass output_unchanged || fail output_unchanged "the file changed"
expect output_forced 0 "single use" "$CTL" unlock --key "$work/signer.key" --for 10m --output "$work/out.token" --force
[ "$(cat "$work/out.token")" != "$before" ] && [ "$(stat -c %a "$work/out.token")" = 600 ] && pass output_replaced \
  || fail output_replaced "not replaced, or mode $(stat -c %a "$work/out.token")"

# 4. --token: the form is checked before D-Bus is touched. A fake bus socket
# records every connection (and closes it: it speaks no D-Bus).
python3 - "$work/fake-bus" "$work/bus-contacted" <<'EOF' &
import os, socket, sys
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(8)
while True:
    connection, _ = server.accept()
    open(sys.argv[2], "a").write("contacted\n")
    connection.close()
EOF
listener_pid=$!
for _ in $(seq 50); do [ -S "$work/fake-bus" ] && break; sleep 0.1; done
fake_bus="unix:path=$work/fake-bus"
echo "garbage" >"$work/garbage"
expect garbage_token_refused 1 "^bpfwardenctl unlock: '$work/garbage': unlock token: not an unlock token: the first line must be 'bpfwarden-unlock-token 1', not 'garbage'; nothing was sent to bpfwardend$" \
  env DBUS_SYSTEM_BUS_ADDRESS="$fake_bus" "$CTL" unlock --token "$work/garbage"
head -n 4 "$token" >"$work/cut-short"
expect cut_short_token_refused 1 "unlock token: only 4 of its 5 lines .*; nothing was sent" \
  env DBUS_SYSTEM_BUS_ADDRESS="$fake_bus" "$CTL" unlock --token "$work/cut-short"
sed 's/$/\r/' "$token" >"$work/crlf"
expect crlf_token_refused 1 "line 1 ends in a carriage return \(CRLF line endings\)" \
  env DBUS_SYSTEM_BUS_ADDRESS="$fake_bus" "$CTL" unlock --token "$work/crlf"
sed 's/^expires .*/expires 99999999999/' "$token" >"$work/long"
expect overlong_token_refused 1 "lifetime of [0-9]+ s is longer than the 86400 s" \
  env DBUS_SYSTEM_BUS_ADDRESS="$fake_bus" "$CTL" unlock --token "$work/long"
expect missing_token_file 1 "open unlock token file '$work/absent': No such file or directory" \
  env DBUS_SYSTEM_BUS_ADDRESS="$fake_bus" "$CTL" unlock --token "$work/absent"
err=$(echo "garbage" | DBUS_SYSTEM_BUS_ADDRESS="$fake_bus" "$CTL" unlock --token - 2>&1)
[ $? = 1 ] && grep -q "^bpfwardenctl unlock: standard input: unlock token: not an unlock token" <<<"$err" \
  && pass garbage_on_stdin_refused || fail garbage_on_stdin_refused "$err"
[ ! -e "$work/bus-contacted" ] && pass bad_tokens_never_reach_dbus \
  || fail bad_tokens_never_reach_dbus "the bus was contacted $(wc -l <"$work/bus-contacted") times"
# The fake bus proves the check above: a good token does get that far.
expect good_token_contacts_bus 1 "^bpfwardenctl unlock: cannot reach bpfwardend: " \
  env DBUS_SYSTEM_BUS_ADDRESS="$fake_bus" "$CTL" unlock --token "$token"
[ -e "$work/bus-contacted" ] && pass fake_bus_sees_good_token || fail fake_bus_sees_good_token "no connection recorded"

# 5. No bus at all: a well-formed token cannot be delivered.
expect no_bus_cannot_reach 1 "^bpfwardenctl unlock: cannot reach bpfwardend: connect to the system bus: No such file or directory$" \
  "$CTL" unlock --token "$token"
out=$("$CTL" unlock --token - --json <"$token" 2>/dev/null)
rc=$?
[ $rc = 1 ] && grep -qx '{"error_name":null,"error":"cannot reach bpfwardend: connect to the system bus: No such file or directory"}' <<<"$out" \
  && pass no_bus_json || fail no_bus_json "exit $rc: $out"

finish
