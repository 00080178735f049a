#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: unit, privileged
# integration (real BPF, real servers; needs root), and each fuzzer for
# REDMAP_FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: the integration tests load BPF programs: run as root (sudo $0)" >&2
  exit 1
fi
scripts/install-deps.sh
scripts/build.sh -DREDMAP_BUILD_TESTS=ON -DREDMAP_BUILD_FUZZERS=ON \
  -DREDMAP_FUZZ_SECONDS="${REDMAP_FUZZ_SECONDS:-60}"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 900 "$@"
