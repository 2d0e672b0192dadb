#!/bin/bash
# run-vm.sh — boot a Debian kernel under qemu (TCG) with the host's root
# filesystem shared read-only over virtiofs, run one guest script in it and
# exit with that script's exit code.  See README.md for the guest contract.
# shellcheck disable=SC2317,SC2054,SC2016  # trap handlers; qemu option commas; sh -c body
set -euo pipefail
bw_prog=vm
. "$(dirname "$0")/common.sh"

QEMU=qemu-system-x86_64
VIRTIOFSD=/usr/lib/qemu/virtiofsd
RC_TIMEOUT=124 # guest did not finish within --timeout
RC_INFRA=125   # anything else that is not the guest script's own exit code
RC_INTR=130
RC_BOOT_CRASH=126 # internal: the guest kernel crashed before the script started

# A guest kernel that crashes while booting (seen rarely with 6.12 under
# multi-threaded TCG: an int3 in code being live-patched) says nothing about
# the script, which never ran: boot again, at most BPFWARDEN_VM_BOOT_RETRIES
# times, saying so. A crash once the script has started is never retried.
if [[ -z "${BW_VM_ATTEMPT:-}" ]]; then
	retries=${BPFWARDEN_VM_BOOT_RETRIES:-2}
	for ((attempt = 1; ; attempt++)); do
		rc=0
		BW_VM_ATTEMPT=$attempt "$0" "$@" || rc=$?
		if ((rc != RC_BOOT_CRASH)); then exit "$rc"; fi
		if ((attempt > retries)); then
			printf 'vm: the guest kernel crashed while booting %d times; giving up\n' "$attempt" >&2
			exit "$RC_INFRA"
		fi
		printf 'vm: the guest kernel crashed while booting, before the script ran: booting again (%d/%d)\n' \
			"$attempt" "$retries" >&2
	done
fi

usage() {
	cat <<EOF
usage: $0 --kernel 6.1|6.12 --script /abs/host/path [options]

  --kernel VER        kernel to boot: $BW_VM_KERNELS
  --script PATH       absolute host path of the guest script (run as root in
                      the guest; executed directly if executable, else by sh)
  --env KEY=VAL       export KEY=VAL to the guest script (repeatable)
  --append ARGS       extra kernel command line, e.g. "lsm=lockdown,capability"
  --log FILE          write the full serial console here (default: a temp
                      file, deleted on success, kept and named on failure)
  --timeout SECONDS   wall-clock limit for the whole VM run (default 300)
  --mem SIZE          guest memory, qemu syntax (default 2G)
  --cpus N            guest CPUs (default 2)
  --keep-path DIR     the guest mounts tmpfs over /tmp and /var/tmp; keep host
                      directory DIR (e.g. a checkout under /tmp) visible,
                      read-only, at the same path (repeatable)
  --rw-dir DIR        share host directory DIR read-write at the same path in
                      the guest (repeatable; e.g. to collect artefacts)
  --writable-root     put a tmpfs overlay over the read-only host root
  --systemd           boot the host's systemd as PID 1 (implies --writable-root)
                      and run the script as bpfwarden-vm-script.service
                      (README.md, "systemd mode")
  --quiet             do not stream the console to stdout
  --verbose           full kernel log on the console (no 'quiet')
  --debug             --verbose plus 'set -x' in the guest init

exit status: the guest script's exit code; $RC_TIMEOUT on timeout; $RC_INFRA on any
harness failure (missing tool, boot failure, panic, no exit marker);
$RC_INTR when interrupted.  The reason is printed on stderr as "vm: ...".
Cache: \$BPFWARDEN_VM_CACHE (default /var/cache/bpfwarden/vm).
EOF
}

fail() { # rc message...
	local rc="$1"
	shift
	printf 'vm: %s\n' "$*" >&2
	exit "$rc"
}

