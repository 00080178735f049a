// The few fields redmap needs from Kubernetes API objects, parsed from the
// JSON the API server returns (core/v1 Pod and Service,
// discovery.k8s.io/v1 EndpointSlice, apps/v1 ReplicaSet, batch/v1 Job, or
// their meta.k8s.io/v1 PartialObjectMetadata form). Everything else in an
// object is dropped at parse time, so the cache holds a few hundred bytes per
// object instead of the API's kilobytes.
#ifndef REDMAP_AGGREGATORS_METADATA_K8S_K8S_OBJECTS_H_
#define REDMAP_AGGREGATORS_METADATA_K8S_K8S_OBJECTS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "aggregators/sources/event.h"
#include "nlohmann/json_fwd.hpp"

namespace redmap::k8s {

// Sorted by key, so equal label sets compare equal.
using Labels = std::vector<std::pair<std::string, std::string>>;

struct OwnerRef {
  std::string kind;  // "ReplicaSet", "StatefulSet", "Job", ...
  std::string name;
  std::string uid;
  bool controller = false;
};

struct ObjectMeta {
  std::string name;
  std::string namespace_;
  std::string uid;
  std::string resource_version;
  Labels labels;
  std::vector<OwnerRef> owners;
  bool deleting = false;  // deletionTimestamp set

  // The controlling owner (controller: true), else the first; nullptr if none.
  const OwnerRef* ControllerOwner() const;
};

struct Pod {
  ObjectMeta meta;
  std::string node_name;   // spec.nodeName
  bool host_network = false;
  std::string phase;       // status.phase: Pending, Running, Succeeded, Failed, Unknown
  std::vector<IpAddress> ips;  // status.podIPs (else podIP)
  IpAddress host_ip;           // status.hostIP
  // Terminated pods keep their IPs in the API for a while, but the network
  // has already given them to others.
  bool terminated() const { return phase == "Succeeded" || phase == "Failed"; }
};

struct Service {
  ObjectMeta meta;
  Labels selector;                 // spec.selector; empty: selects nothing
  std::vector<IpAddress> cluster_ips;  // spec.clusterIPs (else clusterIP); "None" skipped
  std::string type;                // ClusterIP, NodePort, LoadBalancer, ExternalName
};

struct EndpointSlice {
  ObjectMeta meta;
  std::string service_name;  // label kubernetes.io/service-name
  std::vector<IpAddress> addresses;
};

// ReplicaSet, Job or any object only walked through for its owner.
struct OwnerObject {
  ObjectMeta meta;
};

// Parsers take one API object (the "object" of a watch event or an item of a
// list) and fail on objects without metadata.name.
absl::StatusOr<Pod> ParsePod(const nlohmann::json& j);
absl::StatusOr<Service> ParseService(const nlohmann::json& j);
absl::StatusOr<EndpointSlice> ParseEndpointSlice(const nlohmann::json& j);
absl::StatusOr<OwnerObject> ParseOwnerObject(const nlohmann::json& j);
absl::StatusOr<ObjectMeta> ParseObjectMeta(const nlohmann::json& j);

// "10.1.2.3", "fd00::1" -> canonical IpAddress; nullopt-like family 0 when
// not an address.
IpAddress ParseIp(std::string_view s);

// The Kubernetes equality-based selector: every key/value of `selector` is in
// `labels`. An empty selector matches nothing (a Service without selector
// selects no pods).
bool SelectorMatches(const Labels& selector, const Labels& labels);

}  // namespace redmap::k8s

#endif  // REDMAP_AGGREGATORS_METADATA_K8S_K8S_OBJECTS_H_
