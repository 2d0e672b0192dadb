# Shared helpers for guest selftests (sourced, POSIX sh + bash features used
# by Debian's bash, which the guest runs from the host's root).
#
# Environment from run-selftests.sh: BW_BUILD (build dir), BW_SRC (source
# dir), BW_OUT (writable per-suite output dir on the host).

set -u
BW_TRY="$BW_BUILD/selftests/bw-try"
BW_DAEMON="$BW_BUILD/daemon/bpfwardend"
BW_WATCHDOG="$BW_BUILD/watchdog/bpfwarden-watchdog"
BW_CTL="$BW_BUILD/ctl/bpfwardenctl"
BW_IMAGES="$BW_BUILD/bpf/images"
BW_PINS=/sys/fs/bpf/bpfwarden
BW_KEYS="$BW_BUILD/keys/trusted"   # the build's development signing key
BW_STATE=${BW_STATE:-/run/bpfwarden-selftest-state}
BW_CANARY=${BW_CANARY:-/run/bpfwarden-selftest-state/canary}
mkdir -p "$BW_STATE"
passed=0
failed=0
DAEMON_PID=""

pass() { passed=$((passed + 1)); echo "SELFTEST PASS $1"; }
fail() { failed=$((failed + 1)); echo "SELFTEST FAIL $1: $2"; }

# key_of FILE: hex bytes of FILE's bw_inode_key, for `bpftool map
# lookup/update/delete ... key hex $(key_of FILE)` (selftests/helpers/inode_key.py).
key_of() {
  python3 "$BW_SRC/selftests/helpers/inode_key.py" "$1"
}

# expected_programs [enforcing|audit-only]: the name of every program
# bpfwarden lists on this kernel with BPF LSM usable (the default) or not, one
# a line, sorted: the programs of kBpfAudit, kExecAudit, kRuleAudit (without
# BPF LSM only), kSelfGuard, kFileGuard and kExecGuard in
# lib/loading/bpf_objects.cpp, the optional ones chosen the way
# available_programs() does, but read independently from the kernel's BTF:
# bpf_lsm_<hook> exists (and, for inode_setattr, with how many arguments).
# A program added there must be added here too; that is the point.
expected_programs() {
  python3 - "${1:-enforcing}" <<'PY'
import re, subprocess, sys
btf = subprocess.check_output(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"], text=True)
protos, lsm_hooks = {}, {}
for line in btf.splitlines():
    m = re.match(r"\[(\d+)\] FUNC_PROTO '\(anon\)' ret_type_id=\d+ vlen=(\d+)", line)
    if m:
        protos[m.group(1)] = int(m.group(2))
    m = re.match(r"\[\d+\] FUNC 'bpf_lsm_(\w+)' type_id=(\d+)", line)
    if m:
        lsm_hooks[m.group(1)] = m.group(2)
hook_args = {hook: protos.get(proto) for hook, proto in lsm_hooks.items()}
# bpf() audit: from lsm/bpf where BPF LSM works, else its syscall tracepoint.
want = {"bw_bpf_audit" if sys.argv[1] == "enforcing" else "bw_tp_bpf", "bw_tp_exec",
        "bw_task_alloc", "bw_bprm_commit", "bw_bpf", "bw_bpf_map", "bw_bpf_prog", "bw_task_kill", "bw_ptrace_check",
        "bw_traceme", "bw_sb_umount", "bw_sb_mount", "bw_move_mount",
        "bw_file_open", "bw_path_trunc", "bw_inode_unlink", "bw_inode_rmdir", "bw_inode_rename", "bw_inode_link",
        "bw_inode_create", "bw_inode_mkdir", "bw_inode_mknod", "bw_symlink", "bw_setxattr", "bw_removexattr",
        "bw_bprm_check", "bw_mmap_file", "bw_mprotect"}
# Without BPF LSM, file and exec rules are reported from tracepoints.
if sys.argv[1] != "enforcing":
    want |= {"bw_ra_open", "bw_ra_openat", "bw_ra_openat2", "bw_ra_creat", "bw_ra_exec"}
for program, hook in (("bw_ftruncate", "file_truncate"), ("bw_set_acl", "inode_set_acl"),
                      ("bw_remove_acl", "inode_remove_acl")):
    if hook in hook_args:
        want.add(program)
if hook_args.get("inode_setattr") in (2, 3):
    want.add(f"bw_setattr_{hook_args['inode_setattr']}arg")
print("\n".join(sorted(want)))
PY
}

# link_prog PIN: "<link id> <program id> <program name>" of the link pinned
# at PIN, or nothing when there is none. (Plain bpftool output, no python:
# each python start costs seconds in the emulated guest.)
link_prog() {
  local ids name
  ids=$(bpftool link show pinned "$1" 2>/dev/null | sed -n '1s/^\([0-9]*\): .* prog \([0-9]*\).*/\1 \2/p')
  [ -n "$ids" ] || return 0
  name=$(bpftool prog show id "${ids#* }" 2>/dev/null | sed -n '1s/.* name \([^ ]*\) .*/\1/p')
  echo "$ids $name"
}

# expect_try NAME RESULT bw-try-args...: bw-try must report result=RESULT.
# Leaves the output line in $TRY_LINE and the acting pid in $TRY_PID.
expect_try() {
  local name=$1 want=$2
  shift 2
  TRY_LINE=$("$BW_TRY" "$@" 2>&1 | tail -n 1)
  TRY_PID=$(echo "$TRY_LINE" | sed -n 's/.*child=\([0-9]*\).*/\1/p')
  [ -n "$TRY_PID" ] || TRY_PID=$(echo "$TRY_LINE" | sed -n 's/^bw-try pid=\([0-9]*\) .*/\1/p')
  case "$TRY_LINE" in
    *"result=$want"*) pass "$name" ;;
    *) fail "$name" "expected result=$want, got: $TRY_LINE" ;;
  esac
}

