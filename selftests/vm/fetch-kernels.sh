#!/bin/bash
# fetch-kernels.sh [6.1|6.12|all] — download (never install) Debian's cloud
# kernels for the selftest VM into $BPFWARDEN_VM_CACHE (default
# /var/cache/bpfwarden/vm).
#
#   6.1   bookworm (+updates, +security)  linux-image-cloud-amd64
#   6.12  bookworm-backports              linux-image-cloud-amd64
#
# apt runs with a private configuration (sources, lists, caches under
# $CACHE/apt/<ver>/): nothing under /etc/apt, /var/lib/apt or /var/cache/apt
# is touched.  Result: $CACHE/<ver>/root (the extracted .deb) and
# $CACHE/<ver>/kernel.env (VMLINUZ=, MODDIR=, KVER=, PKG=, PKGVER=).
# shellcheck disable=SC1090,SC2153  # kernel.env is sourced
set -euo pipefail
bw_prog=fetch-kernels
. "$(dirname "$0")/common.sh"

MIRROR="${BPFWARDEN_VM_MIRROR:-http://deb.debian.org/debian}"
SEC_MIRROR="${BPFWARDEN_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
META=linux-image-cloud-amd64

sources_for() {
	local k="signed-by=$KEYRING"
	case "$1" in
	6.1)
		echo "deb [$k] $MIRROR bookworm main"
		echo "deb [$k] $MIRROR bookworm-updates main"
		echo "deb [$k] $SEC_MIRROR bookworm-security main"
		;;
	6.12)
		echo "deb [$k] $MIRROR bookworm-backports main"
		;;
	esac
}

