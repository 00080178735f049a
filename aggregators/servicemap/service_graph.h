// Service-map edges from spans, under the names Grafana's service graph
// (Tempo's metrics generator) already understands:
//
//   traces_service_graph_request_total          counter
//   traces_service_graph_request_failed_total   counter   (5xx)
//   traces_service_graph_request_server_seconds histogram (server-side durations)
//   traces_service_graph_request_client_seconds histogram (client-side durations)
//
// labels: client, server, client_service_namespace, server_service_namespace,
// connection_type ("" | "virtual_node"), k8s_node_name (the node that
// observed it, so nodes never collide); every one present even when empty,
// as Tempo's generator writes them, except those in options.drop_labels
// (any but client and server), which are left out: edges that differed only
// in them merge.
//
// Counting each request once: a request is counted where its server is
// observed. A server-side span always counts. A client-side span counts only
// when its server is not observed by redmap (no local listener known for the
// server's address: an uninstrumented peer, connection_type="virtual_node");
// otherwise it only adds its duration to the client histogram. With both ends
// on redmap nodes the request is therefore counted once, by the server's node.
//
// With Kubernetes identities a peer is also observed when it is a pod or a
// Service of the cluster (redmap runs on every node, as a DaemonSet): a
// client span towards a pod IP or a ClusterIP only adds to the client
// histogram; the server's node counts the request.
//
// Identities: the local process's identity at the edge level (pod, workload
// or Service name; OTEL_SERVICE_NAME or the executable outside pods), its
// namespace in *_service_namespace. The far end, in this order: a local
// process seen in a span on this node; a pod or Service of the cluster by
// IP; the local process behind a TCP endpoint (PeerNames, with its
// namespace); a DNS name, a configured CIDR name or "external" (with
// Kubernetes identities), else the peer's IP address. Self-edges (same name
// and namespace) are not recorded. Series are capped (one "__overflow__"
// edge beyond) and expire after series_ttl_ns without updates.
// Threads: OnSpan/Expire from the source's thread, Collect from any.
#ifndef REDMAP_AGGREGATORS_SERVICEMAP_SERVICE_GRAPH_H_
#define REDMAP_AGGREGATORS_SERVICEMAP_SERVICE_GRAPH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aggregators/metadata/identity_cache.h"
#include "aggregators/network/tcp_aggregator.h"
#include "aggregators/span/span.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap {

struct ServiceGraphOptions {
  std::vector<double> buckets;  // seconds, strictly increasing
  size_t max_series = 10000;
  uint64_t series_ttl_ns = 600ull * 1000 * 1000 * 1000;
  std::string node_name;  // k8s_node_name of every series
  // Labels left out (service_graph.drop_labels / keep_labels, resolved by
  // the config): any of ServiceGraphLabelNames() but client and server.
  std::vector<std::string> drop_labels;
};

// The labels of every service-graph series, in the order they are emitted;
// the first kServiceGraphEdgeLabels (client, server) are never left out.
std::vector<std::string> ServiceGraphLabelNames();
inline constexpr size_t kServiceGraphEdgeLabels = 2;

class ServiceGraphAggregator : public SpanSink, public prometheus::Collectable {
 public:
  // local_name: service name of the process that observed a span.
  // peers: who is behind an endpoint on this node (may be null: IPs only).
  ServiceGraphAggregator(const ServiceGraphOptions& options,
                         std::function<std::string(const Span&)> local_name,
                         const PeerNames* peers);
  // local: identity of the process that observed a span; remote: identity
  // of a peer address at a time (may be empty: addresses stay addresses).
  using LocalIdentityFn = std::function<IdentityPtr(const Span&)>;
  using RemoteIdentityFn = std::function<IdentityPtr(const IpAddress&, uint64_t now_ns)>;
  ServiceGraphAggregator(const ServiceGraphOptions& options, LocalIdentityFn local,
                         RemoteIdentityFn remote, const PeerNames* peers);
  ~ServiceGraphAggregator() override;

  void OnSpan(const Span& span) override;
  std::vector<prometheus::MetricFamily> Collect() const override;
  void Expire(uint64_t now_ns);
  size_t edges() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SERVICEMAP_SERVICE_GRAPH_H_
