# shellcheck shell=bash disable=SC2034
# Shared helpers for selftests/vm/*.sh (sourced, not executed).

BW_VM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BW_VM_CACHE="${BPFWARDEN_VM_CACHE:-/var/cache/bpfwarden/vm}"
BW_VM_KERNELS="6.1 6.12"

bw_prog="${bw_prog:-$(basename "$0" .sh)}"

die() {
	printf '%s: %s\n' "$bw_prog" "$*" >&2
	exit 1
}

info() {
	printf '%s: %s\n' "$bw_prog" "$*" >&2
}

# need_tool NAME [PACKAGE]: fail (never skip) when a host tool is missing.
need_tool() {
	command -v "$1" >/dev/null 2>&1 ||
		die "$1 not found (package ${2:-$1}): run scripts/install-deps.sh"
}

check_kernel_ver() {
	case " $BW_VM_KERNELS " in
	*" $1 "*) ;;
	*) die "unknown kernel '$1' (expected one of: $BW_VM_KERNELS)" ;;
	esac
}
