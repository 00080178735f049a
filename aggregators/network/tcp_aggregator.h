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
// else the peer's IP address. Then, each left out when empty (TcpLabelNames()
// gives the order): client_service_namespace and server_service_namespace
// (the namespace of each end, as on the service-graph edges), the observing
// end's Kubernetes labels as the RED families carry them (k8s_namespace_name,
// k8s_pod_name, k8s_owner_kind, k8s_owner_name, k8s_deployment_name) and
// k8s_node_name (the observing node, options.node_name). Labels in
// options.drop_labels are left out; series that differed only in them merge.
//
// Naming the far end. A server's clients are named when the event arrives,
// from the client connections redmap has seen established on this node
// (exact address and port). A client's server is named at scrape time from
// the listeners redmap knows (listen() seen, or a connection accepted on
// that address and port), so the first connections to a server that started
// before redmap move under its name once it accepts one. Storage is keyed
// by the raw peer address; series that resolve to the same name are summed.
//
// Bounds: edges (max_series; beyond: one edge whose client, server and
// server_port are "__overflow__", without identity labels), connections
// tracked for the gauge (max_connections; beyond: counted, not tracked),
// listeners and local endpoints (bounded by the same numbers). Edges
// without live connections and without updates for series_ttl_ns
// disappear.
// Threads: OnTcp and Expire from the source's thread; Collect from any.
#ifndef REDMAP_AGGREGATORS_NETWORK_TCP_AGGREGATOR_H_
#define REDMAP_AGGREGATORS_NETWORK_TCP_AGGREGATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aggregators/metadata/identity_cache.h"
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
  // k8s_node_name of every series ("": left out).
  std::string node_name;
  // Labels left out of every series (network.drop_labels / keep_labels,
  // resolved by the config): any of TcpLabelNames() but the edge's own
  // (side, client, server).
  std::vector<std::string> drop_labels;
};

// Every label an edge series may carry, in the order it is emitted; the
// first kTcpEdgeLabels (side, client, server) name the edge and are never
// left out. The families' own labels (reason, kind, window) come after.
std::vector<std::string> TcpLabelNames();
inline constexpr size_t kTcpEdgeLabels = 3;

// Service name of a local process (tgid != 0) at time ts_ns.
using ProcessNameResolver =
    std::function<std::string(uint32_t tgid, std::string_view comm, uint64_t ts_ns)>;
// Identity of a local process (tgid != 0), knowing its cgroup id (its pod).
using ProcessIdentityResolver = std::function<IdentityPtr(
    uint32_t tgid, uint64_t cgroup_id, std::string_view comm, uint64_t ts_ns)>;

// Names of the local processes behind TCP endpoints on this node, as far as
// the TCP events told: for joining other families (the service graph) onto
// the same identities as the redmap_tcp_* edges. Thread-safe.
class PeerNames {
 public:
  virtual ~PeerNames() = default;
  // The identity of the local process whose client connection has this
  // local endpoint (kept a while after it closes); nullptr if none.
  virtual IdentityPtr ClientAt(const Endpoint& ep) const = 0;
  // The local process listening on this endpoint (exact, or a wildcard
  // listener when the address is one of this node's); nullptr if none.
  virtual IdentityPtr ServerAt(const Endpoint& ep) const = 0;
};

// Identity of a remote address no local process is known behind (a pod,
// Service, DNS/CIDR name or "external" with Kubernetes identities); ts_ns 0
// means now (at scrape time).
using RemoteIdentityResolver = std::function<IdentityPtr(const IpAddress& ip, uint64_t ts_ns)>;

class TcpAggregator : public prometheus::Collectable, public PeerNames {
 public:
  // Names only (no namespaces, no Kubernetes labels); far ends stay IP
  // addresses.
  TcpAggregator(const NetworkOptions& options, ProcessNameResolver resolver);
  // remote may be empty: far ends nobody names stay IP addresses.
  TcpAggregator(const NetworkOptions& options, ProcessIdentityResolver resolver,
                RemoteIdentityResolver remote);
  ~TcpAggregator() override;

  void OnTcp(const TcpEvent& event);
  std::vector<prometheus::MetricFamily> Collect() const override;
  void Expire(uint64_t now_ns);

  size_t edges() const;
  size_t connections() const;

  IdentityPtr ClientAt(const Endpoint& ep) const override;
  IdentityPtr ServerAt(const Endpoint& ep) const override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// "refused", "timeout", "unreachable", "reset", "aborted" (no error: the
// caller gave up) or "other".
std::string_view ConnectFailureReason(int error);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_NETWORK_TCP_AGGREGATOR_H_
