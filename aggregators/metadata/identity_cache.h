// The identity labels every family carries, resolved once and cached: the
// hot path (one lookup per span, per TCP event) asks this cache, never the
// IdentityResolver directly.
//
//   local process  (tgid, cgroup id) -> IdentityLabels   keyed by both: pods
//                  share a cgroup id per container, host processes are told
//                  apart by tgid
//   remote address  IP               -> IdentityLabels
//
// An entry is reused until the Kubernetes store changed (Store::generation())
// and it is older than kRefreshNs, or it is older than kMaxAgeNs (pid reuse,
// a pod that appeared late). A remote address named below DNS (by a DNS
// answer, a CIDR or as external) is also refreshed after kRefreshNs once a
// DNS answer named a new address (DnsCache::generation()): a peer first seen
// before its answer was read gets its name within a second. Both tables are bounded (max_entries each);
// when one is full it is cleared, which costs one resolution per live key.
// Without a resolver every local process is named by its process name and
// every remote address by its IP, exactly as redmap did before identities.
// Thread-safe.
#ifndef REDMAP_AGGREGATORS_METADATA_IDENTITY_CACHE_H_
#define REDMAP_AGGREGATORS_METADATA_IDENTITY_CACHE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "aggregators/metadata/identity.h"
#include "aggregators/sources/event.h"

namespace redmap {

// What the metric families label with. Empty strings are absent labels.
struct IdentityLabels {
  std::string name;  // the service-map node at the edge level; never empty
  std::string service_name;       // workload (pods) or the process's service name
  std::string service_namespace;  // the pod's namespace; "" outside Kubernetes
  std::string k8s_namespace_name;
  std::string k8s_pod_name;
  std::string k8s_owner_kind;  // "Deployment", "StatefulSet", ..., "Pod"
  std::string k8s_owner_name;
  std::string k8s_deployment_name;  // k8s_owner_name when the owner is a Deployment
  std::string k8s_node_name;
  IdentitySource source = IdentitySource::kExternal;
  // The peer is part of the cluster (a pod or a Service): a redmap on its
  // node observes it as a server.
  bool in_cluster() const {
    return source == IdentitySource::kPod || source == IdentitySource::kService;
  }
};

// Names of the optional identity labels, in the order families emit them.
inline constexpr const char* kIdentityLabelNames[] = {
    "service_namespace", "k8s_namespace_name", "k8s_pod_name",  "k8s_owner_kind",
    "k8s_owner_name",    "k8s_deployment_name", "k8s_node_name"};
inline constexpr size_t kNumIdentityLabels = std::size(kIdentityLabelNames);
// The value of kIdentityLabelNames[i].
const std::string& IdentityLabelValue(const IdentityLabels& l, size_t i);

using IdentityPtr = std::shared_ptr<const IdentityLabels>;

// An identity that is only a name (service_name too), no Kubernetes labels:
// how families name processes and addresses without an identity cache.
IdentityPtr NamedIdentity(std::string name);

struct IdentityCacheOptions {
  size_t max_entries = 65536;  // per table (local, remote)
  // When false, k8s_pod_name stays empty unless the edge level is "pod"
  // (a pod name per series multiplies series by replicas and restarts).
  bool pod_label_at_any_level = false;
  std::string node_name;  // k8s_node_name of local processes
};

class IdentityCache {
 public:
  // resolver and store may be null (no Kubernetes); process_name names a
  // local process without a pod (OTEL_SERVICE_NAME, else comm).
  using ProcessNameFn =
      std::function<std::string(uint32_t tgid, std::string_view comm, uint64_t now_ns)>;
  IdentityCache(IdentityCacheOptions options, const IdentityResolver* resolver,
                const k8s::Store* store, ProcessNameFn process_name);

  IdentityPtr Local(uint32_t tgid, uint64_t cgroup_id, std::string_view comm, uint64_t now_ns);
  IdentityPtr Remote(const IpAddress& ip, uint64_t now_ns);

  bool enabled() const { return resolver_ != nullptr; }
  // Moves whenever Kubernetes metadata changes (0 without it): what a
  // caller's own memo of Local() must be invalidated by.
  uint64_t store_generation() const;
  size_t local_entries() const;
  size_t remote_entries() const;
  size_t max_entries() const { return opt_.max_entries; }  // per table
  uint64_t misses() const;  // resolutions (cache misses and refreshes)

  static constexpr uint64_t kRefreshNs = 1'000'000'000;   // after a store change
  static constexpr uint64_t kMaxAgeNs = 30'000'000'000;  // regardless

 private:
  struct Entry {
    IdentityPtr labels;
    uint64_t generation = 0;
    uint64_t resolved_ns = 0;
  };
  bool Fresh(const Entry& e, uint64_t generation, uint64_t now_ns) const;
  // The generation a remote entry is valid for: the store's, plus the DNS
  // cache's for names DNS could change.
  static uint64_t RemoteGeneration(const IdentityLabels& l, uint64_t store_gen, uint64_t dns_gen);
  IdentityPtr FromIdentity(Identity id) const;

  const IdentityCacheOptions opt_;
  const IdentityResolver* const resolver_;
  const k8s::Store* const store_;
  const ProcessNameFn process_name_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, Entry> local_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<IpAddress, Entry> remote_ ABSL_GUARDED_BY(mu_);
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_IDENTITY_CACHE_H_
