#!/usr/bin/env bash
# A/B of variants on overhead.sh's workload (nginx `return 200` on loopback,
# saturated by wrk -t1 -c16), for ablations: each round runs every variant
# once, in the order given, and prints per variant the requests/s, the
# machine's idle time (per mille of all CPUs, /proc/stat) and, for variants
# that serve redmap's /metrics on 127.0.0.1:19435, the events it dropped
# (redmap_events_dropped_total, all reasons), and the CPU the variant's
# process used per request (all its threads, from schedstat; not its
# children, and not BPF programs, which run in the traced processes). A
# variant that drops events did less work, so its requests/s mean nothing.
#
# Usage (root): tests/bench/ab.sh ROUNDS "label:command" ...
#   an empty command is the baseline (nothing running beside the workload);
#   the command runs for the variant's run and gets SIGTERM after it.
# Example:
#   E="build/redmap_exporter --web.listen-address=127.0.0.1:19435"
#   tests/bench/ab.sh 4 "base:" "redmap:$E" "sockhook:build/tests/overhead_floor sock-hook"
# After the rounds, one summary line per variant: its best and median
# requests/s, each as a ratio to the first variant's (the best rounds are
# the machine's fast mode, see overhead.txt), its median idle time and its
# median CPU per request.
# Env: DURATION seconds per run (6), CONNS (16).
set -euo pipefail

[[ $# -ge 2 ]] || { sed -n '2,22p' "$0" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "ab.sh: needs root" >&2; exit 1; }
for t in nginx wrk curl; do
  command -v "$t" >/dev/null || { echo "ab.sh: $t missing (scripts/install-deps.sh)" >&2; exit 1; }
done
ROUNDS=$1
shift
DURATION=${DURATION:-6}
CONNS=${CONNS:-16}
NGINX_PORT=18080
METRICS_PORT=19435

WORK=$(mktemp -d /tmp/redmap-ab-XXXXXX)
NGINX_PID=""
VARIANT_PID=""
cleanup() {
  [[ -n $VARIANT_PID ]] && kill "$VARIANT_PID" 2>/dev/null && wait "$VARIANT_PID" 2>/dev/null || true
  [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

. "$(dirname "$0")/workload.sh"
start_nginx_workload

dropped() {  # redmap_events_dropped_total summed, or "-" when nothing serves /metrics
  local m
  m=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null) || m=""
  awk '/^redmap_events_dropped_total/ { s += $2; n++ } END { print n ? s : "-" }' <<< "$m"
}

declare -A RPS IDLE CPU
LABELS=()
for spec in "$@"; do LABELS+=("${spec%%:*}"); done

# max and median (the lower middle one of an even count) of the numbers given
best_and_median() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[NR], v[int((NR + 1) / 2)] }'
}

for round in $(seq "$ROUNDS"); do
  line="round $round"
  for spec in "$@"; do
    label=${spec%%:*}
    cmd=${spec#*:}
    if [[ -n $cmd ]]; then
      bash -c "exec $cmd" > "$WORK/$label.log" 2>&1 &
      VARIANT_PID=$!
      sleep 2.5  # load, attach, first rounds
      kill -0 "$VARIANT_PID" 2>/dev/null || { echo "ab.sh: $label exited:" >&2; cat "$WORK/$label.log" >&2; exit 1; }
    fi
    wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$NGINX_PORT/" > /dev/null  # warm-up
    read -r i0 t0 < <(idle_ticks)
    [[ -n $VARIANT_PID ]] && c0=$(proc_cpu_ns "$VARIANT_PID")
    reqs=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$NGINX_PORT/" | awk '/requests in/ { print $1 }')
    idle=$(idle_permille_since "$i0" "$t0")
    drops="-"
    cpu="-"
    if [[ -n $VARIANT_PID ]]; then
      cpu=$(awk -v a="$c0" -v b="$(proc_cpu_ns "$VARIANT_PID")" -v r="$reqs" 'BEGIN { if (r > 0) printf "%.3f", (b - a) / 1000 / r; else print "-" }')
      [[ $cpu != - ]] && CPU[$label]+=" $cpu"
      drops=$(dropped)
      kill "$VARIANT_PID"
      wait "$VARIANT_PID" 2>/dev/null || true
      VARIANT_PID=""
    fi
    rps=$((reqs / DURATION))
    RPS[$label]+=" $rps"
    IDLE[$label]+=" $idle"
    line="$line | $label $rps rps idle $idle‰ cpu $cpu µs/req drops $drops"
  done
  echo "$line"
done

read -r ref_best ref_median < <(best_and_median ${RPS[${LABELS[0]}]})
for label in "${LABELS[@]}"; do
  read -r best median < <(best_and_median ${RPS[$label]})
  read -r _ idle < <(best_and_median ${IDLE[$label]})
  cpu="-"
  [[ -n ${CPU[$label]:-} ]] && read -r _ cpu < <(best_and_median ${CPU[$label]})
  awk -v l="$label" -v b="$best" -v m="$median" -v rb="$ref_best" -v rm="$ref_median" -v i="$idle" -v c="$cpu" \
    'BEGIN { printf "summary %-10s best %6d rps (%.3f)  median %6d rps (%.3f)  median idle %d‰  median cpu %s µs/req\n", l, b, b / rb, m, m / rm, i, c }'
done
