// TCP network health per edge, from TcpEvents (bpf/tcp_health.bpf.h):
//
//   redmap_tcp_connect_duration_seconds   histogram  SYN sent -> established (client side)
//   redmap_tcp_rtt_seconds                histogram  smoothed RTT at close
//   redmap_tcp_connect_failures_total     counter    {reason}
//   redmap_tcp_retransmits_total          counter    {kind="data|syn|synack"} segments
//   redmap_tcp_resets_sent_total / redmap_tcp_resets_received_total
//   redmap_tcp_zero_window_segments_total counter    {window="local|peer"}
//   redmap_tcp_sent_bytes_total / redmap_tcp_received_bytes_total (at close)
//   redmap_tcp_connections                gauge      established now
//
// Every series carries the edge: side (which end observed it: "client" or
// "server"), client, server and server_port. client/server are identities:
// the service name of a process on this node (OTEL_SERVICE_NAME, else the
// executable, as for the RED metrics; with Kubernetes identities the pod's
// workload, pod or Service at the edge level), else the remote resolver's
// name for the peer's address (pod, Service, DNS, CIDR name or "external"),
// else the peer's IP address.
//
// Naming the far end. A server's clients are named when the event arrives,
// from the client connections redmap has seen established on this node
// (exact address and port). A client's server is named at scrape time from
// the listeners redmap knows (listen() seen, or a connection accepted on
// that address and port), so the first connections to a server that started
// before redmap move under its name once it accepts one. Storage is keyed
// by the raw peer address; series that resolve to the same name are summed.
//
// Bounds: edges (max_series; beyond: one edge with every identity
// "__overflow__"), connections tracked for the gauge (max_connections;
// beyond: counted, not tracked), listeners and local endpoints (bounded by
// the same numbers). Edges without live connections and without updates for
// series_ttl_ns disappear.
// Threads: OnTcp and Expire from the source's thread; Collect from any.
#ifndef REDMAP_AGGREGATORS_NETWORK_TCP_AGGREGATOR_H_
#define REDMAP_AGGREGATORS_NETWORK_TCP_AGGREGATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aggregators/sources/event.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap {

struct NetworkOptions {
  // Seconds, strictly increasing: tens of microseconds (loopback) to
  // seconds (SYN retransmits, other continents).
  std::vector<double> connect_buckets = {0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                         0.0025,   0.005,   0.01,   0.025,   0.05,   0.1,
                                         0.25,     0.5,     1,      2.5,     5,      10,
                                         30,       60};
  std::vector<double> rtt_buckets = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                     0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
                                     0.1,     0.25,     0.5,     1,      2.5};
  size_t max_connections = 65536;
  size_t max_series = 10000;
  uint64_t series_ttl_ns = 600ull * 1000 * 1000 * 1000;
};

// Service name of a local process (tgid != 0) at time ts_ns.
using ProcessNameResolver =
    std::function<std::string(uint32_t tgid, std::string_view comm, uint64_t ts_ns)>;
// The same, knowing the process's cgroup id (its pod) too.
using ProcessIdentityResolver = std::function<std::string(
    uint32_t tgid, uint64_t cgroup_id, std::string_view comm, uint64_t ts_ns)>;

// Names of the local processes behind TCP endpoints on this node, as far as
// the TCP events told: for joining other families (the service graph) onto
// the same identities as the redmap_tcp_* edges. Thread-safe.
class PeerNames {
 public:
  virtual ~PeerNames() = default;
  // The local process whose client connection has this local endpoint
  // (kept a while after it closes).
  virtual std::optional<std::string> ClientAt(const Endpoint& ep) const = 0;
  // The local process listening on this endpoint (exact, or a wildcard
  // listener when the address is one of this node's).
  virtual std::optional<std::string> ServerAt(const Endpoint& ep) const = 0;
};

// Name of a remote address no local process is known behind (a pod,
// Service, DNS/CIDR name or "external" with Kubernetes identities).
using RemoteNameResolver = std::function<std::string(const IpAddress& ip, uint64_t ts_ns)>;

class TcpAggregator : public prometheus::Collectable, public PeerNames {
 public:
  // remote may be empty: far ends nobody names stay IP addresses.
  TcpAggregator(const NetworkOptions& options, ProcessNameResolver resolver);
  TcpAggregator(const NetworkOptions& options, ProcessIdentityResolver resolver,
                RemoteNameResolver remote);
  ~TcpAggregator() override;

  void OnTcp(const TcpEvent& event);
  std::vector<prometheus::MetricFamily> Collect() const override;
  void Expire(uint64_t now_ns);

  size_t edges() const;
  size_t connections() const;

  std::optional<std::string> ClientAt(const Endpoint& ep) const override;
  std::optional<std::string> ServerAt(const Endpoint& ep) const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// "refused", "timeout", "unreachable", "reset", "aborted" (no error: the
// caller gave up) or "other".
std::string_view ConnectFailureReason(int error);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_NETWORK_TCP_AGGREGATOR_H_
