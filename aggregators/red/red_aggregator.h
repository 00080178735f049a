// RED metrics from spans: OpenTelemetry semantic-convention histograms as
// Prometheus exports them,
//   http_server_request_duration_seconds{service_name, http_request_method,
//       http_response_status_code, http_route}            (side == kServer)
//   http_client_request_duration_seconds{... + server_address, server_port}
//                                                         (side == kClient)
// plus the identity labels of the observing process when known
// (service_namespace, k8s_namespace_name, k8s_pod_name, k8s_owner_kind,
// k8s_owner_name, k8s_deployment_name, k8s_node_name; empty ones omitted).
// Label values: method as-is if it is one of the nine RFC 9110/5789 methods,
// else "_OTHER"; status code as a string, "" when the span has none (an
// empty label is an absent one, as OpenTelemetry leaves the attribute out);
// http_route from RouteOf() (configured patterns, then NormalizeRoute()),
// through a RouteCache (shared with the trace sampler when the pipeline
// builds both); service_name from the resolver.
// Buckets are cumulative with inclusive upper bounds (le), +Inf == count.
// Series are capped per family (beyond the cap: one overflow series whose
// labels are all "__overflow__", and redmap_series_overflow_total counts what
// went there) and expire after series_ttl_ns without updates, measured on
// the spans' own clock (end_ns) against Expire()'s now_ns.
// Threads: OnSpan and Expire from the source's thread; Collect from any
// thread, it copies counts under a short lock and builds families outside.
#ifndef REDMAP_AGGREGATORS_RED_RED_AGGREGATOR_H_
#define REDMAP_AGGREGATORS_RED_RED_AGGREGATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aggregators/metadata/identity_cache.h"
#include "aggregators/red/route_cache.h"
#include "aggregators/red/route_normalizer.h"
#include "aggregators/span/span.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap {

struct RedOptions {
  std::vector<double> buckets;  // seconds, strictly increasing, finite
  size_t max_series = 10000;    // per family
  uint64_t series_ttl_ns = 600ull * 1000 * 1000 * 1000;
  // Configured routes, tried before the heuristics (red.route_patterns).
  RoutePatterns route_patterns;
  // Labels left out of each family (red.*_drop_labels / red.*_keep_labels,
  // resolved by the config): a dropped label is left out of every series, so
  // series that differed only in it merge. Any label but service_name.
  std::vector<std::string> server_drop_labels;
  std::vector<std::string> client_drop_labels;
};

// Every label a RED family may carry, in the order it is emitted: the fixed
// OpenTelemetry ones, then the identity labels (kIdentityLabelNames), which
// are left out of a series when empty.
std::vector<std::string> RedLabelNames(bool server_side);

// The http_request_method label of a request method: one of the nine
// RFC 9110/5789 methods as-is, anything else "_OTHER".
std::string_view MethodLabel(std::string_view method);

// Identity of the process that observed a span (service_name and the
// Kubernetes labels).
using ServiceNameResolver = std::function<IdentityPtr(const Span&)>;

class RedAggregator : public SpanSink, public prometheus::Collectable {
 public:
  // routes: the span's http_route, shared with other sinks that need it
  // (it must be built from options.route_patterns); null: one of its own.
  RedAggregator(const RedOptions& options, ServiceNameResolver resolver,
                std::shared_ptr<RouteCache> routes = nullptr);
  // Only a service name per span (no identity labels).
  RedAggregator(const RedOptions& options, std::function<std::string(const Span&)> name);
  ~RedAggregator() override;

  void OnSpan(const Span& span) override;
  std::vector<prometheus::MetricFamily> Collect() const override;
  // Drops series not updated for series_ttl_ns before now_ns.
  void Expire(uint64_t now_ns);
  size_t series(bool server_side) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_RED_RED_AGGREGATOR_H_
