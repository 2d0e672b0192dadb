#!/usr/bin/env python3
"""CPU per check of the real bpfwarden-watchdog process.

Sets up the service's pins with bpfwardend, runs the watchdog with a 10 ms
interval and reads its CPU time from /proc over the checks it reports in its
status file: everything a check costs (inspection, held-pin checks, policy-map
digests when due, status-file write, event loop), not a model of it. A figure,
not an assertion: the exit status is non-zero only when it cannot run.

    watchdog_cpu.py --build DIR [--seconds N]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

from bench_service import BenchService, run_main


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def checks(status_file):
    with open(status_file) as f:
        return json.load(f)["checks"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bpfwarden-cpu.")
    service = BenchService(os.path.abspath(args.build), work, f"/sys/fs/bpf/bpfwarden-cpu-{os.getpid()}")
    os.makedirs(f"{work}/policy.d")
    status = f"{work}/status.json"
    proc = None
    try:
        service.set_up_pins()
        with open(f"{work}/watchdog.log", "w") as log:
            proc = subprocess.Popen([service.watchdog, *service.args, "--no-dbus", "--interval-ms", "10", "--status-file", status],
                                    stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while not os.path.exists(status) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)  # past start-up (image verification, identity derivation)
        cpu0, checks0 = cpu_seconds(proc.pid), checks(status)
        time.sleep(args.seconds)
        cpu1, checks1 = cpu_seconds(proc.pid), checks(status)
        n = checks1 - checks0
        if n <= 0:
            raise RuntimeError("the watchdog reported no checks")
        print(f"bench watchdog_cpu [{os.uname().release}]: the real watchdog process, interval 10 ms, "
              f"{args.seconds:.0f} s")
        print(f"  {n} checks, {(cpu1 - cpu0) * 1e6 / n:.0f} us CPU per check (user+system, "
              f"clock-tick resolution over the whole run)")
        return 0
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        service.unpin()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run_main(main, "watchdog_cpu")
