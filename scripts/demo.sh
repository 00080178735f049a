#!/usr/bin/env bash
# The local demo: installs dependencies, builds, and brings up redmap, a
# three-tier workload in network namespaces (loadgen -> frontend -> api ->
# redis, plus a lossy storage link), Prometheus with redmap's rules and
# Alertmanager, all on loopback, and prints the URLs. Ctrl-C stops and
# removes everything. Options go to scripts/demo/demo.py:
#   --fast          rule windows and "for" in seconds (alerts within a minute)
#   --free-ports    pick free ports instead of 9435/9090/9093
#   --seconds N     stop after N seconds
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: redmap loads BPF programs and the workload needs network namespaces: run as root" >&2
  exit 1
fi
scripts/install-deps.sh
scripts/build.sh -DREDMAP_BUILD_TESTS=OFF -DREDMAP_BUILD_FUZZERS=OFF
exec python3 scripts/demo/demo.py --build-dir "${BUILD_DIR:-build}" "$@"
