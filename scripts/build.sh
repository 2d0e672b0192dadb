#!/usr/bin/env bash
# Configures and builds bpfwarden into build/ (and, with --asan, the unit
# tests under AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/).
# build/ is configured for prefix /usr, the layout of the Debian package it
# also makes (build/package/bpfwarden_*.deb; README.md, "Installing").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$root/build" -j "$jobs"
cmake --build "$root/build" --target deb
if [[ "${1:-}" == "--asan" ]]; then
  cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=Debug -DBPFWARDEN_SANITIZE=ON >/dev/null
  cmake --build "$root/build-asan" -j "$jobs" --target bpfwarden_unit_tests manifest_fuzz policy_fuzz policy_bundle_fuzz
fi
