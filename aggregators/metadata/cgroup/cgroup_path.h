// Who a cgroup path belongs to: the container id, the container runtime and
// the Kubernetes pod UID encoded in the path by kubelet and the runtimes, for
// every layout we know of (paths relative to the cgroup mount):
//
//   systemd cgroup driver (kubelet's default on systemd hosts), cgroup v2 or v1:
//     /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<UID_>.slice/cri-containerd-<ID>.scope
//     /kubepods.slice/kubepods-pod<UID_>.slice/crio-<ID>.scope            (Guaranteed QoS)
//     /kubepods.slice/kubepods-besteffort.slice/.../docker-<ID>.scope     (cri-dockerd)
//     /kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-...-pod<UID_>.slice/...  (kind)
//   cgroupfs driver:
//     /kubepods/burstable/pod<UID>/<ID>
//     /kubepods/pod<UID>/<ID>
//   plain Docker / Podman:
//     /docker/<ID>, /system.slice/docker-<ID>.scope, /machine.slice/libpod-<ID>.scope
//   nested (Docker-in-Docker, kind nodes): any prefix before the above.
//
// <UID_> is the pod UID with '-' replaced by '_' (systemd unit names cannot
// hold '-' inside a slice component); it comes back dashed. <ID> is the
// runtime's container id (64 hex digits; 12+ accepted after a runtime prefix).
// Parsing is pure string work: no I/O, no allocation beyond the result.
#ifndef REDMAP_AGGREGATORS_METADATA_CGROUP_CGROUP_PATH_H_
#define REDMAP_AGGREGATORS_METADATA_CGROUP_CGROUP_PATH_H_

#include <string>
#include <string_view>

namespace redmap {

enum class ContainerRuntime { kNone, kContainerd, kCrio, kDocker, kPodman, kUnknown };
std::string_view ContainerRuntimeName(ContainerRuntime r);  // "containerd", "cri-o", ...

struct CgroupIdentity {
  std::string path;  // the cgroup path the fields were taken from
  ContainerRuntime runtime = ContainerRuntime::kNone;  // kUnknown: bare id (cgroupfs driver)
  std::string container_id;  // "" outside containers
  std::string pod_uid;       // dashed, lower case; "" outside pods
  std::string qos;           // "guaranteed", "burstable", "besteffort"; "" outside pods
  std::string systemd_unit;  // innermost "*.service" component, e.g. "nginx.service"
  bool conmon = false;       // CRI-O's monitor process (crio-conmon-<ID>.scope), not the workload

  bool in_pod() const { return !pod_uid.empty(); }
  bool in_container() const { return !container_id.empty(); }
};

// Identity encoded in one cgroup path ("/kubepods.slice/...").
CgroupIdentity ParseCgroupPath(std::string_view path);

// Identity of a process from the contents of /proc/<pid>/cgroup, which holds
// one "hierarchy-id:controllers:path" line per hierarchy: "0::/path" on the
// unified (v2) hierarchy, "4:memory:/path" or "1:name=systemd:/path" on v1.
// Hybrid hosts have both, and the v2 line may be "/" while the v1 lines carry
// the container; the first line that names a pod or container wins, in the
// order v2, name=systemd, then the v1 controllers as listed. Without any
// container, the v2 path (else the first line's) is returned with no ids.
CgroupIdentity ParseProcCgroup(std::string_view proc_cgroup);

// The unified-hierarchy path from /proc/<pid>/cgroup ("0::/path"), or "".
std::string_view UnifiedCgroupPath(std::string_view proc_cgroup);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_CGROUP_CGROUP_PATH_H_
