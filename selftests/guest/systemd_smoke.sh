#!/bin/bash
# Guest suite, run with run-vm.sh --systemd: the host's systemd is PID 1 and
# this script runs as bpfwarden-vm-script.service. Checks what later suites
# rely on: services in their own cgroups, systemctl start/stop/restart with
# PID 1's signals, the journal, and the harness's mounts.
. "$(dirname "$0")/lib.sh"

# check NAME EXPECTED ACTUAL
check() {
  if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}

# journal_has UNIT|-t TAG PATTERN: journalctl shows a matching line within 20 s.
journal_has() {
  local i
  for ((i = 0; i < 40; i++)); do
    journalctl -b --no-pager -o cat "$1" "$2" 2>/dev/null | grep -qE -- "$3" && return 0
    sleep 0.5
  done
  return 1
}

echo "== kernel $(uname -r), $(systemctl --version | head -n1)"
check pid1_is_systemd systemd "$(cat /proc/1/comm)"
check script_runs_as_service "0::/system.slice/bpfwarden-vm-script.service" "$(cat /proc/self/cgroup)"
check env_bw_vm 1 "${BW_VM:-}"
check env_bw_vm_kernel "$(uname -r)" "${BW_VM_KERNEL:-}"
check system_running running "$(systemctl is-system-running 2>&1)"
check no_failed_units "" "$(systemctl --failed --no-legend --plain 2>&1)"

# Mounts the harness promises in both modes.
check bpffs bpf_fs "$(stat -f -c %T /sys/fs/bpf)"
check securityfs securityfs "$(stat -f -c %T /sys/kernel/security)"
check tracefs tracefs "$(stat -f -c %T /sys/kernel/tracing)"
check cgroup2 cgroup2fs "$(stat -f -c %T /sys/fs/cgroup)"
check tmp_is_tmpfs tmpfs "$(stat -f -c %T /tmp)"
check var_log_is_tmpfs tmpfs "$(stat -f -c %T /var/log)"
[ -d /run/bpfwarden-vm/host/tmp ] && pass host_tmp_visible || fail host_tmp_visible "no /run/bpfwarden-vm/host/tmp"
case ",$(cat /sys/kernel/security/lsm)," in
  *,bpf,*) pass bpf_lsm_active ;;
  *) fail bpf_lsm_active "LSMs: $(cat /sys/kernel/security/lsm)" ;;
esac
echo ok >"$BW_OUT/written-from-guest" && pass rw_dir_writable || fail rw_dir_writable "$BW_OUT"
touch /usr/bw-smoke && rm /usr/bw-smoke && pass root_writable || fail root_writable "/usr is read-only"

# A transient service gets its own cgroup under system.slice.
check systemd_run_cgroup "0::/system.slice/bw-smoke.service" \
  "$(systemd-run --quiet --unit bw-smoke --wait --pipe -p Type=oneshot sh -c 'cat /proc/self/cgroup' </dev/null 2>&1)"

# A unit dropped into /etc: start, restart and stop, with SIGTERM from PID 1.
cat >/etc/systemd/system/bw-smoke-sleeper.service <<'EOF'
[Unit]
Description=bpfwarden VM smoke test sleeper

[Service]
ExecStart=/bin/sh -c 'trap "echo bw-smoke-sleeper got SIGTERM; exit 0" TERM; echo bw-smoke-sleeper started as $$$$; while :; do sleep 1 & wait $!; done'
EOF
systemctl daemon-reload
if systemctl start bw-smoke-sleeper.service; then pass systemctl_start; else fail systemctl_start "exit $?"; fi
check service_active active "$(systemctl is-active bw-smoke-sleeper.service)"
pid=$(systemctl show -P MainPID bw-smoke-sleeper.service)
check service_cgroup "0::/system.slice/bw-smoke-sleeper.service" "$(cat "/proc/$pid/cgroup" 2>&1)"
check service_parent_is_pid1 1 "$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status")"
journal_has -u bw-smoke-sleeper.service "bw-smoke-sleeper started as $pid" &&
  pass journal_has_service_output || fail journal_has_service_output "$(journalctl -b --no-pager -u bw-smoke-sleeper.service)"
systemctl restart bw-smoke-sleeper.service
pid2=$(systemctl show -P MainPID bw-smoke-sleeper.service)
[ -n "$pid2" ] && [ "$pid2" != 0 ] && [ "$pid2" != "$pid" ] && ! kill -0 "$pid" 2>/dev/null &&
  pass systemctl_restart || fail systemctl_restart "main pid $pid -> $pid2"
systemctl stop bw-smoke-sleeper.service
check service_stopped inactive "$(systemctl is-active bw-smoke-sleeper.service)"
if kill -0 "$pid2" 2>/dev/null; then fail service_process_gone "pid $pid2 still runs"; else pass service_process_gone; fi
journal_has -u bw-smoke-sleeper.service "bw-smoke-sleeper got SIGTERM" &&
  pass stop_sends_sigterm || fail stop_sends_sigterm "$(journalctl -b --no-pager -u bw-smoke-sleeper.service)"

# Plain journald: a tagged message comes back from journalctl.
echo "bw-smoke marker $$" | systemd-cat -t bw-smoke
journal_has -t bw-smoke "bw-smoke marker $$" && pass journald_works || fail journald_works "no marker in the journal"

finish
