#!/bin/busybox sh
# shellcheck shell=dash
# /init of the selftest VM initramfs (built by mkinitramfs.sh; runs under
# busybox-static).  Contract (see README.md):
#   bw.script=/abs/path   guest script, a host path (the host root is shared)
#   bw.env=<base64>       optional: shell snippet of `export K='v'` lines
#   bw.rw=/abs/path       optional, repeatable: writable host dir, virtiofs tag bwrw<N>
#   bw.overlay=1          optional: writable root (tmpfs overlay over the host root)
#   bw.systemd=1          optional: boot the host's systemd as PID 1 (implies
#                         bw.overlay=1); the script runs as bpfwarden-vm-script.service
#   bw.debug=1            optional: trace this init with set -x
#   bw.deadline=SECONDS   optional: the script's own time limit; past it every
#                         process's state, wait channel and kernel stack is
#                         printed (BPFWARDEN-GUEST-SCRIPT-HUNG) before it is killed
# Prints BPFWARDEN-GUEST-EXIT=<code> or BPFWARDEN-GUEST-INFRA-ERROR: <cause>,
# then powers the VM off.
#
# With bw.systemd=1 this file is also the service side: /init copies it to
# /run/bpfwarden-vm/guest-init.sh and the units it writes run it, under the
# host's /bin/busybox, as
#   --service            bpfwarden-vm-script.service: run the script, report
#   --service-stopped    its ExecStopPost=: the service ended without a report
#   --boot-failed WHAT   emergency/rescue.service: systemd could not boot

poweroff_now() {
	sync
	# busybox's own poweroff: reboot(2) directly, whoever PID 1 is.
	/bin/busybox poweroff -f
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
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") # quiet if $p has just exited
		[ -n "$cmd" ] || continue # kernel thread
		echo "pid ${p#/proc/} $(sed -n 's/^State:[[:space:]]*//p' "$p/status") wchan=$(cat "$p/wchan" 2>/dev/null): $cmd"
		head -n 12 "$p/stack" 2>/dev/null | sed 's/^/    /'
	done
	echo "--- dmesg (last 20 lines) ---"
	dmesg | tail -n 20
	echo "BPFWARDEN-GUEST-SCRIPT-HUNG-END"
}

parse_cmdline() {
	script="" envb64="" overlay=0 systemd=0 rw="" keep="" deadline=0
	set -f # the command line is split into words, never globbed
	# shellcheck disable=SC2013
	for arg in $(cat /proc/cmdline); do
		case "$arg" in
		bw.script=*) script="${arg#bw.script=}" ;;
		bw.env=*) envb64="${arg#bw.env=}" ;;
		bw.rw=*) rw="$rw ${arg#bw.rw=}" ;;
		bw.keep=*) keep="$keep ${arg#bw.keep=}" ;;
		bw.overlay=1) overlay=1 ;;
		bw.systemd=1) systemd=1 overlay=1 ;;
		bw.debug=1) set -x ;;
		bw.deadline=*) deadline="${arg#bw.deadline=}" ;;
		esac
	done
	set +f
	[ -n "$script" ] || infra "no bw.script= on the kernel command line"
}

V=/run/bpfwarden-vm

# run_script [ROOT]: run $V/run.sh (chrooted into ROOT if given) with the
# contract's environment and bw.deadline, then report its exit code and
# power off.  HUNG_FLAG and KILL_ON_HANG are set by the caller.
run_script() {
	# Everything before this line is boot; a crash before it is the emulator's
	# or the kernel's, never the script's (run-vm.sh retries those).
	echo "BPFWARDEN-GUEST-SCRIPT-START"
	if [ -n "${1:-}" ]; then set -- chroot "$1"; fi
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root TERM=dumb LANG=C.UTF-8 BW_VM=1 BW_VM_SCRIPT="$script" \
		BW_VM_KERNEL="$(uname -r)" \
		"$@" /bin/sh "$V/run.sh" </dev/null &
	script_pid=$!
	timer_pid=""
	if [ "$deadline" -gt 0 ]; then
		(sleep "$deadline" && : >"$HUNG_FLAG" && dump_processes "still running after $deadline s" &&
			kill -9 "${KILL_ON_HANG:-$script_pid}") &
		timer_pid=$!
	fi
	wait "$script_pid"
	rc=$?
	[ -n "$timer_pid" ] && kill "$timer_pid" 2>/dev/null
	[ -e "$HUNG_FLAG" ] && rc=124

	# Kernel warnings are quiet on the console (loglevel 4): surface them.
	if dmesg | grep -qE 'WARNING:|BUG:|Oops|Call Trace|general protection|Kernel panic'; then
		echo "BPFWARDEN-GUEST-KERNEL-WARNINGS-BEGIN"
		dmesg
		echo "BPFWARDEN-GUEST-KERNEL-WARNINGS-END"
	fi
	echo "BPFWARDEN-GUEST-EXIT=$rc"
	poweroff_now
}

