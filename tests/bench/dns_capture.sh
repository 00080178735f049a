#!/usr/bin/env bash
# Cost of the DNS answer capture (identity.dns_capture): dnsmasq on loopback
# answers a burst of QUERIES distinct names, each with its own address (a
# hosts file), so every answer is a new name for the cache: the worst case.
# The exporter runs with Kubernetes identities (tests/fixtures/k8s/
# fake_apiserver.py, no objects) and the default identity.dns_cache_entries
# (10000: a burst of more names also exercises eviction), with the capture
# off, then on, ROUNDS times alternated; each run prints the exporter's CPU
# during the burst (utime + stime of /proc/<pid>/stat), the capture thread's
# own ("redmap-dns" in /proc/<pid>/task), the whole machine's (/proc/stat:
# the kernel's filter and copies run in softirq, charged to no exporter
# thread), the answers counted, the DNS cache fill, evictions and the RSS.
#
# Usage (root; holds the BPF lock itself): tests/bench/dns_capture.sh [build/redmap_exporter]
# Env: QUERIES (100000), ROUNDS (3), OUT file.
set -euo pipefail

EXPORTER=${1:-build/redmap_exporter}
QUERIES=${QUERIES:-100000}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-tests/bench/results/dns_capture.txt}
[[ $(id -u) -eq 0 ]] || { echo "dns_capture.sh: needs root" >&2; exit 1; }
[[ -x $EXPORTER ]] || { echo "dns_capture.sh: $EXPORTER not built" >&2; exit 1; }
if [[ -z ${REDMAP_BENCH_LOCKED:-} ]]; then
  exec env REDMAP_BENCH_LOCKED=1 flock /tmp/redmap-bpf.lock "$0" "$@"
fi

