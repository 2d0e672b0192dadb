#!/bin/busybox sh
# shellcheck shell=dash
# /init of the selftest VM initramfs (built by mkinitramfs.sh; runs under
# busybox-static).  Contract (see README.md):
#   bw.script=/abs/path   guest script, a host path (the host root is shared)
#   bw.env=<base64>       optional: shell snippet of `export K='v'` lines
#   bw.rw=/abs/path       optional, repeatable: writable host dir, virtiofs tag bwrw<N>
#   bw.overlay=1          optional: writable root (tmpfs overlay over the host root)
#   bw.debug=1            optional: trace this init with set -x
#   bw.deadline=SECONDS   optional: the script's own time limit; past it every
#                         process's state, wait channel and kernel stack is
#                         printed (BPFWARDEN-GUEST-SCRIPT-HUNG) before it is killed
# Prints BPFWARDEN-GUEST-EXIT=<code> or BPFWARDEN-GUEST-INFRA-ERROR: <cause>,
# then powers the VM off.

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
umask 022

poweroff_now() {
	sync
	poweroff -f
	# Should not get here; exiting init panics and panic=-1 reboots, which
	# -no-reboot turns into a qemu exit.
	sleep 5
	exit 1
}

infra() {
	echo "BPFWARDEN-GUEST-INFRA-ERROR: $*"
	poweroff_now
}

# dump_processes REASON: what every user process is blocked on, so a hang in
# the script, a tool or the kernel can be told apart from the host's console log.
dump_processes() {
	echo "BPFWARDEN-GUEST-SCRIPT-HUNG: $1"
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = 1 ] && continue
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)
		[ -n "$cmd" ] || continue # kernel thread
		echo "pid ${p#/proc/} $(sed -n 's/^State:[[:space:]]*//p' "$p/status") wchan=$(cat "$p/wchan" 2>/dev/null): $cmd"
		head -n 12 "$p/stack" 2>/dev/null | sed 's/^/    /'
	done
	echo "--- dmesg (last 20 lines) ---"
	dmesg | tail -n 20
	echo "BPFWARDEN-GUEST-SCRIPT-HUNG-END"
}

mkdir -p /proc /sys /dev /tmp /newroot /hostbind
mount -t proc proc /proc || infra "mount /proc"
mount -t sysfs sysfs /sys || infra "mount /sys"
mount -t devtmpfs devtmpfs /dev || infra "mount /dev"
exec </dev/null >/dev/console 2>&1

script="" envb64="" overlay=0 rw="" keep="" deadline=0
set -f # the command line is split into words, never globbed
# shellcheck disable=SC2013
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	bw.script=*) script="${arg#bw.script=}" ;;
	bw.env=*) envb64="${arg#bw.env=}" ;;
	bw.rw=*) rw="$rw ${arg#bw.rw=}" ;;
	bw.keep=*) keep="$keep ${arg#bw.keep=}" ;;
	bw.overlay=1) overlay=1 ;;
	bw.debug=1) set -x ;;
	bw.deadline=*) deadline="${arg#bw.deadline=}" ;;
	esac
done
set +f
[ -n "$script" ] || infra "no bw.script= on the kernel command line"

# Modules, in dependency order, as listed by mkinitramfs.sh.  Built-in ones
# were left out at build time.
while read -r mod opt; do
	[ -n "$mod" ] || continue
	if [ "$opt" = optional ] && [ "$overlay" != 1 ]; then continue; fi
	[ -e "/sys/module/$mod/initstate" ] && continue
	insmod "/lib/modules/$mod.ko" || infra "insmod $mod failed"
done </modules.list

mount_newroot_fs() { # $1=target
	i=0
	while ! mount -t virtiofs -o ro hostroot "$1" 2>/tmp/mount.err; do
		i=$((i + 1))
		[ $i -ge 50 ] && infra "mount virtiofs tag hostroot: $(cat /tmp/mount.err)"
		sleep 0.1
	done
}

if [ "$overlay" = 1 ]; then
	mkdir -p /lower /ovl
	mount_newroot_fs /lower
	mount -t tmpfs -o mode=0755 tmpfs /ovl || infra "mount tmpfs for overlay"
	mkdir -p /ovl/upper /ovl/work
	mount -t overlay -o lowerdir=/lower,upperdir=/ovl/upper,workdir=/ovl/work overlay /newroot ||
		infra "mount overlay root: $(dmesg | grep -i overlay | tail -n 3)"
else
	mount_newroot_fs /newroot
fi
R=/newroot

# The host's /tmp and /var/tmp are hidden by tmpfs below; keep them visible
# read-only under /run/bpfwarden-vm/host/ (guest scripts may live there).
for d in tmp var/tmp; do
	if [ -d "$R/$d" ]; then
		mkdir -p "/hostbind/$d"
		mount -o rbind "$R/$d" "/hostbind/$d" || infra "bind host /$d"
	fi
done

