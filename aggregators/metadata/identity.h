// Who is at either end of a connection, as the service map and the metric
// labels name it. One lookup API over every source of names:
//
//   local process (tgid, cgroup id):
//     cgroup id -> cgroup path (CgroupResolver; else /proc/<tgid>/cgroup)
//       -> pod UID -> pod in the k8s::Store -> namespace, pod, node, owner
//          workload, Services selecting it
//     else (not in a pod, or the pod is not known yet) the process name:
//       OTEL_SERVICE_NAME, else the executable (ProcessResolver)
//   remote address:
//     pod IP (hostNetwork pods excluded) -> pod as above
//     ClusterIP -> Service; EndpointSlice address -> Service; node IP -> node
//     a name from DNS answers seen on this node (DnsCache)
//     configured CIDR -> name (CidrNames)
//     else "external"
//
// Identity::name is the node of the service map at the configured edge level:
// the pod name, the workload name (default), or the Service name (falling
// back to the workload when no Service selects the pod). Every source is
// optional (nullptr): without Kubernetes, local processes are named by the
// process resolver and remote addresses by DNS/CIDR/external.
#ifndef REDMAP_AGGREGATORS_METADATA_IDENTITY_H_
#define REDMAP_AGGREGATORS_METADATA_IDENTITY_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "aggregators/metadata/cgroup/cgroup_resolver.h"
#include "aggregators/metadata/cidr_names.h"
#include "aggregators/metadata/dns_cache.h"
#include "aggregators/metadata/k8s/k8s_store.h"
#include "aggregators/metadata/process_info.h"
#include "aggregators/sources/event.h"

namespace redmap {

enum class EdgeLevel { kPod, kWorkload, kService };
absl::StatusOr<EdgeLevel> ParseEdgeLevel(std::string_view s);  // "pod" | "workload" | "service"
std::string_view EdgeLevelName(EdgeLevel l);

enum class IdentitySource {
  kPod,       // a pod known to the API (local by cgroup, remote by pod IP)
  kService,   // a Service's ClusterIP or EndpointSlice address
  kNode,      // a node's IP (also hostNetwork pods seen from afar)
  kLoopback,  // 127.0.0.0/8, ::1: this host; resolve the peer process locally instead
  kDns,       // named by a DNS answer seen on this node
  kCidr,      // named by a configured range
  kExternal,  // nothing knows it
  kProcess,   // a local process outside any known pod
};
inline constexpr size_t kNumIdentitySources = 8;
std::string_view IdentitySourceName(IdentitySource s);  // "pod", "service", ...

struct Identity {
  IdentitySource source = IdentitySource::kExternal;
  std::string name;  // the service-map node at the edge level; never empty
  std::string k8s_namespace;
  std::string pod;
  std::string pod_uid;
  std::string container_id;
  std::string workload_kind;  // "Deployment", "StatefulSet", ... ("" outside pods)
  std::string workload_name;
  std::string service_name;  // first Service selecting the pod (by name), or the Service itself
  std::string service_namespace;
  std::string node;  // node the pod runs on; this node for local processes
  bool host_network = false;
};

struct IdentityOptions {
  EdgeLevel edge_level = EdgeLevel::kWorkload;
  std::string node_name;  // this node: k8s::NodeNameFromEnv()
  std::string external_name = "external";
  std::string loopback_name = "localhost";
};

// What to resolve: a local process (tgid and/or cgroup id; comm is the
// kernel's name, used when /proc has nothing) or a remote address.
struct IdentityQuery {
  bool local = false;
  uint32_t tgid = 0;
  uint64_t cgroup_id = 0;
  std::string_view comm;
  IpAddress ip;  // remote

  static IdentityQuery Local(uint32_t tgid, uint64_t cgroup_id, std::string_view comm = {}) {
    return {true, tgid, cgroup_id, comm, {}};
  }
  static IdentityQuery Remote(const IpAddress& ip) { return {false, 0, 0, {}, ip}; }
};

class IdentityResolver {
 public:
  // Any source may be nullptr; each must outlive the resolver. Thread-safe
  // (the sources are).
  IdentityResolver(IdentityOptions options, const k8s::Store* store, CgroupResolver* cgroups,
                   ProcessResolver* processes, const CidrNames* cidrs, DnsCache* dns);

  // now_ns: monotonic, as for ProcessResolver and DnsCache.
  Identity Resolve(const IdentityQuery& q, uint64_t now_ns) const;
  Identity ResolveLocal(uint32_t tgid, uint64_t cgroup_id, uint64_t now_ns,
                        std::string_view comm = {}) const;
  Identity ResolveRemote(const IpAddress& ip, uint64_t now_ns) const;

  const IdentityOptions& options() const { return opt_; }
  // The DNS names consulted (may be null); its generation() tells the
  // identity cache when names below DNS may have changed.
  const DnsCache* dns() const { return dns_; }
  // Lookups answered by each source since start (index: IdentitySource).
  std::array<uint64_t, kNumIdentitySources> resolved() const;

 private:
  Identity FromObject(const k8s::ObjectIdentity& o) const;
  Identity Count(Identity id) const;

  IdentityOptions opt_;
  const k8s::Store* store_;
  CgroupResolver* cgroups_;
  ProcessResolver* processes_;
  const CidrNames* cidrs_;
  DnsCache* dns_;  // a lookup keeps an address in use named (DnsCache::Lookup)
  mutable std::array<std::atomic<uint64_t>, kNumIdentitySources> resolved_{};
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_IDENTITY_H_
