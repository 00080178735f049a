// "Pods" for root integration tests, laid out the way kubelet + containerd
// lay them out on a node: a network namespace with one veth into a node
// bridge (as a CNI bridge plugin does), and a cgroup on the unified
// hierarchy at
//   kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<UID_>.slice/
//       cri-containerd-<container id>.scope
// (UID dashes become underscores in systemd slice names). Processes started
// in a pod run inside both. Everything is removed on destruction.
#ifndef REDMAP_TESTS_INTEGRATION_POD_UTIL_H_
#define REDMAP_TESTS_INTEGRATION_POD_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "tests/integration/harness_util.h"

namespace redmap::testing {

// The node side: a bridge with the pods' gateway address. One per test
// suite; pods attach to it.
class PodNetwork {
 public:
  // subnet_prefix like "10.215.7" (the bridge gets .1, pods .2 and up).
  static std::unique_ptr<PodNetwork> Create(const std::string& subnet_prefix);
  ~PodNetwork();
  const std::string& bridge() const { return bridge_; }
  const std::string& prefix() const { return prefix_; }
  std::string gateway() const { return prefix_ + ".1"; }

 private:
  std::string bridge_;
  std::string prefix_;
};

class FakePod {
 public:
  struct Spec {
    std::string name;          // short, used for device names
    std::string uid;           // pod UID, e.g. "1b2c...-..."
    std::string container_id;  // 64 hex chars
    std::string qos = "burstable";
    int host_octet = 2;        // the pod's IP is <prefix>.<host_octet>
  };
  static std::unique_ptr<FakePod> Create(PodNetwork* net, const Spec& spec);
  ~FakePod();

  const std::string& ip() const { return ip_; }
  const std::string& netns() const { return netns_; }
  // Path relative to the cgroup2 root, e.g. "/kubepods.slice/...scope".
  const std::string& cgroup_path() const { return cgroup_rel_; }
  // Inode number of the cgroup directory: what bpf_get_current_cgroup_id()
  // reports for processes inside it.
  uint64_t cgroup_id() const;

  // Starts argv inside the pod's netns and cgroup.
  std::unique_ptr<Subprocess> Start(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& env = {});
  // Runs a shell command inside the pod to completion.
  CommandResult Run(const std::string& command);

 private:
  std::string netns_;
  std::string veth_host_;
  std::string ip_;
  std::string cgroup_abs_;
  std::string cgroup_rel_;
  std::vector<std::string> created_dirs_;  // innermost last
};

// A host outside the cluster: its own network namespace on the node's
// bridge (a veth from the host, like a pod's), but with an address outside
// the pods' subnet: `prefix` like "198.18.7" gives it <prefix>.2/24. Pods
// reach it over the bridge once they have the on-link route
// `OnLinkRoute()`; it has one back to the pods' subnet and no default
// route, so nothing in it can reach beyond this node, and the host does
// not forward.
class OutsideHost {
 public:
  static std::unique_ptr<OutsideHost> Create(PodNetwork* net, const std::string& name,
                                             const std::string& prefix);
  ~OutsideHost();
  std::string ip() const { return prefix_ + ".2"; }
  const std::string& netns() const { return netns_; }
  // The route a pod needs to reach it: "<prefix>.0/24 dev eth0".
  std::string OnLinkRoute() const { return prefix_ + ".0/24 dev eth0"; }
  // Starts argv inside the namespace (a host process, no pod cgroup).
  std::unique_ptr<Subprocess> Start(const std::vector<std::string>& argv);
  CommandResult Run(const std::string& command);

 private:
  std::string netns_;
  std::string veth_host_;
  std::string prefix_;
};

// The cgroup2 mount point on this machine (/sys/fs/cgroup/unified on hybrid
// hosts, /sys/fs/cgroup on unified ones).
std::string Cgroup2Root();

}  // namespace redmap::testing

#endif  // REDMAP_TESTS_INTEGRATION_POD_UTIL_H_