mnt() { # type target options
	mount -t "$1" -o "$3" "$1" "$R$2" || infra "mount $1 on $2 failed"
}
mnt proc /proc nosuid,nodev,noexec
mnt sysfs /sys nosuid,nodev,noexec
mnt devtmpfs /dev nosuid,mode=0755
mkdir -p "$R/dev/pts" "$R/dev/shm" 2>/dev/null
mnt devpts /dev/pts nosuid,noexec,gid=5,mode=620,ptmxmode=666
mnt tmpfs /dev/shm nosuid,nodev,mode=1777
mnt tmpfs /run nosuid,nodev,mode=0755
mnt tmpfs /tmp nosuid,nodev,mode=1777
mnt tmpfs /var/tmp nosuid,nodev,mode=1777
mnt tmpfs /var/log nosuid,nodev,mode=0755
for d in /var/lib/bpfwarden /etc/bpfwarden; do
	[ -d "$R$d" ] && mnt tmpfs "$d" nosuid,nodev,mode=0755
done
mnt bpf /sys/fs/bpf nosuid,nodev,noexec,mode=0700
mnt securityfs /sys/kernel/security nosuid,nodev,noexec
mnt tracefs /sys/kernel/tracing nosuid,nodev,noexec
mnt cgroup2 /sys/fs/cgroup nosuid,nodev,noexec
mount -t debugfs -o nosuid,nodev,noexec debugfs "$R/sys/kernel/debug" 2>/dev/null

V=/run/bpfwarden-vm
mkdir -p "$R$V/host" || infra "mkdir $V"
for d in tmp var/tmp; do
	if [ -d "/hostbind/$d" ]; then
		mkdir -p "$R$V/host/$d"
		mount -o move "/hostbind/$d" "$R$V/host/$d" || infra "move host /$d"
	fi
done

# Host directories under /tmp or /var/tmp the guest needs (a checkout, a
# build tree) come back at their own path, read-only.
for d in $keep; do
	case "$d" in
	/tmp/* | /var/tmp/*)
		mkdir -p "$R$d" && mount -o bind "$R$V/host$d" "$R$d" || infra "keep host $d visible in the guest" ;;
	esac
done

n=0
for d in $rw; do
	mkdir -p "$R$d" 2>/dev/null # e.g. below the guest's own /tmp
	mount -t virtiofs "bwrw$n" "$R$d" || infra "mount virtiofs tag bwrw$n on $d"
	n=$((n + 1))
done

ln -sf /proc/self/fd "$R/dev/fd" 2>/dev/null
ln -sf /proc/self/fd/0 "$R/dev/stdin" 2>/dev/null
ln -sf /proc/self/fd/1 "$R/dev/stdout" 2>/dev/null
ln -sf /proc/self/fd/2 "$R/dev/stderr" 2>/dev/null
hostname bpfwarden-vm
ip link set lo up 2>/dev/null

# Resolve the script path as the guest sees it.
case "$script" in
/tmp/* | /var/tmp/*) gscript="$V/host$script" ;;
*) gscript="$script" ;;
esac
[ -f "$R$gscript" ] || infra "guest script $script not found (looked at $gscript)"

if [ -n "$envb64" ]; then
	echo "$envb64" | base64 -d >"$R$V/env.sh" || infra "bw.env is not valid base64"
else
	: >"$R$V/env.sh"
fi
cat >"$R$V/run.sh" <<EOF
. $V/env.sh
cd /
if [ -x '$gscript' ]; then exec '$gscript'; else exec /bin/sh '$gscript'; fi
EOF

# Everything before this line is boot; a crash before it is the emulator's or
# the kernel's, never the script's (run-vm.sh retries those).
echo "BPFWARDEN-GUEST-SCRIPT-START"
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM=dumb LANG=C.UTF-8 BW_VM=1 BW_VM_SCRIPT="$script" \
	BW_VM_KERNEL="$(uname -r)" \
	chroot "$R" /bin/sh "$V/run.sh" </dev/null &
script_pid=$!
timer_pid=""
if [ "$deadline" -gt 0 ]; then
	# kill(-1) spares this init and the timer itself.
	(sleep "$deadline" && : >/tmp/script-hung && dump_processes "still running after $deadline s" &&
		kill -9 -1) &
	timer_pid=$!
fi
wait "$script_pid"
rc=$?
[ -n "$timer_pid" ] && kill "$timer_pid" 2>/dev/null
[ -e /tmp/script-hung ] && rc=124

# Kernel warnings are quiet on the console (loglevel 4): surface them.
if dmesg | grep -qE 'WARNING:|BUG:|Oops|Call Trace|general protection|Kernel panic'; then
	echo "BPFWARDEN-GUEST-KERNEL-WARNINGS-BEGIN"
	dmesg
	echo "BPFWARDEN-GUEST-KERNEL-WARNINGS-END"
fi
echo "BPFWARDEN-GUEST-EXIT=$rc"
poweroff_now