DIR=$(mktemp -d /tmp/redmap-dnsbench-XXXXXX)
DNS=127.0.0.154 PORT=19437
EXPORTER_PID="" DNSMASQ_PID="" API_PID=""
cleanup() {
  [[ -n $EXPORTER_PID ]] && kill "$EXPORTER_PID" 2>/dev/null && wait "$EXPORTER_PID" 2>/dev/null || true
  [[ -n $DNSMASQ_PID ]] && kill "$DNSMASQ_PID" 2>/dev/null || true
  [[ -n $API_PID ]] && kill "$API_PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

# QUERIES names, each its own address in 198.18.0.0/15.
python3 - "$QUERIES" > "$DIR/hosts" <<'EOF'
import sys
for i in range(int(sys.argv[1])):
    print(f"198.{18 + i // 65536}.{i // 256 % 256}.{i % 256} h{i}.bench.test")
EOF
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
  --listen-address=$DNS --port=53 --user=root --pid-file="$DIR/dnsmasq.pid" \
  --local=/bench.test/ --local-ttl=300 --addn-hosts="$DIR/hosts" --cache-size=0 \
  --dns-forward-max=1000 2> "$DIR/dnsmasq.log" &
DNSMASQ_PID=$!

mkfifo "$DIR/api.in"
python3 tests/fixtures/k8s/fake_apiserver.py < "$DIR/api.in" > "$DIR/api.out" &
API_PID=$!
exec 7> "$DIR/api.in"
for _ in $(seq 50); do grep -q listening "$DIR/api.out" 2>/dev/null && break; sleep 0.1; done
API_PORT=$(awk '/listening/ {print $2}' "$DIR/api.out")
cat > "$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: http://127.0.0.1:$API_PORT
contexts:
- name: fake
  context: {cluster: fake, user: redmap}
current-context: fake
users:
- name: redmap
  user: {token: unused}
EOF

# One query per name, 64 in flight: prints answers received and seconds.
cat > "$DIR/burst.py" <<'EOF'
import socket, struct, sys, time
server, n = sys.argv[1], int(sys.argv[2])
def query(i):
    name = b"".join(bytes([len(l)]) + l for l in f"h{i}.bench.test".encode().split(b"."))
    return struct.pack(">HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 0) + name + b"\0\0\1\0\1"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
t0 = time.monotonic()
sent = got = 0
while got < n:
    while sent < n and sent - got < 64:
        s.sendto(query(sent), (server, 53))
        sent += 1
    try:
        s.recv(512)
        got += 1
    except socket.timeout:
        break
print(got, f"{time.monotonic() - t0:.3f}")
EOF

metric() { curl -s 127.0.0.1:$PORT/metrics | awk -v m="$1" '$1 == m {print $2}'; }
cpu_ticks() { awk '{print $14 + $15}' "$1"; }
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

run() {  # $1: dns_capture setting; prints one result line
  printf 'kubernetes:\n  enabled: true\n  kubeconfig: %s\n  node_name: bench\nidentity:\n  dns_capture: %s\n' \
    "$DIR/kubeconfig" "$1" > "$DIR/redmap.yaml"
  "$EXPORTER" --web.listen-address=127.0.0.1:$PORT --config.file="$DIR/redmap.yaml" \
    > "$DIR/exporter.log" 2>&1 &
  EXPORTER_PID=$!
  for _ in $(seq 100); do
    [[ "$(metric 'redmap_kubernetes_synced{resource="pods"}')" == 1 ]] && break
    sleep 0.1
  done
  sleep 1
  local tid="" t0 t1 th0=0 th1=0 m0 m1 rss answers
  for t in /proc/$EXPORTER_PID/task/*; do
    [[ $(cat "$t/comm") == redmap-dns ]] && tid=$t
  done
  m0=$(machine_ticks)
  t0=$(cpu_ticks /proc/$EXPORTER_PID/stat)
  [[ -n $tid ]] && th0=$(cpu_ticks "$tid/stat")
  local burst
  burst=$(python3 "$DIR/burst.py" $DNS "$QUERIES")
  sleep 1  # let the capture drain
  t1=$(cpu_ticks /proc/$EXPORTER_PID/stat)
  [[ -n $tid ]] && th1=$(cpu_ticks "$tid/stat")
  m1=$(machine_ticks)
  rss=$(awk '/VmRSS/ {print $2}' /proc/$EXPORTER_PID/status)
  answers=$(metric 'redmap_dns_answers_total{result="parsed"}')
  local fill drops evicted
  fill=$(metric 'redmap_identity_cache_entries{table="dns"}')
  drops=$(metric 'redmap_dns_capture_drops_total')
  evicted=$(metric 'redmap_dns_cache_evictions_total')
  local hz
  hz=$(getconf CLK_TCK)
  python3 - "$1" "$burst" "$t0" "$t1" "$th0" "$th1" "$m0" "$m1" "$hz" "${answers:-0}" \
    "${fill:-0}" "${evicted:-0}" "${drops:-0}" "$rss" <<'EOF'
import sys
mode, burst, t0, t1, th0, th1, m0, m1, hz, answers, fill, evicted, drops, rss = sys.argv[1:]
got, secs = burst.split()
hz = int(hz)
cpu = (int(t1) - int(t0)) / hz
thread = (int(th1) - int(th0)) / hz
machine = (int(m1) - int(m0)) / hz
n = int(got)
print(f"dns_capture={mode:5} {n} answers in {float(secs):.2f} s ({n / float(secs):.0f}/s); "
      f"exporter {cpu:.2f} s CPU ({cpu / n * 1e6:.2f} us/answer), capture thread {thread:.2f} s, "
      f"machine {machine:.2f} s ({machine / n * 1e6:.1f} us/answer); parsed={float(answers):.0f} "
      f"cache_fill={float(fill):.0f} evicted={float(evicted):.0f} drops={float(drops):.0f} "
      f"rss={int(rss) / 1024:.1f} MiB")
EOF
  kill "$EXPORTER_PID"; wait "$EXPORTER_PID" 2>/dev/null || true; EXPORTER_PID=""
}

{
  echo "# dns_capture.sh: $(date -u '+%F %H:%M'), $(nproc) cores, kernel $(uname -r), $QUERIES distinct names per burst, dnsmasq on loopback, 64 queries in flight"
  echo "# CPU is sampled at 1/$(getconf CLK_TCK) s; 'false' is the same burst with the capture off (BPF still traces the syscalls); machine = all CPUs, the burst's client and dnsmasq included"
  for r in $(seq "$ROUNDS"); do
    run false
    run true
  done
} | tee "$OUT"
