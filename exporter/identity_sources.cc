#include "exporter/identity_sources.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "aggregators/metadata/k8s/api_server_config.h"

namespace redmap {

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
  if (!want) {
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
}

}  // namespace redmap
