#!/bin/bash
# Guest: the watchdog's tamper-to-heal latency with the BPF LSM programs.
python3 "$BW_SRC/bench/heal_latency.py" --build "$BW_BUILD" --pin-root /sys/fs/bpf/bpfwarden --rounds 5 \
  --label "$(uname -r) in qemu TCG"
