#!/usr/bin/env bash
# What redmap costs every other process on the node: its sys_exit program runs
# at the exit of every syscall, and each read/write of a regular file or pipe
# goes as far as the fd table before it can leave. This pushes 64-byte blocks
# through a pipe with dd (four million reads and writes on non-socket fds) and
# prints the program's mean run time per syscall exit (kernel.bpf_stats_enabled
# run_time_ns / run_cnt), and dd's wall time with and without redmap.
#
# Usage (root): tests/bench/file_io_cost.sh [build/redmap_exporter]
# Env: ROUNDS (3), BLOCKS (1000000), OUT file.
set -euo pipefail

EXPORTER=${1:-build/redmap_exporter}
ROUNDS=${ROUNDS:-3}
BLOCKS=${BLOCKS:-1000000}
OUT=${OUT:-tests/bench/results/file_io_cost.txt}
[[ $(id -u) -eq 0 ]] || { echo "file_io_cost.sh: needs root (loads BPF)" >&2; exit 1; }
for t in bpftool python3 dd curl; do
  command -v "$t" >/dev/null || { echo "file_io_cost.sh: $t missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[[ -x $EXPORTER ]] || { echo "file_io_cost.sh: $EXPORTER not built" >&2; exit 1; }

METRICS_PORT=19435
EXPORTER_PID=""
cleanup() {
  [[ -n $EXPORTER_PID ]] && kill "$EXPORTER_PID" 2>/dev/null && wait "$EXPORTER_PID" 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled=0 || true
}
trap cleanup EXIT

# "run_time_ns run_cnt" summed over the sys_exit program copies.
sys_exit_stats() {
  bpftool prog show -j | python3 -c '
import json, sys
progs = [p for p in json.load(sys.stdin)
         if p.get("name") in ("sys_exit_btf", "sys_exit_compat", "sys_exit_raw")]
print(sum(p.get("run_time_ns", 0) for p in progs), sum(p.get("run_cnt", 0) for p in progs))'
}
pipe_dd() {  # -> wall seconds
  local s e
  s=$(date +%s.%N)
  dd if=/dev/zero bs=64 count="$BLOCKS" status=none | dd of=/dev/null bs=64 status=none
  e=$(date +%s.%N)
  python3 -c "print(round($e - $s, 3))"
}

sysctl -qw kernel.bpf_stats_enabled=1
declare -a ns_per_run wall_with wall_without
for round in $(seq "$ROUNDS"); do
  wall_without+=("$(pipe_dd)")
  "$EXPORTER" --web.listen-address=127.0.0.1:$METRICS_PORT > /tmp/redmap-file-io-cost.log 2>&1 &
  EXPORTER_PID=$!
  up=0
  for _ in $(seq 300); do
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null | grep -q '^redmap_probe_up' && { up=1; break; }
    sleep 0.1
  done
  [[ $up == 1 ]] || { echo "exporter did not come up:"; cat /tmp/redmap-file-io-cost.log; exit 1; }
  read -r t0 c0 < <(sys_exit_stats)
  wall_with+=("$(pipe_dd)")
  read -r t1 c1 < <(sys_exit_stats)
  ns_per_run+=("$(python3 -c "print(round(($t1 - $t0) / max(1, $c1 - $c0)))")")
  kill "$EXPORTER_PID"; wait "$EXPORTER_PID" || true; EXPORTER_PID=""
  echo "round $round: ${ns_per_run[-1]} ns per sys_exit run; dd ${wall_without[-1]} s without, ${wall_with[-1]} s with" >&2
done

{
  echo "# redmap on non-socket I/O: dd bs=64 count=$BLOCKS through a pipe, $ROUNDS rounds"
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) kernel $(uname -r), $(nproc) CPUs"
  echo "sys_exit_ns_per_run ${ns_per_run[*]}"
  echo "dd_wall_s_without ${wall_without[*]}"
  echo "dd_wall_s_with ${wall_with[*]}"
} | tee "$OUT"
