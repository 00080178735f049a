// The Kubernetes objects redmap knows, with the indexes identity resolution
// needs: pod UID -> pod, pod IP -> pod, ClusterIP -> Service, EndpointSlice
// address -> Service, node IP -> node; plus owner walking
// (Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob, direct owners
// otherwise) and Service selector matching.
//
// One writer (the API client's thread) and many readers: writes take the lock
// exclusively for the time of one object, reads share it. Every table is
// bounded (max_objects_per_kind); objects beyond the bound are dropped and
// counted, never grown into.
#ifndef REDMAP_AGGREGATORS_METADATA_K8S_K8S_STORE_H_
#define REDMAP_AGGREGATORS_METADATA_K8S_K8S_STORE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "aggregators/metadata/k8s/k8s_objects.h"

namespace redmap::k8s {

enum class Kind { kPods, kServices, kEndpointSlices, kReplicaSets, kJobs };
inline constexpr size_t kNumKinds = 5;
std::string_view KindName(Kind k);  // "pods", "services", "endpointslices", ...

struct Workload {
  std::string kind;  // "Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job",
                     // "ReplicaSet" (bare), "Pod" (no owner), or a custom controller's kind
  std::string name;
};

// What the store knows about an address or a pod.
struct ObjectIdentity {
  enum class Source { kNone, kPod, kService, kNode };
  Source source = Source::kNone;
  std::string namespace_;
  std::string pod;
  std::string pod_uid;
  std::string node;
  Workload workload;
  // Services selecting the pod (same namespace, sorted by name), or the one
  // Service an address belongs to (ClusterIP, EndpointSlice). At most
  // kMaxServices are listed.
  std::vector<std::string> services;
  bool host_network = false;
  static constexpr size_t kMaxServices = 8;
};

struct StoreCounts {
  std::array<size_t, kNumKinds> objects{};  // cached now, per Kind
  std::array<uint64_t, kNumKinds> dropped{};  // refused at the bound, since start
  size_t pod_ips = 0;
  size_t service_ips = 0;
  size_t endpoint_ips = 0;
  size_t node_ips = 0;
};

class Store {
 public:
  explicit Store(size_t max_objects_per_kind = 200'000);

  // Writers. Replace swaps in a complete list (after a list call); Upsert and
  // Delete apply one watch event. Delete needs only namespace and name.
  void ReplacePods(std::vector<Pod> pods);
  void UpsertPod(Pod pod);
  void DeletePod(const ObjectMeta& meta);
  void ReplaceServices(std::vector<Service> services);
  void UpsertService(Service service);
  void DeleteService(const ObjectMeta& meta);
  void ReplaceEndpointSlices(std::vector<EndpointSlice> slices);
  void UpsertEndpointSlice(EndpointSlice slice);
  void DeleteEndpointSlice(const ObjectMeta& meta);
  // ReplicaSets and Jobs (kind kReplicaSets or kJobs).
  void ReplaceOwners(Kind kind, std::vector<OwnerObject> objects);
  void UpsertOwner(Kind kind, OwnerObject object);
  void DeleteOwner(Kind kind, const ObjectMeta& meta);

  // Readers.
  std::optional<ObjectIdentity> ByPodUid(std::string_view uid) const;
  // Pod IP (hostNetwork pods excluded: their IP is the node's), else
  // ClusterIP, else an EndpointSlice address, else a node's IP.
  std::optional<ObjectIdentity> ByIp(const IpAddress& ip) const;

  // Bumped by every write: a cache of derived identities is stale when the
  // generation it was computed at differs.
  uint64_t generation() const;
  StoreCounts counts() const;
  size_t max_objects_per_kind() const { return max_objects_; }

 private:
  using PodPtr = std::shared_ptr<const Pod>;
  using ServicePtr = std::shared_ptr<const Service>;
  using SlicePtr = std::shared_ptr<const EndpointSlice>;
  struct NodeIp {
    std::string node;
    uint32_t pods = 0;  // pods reporting it as hostIP
  };

  void IndexPod(const PodPtr& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexPod(const PodPtr& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexService(const ServicePtr& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexService(const ServicePtr& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexSlice(const SlicePtr& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexSlice(const SlicePtr& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Full(Kind k, size_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ObjectIdentity PodIdentity(const Pod& p) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Workload OwnerOf(const Pod& p) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const size_t max_objects_;
  mutable absl::Mutex mu_;
  std::atomic<uint64_t> generation_{0};
  std::array<uint64_t, kNumKinds> dropped_ ABSL_GUARDED_BY(mu_){};

  // Keyed "namespace/name".
  absl::flat_hash_map<std::string, PodPtr> pods_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, PodPtr> pods_by_uid_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<IpAddress, PodPtr> pod_ips_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<IpAddress, NodeIp> node_ips_ ABSL_GUARDED_BY(mu_);
  // namespace -> name -> Service, for selector matching within a namespace.
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, ServicePtr>> services_
      ABSL_GUARDED_BY(mu_);
  size_t service_count_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<IpAddress, ServicePtr> service_ips_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, SlicePtr> slices_ ABSL_GUARDED_BY(mu_);
  // address -> the slice it was last seen in.
  absl::flat_hash_map<IpAddress, SlicePtr> endpoint_ips_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, OwnerObject> replicasets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, OwnerObject> jobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace redmap::k8s

#endif  // REDMAP_AGGREGATORS_METADATA_K8S_K8S_STORE_H_
