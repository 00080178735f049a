// The identity layer of a live exporter, built from the `kubernetes:` and
// `identity:` config sections: the Kubernetes object store and its list +
// watch client (when an API server is configured), the cgroup resolver, the
// CIDR names, the DNS cache and the capture that feeds it (DnsCapture,
// identity.dns_capture), and the IdentityResolver over all of them.
// Off (no API configured and kubernetes.enabled: auto), resolver() is null
// and the pipeline names processes and addresses as it does without
// Kubernetes; nothing is logged beyond one line saying so.
#ifndef REDMAP_EXPORTER_IDENTITY_SOURCES_H_
#define REDMAP_EXPORTER_IDENTITY_SOURCES_H_

#include <memory>

#include "absl/status/statusor.h"
#include "aggregators/metadata/cgroup/cgroup_resolver.h"
#include "aggregators/metadata/cidr_names.h"
#include "aggregators/metadata/dns_cache.h"
#include "aggregators/metadata/dns_capture.h"
#include "aggregators/metadata/identity.h"
#include "aggregators/metadata/k8s/k8s_client.h"
#include "aggregators/metadata/k8s/k8s_store.h"
#include "exporter/config.h"

namespace redmap {

class IdentitySources {
 public:
  // Errors name the config key (kubernetes.kubeconfig, identity.*). Starts
  // the API client's and the DNS capture's threads; does not wait for the
  // first list.
  static absl::StatusOr<std::unique_ptr<IdentitySources>> Create(const Config& config);
  ~IdentitySources();  // stops the client and the capture first

  const IdentityResolver* resolver() const { return resolver_.get(); }
  const k8s::Store* store() const { return store_.get(); }
  const k8s::Client* client() const { return client_.get(); }
  const CgroupResolver* cgroups() const { return cgroups_.get(); }
  const DnsCache* dns_cache() const { return dns_.get(); }
  const DnsCapture* dns_capture() const { return dns_capture_.get(); }
  const std::string& node_name() const { return node_name_; }

 private:
  IdentitySources() = default;
  std::string node_name_;
  std::unique_ptr<k8s::Store> store_;
  std::unique_ptr<CgroupResolver> cgroups_;
  std::unique_ptr<CidrNames> cidrs_;
  std::unique_ptr<DnsCache> dns_;
  std::unique_ptr<IdentityResolver> resolver_;
  std::unique_ptr<DnsCapture> dns_capture_;  // after dns_: stopped before what it writes
  std::unique_ptr<k8s::Client> client_;  // last: stopped before what it writes
};

}  // namespace redmap

#endif  // REDMAP_EXPORTER_IDENTITY_SOURCES_H_
