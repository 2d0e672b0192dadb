#!/bin/bash
# One run of the demo: start bpfwardend with the default policy (plus one demo
# rule), try what the policy forbids and something it allows, show what the
# daemon logged, stop it and remove its pins. Used by demo.sh on the host and
# inside the VM.
set -u
build=${BW_BUILD:?} src=${BW_SRC:?}
pins=${BW_PINS:-/sys/fs/bpf/bpfwarden}
work=$(mktemp -d /tmp/bpfwarden-demo.XXXXXX)
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null; "$build/daemon/bpfwardend" --unpin --yes --pin-root "$pins" --log-target stderr >/dev/null 2>&1; rm -rf "$work"' EXIT

mkdir -p "$work/policy.d" "$work/state"
cp "$src/policy/default.toml" "$work/policy.d/00-default.toml"
echo "top secret" >"$work/secret.txt"
echo "nothing to see" >"$work/notes.txt"
cat >"$work/policy.d/90-demo.toml" <<TOML
# Demo rule: nobody, not even root, may open this file.
[[file]]
path = "$work/secret.txt"
action = "deny"
TOML

echo "Policy: the shipped default (audit /etc/shadow, restrict bpf() to systemd) plus"
echo "        'deny opening $work/secret.txt'."
"$build/daemon/bpfwardend" --policy-dir "$work/policy.d" --image-dir "$build/bpf/images" \
  --keys-dir "$build/keys/trusted" --state-dir "$work/state" --canary "$work/state/canary" \
  --daemon-exe "$build/daemon/bpfwardend" --watchdog-exe "$build/watchdog/bpfwarden-watchdog" \
  --pin-root "$pins" --log-target stderr --stats-interval 0 --no-dbus >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 600); do grep -q "ready: logging events" "$work/daemon.log" && break; kill -0 $daemon 2>/dev/null || break; sleep 0.1; done
if ! grep -q "ready: logging events" "$work/daemon.log"; then
  echo "bpfwardend did not start:" >&2
  sed 's/^/  | /' "$work/daemon.log" >&2
  exit 1
fi
echo
echo "bpfwardend started:"
grep -E "images:|mode:|loaded|adopted|not loaded|failed|policy:" "$work/daemon.log" | sed 's/^/  | /'

try() {  # description, bw-try args
  local what=$1 line
  shift
  line=$("$build/selftests/bw-try" "$@")
  case "$line" in
    *result=ok*) echo "  $what: allowed" ;;
    *result=EPERM*) echo "  $what: DENIED by the kernel (Operation not permitted, EPERM)" ;;
    *) echo "  $what: ${line##*result=}" ;;
  esac
}
echo
echo "As root, this demo now tries:"
try "open $work/secret.txt (denied by policy)" open "$work/secret.txt"
try "open $work/notes.txt (no rule)" open "$work/notes.txt"
try "open /etc/shadow (audited by policy)" open /etc/shadow
try "load a BPF program (only allowlisted programs may)" prog-load
try "run /bin/true (no rule)" exec /bin/true
sleep 1
echo
echo "What bpfwardend logged about it (rule matches and the audit trail):"
grep -E ": (file_open|exec_check|bpf_check) (deny|would-deny|audit) |: bpf_call none .*bw-try|: exec none .*(bw-try|/bin/true)" "$work/daemon.log" | head -n 12 | sed 's/^/  | /'
if grep -q "mode: enforcing" "$work/daemon.log"; then
  echo
  echo "Result: BPF LSM is active here; the policy was enforced in the kernel."
else
  echo
  echo "Result: this kernel cannot run BPF LSM programs, so nothing was denied;"
  echo "        bpfwardend said why, kept the tracepoint audit running, and reported"
  echo "        what the rules would have denied (would-deny) and audited."
fi
