#include "aggregators/metadata/identity_metrics.h"

#include <string>
#include <utility>

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

void Add(MetricFamily* f, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f->type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f->metric.push_back(std::move(m));
}

}  // namespace

IdentityMetrics::IdentityMetrics(const k8s::Client* client, const k8s::Store* store,
                                 const IdentityResolver* resolver, const IdentityCache* cache,
                                 const CgroupResolver* cgroups, const DnsCache* dns,
                                 const DnsCapture* dns_capture)
    : client_(client),
      store_(store),
      resolver_(resolver),
      cache_(cache),
      cgroups_(cgroups),
      dns_(dns),
      dns_capture_(dns_capture) {}

std::vector<MetricFamily> IdentityMetrics::Collect() const {
  std::vector<MetricFamily> out;
  MetricFamily enabled = Family("redmap_kubernetes_enabled",
                                "1 when a Kubernetes API server is configured (kubernetes.enabled).",
                                MetricType::Gauge);
  Add(&enabled, client_ != nullptr ? 1 : 0);
  out.push_back(std::move(enabled));
  if (client_ != nullptr) {
    const k8s::ClientStatus st = client_->status();
    MetricFamily degraded =
        Family("redmap_kubernetes_degraded",
               "1 while some watched resource is not listed yet or its last request failed "
               "(the API server is unreachable); identities come from what is cached.",
               MetricType::Gauge);
    Add(&degraded, st.degraded ? 1 : 0);
    out.push_back(std::move(degraded));
    MetricFamily synced = Family("redmap_kubernetes_synced",
                                 "1 once the resource was listed and its watch is healthy.",
                                 MetricType::Gauge);
    MetricFamily lists =
        Family("redmap_kubernetes_lists_total", "Complete lists of the resource.",
               MetricType::Counter);
    MetricFamily relists = Family(
        "redmap_kubernetes_relists_total",
        "Lists after the first (410 Gone: the watch's resourceVersion was compacted away).",
        MetricType::Counter);
    MetricFamily list_errors = Family("redmap_kubernetes_list_errors_total",
                                      "Failed list requests.", MetricType::Counter);
    MetricFamily watch_errors =
        Family("redmap_kubernetes_watch_errors_total",
               "Watches that failed or broke before the server ended them.", MetricType::Counter);
    MetricFamily events = Family("redmap_kubernetes_events_total",
                                 "Watch events (ADDED, MODIFIED, DELETED) applied.",
                                 MetricType::Counter);
    for (const k8s::ResourceStatus& r : st.resources) {
      const std::string name(k8s::KindName(r.kind));
      std::vector<ClientMetric::Label> l = {{"resource", name}};
      Add(&synced, r.synced && !r.failing ? 1 : 0, l);
      Add(&lists, static_cast<double>(r.lists), l);
      Add(&relists, static_cast<double>(r.relists), l);
      Add(&list_errors, static_cast<double>(r.list_errors), l);
      Add(&watch_errors, static_cast<double>(r.watch_errors), l);
      Add(&events, static_cast<double>(r.events), l);
    }
    for (MetricFamily* f : {&synced, &lists, &relists, &list_errors, &watch_errors, &events}) {
      out.push_back(std::move(*f));
    }
  }
  if (store_ != nullptr) {
    const k8s::StoreCounts c = store_->counts();
    MetricFamily objects = Family("redmap_kubernetes_objects",
                                  "Kubernetes objects cached now.", MetricType::Gauge);
    MetricFamily dropped =
        Family("redmap_kubernetes_objects_dropped_total",
               "Objects refused because the cache was at kubernetes.max_objects_per_kind.",
               MetricType::Counter);
    for (size_t k = 0; k < k8s::kNumKinds; ++k) {
      std::vector<ClientMetric::Label> l = {
          {"resource", std::string(k8s::KindName(static_cast<k8s::Kind>(k)))}};
      Add(&objects, static_cast<double>(c.objects[k]), l);
      Add(&dropped, static_cast<double>(c.dropped[k]), l);
    }
    MetricFamily limit = Family("redmap_kubernetes_objects_limit",
                                "Cached objects per resource at most "
                                "(kubernetes.max_objects_per_kind).",
                                MetricType::Gauge);
    Add(&limit, static_cast<double>(store_->max_objects_per_kind()));
    out.push_back(std::move(objects));
    out.push_back(std::move(limit));
    out.push_back(std::move(dropped));
  }
  MetricFamily entries = Family("redmap_identity_cache_entries",
                                "Entries of the identity caches (identity.cache_entries per "
                                "table; cgroup paths: identity.cgroup_cache_entries; DNS names: "
                                "identity.dns_cache_entries).",
                                MetricType::Gauge);
  if (cache_ != nullptr) {
    Add(&entries, static_cast<double>(cache_->local_entries()), {{"table", "local"}});
    Add(&entries, static_cast<double>(cache_->remote_entries()), {{"table", "remote"}});
  }
  if (cgroups_ != nullptr) {
    Add(&entries, static_cast<double>(cgroups_->cached()), {{"table", "cgroup_paths"}});
  }
  if (dns_ != nullptr) Add(&entries, static_cast<double>(dns_->size()), {{"table", "dns"}});
  MetricFamily limits = Family("redmap_identity_cache_entries_limit",
                               "Bound of each identity cache (the config key named in "
                               "redmap_identity_cache_entries' help).",
                               MetricType::Gauge);
  if (cache_ != nullptr) {
    Add(&limits, static_cast<double>(cache_->max_entries()), {{"table", "local"}});
    Add(&limits, static_cast<double>(cache_->max_entries()), {{"table", "remote"}});
  }
  if (cgroups_ != nullptr) {
    Add(&limits, static_cast<double>(cgroups_->max_cached()), {{"table", "cgroup_paths"}});
  }
  if (dns_ != nullptr) Add(&limits, static_cast<double>(dns_->max_entries()), {{"table", "dns"}});
  if (!entries.metric.empty()) out.push_back(std::move(entries));
  if (!limits.metric.empty()) out.push_back(std::move(limits));
  if (resolver_ != nullptr) {
    MetricFamily lookups = Family("redmap_identity_lookups_total",
                                  "Identity resolutions (identity cache misses), by the source "
                                  "that answered.",
                                  MetricType::Counter);
    const auto resolved = resolver_->resolved();
    for (size_t i = 0; i < resolved.size(); ++i) {
      Add(&lookups, static_cast<double>(resolved[i]),
          {{"source", std::string(IdentitySourceName(static_cast<IdentitySource>(i)))}});
    }
    out.push_back(std::move(lookups));
  }
  if (dns_ != nullptr) {
    MetricFamily evictions = Family("redmap_dns_cache_evictions_total",
                                    "DNS names dropped before their TTL ran out because the cache "
                                    "was full (identity.dns_cache_entries).",
                                    MetricType::Counter);
    Add(&evictions, static_cast<double>(dns_->evicted()));
    out.push_back(std::move(evictions));
    MetricFamily up = Family("redmap_dns_capture_up",
                             "1 while DNS answers are captured (identity.dns_capture) to name "
                             "addresses outside the cluster.",
                             MetricType::Gauge);
    Add(&up, dns_capture_ != nullptr && dns_capture_->up() ? 1 : 0);
    out.push_back(std::move(up));
  }
  if (dns_capture_ != nullptr) {
    MetricFamily answers = Family("redmap_dns_answers_total",
                                  "DNS answers captured (UDP from port 53), by what came of them.",
                                  MetricType::Counter);
    const auto counts = dns_capture_->feed().answers();
    for (size_t i = 0; i < counts.size(); ++i) {
      Add(&answers, static_cast<double>(counts[i]),
          {{"result", std::string(DnsAnswerResultName(static_cast<DnsAnswerResult>(i)))}});
    }
    out.push_back(std::move(answers));
    MetricFamily addresses = Family("redmap_dns_addresses_total",
                                    "Addresses named from the A/AAAA records of captured answers.",
                                    MetricType::Counter);
    Add(&addresses, static_cast<double>(dns_capture_->feed().addresses()));
    out.push_back(std::move(addresses));
    MetricFamily drops = Family("redmap_dns_capture_drops_total",
                                "Captured DNS answers the kernel dropped because the capture's "
                                "ring was full.",
                                MetricType::Counter);
    Add(&drops, static_cast<double>(dns_capture_->kernel_drops()));
    out.push_back(std::move(drops));
  }
  return out;
}

}  // namespace redmap
