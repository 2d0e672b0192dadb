#!/usr/bin/env python3
"""Tamper-to-detection and detection-to-healed latency of bpfwarden-watchdog.

Starts bpfwardend and bpfwarden-watchdog (interval 60 s, so every figure is
event-driven detection), applies each tamper kind ROUNDS times, and prints
per kind the median and worst time from the tamper to the start of the heal
(detection) and the heal itself (the watchdog's own measurement), then
checks the programs really were restored. Figures, not assertions: the exit
status is non-zero only when the benchmark could not run or a heal failed.

    heal_latency.py --build DIR [--pin-root DIR] [--rounds N] [--label TEXT]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench_service import BenchService, inode_key_words


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.0005)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def read_status(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True)
    parser.add_argument("--pin-root", default=f"/sys/fs/bpf/bpfwarden-bench-{os.getpid()}")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--label", default=os.uname().release)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bpfwarden-bench.")
    service = BenchService(os.path.abspath(args.build), work, args.pin_root)
    os.makedirs(f"{work}/policy.d")
    with open(f"{work}/victim", "w") as f:
        f.write("victim\n")
    with open(f"{work}/policy.d/50-bench.toml", "w") as f:
        f.write(f'{BenchService.UNPROTECTED}\n[[file]]\npath = "{work}/victim"\naction = "deny"\n')
    status_file = f"{work}/status.json"
    procs = []
    try:
        return run(args, service, work, status_file, procs)
    except Exception:
        report_watchdog_log(f"{work}/watchdog.log", status_file)
        raise
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        service.unpin()
        shutil.rmtree(work, ignore_errors=True)


def report_watchdog_log(log, status_file):
    """On failure, show what the watchdog saw: its last status and log lines."""
    print(f"heal_latency: last watchdog status: {read_status(status_file)}", file=sys.stderr)
    try:
        with open(log) as f:
            for line in f.readlines()[-15:]:
                print(f"heal_latency: watchdog: {line.rstrip()}", file=sys.stderr)
    except OSError:
        pass


def run(args, service, work, status_file, procs):
    service.set_up_pins()
    pins = service.pins
    wlog = open(f"{work}/watchdog.log", "w")
    procs.append(subprocess.Popen([service.watchdog, *service.args, "--interval-ms", "60000",
                                   "--status-file", status_file], stderr=wlog, stdout=wlog))
    status = wait_for(lambda: read_status(status_file), 120, "the watchdog's first check")
    if not status["healthy"]:
        raise RuntimeError(f"watchdog unhealthy at start: {status['reasons']}")
    enforcing = status["mode"] == "enforcing"
    first = "bw_file_open" if enforcing else "bw_tp_exec"
    second = "bw_bprm_check" if enforcing else "bw_tp_bpf"
    victim = inode_key_words(f"{work}/victim")

    def bpftool(*words):
        return subprocess.run(["bpftool", *words], check=True, capture_output=True, text=True).stdout

    # A weakened entry: action 1 (allow) and zeros for the rest, as wide as the
    # map's value really is (the rule layout grows with the policy language).
    rules_map = f"{pins}/maps/bpfw_file_rules"
    value_size = json.loads(bpftool("-j", "map", "show", "pinned", rules_map))["bytes_value"]
    weakened = ["01", *["00"] * (value_size - 1)]

    tampers = {
        "link pin removed": lambda: os.unlink(f"{pins}/links/{first}"),
        "program swapped behind pin": lambda: os.rename(f"{pins}/links/{second}", f"{pins}/links/{first}"),
        "policy entry weakened": lambda: bpftool("map", "update", "pinned", rules_map,
                                                 "key", "hex", *victim, "value", "hex", *weakened),
        "policy entry deleted": lambda: bpftool("map", "delete", "pinned", rules_map, "key", "hex", *victim),
        "policy-map pin removed": lambda: os.unlink(rules_map),
        "policy map frozen (reload)": lambda: bpftool("map", "freeze", "pinned", rules_map),
    }
    print(f"bench heal_latency [{args.label}, {status['mode']}]: {args.rounds} rounds per tamper kind, "
          f"watchdog interval 60 s (event-driven detection only)")
    print(f"  {'tamper':30} {'detect median':>14} {'detect worst':>13} {'heal median':>12} {'heal worst':>11}")
    for name, tamper in tampers.items():
        detect, heal = [], []
        for _ in range(args.rounds):
            before = read_status(status_file)["heal_count"]
            t0 = time.monotonic()
            tamper()
            after = wait_for(lambda: (s := read_status(status_file)) and s["heal_count"] > before and s,
                             30, f"a heal after '{name}'")
            total_ms = (time.monotonic() - t0) * 1000
            heal_ms = after["last_heal"]["duration_usec"] / 1000.0
            heal.append(heal_ms)
            detect.append(max(total_ms - heal_ms, 0.0))
            if not after["healthy"]:
                raise RuntimeError(f"not healthy after healing '{name}': {after['reasons']}")
        print(f"  {name:30} {statistics.median(detect):11.2f} ms {max(detect):10.2f} ms "
              f"{statistics.median(heal):9.2f} ms {max(heal):8.2f} ms")
    print("  (detect: from the tamper until the heal started, including the status-file write this harness"
          " polls and, for map tampers, running bpftool; heal: the watchdog's own timing)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError, OSError) as error:
        print(f"heal_latency: {error}", file=sys.stderr)
        sys.exit(1)
