// Self-metrics of the identity layer: the Kubernetes API client's health
// (degraded while any watched resource is unsynced or failing), the object
// caches, and the identity caches' fill and lookups.
//
//   redmap_kubernetes_enabled                   gauge    1 when an API is configured
//   redmap_kubernetes_degraded                  gauge    1 while the API is unreachable or
//                                                        a resource is not (re)listed
//   redmap_kubernetes_synced{resource}          gauge
//   redmap_kubernetes_lists_total{resource}     counter  complete lists
//   redmap_kubernetes_relists_total{resource}   counter  lists after the first (410 Gone)
//   redmap_kubernetes_list_errors_total{resource}, redmap_kubernetes_watch_errors_total{resource}
//   redmap_kubernetes_events_total{resource}    counter  watch events applied
//   redmap_kubernetes_objects{resource}         gauge    cached now
//   redmap_kubernetes_objects_limit             gauge    kubernetes.max_objects_per_kind
//   redmap_kubernetes_objects_dropped_total{resource}  counter  refused at the bound
//   redmap_identity_cache_entries{table="local|remote|cgroup_paths|dns"}  gauge
//   redmap_identity_lookups_total{source}       counter  resolutions by the source that answered
//   redmap_dns_cache_evictions_total            counter  names dropped before expiry (full)
//   redmap_dns_capture_up                       gauge    1 while DNS answers are captured
//   redmap_dns_answers_total{result}            counter  parsed, no_records, other_type,
//                                                        truncated, malformed
//   redmap_dns_addresses_total                  counter  addresses named from answers
//   redmap_dns_capture_drops_total              counter  answers the kernel dropped (ring full)
#ifndef REDMAP_AGGREGATORS_METADATA_IDENTITY_METRICS_H_
#define REDMAP_AGGREGATORS_METADATA_IDENTITY_METRICS_H_

#include <vector>

#include "aggregators/metadata/cgroup/cgroup_resolver.h"
#include "aggregators/metadata/dns_cache.h"
#include "aggregators/metadata/dns_capture.h"
#include "aggregators/metadata/identity.h"
#include "aggregators/metadata/identity_cache.h"
#include "aggregators/metadata/k8s/k8s_client.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap {

class IdentityMetrics : public prometheus::Collectable {
 public:
  // Every pointer may be null (that part is off); each must outlive this.
  IdentityMetrics(const k8s::Client* client, const k8s::Store* store,
                  const IdentityResolver* resolver, const IdentityCache* cache,
                  const CgroupResolver* cgroups, const DnsCache* dns = nullptr,
                  const DnsCapture* dns_capture = nullptr);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const k8s::Client* client_;
  const k8s::Store* store_;
  const IdentityResolver* resolver_;
  const IdentityCache* cache_;
  const CgroupResolver* cgroups_;
  const DnsCache* dns_;
  const DnsCapture* dns_capture_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_IDENTITY_METRICS_H_
