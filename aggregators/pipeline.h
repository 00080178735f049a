// Everything between a socket event and a metric, wired once:
//   EventSink (source) -> ConnTracker -> protocol parsers -> Span
//     -> RedAggregator (+ any extra SpanSinks, e.g. --replay.spans printer)
//     -> ServiceGraphAggregator (service-map edges, names from TcpAggregator)
//     -> TraceSampler (trace assembly, tail sampling, the trace ring)
//   TcpEvent (source) -> TcpAggregator (network health per edge)
// The exporter owns one Pipeline per source; tests build their own.
#ifndef REDMAP_AGGREGATORS_PIPELINE_H_
#define REDMAP_AGGREGATORS_PIPELINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "aggregators/conntrack/conn_tracker.h"
#include "aggregators/metadata/identity.h"
#include "aggregators/metadata/identity_cache.h"
#include "aggregators/network/tcp_aggregator.h"
#include "aggregators/red/red_aggregator.h"
#include "aggregators/self/self_metrics.h"
#include "aggregators/servicemap/service_graph.h"
#include "aggregators/sources/event.h"
#include "aggregators/span/span.h"
#include "aggregators/traces/trace_sampler.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap {

struct PipelineOptions {
  ConnTrackerOptions conntrack;
  RedOptions red;
  NetworkOptions network;
  // Buckets default to red.buckets and node_name to NODE_NAME or the host
  // name when left empty; network.node_name defaults to the service graph's.
  ServiceGraphOptions service_graph;
  // Resolve service_name from /proc (see metadata/process_info.h). When
  // false (replay) no /proc is read: a span's process is named by the comm
  // the kernel reported. Spans without a process (tgid 0, e.g. from a
  // capture) are always "unknown_service".
  bool resolve_processes = true;
  // Sampled traces (aggregators/traces/). exemplar_buckets default to
  // red.buckets; unix_offset_ns is the source clock's offset to Unix time
  // (Pipeline::MonotonicToUnixOffsetNs() for live sources, 0 for captures).
  bool traces_enabled = true;
  traces::TraceOptions traces;
  // Kubernetes identities (aggregators/metadata/): when set, local
  // processes are named by their pod (cgroup id, else /proc/<pid>/cgroup)
  // and remote addresses by pod, Service, DNS, CIDR or "external"; both must
  // outlive the pipeline. Null: process names and IP addresses, as without
  // Kubernetes. node_name of identity_cache defaults to the service graph's.
  const IdentityResolver* identity = nullptr;
  const k8s::Store* k8s_store = nullptr;
  IdentityCacheOptions identity_cache;
};

class Pipeline : public EventSink {
 public:
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(const PipelineOptions& options);
  ~Pipeline() override;

  void OnData(const DataEvent& event) override;
  void OnClose(const CloseEvent& event) override;
  void OnTcp(const TcpEvent& event) override;
  // Periodic housekeeping from the source thread: idle connections and idle
  // series, at most once per second of now_monotonic_ns (call it freely).
  void Tick(uint64_t now_monotonic_ns);
  // End of input (replay): complete what can be completed.
  void Flush();

  // Extra consumers of every span; must outlive the pipeline.
  void AddSpanSink(SpanSink* sink);

  SelfMetrics& self_metrics();
  // nullptr when traces are disabled.
  traces::TraceSampler* trace_sampler();
  // CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns.
  static int64_t MonotonicToUnixOffsetNs();
  // The identity cache every family labels through.
  IdentityCache& identities();
  // Everything /metrics should collect, self-metrics included.
  std::vector<std::shared_ptr<prometheus::Collectable>> Collectables();

 private:
  Pipeline();
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_PIPELINE_H_
