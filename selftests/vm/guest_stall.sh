# Sourced by run-selftests.sh and scripts/bench.sh: whether a guest run that
# timed out stalled through no fault of what is tested.
#
# guest_stall_reason RC CONSOLE_LOG: prints why the run's guest stalled (the
# emulator froze, or virtiofs never answered a request), or nothing. A script
# that hung on anything else, or a guest kernel that logged a warning, is a
# failure and prints nothing.
guest_stall_reason() {
  local rc=$1 console=$2
  [[ $rc -eq 124 ]] || return 0
  if ! grep -qa '^BPFWARDEN-GUEST-SCRIPT-HUNG:' "$console"; then
    grep -av '^SELFTEST' "$console" |
      grep -qE 'BUG:|WARNING:|Oops|Call Trace|rcu.*stall|soft lockup|blocked for more than' && return 0
    echo "the guest stopped responding (no hang report from its /init, no kernel message)"
  elif sed -n '/^BPFWARDEN-GUEST-SCRIPT-HUNG:/,/^--- dmesg/p' "$console" |
       grep -qE 'fuse_|virtio_fs|request_wait_answer'; then  # stacks, not the dmesg boot lines
    echo "a guest process waits on a virtiofs request the host never answered"
  fi
}
