#include "tests/integration/pod_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace redmap::testing {
namespace {

bool Sh(const std::string& cmd) {
  CommandResult r = RunShell(cmd);
  if (r.exit_code != 0) {
    fprintf(stderr, "pod_util: '%s' failed: %s\n", cmd.c_str(), r.output.c_str());
    return false;
  }
  return true;
}

// Device names are at most 15 bytes.
std::string DeviceName(const std::string& prefix, const std::string& name) {
  return (prefix + name).substr(0, 15);
}

}  // namespace

std::string Cgroup2Root() {
  for (const char* p : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    if (std::filesystem::exists(std::string(p) + "/cgroup.procs") &&
        std::filesystem::exists(std::string(p) + "/cgroup.subtree_control")) {
      return p;
    }
  }
  return "";
}

std::unique_ptr<PodNetwork> PodNetwork::Create(const std::string& subnet_prefix) {
  auto net = std::unique_ptr<PodNetwork>(new PodNetwork());
  net->prefix_ = subnet_prefix;
  net->bridge_ = DeviceName("rmbr", std::to_string(getpid()));
  if (!Sh(absl::StrCat("ip link add ", net->bridge_, " type bridge && ip addr add ",
                       net->gateway(), "/24 dev ", net->bridge_, " && ip link set ", net->bridge_,
                       " up"))) {
    return nullptr;
  }
  return net;
}

PodNetwork::~PodNetwork() { RunShell("ip link del " + bridge_); }

std::unique_ptr<FakePod> FakePod::Create(PodNetwork* net, const Spec& spec) {
  auto pod = std::unique_ptr<FakePod>(new FakePod());
  pod->netns_ = absl::StrCat("rmpod-", spec.name, "-", getpid());
  pod->veth_host_ = DeviceName("rmv", absl::StrCat(spec.name, getpid()));
  const std::string veth_pod = DeviceName("rmp", absl::StrCat(spec.name, getpid()));
  pod->ip_ = absl::StrCat(net->prefix(), ".", spec.host_octet);
  if (!Sh(absl::StrCat("ip netns add ", pod->netns_, " && ip link add ", pod->veth_host_,
                       " type veth peer name ", veth_pod, " && ip link set ", veth_pod, " netns ",
                       pod->netns_, " && ip link set ", pod->veth_host_, " master ",
                       net->bridge(), " && ip link set ", pod->veth_host_, " up")) ||
      !Sh(absl::StrCat("ip netns exec ", pod->netns_, " sh -c 'ip link set lo up && ip link set ",
                       veth_pod, " name eth0 && ip addr add ", pod->ip_, "/24 dev eth0 && ",
                       "ip link set eth0 up && ip route add default via ", net->gateway(), "'"))) {
    return nullptr;
  }

  // kubelet's systemd cgroup driver layout.
  const std::string root = Cgroup2Root();
  if (root.empty()) return nullptr;
  const std::string uid_ = absl::StrReplaceAll(spec.uid, {{"-", "_"}});
  const std::string qos = spec.qos;
  std::vector<std::string> levels = {
      "kubepods.slice",
      absl::StrCat("kubepods-", qos, ".slice"),
      absl::StrCat("kubepods-", qos, "-pod", uid_, ".slice"),
      absl::StrCat("cri-containerd-", spec.container_id, ".scope"),
  };
  std::string path = root;
  for (const std::string& level : levels) {
    path += "/" + level;
    pod->cgroup_rel_ += "/" + level;
    if (mkdir(path.c_str(), 0755) == 0) {
      pod->created_dirs_.push_back(path);
    } else if (errno != EEXIST) {
      perror(("pod_util: mkdir " + path).c_str());
      return nullptr;
    }
  }
  pod->cgroup_abs_ = path;
  return pod;
}

FakePod::~FakePod() {
  // Whatever still runs in the pod's cgroup goes, then the cgroups (inner
  // first), then the namespace.
  if (!cgroup_abs_.empty()) {
    RunShell(absl::StrCat("for p in $(cat ", cgroup_abs_, "/cgroup.procs); do kill -9 $p; done"));
    for (int i = 0; i < 50; ++i) {
      std::ifstream procs(cgroup_abs_ + "/cgroup.procs");
      std::string line;
      if (!std::getline(procs, line)) break;
      usleep(20000);
    }
  }
  for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) rmdir(it->c_str());
  if (!veth_host_.empty()) RunShell("ip link del " + veth_host_);
  if (!netns_.empty()) RunShell("ip netns del " + netns_);
}

uint64_t FakePod::cgroup_id() const {
  struct stat st;
  if (stat(cgroup_abs_.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

std::unique_ptr<Subprocess> FakePod::Start(const std::vector<std::string>& argv,
                                           const std::vector<std::string>& env) {
  // Join the cgroup first (so that everything the command forks is in it),
  // then the network namespace, then exec.
  std::vector<std::string> full = {
      "sh", "-c", absl::StrCat("echo $$ > ", cgroup_abs_, "/cgroup.procs && exec ip netns exec ",
                               netns_, " \"$@\""),
      "sh"};
  full.insert(full.end(), argv.begin(), argv.end());
  auto p = std::make_unique<Subprocess>();
  if (!p->Start(full, env)) return nullptr;
  return p;
}

CommandResult FakePod::Run(const std::string& command) {
  return RunShell(absl::StrCat("sh -c 'echo $$ > ", cgroup_abs_,
                               "/cgroup.procs && exec ip netns exec ", netns_, " sh -c \"",
                               command, "\"'"));
}

std::unique_ptr<OutsideHost> OutsideHost::Create(PodNetwork* net, const std::string& name,
                                                 const std::string& prefix) {
  auto h = std::unique_ptr<OutsideHost>(new OutsideHost());
  h->prefix_ = prefix;
  h->netns_ = absl::StrCat("rmhost-", name, "-", getpid());
  h->veth_host_ = DeviceName("rmh", absl::StrCat(name, getpid()));
  const std::string veth_far = DeviceName("rmf", absl::StrCat(name, getpid()));
  if (!Sh(absl::StrCat("ip netns add ", h->netns_, " && ip link add ", h->veth_host_,
                       " type veth peer name ", veth_far, " && ip link set ", veth_far, " netns ",
                       h->netns_, " && ip link set ", h->veth_host_, " master ", net->bridge(),
                       " && ip link set ", h->veth_host_, " up")) ||
      !Sh(absl::StrCat("ip netns exec ", h->netns_, " sh -c 'ip link set lo up && ip link set ",
                       veth_far, " name eth0 && ip addr add ", h->ip(), "/24 dev eth0 && ",
                       "ip link set eth0 up && ip route add ", net->prefix(), ".0/24 dev eth0'"))) {
    return nullptr;
  }
  return h;
}

OutsideHost::~OutsideHost() {
  if (!netns_.empty()) RunShell("ip netns pids " + netns_ + " | xargs -r kill -9");
  if (!veth_host_.empty()) RunShell("ip link del " + veth_host_);
  if (!netns_.empty()) RunShell("ip netns del " + netns_);
}

std::unique_ptr<Subprocess> OutsideHost::Start(const std::vector<std::string>& argv) {
  std::vector<std::string> full = {"ip", "netns", "exec", netns_};
  full.insert(full.end(), argv.begin(), argv.end());
  auto p = std::make_unique<Subprocess>();
  if (!p->Start(full)) return nullptr;
  return p;
}

CommandResult OutsideHost::Run(const std::string& command) {
  return RunShell(absl::StrCat("ip netns exec ", netns_, " sh -c '", command, "'"));
}

}  // namespace redmap::testing