# expect_try_within NAME RESULT SECONDS bw-try-args...: like expect_try, but
# the result may take that long to appear (a link's program is detached by
# the kernel asynchronously after its last reference goes).
expect_try_within() {
  local name=$1 want=$2 limit=$3 waited=0
  shift 3
  while :; do
    TRY_LINE=$("$BW_TRY" "$@" 2>&1 | tail -n 1)
    case "$TRY_LINE" in *"result=$want"*) break ;; esac
    [ "$waited" -ge $((limit * 10)) ] && break
    sleep 0.1
    waited=$((waited + 1))
  done
  case "$TRY_LINE" in
    *"result=$want"*) pass "$name" ;;
    *) fail "$name" "expected result=$want within $limit s, got: $TRY_LINE" ;;
  esac
}

# wait_for_log FILE PATTERN [SECONDS [PID]]: grep -E PATTERN appears in FILE
# (gives up early when process PID, if given, has exited).
wait_for_log() {
  local file=$1 pattern=$2 limit=${3:-60} pid=${4:-} waited=0
  while ! grep -qE -- "$pattern" "$file" 2>/dev/null; do
    [ "$waited" -ge $((limit * 10)) ] && return 1
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      grep -qE -- "$pattern" "$file" 2>/dev/null
      return
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# expect NAME RC PATTERN COMMAND...: COMMAND exits with RC and its stdout and
# stderr match PATTERN (grep -E); the output is kept in $BW_OUT/NAME.log.
expect() {
  local name=$1 want_rc=$2 pattern=$3 out rc
  shift 3
  out=$("$@" 2>&1 </dev/null)
  rc=$?
  echo "$out" >"$BW_OUT/$name.log"
  if [ "$rc" = "$want_rc" ] && grep -qE -- "$pattern" <<<"$out"; then pass "$name"
  else fail "$name" "exit $rc (want $want_rc), no /$pattern/ in: $out"; fi
}

# expect_log NAME FILE PATTERN: the daemon logged a line matching PATTERN.
expect_log() {
  if wait_for_log "$2" "$3" 30; then pass "$1"; else fail "$1" "no line matching /$3/ in $2"; fi
}

# start_daemon LOG [ARGS...]: run bpfwardend in the background until "ready".
start_daemon() {
  local log=$1
  shift
  "$BW_DAEMON" --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" \
    --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$BW_CANARY" \
    --log-target stderr --stats-interval 0 "$@" >"$log" 2>&1 &
  DAEMON_PID=$!
  if ! wait_for_log "$log" "ready: logging events" 120 "$DAEMON_PID"; then
    echo "daemon did not become ready; log:"; cat "$log"
    return 1
  fi
}

stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  kill -TERM "$DAEMON_PID" 2>/dev/null
  wait "$DAEMON_PID" 2>/dev/null
  DAEMON_PID=""
}

# start_watchdog LOG [ARGS...]: bpfwarden-watchdog in the background until "ready".
WATCHDOG_PID=""
start_watchdog() {
  local log=$1
  shift
  "$BW_WATCHDOG" --image-dir "$BW_IMAGES" --keys-dir "$BW_KEYS" --state-dir "$BW_STATE" \
    --daemon-exe "$BW_DAEMON" --watchdog-exe "$BW_WATCHDOG" --canary "$BW_CANARY" \
    --log-target stderr "$@" >"$log" 2>&1 &
  WATCHDOG_PID=$!
  if ! wait_for_log "$log" "ready: checking" 120 "$WATCHDOG_PID"; then
    echo "watchdog did not become ready; log:"; cat "$log"
    return 1
  fi
}

stop_watchdog() {
  [ -n "$WATCHDOG_PID" ] || return 0
  kill -TERM "$WATCHDOG_PID" 2>/dev/null
  wait "$WATCHDOG_PID" 2>/dev/null
  WATCHDOG_PID=""
}

finish() {
  stop_watchdog
  stop_daemon
  echo "SELFTEST SUMMARY $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
