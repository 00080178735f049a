#!/usr/bin/env bash
# Installs build dependencies, builds, and starts redmap_exporter with the
# default config (config/redmap.yaml). Extra arguments go to the exporter,
# e.g. scripts/run.sh --web.listen-address=127.0.0.1:9435
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "run.sh: redmap loads BPF programs: run as root (sudo $0)" >&2
  exit 1
fi
scripts/install-deps.sh --build-only
scripts/build.sh -DREDMAP_BUILD_TESTS=OFF -DREDMAP_BUILD_FUZZERS=OFF
exec build/redmap_exporter --config.file=config/redmap.yaml "$@"