# --- arguments --------------------------------------------------------------
kernel="" script="" append="" log="" timeout=300 mem=2G cpus=2
quiet=0 verbose=0 debug=0 writable_root=0 systemd=0
envs=() rwdirs=() keeps=()
while [[ $# -gt 0 ]]; do
	case "$1" in
	--kernel) kernel="${2:?--kernel needs a value}"; shift 2 ;;
	--script) script="${2:?--script needs a value}"; shift 2 ;;
	--env) envs+=("${2:?--env needs KEY=VAL}"); shift 2 ;;
	--append) append="${2?--append needs a value}"; shift 2 ;;
	--log) log="${2:?--log needs a file}"; shift 2 ;;
	--timeout) timeout="${2:?--timeout needs seconds}"; shift 2 ;;
	--mem) mem="${2:?--mem needs a size}"; shift 2 ;;
	--cpus) cpus="${2:?--cpus needs a number}"; shift 2 ;;
	--rw-dir) rwdirs+=("${2:?--rw-dir needs a directory}"); shift 2 ;;
	--keep-path) keeps+=("${2:?--keep-path needs a directory}"); shift 2 ;;
	--writable-root) writable_root=1; shift ;;
	--systemd) systemd=1 writable_root=1; shift ;;
	--quiet) quiet=1; shift ;;
	--verbose) verbose=1; shift ;;
	--debug) verbose=1; debug=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; fail "$RC_INFRA" "unknown argument '$1'" ;;
	esac
done

