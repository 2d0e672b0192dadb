#!/usr/bin/env bash
# The bpfwarden demo, from a fresh Debian 12 machine (as root):
#   part 1 runs the service on this machine with the default policy; where the
#          kernel refuses BPF LSM programs it says why and keeps auditing;
#   part 2 runs the same demo in a VM booting Debian's kernel with BPF LSM on,
#          where the policy is really enforced.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kernel=${BPFWARDEN_DEMO_KERNEL:-6.12}

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "Setting up (packages, kernel filesystems, build, guest kernel)"
scripts/install-deps.sh
scripts/host-prep.sh
scripts/build.sh
selftests/vm/fetch-kernels.sh "$kernel"

say "Part 1: bpfwarden on this machine ($(uname -r))"
BW_BUILD="$root/build" BW_SRC="$root" BW_PINS=/sys/fs/bpf/bpfwarden-demo \
  "$root/scripts/demo-guest.sh"

say "Part 2: the same demo in a VM booting Debian's $kernel kernel with BPF LSM enabled"
out="$root/build/demo"
mkdir -p "$out"
selftests/vm/run-vm.sh --kernel "$kernel" --script "$root/scripts/demo-guest.sh" --keep-path "$root" \
  --env "BW_BUILD=$root/build" --env "BW_SRC=$root" --log "$out/console.log" --timeout 600
say "Demo finished (VM console kept in $out/console.log)"