# --- bw.systemd=1: the service side (the units are written by boot_systemd) --
failed_units() {
	systemctl --failed --no-legend --plain 2>/dev/null | while read -r u _; do printf ' %s' "$u"; done
}
case "${1:-}" in
--service)
	parse_cmdline
	failed="$(failed_units)"
	[ -z "$failed" ] || echo "vm: systemd units that failed while booting:$failed"
	# The service's cgroup also holds this shell and the timer: kill only the
	# script past its deadline; the poweroff ends everything else.
	HUNG_FLAG=$V/script-hung KILL_ON_HANG=""
	run_script
	;;
--service-stopped) # ExecStopPost=: run_script powers off before the service ends
	infra "bpfwarden-vm-script.service ended without reporting the script's exit code (result=${SERVICE_RESULT:-?} ${EXIT_CODE:-?}=${EXIT_STATUS:-?})"
	;;
--boot-failed)
	failed="$(failed_units)"
	infra "systemd started ${2:-emergency}.target instead of booting bpfwarden-vm.target; failed units:${failed:- none}"
	;;
esac
# Everything below sets up a machine: only ever as the initramfs' PID 1.
if [ "$$" != 1 ]; then
	echo "guest-init.sh: not PID 1; this is the selftest VM's /init (or pass --service etc.)" >&2
	exit 2
fi

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
umask 022

mkdir -p /proc /sys /dev /tmp /newroot /hostbind
mount -t proc proc /proc || infra "mount /proc"
mount -t sysfs sysfs /sys || infra "mount /sys"
mount -t devtmpfs devtmpfs /dev || infra "mount /dev"
exec </dev/null >/dev/console 2>&1

parse_cmdline

# Modules, in dependency order, as listed by mkinitramfs.sh.  Built-in ones
# were left out at build time.
while read -r mod opt; do
	[ -n "$mod" ] || continue
	if [ "$opt" = optional ] && [ "$overlay" != 1 ]; then continue; fi
	if [ "$opt" = systemd ] && [ "$systemd" != 1 ]; then continue; fi
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
# The build host's own bpfwarden configuration and state are not the guest's:
# on a writable (overlay) root they are removed from the guest's view
# (whiteouts; the host keeps them), so the guest is a host that never had
# bpfwarden (the package suite installs into it); on the read-only root an
# empty tmpfs hides them.
for d in /var/lib/bpfwarden /etc/bpfwarden; do
	[ -d "$R$d" ] || continue
	if [ "$overlay" = 1 ]; then
		rm -rf "${R:?}$d" || infra "hide the host's $d"
	else
		mnt tmpfs "$d" nosuid,nodev,mode=0755
	fi
done
mnt bpf /sys/fs/bpf nosuid,nodev,noexec,mode=0700
mnt securityfs /sys/kernel/security nosuid,nodev,noexec
mnt tracefs /sys/kernel/tracing nosuid,nodev,noexec
# systemd mounts cgroup2 itself, with the options it wants (nsdelegate, ...).
[ "$systemd" = 1 ] || mnt cgroup2 /sys/fs/cgroup nosuid,nodev,noexec
mount -t debugfs -o nosuid,nodev,noexec debugfs "$R/sys/kernel/debug" 2>/dev/null

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

# --- bw.systemd=1: hand the prepared root to the host's systemd ---------------
# Units that fail in this guest or only cost boot time under TCG, where every
# process systemd starts in parallel slows down all the others.  The guest
# kernel's modules are not on the host root (modules-load, modprobe@,
# binfmt_misc's autofs automount); the root is an overlay on tmpfs
# (remount-fs, random-seed, journal-flush: the journal stays in /run/log);
# ConditionNeedsUpdate= holds on a host root that never booted (ldconfig &
# co. would rebuild caches); the host's users exist (sysusers); there is no
# network (timesyncd), nobody logs in (getty, utmp), no hugepages or FUSE.
SYSTEMD_MASKED="systemd-remount-fs.service systemd-modules-load.service modprobe@.service
	proc-sys-fs-binfmt_misc.automount systemd-binfmt.service
	systemd-random-seed.service systemd-journal-flush.service
	ldconfig.service systemd-update-done.service systemd-journal-catalog-update.service
	systemd-hwdb-update.service systemd-sysusers.service systemd-timesyncd.service
	getty.target systemd-update-utmp.service systemd-update-utmp-runlevel.service
	dev-hugepages.mount sys-fs-fuse-connections.mount sys-kernel-config.mount"
