#!/usr/bin/env bash
# Installs the pinned schema packages (package-lock.json, from the npm
# registry, into WORK_DIR in the build tree; reused while the lock file is
# unchanged) and runs check.mjs. Usage: check.sh REPO_DIR WORK_DIR [--write]
set -euo pipefail
repo=$(cd "$1" && pwd)
work=$2
shift 2
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "check.sh: node and npm are needed (scripts/install-deps.sh installs them)" >&2
  exit 1
fi
mkdir -p "$work"
src="$repo/tests/ops/schema"
cp "$src/package.json" "$src/package-lock.json" "$src/check.mjs" "$src/grafana-types.ts" "$work/"
if ! cmp -s "$work/package-lock.json" "$work/node_modules/.redmap-installed-lock" 2>/dev/null; then
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$work/package-lock.json" "$work/node_modules/.redmap-installed-lock"
fi
exec node "$work/check.mjs" "$repo" "$@"
