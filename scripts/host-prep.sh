#!/usr/bin/env bash
# Mounts the kernel filesystems bpfwarden needs when the host's init did not
# (systemd does; minimal containers and VMs may not): bpffs for pins, tracefs
# for tracepoints, securityfs for the active LSM list.
set -euo pipefail

ensure_mount() {  # fstype mountpoint statfs-type-name
  local type=$1 target=$2
  if [[ "$(stat -f -c %T "$target" 2>/dev/null)" == "$3" ]]; then
    return 0
  fi
  mkdir -p "$target"
  mount -t "$type" "$type" "$target" || { echo "host-prep: cannot mount $type on $target" >&2; return 1; }
  echo "host-prep: mounted $type on $target"
}

ensure_mount bpf /sys/fs/bpf bpf_fs
ensure_mount tracefs /sys/kernel/tracing tracefs
ensure_mount securityfs /sys/kernel/security securityfs
