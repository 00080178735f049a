#!/usr/bin/env bash
# Cost of redmap's TCP health probes on bulk transfers, where they fire per
# segment and per state change (not per byte): two network namespaces joined
# by a veth pair, a sink server in one, a client sending BYTES in the other
# (tests/integration/tcp_peer.py), alternated with and without redmap
# ROUNDS times. Prints throughput with and without, and the ratio.
#
# Usage (root): tests/bench/tcp_bulk.sh [build/redmap_exporter]
# Env: ROUNDS (3), BYTES per transfer (2000000000), OUT file.
set -euo pipefail

EXPORTER=${1:-build/redmap_exporter}
ROUNDS=${ROUNDS:-3}
BYTES=${BYTES:-2000000000}
OUT=${OUT:-tests/bench/results/tcp_bulk.txt}
PEER=tests/integration/tcp_peer.py
[[ $(id -u) -eq 0 ]] || { echo "tcp_bulk.sh: needs root" >&2; exit 1; }
[[ -x $EXPORTER ]] || { echo "tcp_bulk.sh: $EXPORTER not built" >&2; exit 1; }

SRV=rmbench-srv-$$ CLI=rmbench-cli-$$ PORT=7400
EXPORTER_PID="" SINK_PID=""
cleanup() {
  [[ -n $EXPORTER_PID ]] && kill "$EXPORTER_PID" 2>/dev/null && wait "$EXPORTER_PID" 2>/dev/null || true
  [[ -n $SINK_PID ]] && kill "$SINK_PID" 2>/dev/null || true
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$SRV"; ip netns add "$CLI"
ip link add "rbs$$" type veth peer name "rbc$$"
ip link set "rbs$$" netns "$SRV"; ip link set "rbc$$" netns "$CLI"
ip netns exec "$SRV" sh -c "ip addr add 10.214.0.1/24 dev rbs$$ && ip link set rbs$$ up && ip link set lo up"
ip netns exec "$CLI" sh -c "ip addr add 10.214.0.2/24 dev rbc$$ && ip link set rbc$$ up && ip link set lo up"
ip netns exec "$SRV" python3 "$PEER" sink 10.214.0.1 "$PORT" 1 > /dev/null &
SINK_PID=$!
sleep 0.5

transfer() {  # prints Gbit/s of one transfer
  local t0 t1
  t0=$(date +%s.%N)
  ip netns exec "$CLI" python3 "$PEER" send 10.214.0.1 "$PORT" "$BYTES" > /dev/null
  t1=$(date +%s.%N)
  python3 -c "print(f'{$BYTES * 8 / ($t1 - $t0) / 1e9:.2f}')"
}

with=() without=()
for r in $(seq "$ROUNDS"); do
  without+=("$(transfer)")
  "$EXPORTER" --web.listen-address=127.0.0.1:19436 > /dev/null 2>&1 &
  EXPORTER_PID=$!
  for _ in $(seq 100); do
    curl -s 127.0.0.1:19436/metrics | grep -q '^redmap_probe_up{probe="tcp_zero_window"} 1' && break
    sleep 0.1
  done
  with+=("$(transfer)")
  kill "$EXPORTER_PID"; wait "$EXPORTER_PID" 2>/dev/null || true; EXPORTER_PID=""
done

{
  echo "# tcp_bulk.sh: $(date -u +%F), $(nproc) cores, kernel $(uname -r), $BYTES bytes per transfer over veth"
  echo "without redmap (Gbit/s): ${without[*]}"
  echo "with redmap    (Gbit/s): ${with[*]}"
  python3 - "${without[*]}" "${with[*]}" <<'EOF'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
print(f"median without {statistics.median(a):.2f}, with {statistics.median(b):.2f}, "
      f"ratio {statistics.median(b) / statistics.median(a):.3f} (target >= 0.98)")
EOF
} | tee "$OUT"