fetch_one() {
	local ver="$1" dir="$BW_VM_CACHE/$1"
	local envf="$dir/kernel.env"

	if [[ -f "$envf" ]]; then
		# shellcheck disable=SC1090
		(. "$envf" && [[ -f "$VMLINUZ" && -d "$MODDIR" ]]) ||
			die "$envf exists but its kernel is incomplete: rm -rf '$dir' and retry"
		info "$ver: already fetched ($(. "$envf"; echo "$PKG $PKGVER")), nothing to do"
		return 0
	fi

	need_tool apt-get apt
	need_tool apt-cache apt
	need_tool dpkg-deb dpkg
	[[ -r "$KEYRING" ]] || die "$KEYRING missing (package debian-archive-keyring)"

	local apt="$BW_VM_CACHE/apt/$ver"
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" \
		"$apt/sources.list.d" "$apt/preferences.d" "$apt/apt.conf.d" "$dir"
	sources_for "$ver" >"$apt/sources.list"

	# APT_CONFIG is read before /etc/apt/apt.conf.d, Dir::Etc::main after it:
	# point main at our file so we can #clear hooks the host config installs
	# (e.g. appstream's refresh of system-wide caches on update).  A host
	# /etc/apt/apt.conf (often a proxy setting) is carried over.
	{
		[[ -r /etc/apt/apt.conf ]] && cat /etc/apt/apt.conf
		cat <<-EOF
			#clear APT::Update::Pre-Invoke;
			#clear APT::Update::Post-Invoke;
			#clear APT::Update::Post-Invoke-Success;
			#clear DPkg::Pre-Invoke;
			#clear DPkg::Post-Invoke;
			Dir::Etc::SourceList "$apt/sources.list";
			Dir::Etc::SourceParts "$apt/sources.list.d";
			Dir::Etc::Preferences "$apt/preferences";
			Dir::Etc::PreferencesParts "$apt/preferences.d";
			Dir::State::Lists "$apt/lists";
			Dir::Cache "$apt/cache";
			Dir::Cache::pkgcache "";
			Dir::Cache::srcpkgcache "";
			APT::Sandbox::User "root";
			Acquire::Languages "none";
		EOF
	} >"$apt/main.conf"
	printf 'Dir::Etc::main "%s";\n' "$apt/main.conf" >"$apt/apt.conf"
	export APT_CONFIG="$apt/apt.conf"

	info "$ver: updating private package lists ($(sources_for "$ver" | awk '{print $4}' | paste -sd' '))"
	apt-get -q update >"$apt/update.log" 2>&1 || {
		cat "$apt/update.log" >&2
		die "$ver: apt-get update failed for: $(sources_for "$ver" | cut -d' ' -f3- | paste -sd';')"
	}
	if grep -q '^[WE]:' "$apt/update.log"; then
		cat "$apt/update.log" >&2
		die "$ver: apt-get update reported errors (see above)"
	fi

	local pkg
	pkg="$(apt-cache depends "$META" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*\).*/\1/p' | head -n1)"
	[[ -n "$pkg" ]] ||
		die "$ver: cannot resolve $META to a linux-image-* package in $(sources_for "$ver" | awk '{print $4}' | paste -sd' ')"
	[[ "$pkg" == "linux-image-$ver."* ]] ||
		die "$ver: $META resolves to $pkg, which is not a $ver kernel"

	local dl="$dir/dl.$$"
	rm -rf "$dir"/dl.* "$dir"/root.tmp.*
	mkdir -p "$dl"
	info "$ver: downloading $pkg"
	(cd "$dl" && apt-get -q download "$pkg") >&2 ||
		{ rm -rf "$dl"; die "$ver: apt-get download $pkg failed"; }
	local deb
	deb="$(find "$dl" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)"
	[[ -n "$deb" ]] || { rm -rf "$dl"; die "$ver: apt-get download $pkg produced no .deb"; }

	local tmp="$dir/root.tmp.$$"
	dpkg-deb -x "$deb" "$tmp" || { rm -rf "$dl" "$tmp"; die "$ver: dpkg-deb -x $deb failed"; }
	local pkgver
	pkgver="$(dpkg-deb -f "$deb" Version)"
	rm -rf "$dl"

	local vmlinuz moddir kver
	vmlinuz="$(find "$tmp/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | head -n1)"
	[[ -n "$vmlinuz" ]] || { rm -rf "$tmp"; die "$ver: no boot/vmlinuz-* in $pkg"; }
	kver="${vmlinuz##*/vmlinuz-}"
	for moddir in "$tmp/lib/modules/$kver" "$tmp/usr/lib/modules/$kver"; do
		[[ -d "$moddir" ]] && break
	done
	[[ -d "$moddir" ]] || { rm -rf "$tmp"; die "$ver: no modules/$kver directory in $pkg"; }

	rm -rf "$dir/root"
	mv "$tmp" "$dir/root"
	cat >"$envf.tmp" <<-EOF
		KVER=$kver
		VMLINUZ=$dir/root/${vmlinuz#"$tmp"/}
		MODDIR=$dir/root/${moddir#"$tmp"/}
		PKG=$pkg
		PKGVER=$pkgver
	EOF
	mv "$envf.tmp" "$envf"
	info "$ver: fetched $pkg $pkgver (kernel $kver) into $dir"
}

main() {
	local what="${1:-all}" vers v
	[[ $# -le 1 ]] || die "usage: $0 [6.1|6.12|all]"
	case "$what" in
	all) vers="$BW_VM_KERNELS" ;;
	-h | --help)
		echo "usage: $0 [6.1|6.12|all]   (cache: $BW_VM_CACHE)"
		exit 0
		;;
	*)
		check_kernel_ver "$what"
		vers="$what"
		;;
	esac
	mkdir -p "$BW_VM_CACHE"
	for v in $vers; do
		# Serialise concurrent runs (e.g. two run-vm.sh in parallel).
		exec {lockfd}>"$BW_VM_CACHE/.fetch-$v.lock"
		flock "$lockfd"
		fetch_one "$v"
		exec {lockfd}>&-
	done
}

main "$@"
