#!/usr/bin/env python3
"""Footprint of the real bpfwardend and bpfwarden-watchdog on this kernel.

Runs both (private work directory and pin root, no D-Bus) and prints:
start-up time of bpfwardend (process start to its policy in the maps), RSS
of each at idle with 10 rules, with 100 000 more file rules (and per rule),
and after the policy shrinks back to 10 rules (memory returned or not); the
time both take to apply the large policy; the watchdog's CPU at its default
1 s interval with the large policy; the kernel memory of the policy maps.
Figures, not assertions: the exit status is non-zero only when it cannot run.

    service_footprint.py --build DIR [--rules N] [--seconds N]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

from bench_service import BenchService, run_main
from watchdog_cpu import cpu_seconds


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def lines_matching(log, text):
    with open(log, errors="replace") as f:
        return sum(text in line for line in f)


def wait_for(log, text, count, timeout=300, start=None):
    """Until `log` holds `count` lines with `text`; returns the time since
    `start` (default: now). A refused policy ends the wait at once."""
    start = start or time.monotonic()
    refusals = lines_matching(log, "refused")
    while lines_matching(log, text) < count:
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"'{text}' did not appear {count} times in {log} within {timeout} s")
        if lines_matching(log, "refused") > refusals:
            raise RuntimeError(f"policy refused: see {log}")
        time.sleep(0.02)
    return time.monotonic() - start


def write_policy(path, files):
    """A policy file of one deny rule per file, written whole beside the
    policy directory, then renamed in: the services see it complete, once."""
    staged = os.path.join(os.path.dirname(os.path.dirname(path)), os.path.basename(path) + ".staged")
    with open(staged, "w") as f:
        for name in files:
            f.write(f'[[file]]\npath = "{name}"\naction = "deny"\n\n')
    os.rename(staged, path)
    return time.monotonic()


def make_files(root, count):
    files = []
    for index in range(count):
        directory = f"{root}/d{index // 1000:03d}"
        if index % 1000 == 0:
            os.makedirs(directory)
        name = f"{directory}/f{index % 1000:03d}"
        open(name, "w").close()
        files.append(name)
    return files


def policy_maps_kib(pins):
    out = subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True, text=True, check=True).stdout
    ours = set()
    for name in os.listdir(f"{pins}/maps"):
        info = subprocess.run(["bpftool", "-j", "map", "show", "pinned", f"{pins}/maps/{name}"],
                              capture_output=True, text=True)
        if info.returncode == 0:
            ours.add(json.loads(info.stdout)["id"])
    return sum(m.get("bytes_memlock", 0) for m in json.loads(out) if m["id"] in ours) / 1024


class Services:
    def __init__(self, service, work):
        self.service, self.work = service, work
        self.daemon = self.watchdog = None
        self.daemon_log, self.watchdog_log = f"{work}/daemon.log", f"{work}/watchdog.log"
        self.status = f"{work}/status.json"

    def start_daemon(self):
        with open(self.daemon_log, "w") as log:
            self.daemon = subprocess.Popen([self.service.daemon, *self.service.args, "--no-dbus"],
                                           stdout=log, stderr=log)
        return wait_for(self.daemon_log, "policy maps:", 1, timeout=120)

    def start_watchdog(self):
        with open(self.watchdog_log, "w") as log:
            self.watchdog = subprocess.Popen([self.service.watchdog, *self.service.args, "--no-dbus",
                                              "--status-file", self.status], stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while not os.path.exists(self.status):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the watchdog wrote no status within 120 s (see {self.watchdog_log})")
            time.sleep(0.05)

    def rss(self):
        return rss_mib(self.daemon.pid), rss_mib(self.watchdog.pid)

    def stop(self):
        for proc in (self.watchdog, self.daemon):
            if proc:
                proc.terminate()
                proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True)
    parser.add_argument("--rules", type=int, default=100_000, help="file rules of the large policy, in all")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bpfwarden-footprint.")
    service = BenchService(os.path.abspath(args.build), work, f"/sys/fs/bpf/bpfwarden-footprint-{os.getpid()}")
    policy = f"{work}/policy.d"
    os.makedirs(policy)
    running = Services(service, work)
    try:
        small = make_files(f"{work}/small", 10)
        with open(f"{policy}/00-bench.toml", "w") as f:
            f.write(BenchService.UNPROTECTED + "\n")
        write_policy(f"{policy}/10-small.toml", small)
        # max_rules (100 000 by default) counts the small policy's rules too.
        large = make_files(f"{work}/large", args.rules - len(small))

        startup = running.start_daemon()
        running.start_watchdog()
        time.sleep(3)
        idle = running.rss()

        applies = lines_matching(running.daemon_log, "policy maps:")
        recompiles = lines_matching(running.watchdog_log, "desired policy recompiled")
        written = write_policy(f"{policy}/20-large.toml", large)
        daemon_apply = wait_for(running.daemon_log, "policy maps:", applies + 1, start=written)
        watchdog_apply = wait_for(running.watchdog_log, "desired policy recompiled", recompiles + 1, start=written)
        time.sleep(3)
        loaded = running.rss()
        maps_kib = policy_maps_kib(service.pins)
        cpu0 = cpu_seconds(running.watchdog.pid)
        time.sleep(args.seconds)
        watchdog_cpu = (cpu_seconds(running.watchdog.pid) - cpu0) / args.seconds * 100

        os.unlink(f"{policy}/20-large.toml")
        wait_for(running.daemon_log, "policy maps:", applies + 2)
        wait_for(running.watchdog_log, "desired policy recompiled", recompiles + 2)
        time.sleep(3)
        shrunk = running.rss()

        print(f"bench service_footprint [{os.uname().release}]: the real services, "
              f"10 file rules, then {args.rules}, then 10 again")
        print(f"  bpfwardend start-up to its policy in the maps: {startup * 1000:.0f} ms")
        print(f"  {'':34} {'bpfwardend':>12} {'watchdog':>12}")
        print(f"  {'RSS idle, 10 rules (MiB)':34} {idle[0]:12.1f} {idle[1]:12.1f}")
        print(f"  {f'RSS with {args.rules} rules (MiB)':34} {loaded[0]:12.1f} {loaded[1]:12.1f}")
        per_rule = [(loaded[i] - idle[i]) * 1024 / len(large) for i in range(2)]
        print(f"  {'per rule (kB)':34} {per_rule[0]:12.2f} {per_rule[1]:12.2f}")
        print(f"  {'RSS back at 10 rules (MiB)':34} {shrunk[0]:12.1f} {shrunk[1]:12.1f}")
        print(f"  {'applying the large policy (s)':34} {daemon_apply:12.1f} {watchdog_apply:12.1f}")
        print(f"  watchdog CPU at its 1 s interval with {args.rules} rules: {watchdog_cpu:.2f} % "
              f"(over {args.seconds:.0f} s, clock-tick resolution)")
        print(f"  policy and event maps in the kernel (memlock): {maps_kib / 1024:.1f} MiB")
        return 0
    finally:
        running.stop()
        service.unpin()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run_main(main, "service_footprint")
