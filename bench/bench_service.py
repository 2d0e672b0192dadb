"""The service's binaries and arguments for a benchmark run in a private work
directory and pin root, shared by the benchmarks that drive the real
bpfwardend and bpfwarden-watchdog."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "selftests", "helpers"))
from inode_key import hex_words, inode_key  # noqa: E402


def inode_key_words(path):
    """FILE's policy-map key as hex words for `bpftool ... key hex`."""
    return hex_words(inode_key(path))


class BenchService:
    # Benchmarks run our binaries by hand, not as the systemd units that
    # self-protection recognises, so their policies turn protection off.
    UNPROTECTED = "protect = false"

    def __init__(self, build, work, pins):
        self.daemon = f"{build}/daemon/bpfwardend"
        self.watchdog = f"{build}/watchdog/bpfwarden-watchdog"
        self.pins = pins
        os.makedirs(f"{work}/state", exist_ok=True)
        self.args = ["--policy-dir", f"{work}/policy.d", "--image-dir", f"{build}/bpf/images",
                     "--keys-dir", f"{build}/keys/trusted", "--state-dir", f"{work}/state", "--pin-root", pins,
                     "--daemon-exe", self.daemon, "--watchdog-exe", self.watchdog, "--canary", f"{work}/canary",
                     "--log-target", "stderr"]

    def set_up_pins(self):
        """Load, attach and pin everything with bpfwardend, which then exits."""
        subprocess.run([self.daemon, *self.args, "--exit-after-setup"], check=True, capture_output=True)

    def unpin(self):
        subprocess.run([self.daemon, "--unpin", "--yes", "--pin-root", self.pins, "--log-target", "stderr"],
                       capture_output=True)


def run_main(main, name):
    """Runs a benchmark's main(): its exit status, or 1 with the reason when
    it cannot run."""
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError, OSError, ValueError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        sys.exit(1)
