#include "exporter/identity_sources.h"

#include <sys/stat.h>

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "aggregators/metadata/k8s/api_server_config.h"

namespace redmap {
namespace {

// False when this process is provably outside the host's network namespace:
// pid 1 (the host's init under hostPID, as the DaemonSet runs) has another
// one. Unknown (no /proc/1 access) counts as the host's.
bool InHostNetworkNamespace() {
  struct stat self, init;
  if (stat("/proc/self/ns/net", &self) != 0 || stat("/proc/1/ns/net", &init) != 0) return true;
  return self.st_ino == init.st_ino && self.st_dev == init.st_dev;
}

// identity.dns_capture: the UDP/53 answer capture feeding `cache`, started;
// null when it is off or (auto) cannot run here.
absl::StatusOr<std::unique_ptr<DnsCapture>> StartDnsCapture(Config::AutoMode mode,
                                                            DnsCache* cache) {
  if (mode == Config::AutoMode::kOff) return nullptr;
  absl::StatusOr<std::unique_ptr<DnsCapture>> capture =
      InHostNetworkNamespace()
          ? DnsCapture::Open(cache)
          : absl::StatusOr<std::unique_ptr<DnsCapture>>(absl::FailedPreconditionError(
                "not in the host's network namespace (in Kubernetes: hostNetwork: true), "
                "so the pods' DNS answers are not seen"));
  if (!capture.ok()) {
    if (mode == Config::AutoMode::kOn) {
      return absl::InvalidArgumentError(absl::StrCat(
          "identity.dns_capture: ", capture.status().message(),
          "; set identity.dns_capture: false to run without DNS names"));
    }
    fprintf(stderr, "redmap: DNS names off: %s (identity.dns_capture: auto)\n",
            std::string(capture.status().message()).c_str());
    return nullptr;
  }
  (*capture)->Start();
  fprintf(stderr, "redmap: DNS names from answers captured on any (udp src port 53)\n");
  return capture;
}

}  // namespace

absl::StatusOr<std::unique_ptr<IdentitySources>> IdentitySources::Create(const Config& config) {
  const Config::Kubernetes& kc = config.kubernetes;
  const Config::Identity& ic = config.identity;
  std::unique_ptr<IdentitySources> s(new IdentitySources());
  s->node_name_ = kc.node_name.empty() ? k8s::NodeNameFromEnv() : kc.node_name;

  bool want = kc.enabled == Config::Kubernetes::Mode::kOn;
  if (kc.enabled == Config::Kubernetes::Mode::kAuto) {
    want = !kc.kubeconfig.empty() || !k8s::GetEnv("KUBERNETES_SERVICE_HOST").empty() ||
           !k8s::GetEnv("KUBECONFIG").empty();
  }
  // DNS names are consulted by the Kubernetes identity resolver only;
  // without it peers keep their IP addresses, as redmap always named them.
  const absl::Status dns_without_identities = absl::InvalidArgumentError(
      "identity.dns_capture: true needs Kubernetes identities (kubernetes.enabled): without them "
      "peers are named by their IP addresses");
  if (!want) {
    if (ic.dns_capture == Config::AutoMode::kOn) return dns_without_identities;
    fprintf(stderr, "redmap: kubernetes identities off (%s)\n",
            kc.enabled == Config::Kubernetes::Mode::kOff
                ? "kubernetes.enabled: false"
                : "no kubernetes.kubeconfig, KUBECONFIG or in-cluster service account");
    return s;
  }
  auto api = k8s::LoadApiServerConfig(kc.kubeconfig);
  if (!api.ok()) {
    // Explicitly asked for (enabled: true, or a kubeconfig named in the
    // config): a clear error. Merely guessed from the environment
    // ($KUBECONFIG, KUBERNETES_SERVICE_HOST): say why once and run without.
    if (kc.enabled == Config::Kubernetes::Mode::kOn || !kc.kubeconfig.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubernetes.kubeconfig: ", api.status().message()));
    }
    if (ic.dns_capture == Config::AutoMode::kOn) return dns_without_identities;
    fprintf(stderr, "redmap: kubernetes identities off: %s (kubernetes.enabled: auto)\n",
            std::string(api.status().message()).c_str());
    return s;
  }
  auto level = ParseEdgeLevel(ic.edge_level);
  if (!level.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("identity.edge_level: ", level.status().message()));
  }
  auto cidrs = CidrNames::Create(ic.cidr_names);
  if (!cidrs.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("identity.cidr_names: ", cidrs.status().message()));
  }
  s->cidrs_ = std::make_unique<CidrNames>(std::move(*cidrs));
  s->store_ = std::make_unique<k8s::Store>(kc.max_objects_per_kind);
  CgroupResolverOptions cg;
  cg.cgroup_root = ic.cgroup_root;
  cg.max_entries = ic.cgroup_cache_entries;
  s->cgroups_ = std::make_unique<CgroupResolver>(cg);
  DnsCacheOptions dns;
  dns.max_entries = ic.dns_cache_entries;
  s->dns_ = std::make_unique<DnsCache>(dns);
  IdentityOptions io;
  io.edge_level = *level;
  io.node_name = s->node_name_;
  io.external_name = ic.external_name;
  s->resolver_ = std::make_unique<IdentityResolver>(io, s->store_.get(), s->cgroups_.get(),
                                                    /*processes=*/nullptr, s->cidrs_.get(),
                                                    s->dns_.get());
  auto capture = StartDnsCapture(ic.dns_capture, s->dns_.get());
  if (!capture.ok()) return capture.status();
  s->dns_capture_ = std::move(*capture);
  k8s::ClientOptions co;
  co.node_name = s->node_name_;
  co.cluster_wide = kc.cluster_wide;
  co.services = kc.watch_services;
  co.owners = kc.watch_owners;
  co.list_page_size = static_cast<int>(kc.list_page_size);
  co.watch_timeout = absl::Seconds(kc.watch_timeout_seconds);
  co.initial_backoff = absl::Milliseconds(kc.backoff_initial_ms);
  co.max_backoff = absl::Milliseconds(std::max(kc.backoff_max_ms, kc.backoff_initial_ms));
  const std::string server = api->server, source = api->source;
  auto client = k8s::Client::Create(std::move(*api), co, s->store_.get());
  if (!client.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("kubernetes: ", client.status().message()));
  }
  s->client_ = std::move(*client);
  s->client_->Start();
  fprintf(stderr, "redmap: kubernetes identities from %s (%s) as node %s, cgroups under %s\n",
          server.c_str(), source.c_str(), s->node_name_.c_str(),
          s->cgroups_->cgroup_root().c_str());
  return s;
}

IdentitySources::~IdentitySources() {
  if (client_) client_->Stop();
  if (dns_capture_) dns_capture_->Stop();
}

}  // namespace redmap