[[ -n "$kernel" ]] || { usage >&2; fail "$RC_INFRA" "--kernel is required"; }
case " $BW_VM_KERNELS " in
*" $kernel "*) ;;
*) fail "$RC_INFRA" "unknown kernel '$kernel' (expected one of: $BW_VM_KERNELS)" ;;
esac
[[ -n "$script" ]] || { usage >&2; fail "$RC_INFRA" "--script is required"; }
[[ "$script" == /* ]] || fail "$RC_INFRA" "--script must be an absolute host path: $script"
[[ -f "$script" ]] || fail "$RC_INFRA" "guest script $script does not exist on the host"
[[ -r "$script" ]] || fail "$RC_INFRA" "guest script $script is not readable"
# It travels on the kernel command line, unquoted.
[[ "$script" =~ ^/[A-Za-z0-9._/+@%,:=~-]+$ ]] ||
	fail "$RC_INFRA" "guest script path has characters the kernel command line cannot carry: $script"
case "$script" in
/run/* | /proc/* | /sys/* | /dev/* | /var/log/* | /var/lib/bpfwarden/* | /etc/bpfwarden/*)
	fail "$RC_INFRA" "guest script $script lives in a directory the guest mounts over; move it (e.g. to /tmp or the repo)" ;;
esac
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || fail "$RC_INFRA" "--timeout must be a positive integer (seconds): $timeout"
[[ "$mem" =~ ^[1-9][0-9]*[MGmg]?$ ]] || fail "$RC_INFRA" "--mem must look like 2G or 2048M: $mem"
[[ "$cpus" =~ ^[1-9][0-9]*$ ]] || fail "$RC_INFRA" "--cpus must be a positive integer: $cpus"
[[ "$append" != *'"'* ]] || fail "$RC_INFRA" "--append must not contain double quotes"
[[ "$mem" =~ [MGmg]$ ]] || mem="${mem}M"

env_sh=""
for kv in "${envs[@]}"; do
	[[ "$kv" == *=* ]] || fail "$RC_INFRA" "--env wants KEY=VAL, got: $kv"
	k="${kv%%=*}" v="${kv#*=}"
	[[ "$k" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "$RC_INFRA" "--env: bad variable name '$k'"
	env_sh+="export $k='${v//\'/\'\\\'\'}'"$'\n'
done
for d in "${keeps[@]}"; do
	[[ "$d" == /* && -d "$d" ]] || fail "$RC_INFRA" "--keep-path must be an existing absolute directory: $d"
	[[ "$d" =~ ^/[A-Za-z0-9._/+@%,:=~-]+$ ]] || fail "$RC_INFRA" "--keep-path path has unsupported characters: $d"
done
for d in "${rwdirs[@]}"; do
	[[ "$d" == /* && -d "$d" ]] || fail "$RC_INFRA" "--rw-dir must be an existing absolute directory: $d"
	[[ "$d" =~ ^/[A-Za-z0-9._/+@%,:=~-]+$ ]] || fail "$RC_INFRA" "--rw-dir path has unsupported characters: $d"
done

# --- host prerequisites (a missing tool is a failure, never a skip) ----------
command -v "$QEMU" >/dev/null || fail "$RC_INFRA" "$QEMU not found (package qemu-system-x86): run scripts/install-deps.sh"
[[ -x "$VIRTIOFSD" ]] || fail "$RC_INFRA" "$VIRTIOFSD not found (package qemu-system-common): run scripts/install-deps.sh"
[[ -x /bin/busybox ]] || fail "$RC_INFRA" "/bin/busybox not found (package busybox-static): run scripts/install-deps.sh"
for t in cpio:cpio unshare:util-linux findmnt:util-linux mount:mount flock:util-linux base64:coreutils; do
	command -v "${t%%:*}" >/dev/null || fail "$RC_INFRA" "${t%%:*} not found (package ${t#*:}): run scripts/install-deps.sh"
done
[[ $EUID -eq 0 ]] || fail "$RC_INFRA" "must run as root (virtiofsd needs it)"
if ((systemd)); then
	[[ -x /lib/systemd/systemd ]] || fail "$RC_INFRA" "--systemd: /lib/systemd/systemd not found (package systemd)"
fi

# --- kernel + initramfs -----------------------------------------------------
kdir="$BW_VM_CACHE/$kernel"
if [[ ! -f "$kdir/kernel.env" ]]; then
	"$BW_VM_DIR/fetch-kernels.sh" "$kernel" || fail "$RC_INFRA" "fetching kernel $kernel failed (see above)"
fi
"$BW_VM_DIR/mkinitramfs.sh" "$kernel" || fail "$RC_INFRA" "building the initramfs for $kernel failed (see above)"
# shellcheck disable=SC1091
. "$kdir/kernel.env"
initrd="$kdir/initramfs.cpio.gz"

# --- kernel command line ------------------------------------------------------
cmdline="console=ttyS0 panic=-1 no_timer_check"
if ((verbose)); then cmdline+=" loglevel=7"; else cmdline+=" quiet loglevel=4"; fi
cmdline+=" bw.script=$script"
[[ -n "$env_sh" ]] && cmdline+=" bw.env=$(printf '%s' "$env_sh" | base64 -w0)"
for d in "${rwdirs[@]}"; do cmdline+=" bw.rw=$d"; done
for d in "${keeps[@]}"; do cmdline+=" bw.keep=$d"; done
((writable_root)) && cmdline+=" bw.overlay=1"
# Before --append, so that e.g. "systemd.log_level=debug" can be added.
((systemd)) && cmdline+=" bw.systemd=1 systemd.unit=bpfwarden-vm.target"
((debug)) && cmdline+=" bw.debug=1"
# The script's own limit leaves room for the boot and for the guest to print
# what every process is blocked on before the host's limit stops qemu.
# systemd's boot takes about 5 s longer than /init's alone.
if ((systemd)); then
	cmdline+=" bw.deadline=$((timeout > 90 ? timeout - 55 : timeout / 2))"
else
	cmdline+=" bw.deadline=$((timeout > 90 ? timeout - 45 : timeout * 2 / 3))"
fi
[[ -n "$append" ]] && cmdline+=" $append"
# x86 COMMAND_LINE_SIZE is 2048 including the NUL.
((${#cmdline} <= 2047)) ||
	fail "$RC_INFRA" "kernel command line is ${#cmdline} bytes (max 2047): pass less via --env"

# --- run ----------------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/bpfwarden-vm.XXXXXX")"
qemu_pid="" stream_pid="" vfs_pids=() keep_log=0 timed_out=0
kill_wait() { # pid: TERM, then KILL after 3 s
	local p="$1" i
	kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
	kill -TERM "$p" 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

cleanup() {
	local p
	trap - EXIT INT TERM HUP
	[[ -n "$qemu_pid" ]] && kill_wait "$qemu_pid"
	for p in "${vfs_pids[@]}"; do kill_wait "$p"; done
	[[ -n "$stream_pid" ]] && { kill "$stream_pid" 2>/dev/null || true; wait "$stream_pid" 2>/dev/null || true; }
	if [[ "$log" == "$tmp/"* ]] && ((keep_log)); then
		local kept
		kept="$(mktemp "${TMPDIR:-/tmp}/bpfwarden-vm-$kernel.XXXXXX.log")"
		cp "$log" "$kept"
		printf 'vm: console log kept in %s\n' "$kept" >&2
	fi
	# rootro only ever holds a mount inside virtiofsd's private mount
	# namespace (gone now); never recurse into it.
	if [[ -d "$tmp/rootro" ]] && ! rmdir "$tmp/rootro" 2>/dev/null; then
		printf 'vm: %s/rootro is not empty; leaving %s in place\n' "$tmp" "$tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
on_signal() {
	printf 'vm: interrupted, cleaning up\n' >&2
	keep_log=1
	exit "$RC_INTR"
}
trap cleanup EXIT
trap on_signal INT TERM HUP
[[ -n "$log" ]] || log="$tmp/console.log"
: >"$log" || fail "$RC_INFRA" "cannot write log file $log"

# Root share: virtiofsd serves a recursively read-only bind of / made in its
# own private mount namespace, so even a guest that remounts its root rw
# cannot write to the host.  Host /proc, /sys and /dev are not exposed (the
# guest mounts its own).
mkdir "$tmp/rootro"
start_virtiofsd() { # name source cache [ro]
	local sock="$tmp/$1.sock"
	if [[ "${4:-}" == ro ]]; then
		unshare --mount --propagation private -- /bin/sh -c '
			set -e
			r="$1"; shift
			mount --rbind / "$r"
			for m in proc sys dev; do
				if mountpoint -q "$r/$m"; then umount -R "$r/$m"; fi
			done
			findmnt -R -n -l -o TARGET "$r" | while IFS= read -r m; do
				mount -o remount,bind,ro "$m"
			done
			if findmnt -R -n -l -o VFS-OPTIONS "$r" | grep -qv "^ro"; then
				echo "vm: could not make the shared root read-only" >&2
				findmnt -R -o TARGET,VFS-OPTIONS "$r" >&2
				exit 1
			fi
			exec "$@"' sh "$tmp/rootro" \
			"$VIRTIOFSD" --socket-path="$sock" -o source="$tmp/rootro" \
			-o sandbox=chroot -o cache="$3" -o announce_submounts \
			>"$tmp/$1.log" 2>&1 &
	else
		"$VIRTIOFSD" --socket-path="$sock" -o source="$2" -o sandbox=chroot \
			-o cache="$3" >"$tmp/$1.log" 2>&1 &
	fi
	vfs_pids+=($!)
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -S "$sock" ]] && return 0
		kill -0 "${vfs_pids[-1]}" 2>/dev/null || break
		sleep 0.05
	done
	cat "$tmp/$1.log" >&2
	fail "$RC_INFRA" "virtiofsd for $2 did not come up (see above)"
}

# thread=single: qemu 7.2's multi-threaded TCG mishandles code that one vCPU
# patches while another runs it. The guest kernel patches live code with
# int3 (text_poke_bp) at boot and on every BPF trampoline attach; under MTTCG
# that crashed 6.12 guests ("int3" Oops in bpf_lsm_file_open while a heal
# attached programs under load, and in enqueue_timer while booting).
# Round-robin TCG costs little here (the suites are I/O and syscall bound).
# -cx16: multi-threaded TCG also corrupts EFLAGS around the guest's
# cmpxchg16b (6.12's SLUB panicked in ~60% of boots); kept off for safety.
# Without CX16 the guest kernel and userspace use their fallbacks.
# BPFWARDEN_VM_CPU / BPFWARDEN_VM_TCG_THREAD override these (debugging only).
qemu_args=(
	-nodefaults -no-user-config
	-machine q35 -accel "tcg,thread=${BPFWARDEN_VM_TCG_THREAD:-single}" -cpu "${BPFWARDEN_VM_CPU:-max,-cx16}" -smp "$cpus" -m "$mem"
	-object "memory-backend-memfd,id=mem,share=on,size=$mem" -numa node,memdev=mem
	-kernel "$VMLINUZ" -initrd "$initrd" -append "$cmdline"
	-serial "file:$log" -display none -monitor none -no-reboot
)
start_virtiofsd vfs-root / always ro
qemu_args+=(-chardev "socket,id=vfs-root,path=$tmp/vfs-root.sock"
	-device vhost-user-fs-pci,chardev=vfs-root,tag=hostroot)
n=0
for d in "${rwdirs[@]}"; do
	start_virtiofsd "vfs-rw$n" "$d" auto
	qemu_args+=(-chardev "socket,id=vfs-rw$n,path=$tmp/vfs-rw$n.sock"
		-device "vhost-user-fs-pci,chardev=vfs-rw$n,tag=bwrw$n")
	n=$((n + 1))
done

t0=$EPOCHREALTIME
deadline_us=$((${t0/./} + timeout * 1000000))
if ((debug)); then
	printf 'vm: qemu command:' >&2
	printf ' %q' "$QEMU" "${qemu_args[@]}" >&2
	printf '\n' >&2
fi
"$QEMU" "${qemu_args[@]}" </dev/null >"$tmp/qemu.out" 2>&1 &
qemu_pid=$!
if ((!quiet)); then
	tail -n +1 -F -s 0.1 --pid="$qemu_pid" "$log" 2>/dev/null | tr -d '\r' &
	stream_pid=$!
fi

marker_seen_at=""
i=0
while kill -0 "$qemu_pid" 2>/dev/null; do
	if ((${EPOCHREALTIME/./} >= deadline_us)); then
		timed_out=1
		break
	fi
	if ((i++ % 5 == 0)) && [[ -z "$marker_seen_at" ]] &&
		grep -qaE '^BPFWARDEN-GUEST-(EXIT=|INFRA-ERROR)' "$log"; then
		marker_seen_at=$SECONDS
	fi
	# The guest said it is done; do not let a stuck poweroff eat the timeout.
	if [[ -n "$marker_seen_at" ]] && ((SECONDS - marker_seen_at > 15)); then
		printf 'vm: guest finished but did not power off; stopping qemu\n' >&2
		break
	fi
	sleep 0.2
done
qemu_rc=0
if kill -0 "$qemu_pid" 2>/dev/null; then
	kill_wait "$qemu_pid"
	qemu_rc=137
else
	wait "$qemu_pid" 2>/dev/null || qemu_rc=$?
fi
qemu_pid=""
if [[ -n "$stream_pid" ]]; then
	wait "$stream_pid" 2>/dev/null || true
	stream_pid=""
fi
elapsed="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"

show_tail() { # where
	if ((quiet)); then
		printf -- '--- last 40 console lines before any hang report (%s) ---\n' "$1" >&2
		sed '/^BPFWARDEN-GUEST-SCRIPT-HUNG:/,$d' "$log" | tail -n 40 | tr -d '\r' >&2
		printf -- '---\n' >&2
	fi
	# The guest's own report of a hung script is the diagnosis: always show it.
	if grep -qa '^BPFWARDEN-GUEST-SCRIPT-HUNG:' "$log"; then
		sed -n '/^BPFWARDEN-GUEST-SCRIPT-HUNG:/,/^BPFWARDEN-GUEST-SCRIPT-HUNG-END/p' "$log" |
			head -n 300 | tr -d '\r' >&2
	fi
	if [[ -s "$tmp/qemu.out" ]]; then
		printf -- '--- qemu output ---\n' >&2
		cat "$tmp/qemu.out" >&2
	fi
}
harness_fail() { # rc message
	local where="$log"
	if [[ "$log" == "$tmp/"* ]]; then
		where="$(mktemp "${TMPDIR:-/tmp}/bpfwarden-vm-$kernel.XXXXXX.log")"
		cp "$log" "$where"
	fi
	show_tail "$where"
	fail "$1" "$2 (console log: $where)"
}

if ((timed_out)); then
	harness_fail "$RC_TIMEOUT" "timed out after $timeout s"
fi
clean_log="$(tr -d '\r' <"$log")"
if infra="$(grep -a -m1 '^BPFWARDEN-GUEST-INFRA-ERROR:' <<<"$clean_log")"; then
	harness_fail "$RC_INFRA" "guest infrastructure error: ${infra#BPFWARDEN-GUEST-INFRA-ERROR: }"
fi
if ! code="$(grep -a '^BPFWARDEN-GUEST-EXIT=[0-9]\+$' <<<"$clean_log" | tail -n1)"; then
	if grep -qa 'Kernel panic' <<<"$clean_log"; then
		started="$(grep -ac '^BPFWARDEN-GUEST-SCRIPT-START' <<<"$clean_log" || true)"
		harness_fail "$( ((started)) && echo "$RC_INFRA" || echo "$RC_BOOT_CRASH")" \
			"guest panicked$( ((started)) || echo ' while booting'): $(grep -a -m1 'Kernel panic' <<<"$clean_log" | sed 's/^\[[^]]*\] //')"
	fi
	if ((qemu_rc != 0)); then
		harness_fail "$RC_INFRA" "qemu exited with status $qemu_rc before the guest finished"
	fi
	harness_fail "$RC_INFRA" "guest stopped without an exit marker"
fi
code="${code#BPFWARDEN-GUEST-EXIT=}"
if hung="$(grep -a -m1 '^BPFWARDEN-GUEST-SCRIPT-HUNG:' <<<"$clean_log")"; then
	harness_fail "$RC_TIMEOUT" "guest script hung: ${hung#BPFWARDEN-GUEST-SCRIPT-HUNG: }"
fi
if grep -qa '^BPFWARDEN-GUEST-KERNEL-WARNINGS-BEGIN' <<<"$clean_log"; then
	keep_log=1
	printf 'vm: warning: the guest kernel logged a WARNING/BUG/Oops (dmesg is in the console log)\n' >&2
fi
printf 'vm: kernel %s: guest script exited %s after %s s\n' "$KVER" "$code" "$elapsed" >&2
exit "$code"
