#!/usr/bin/env bash
# Installs every Debian package bpfwarden needs to build, test and run its VM
# selftests. Idempotent: does nothing when everything is already installed.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git clang llvm libclang-rt-14-dev
  libbpf-dev bpftool libcap-ng-dev libboost-dev libsystemd-dev libtomlplusplus-dev libssl-dev libcli11-dev
  # the Debian package: man pages from --help, dpkg-shlibdeps for its dependencies
  help2man dpkg-dev
  # style and static checks (scripts/lint.sh)
  clang-format-19 clang-tidy-19
  # tests
  googletest libgtest-dev libcap-ng-utils dbus systemd procps kmod openssl python3
  # benchmarks: event decode and format throughput (bench/event_pipeline_bench)
  libbenchmark-dev
  # D-Bus tests: a private dbus-daemon, busctl (systemd), dbus-send, setpriv for unprivileged callers
  dbus-daemon dbus-bin util-linux
  # metrics test: the real node_exporter serves and parses `bpfwardenctl metrics --textfile`
  prometheus-node-exporter
  # the systemd guests' polkitd (D-Bus authorization of non-root admins) and
  # systemd-analyze (units verified, exposure scores)
  polkitd systemd
  # VM selftests: qemu (TCG), virtiofsd, a static busybox for the initramfs
  qemu-system-x86 qemu-system-common busybox-static cpio xz-utils zstd
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: must run as root (apt-get install)" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
