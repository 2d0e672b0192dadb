#!/bin/bash
# mkinitramfs.sh <6.1|6.12> — build $CACHE/<ver>/initramfs.cpio.gz for the
# selftest VM: busybox-static, guest-init.sh as /init, and the (decompressed)
# modules needed to mount the host root over virtiofs.  Idempotent: rebuilt
# only when an input changed (init template, this script, busybox, kernel).
set -euo pipefail
bw_prog=mkinitramfs
. "$(dirname "$0")/common.sh"

# Loaded in this order (their dependencies first).  Built-in ones are skipped.
# loop: the rules_hold suite makes a small ext4 image (inode number reuse).
REQUIRED_MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci fuse virtiofs loop"
# Only loaded by the guest with bw.overlay=1 (run-vm.sh --writable-root).
OPTIONAL_MODULES="overlay"
# Only loaded with bw.systemd=1 (run-vm.sh --systemd): systemd as PID 1
# loads autofs4 itself, and the guest kernel's modules are not on the host root.
SYSTEMD_MODULES="autofs4"
BUSYBOX=/bin/busybox

[[ $# -eq 1 ]] || die "usage: $0 <$(echo "$BW_VM_KERNELS" | tr ' ' '|')>"
ver="$1"
check_kernel_ver "$ver"
dir="$BW_VM_CACHE/$ver"
[[ -f "$dir/kernel.env" ]] || die "kernel $ver not fetched: run selftests/vm/fetch-kernels.sh $ver"
# shellcheck disable=SC1091
. "$dir/kernel.env"
[[ -d "$MODDIR" ]] || die "$MODDIR missing: rm -rf '$dir' and run fetch-kernels.sh $ver"

[[ -x "$BUSYBOX" ]] || die "$BUSYBOX not found (package busybox-static): run scripts/install-deps.sh"
# Static ELF64 = no PT_INTERP (type 3) program header.
file_is_static() {
	local phoff phentsize phnum i
	read -r phoff < <(od -An -t u8 -j 32 -N 8 "$1")
	read -r phentsize phnum < <(od -An -t u2 -j 54 -N 4 "$1")
	for ((i = 0; i < phnum; i++)); do
		[[ "$(od -An -t u4 -j $((phoff + i * phentsize)) -N 4 "$1" | tr -d ' ')" != 3 ]] || return 1
	done
}
file_is_static "$BUSYBOX" || die "$BUSYBOX is dynamically linked: install busybox-static, not busybox"
need_tool cpio
need_tool gzip
need_tool sha256sum coreutils

init_tpl="$BW_VM_DIR/guest-init.sh"
[[ -r "$init_tpl" ]] || die "$init_tpl missing"
out="$dir/initramfs.cpio.gz"
stamp_file="$dir/initramfs.stamp"
stamp="$( {
	sha256sum "$init_tpl" "$BW_VM_DIR/mkinitramfs.sh" "$BUSYBOX" "$VMLINUZ"
	echo "$REQUIRED_MODULES / $OPTIONAL_MODULES / $SYSTEMD_MODULES"
} | sed 's/  .*\//  /' | sha256sum | cut -d' ' -f1)"

exec {lockfd}>"$dir/.initramfs.lock"
flock "$lockfd"
if [[ -f "$out" && -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
	exit 0
fi

# --- module resolution -----------------------------------------------------
declare -A modpath=() builtin=() seen=()
while IFS= read -r f; do
	b="${f##*/}"
	b="${b%%.ko*}"
	modpath["${b//-/_}"]="$f"
done < <(find "$MODDIR" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
if [[ -f "$MODDIR/modules.builtin" ]]; then
	while IFS= read -r f; do
		b="${f##*/}"
		b="${b%.ko}"
		builtin["${b//-/_}"]=1
	done <"$MODDIR/modules.builtin"
fi

stage="$(mktemp -d "$dir/initramfs.stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lib/modules}
chmod 0755 "$stage"

decompress() { # src dst
	case "$1" in
	*.ko) cp "$1" "$2" ;;
	*.ko.xz) need_tool xz xz-utils && xz -dc "$1" >"$2" ;;
	*.ko.zst) need_tool zstd && zstd -qdc "$1" >"$2" ;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	esac
}

order=()
add_module() { # name [optional|systemd]
	local m="${1//-/_}" dep deps
	[[ -n "${seen[$m]:-}" ]] && return 0
	seen[$m]=1
	if [[ -n "${builtin[$m]:-}" ]]; then
		info "$ver: $m is built in"
		return 0
	fi
	[[ -n "${modpath[$m]:-}" ]] ||
		die "$ver: kernel module $m is neither built in nor present under $MODDIR"
	decompress "${modpath[$m]}" "$stage/lib/modules/$m.ko" ||
		die "$ver: cannot decompress ${modpath[$m]}"
	deps="$(tr '\0' '\n' <"$stage/lib/modules/$m.ko" | sed -n 's/^depends=//p' | head -n1)"
	for dep in ${deps//,/ }; do
		add_module "$dep" "${2:-}"
	done
	order+=("$m${2:+ $2}")
}
for m in $REQUIRED_MODULES; do add_module "$m"; done
for m in $OPTIONAL_MODULES; do add_module "$m" optional; done
for m in $SYSTEMD_MODULES; do add_module "$m" systemd; done
printf '%s\n' "${order[@]}" >"$stage/modules.list"

cp "$BUSYBOX" "$stage/bin/busybox"
install -m 0755 "$init_tpl" "$stage/init"
# The kernel opens /dev/console for /init's stdio before devtmpfs exists.
mknod -m 0600 "$stage/dev/console" c 5 1 2>/dev/null || true

(cd "$stage" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --quiet --owner 0:0 | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
echo "$stamp" >"$stamp_file"
info "$ver: built $out (modules: $(tr '\n' ' ' <"$stage/modules.list"))"
