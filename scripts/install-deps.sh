#!/usr/bin/env bash
# Installs everything redmap needs to build, run and test, from Debian packages.
# Idempotent: skips apt entirely when every package is already installed.
set -euo pipefail

BUILD_PACKAGES=(
  clang cmake ninja-build pkg-config make
  libbpf-dev bpftool libelf-dev zlib1g-dev       # BPF objects, skeletons, loader
  prometheus-cpp-dev libcivetweb-dev             # metrics model + HTTP server
  libabsl-dev libyaml-cpp-dev nlohmann-json3-dev # status/containers, config, JSON
  libpcap-dev                                    # --replay of captures
  libcurl4-openssl-dev                           # Kubernetes API client (list/watch over TLS)
  libc-ares-dev                                  # DNS answer parsing (names for remote addresses)
)
TEST_PACKAGES=(
  libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev  # tests, fuzzers, benchmarks
  nginx-light nghttp2-client wrk curl python3                    # real servers and clients
  prometheus                                                      # promtool check metrics
  tcpdump iproute2 procps nftables                                # captures, namespaces, loss
  openssl                                                         # certificates for the TLS API-client test
  chromium                                                        # renders the traces page (headless)
  prometheus-alertmanager redis-server                            # alert delivery e2e, the demo's cache
  dnsmasq-base bind9-dnsutils libcap2-bin                         # DNS server, dig, capsh (DNS names test)
)

want=("${BUILD_PACKAGES[@]}")
if [[ "${1:-}" != "--build-only" ]]; then want+=("${TEST_PACKAGES[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm run the dashboard/manifest schema checks (pinned npm packages,
# tests/ops/schema). Machines that already have a Node.js (e.g. from
# NodeSource) keep it; otherwise Debian's.
if [[ "${1:-}" != "--build-only" ]] && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=(nodejs npm)
fi
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Package post-install scripts may try to start services (nginx, prometheus);
# in containers without an init that fails harmlessly, so do not let it stop us.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
  || $SUDO apt-get install -y -qq --no-install-recommends --fix-broken
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || { echo "install-deps: $p failed to install" >&2; exit 1; }
done