# Generators, too, run in parallel at boot: all but the one that reads
# systemd.mask=/systemd.wants=/systemd.debug_shell from the command line.
SYSTEMD_GENERATORS_KEPT="systemd-debug-generator"

# service_unit NAME DESCRIPTION ARGS...: a unit running this file with ARGS,
# its output on the console.
service_unit() {
	u="$1" desc="$2"
	shift 2
	cat >"$R/etc/systemd/system/$u" <<EOF
[Unit]
Description=$desc
DefaultDependencies=no

[Service]
Type=oneshot
ExecStart=/bin/busybox sh $V/guest-init.sh $*
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/console
EOF
}

boot_systemd() {
	[ -x "$R/lib/systemd/systemd" ] || infra "bw.systemd=1, but the host has no /lib/systemd/systemd"
	[ -x "$R/bin/busybox" ] || infra "bw.systemd=1 needs the host's /bin/busybox (busybox-static)"
	E="$R/etc/systemd/system"
	# A guest of its own: a fresh machine id (no "first boot" either), its
	# hostname, and an empty fstab (the host's names the host's disks; waiting
	# for them would end in emergency mode).
	tr -d - </proc/sys/kernel/random/uuid >"$R/etc/machine-id" || infra "write /etc/machine-id"
	[ -f "$R/var/lib/dbus/machine-id" ] && ln -sf /etc/machine-id "$R/var/lib/dbus/machine-id"
	echo bpfwarden-vm >"$R/etc/hostname"
	: >"$R/etc/fstab"
	# A host that is a docker container has /.dockerenv: systemd would think
	# it runs in a container and ignore the kernel command line.
	rm -f "$R/.dockerenv"
	# Boot the vendor's static dependencies of basic.target and ours, never
	# what the host enabled (its timers, sockets, services).
	mkdir -p "$E" "$R/etc/tmpfiles.d"
	rm -rf "$E"/*.wants "$E"/*.requires
	ln -sf bpfwarden-vm.target "$E/default.target" # systemd.unit= says the same
	for u in $SYSTEMD_MASKED; do ln -sf /dev/null "$E/$u"; done
	mkdir -p "$R/etc/systemd/system-generators"
	for g in "$R"/lib/systemd/system-generators/* "$R"/usr/lib/systemd/system-generators/*; do
		case " $SYSTEMD_GENERATORS_KEPT " in
		*" ${g##*/} "*) ;;
		*) [ -e "$g" ] && ln -sf /dev/null "$R/etc/systemd/system-generators/${g##*/}" ;;
		esac
	done
	# /tmp was set up above (--keep-path binds): tmpfiles' "D /tmp" must not
	# empty it at boot.
	echo 'd /tmp 1777 root root -' >"$R/etc/tmpfiles.d/tmp.conf"
	cp /init "$R$V/guest-init.sh" || infra "copy /init to $V"

	cat >"$E/bpfwarden-vm.target" <<EOF
[Unit]
Description=bpfwarden VM: run the guest script
Wants=basic.target bpfwarden-vm-script.service
After=basic.target
AllowIsolate=yes
EOF
	# Ordered after basic.target but never requiring it: a unit that failed
	# while booting is listed on the console, and the script runs regardless.
	cat >"$E/bpfwarden-vm-script.service" <<EOF
[Unit]
Description=bpfwarden VM guest script $script
DefaultDependencies=no
Wants=basic.target
After=basic.target
Conflicts=shutdown.target
Before=shutdown.target

[Service]
Type=simple
ExecStart=/bin/busybox sh $V/guest-init.sh --service
ExecStopPost=/bin/busybox sh $V/guest-init.sh --service-stopped
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/console
EOF
	# Instead of a root shell nobody can type into: say so and power off.
	service_unit emergency.service "bpfwarden VM: report a failed boot" --boot-failed emergency
	service_unit rescue.service "bpfwarden VM: report a failed boot" --boot-failed rescue

	# Leave nothing of the initramfs mounted below the new root: overlayfs
	# holds its own references to its layers.
	umount -l /lower /ovl /proc /sys /dev || infra "umount the initramfs' mounts"
	exec switch_root "$R" /lib/systemd/systemd
}

if [ "$systemd" = 1 ]; then
	boot_systemd # does not return
fi
# kill(-1) spares this init and the timer itself.
HUNG_FLAG=/tmp/script-hung KILL_ON_HANG=-1
run_script "$R"
