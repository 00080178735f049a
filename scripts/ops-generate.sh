#!/usr/bin/env bash
# Regenerates the derived ops files after editing their sources:
#   dashboards/generate.py          -> dashboards/*.json
#   alerts/*.rules.yml              -> deploy/kubernetes/prometheusrule.yaml
# ctest's ops.dashboards_generated and ops.schemas fail while they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 dashboards/generate.py
tests/ops/schema/check.sh . "${BUILD_DIR:-build}/ops-schema" --write
