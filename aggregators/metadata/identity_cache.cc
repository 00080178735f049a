#include "aggregators/metadata/identity_cache.h"

#include <utility>

namespace redmap {

const std::string& IdentityLabelValue(const IdentityLabels& l, size_t i) {
  switch (i) {
    case 0:
      return l.service_namespace;
    case 1:
      return l.k8s_namespace_name;
    case 2:
      return l.k8s_pod_name;
    case 3:
      return l.k8s_owner_kind;
    case 4:
      return l.k8s_owner_name;
    case 5:
      return l.k8s_deployment_name;
    default:
      return l.k8s_node_name;
  }
}

IdentityPtr NamedIdentity(std::string name) {
  auto l = std::make_shared<IdentityLabels>();
  l->name = std::move(name);
  l->service_name = l->name;
  return l;
}

IdentityCache::IdentityCache(IdentityCacheOptions options, const IdentityResolver* resolver,
                             const k8s::Store* store, ProcessNameFn process_name)
    : opt_(std::move(options)),
      resolver_(resolver),
      store_(store),
      process_name_(std::move(process_name)) {}

bool IdentityCache::Fresh(const Entry& e, uint64_t generation, uint64_t now_ns) const {
  const uint64_t age = now_ns >= e.resolved_ns ? now_ns - e.resolved_ns : 0;
  if (age >= kMaxAgeNs) return false;
  return e.generation == generation || age < kRefreshNs;
}

IdentityPtr IdentityCache::FromIdentity(Identity id) const {
  auto l = std::make_shared<IdentityLabels>();
  l->source = id.source;
  l->name = std::move(id.name);
  if (id.source == IdentitySource::kPod) {
    const bool pod_level = resolver_->options().edge_level == EdgeLevel::kPod;
    l->service_name = id.workload_name.empty() ? id.pod : id.workload_name;
    l->service_namespace = id.k8s_namespace;
    l->k8s_namespace_name = id.k8s_namespace;
    if (pod_level || opt_.pod_label_at_any_level) l->k8s_pod_name = id.pod;
    l->k8s_owner_kind = id.workload_kind;
    l->k8s_owner_name = id.workload_name;
    if (id.workload_kind == "Deployment") l->k8s_deployment_name = id.workload_name;
    l->k8s_node_name = std::move(id.node);
  } else if (id.source == IdentitySource::kService) {
    l->service_name = l->name;
    l->service_namespace = id.service_namespace;
    l->k8s_namespace_name = id.k8s_namespace;
  } else {
    l->service_name = l->name;
    l->k8s_node_name = std::move(id.node);
  }
  return l;
}

uint64_t IdentityCache::store_generation() const {
  return store_ != nullptr ? store_->generation() : 0;
}

IdentityPtr IdentityCache::Local(uint32_t tgid, uint64_t cgroup_id, std::string_view comm,
                                 uint64_t now_ns) {
  const uint64_t generation = store_ != nullptr ? store_->generation() : 0;
  const std::pair<uint32_t, uint64_t> key{tgid, cgroup_id};
  {
    absl::MutexLock l(&mu_);
    auto it = local_.find(key);
    if (it != local_.end() && Fresh(it->second, generation, now_ns)) return it->second.labels;
  }
  // Resolve outside the lock: it may read /proc and walk the cgroup tree.
  IdentityPtr labels;
  if (resolver_ != nullptr && tgid != 0) {
    Identity id = resolver_->ResolveLocal(tgid, cgroup_id, now_ns, comm);
    if (id.source != IdentitySource::kPod) {
      auto l = std::make_shared<IdentityLabels>();
      l->source = IdentitySource::kProcess;
      l->name = process_name_(tgid, comm, now_ns);
      l->service_name = l->name;
      l->k8s_node_name = opt_.node_name;
      labels = std::move(l);
    } else {
      labels = FromIdentity(std::move(id));
    }
  } else {
    // Without Kubernetes: the process name only, as before identities.
    auto l = std::make_shared<IdentityLabels>();
    l->source = IdentitySource::kProcess;
    l->name = process_name_(tgid, comm, now_ns);
    l->service_name = l->name;
    labels = std::move(l);
  }
  absl::MutexLock l(&mu_);
  ++misses_;
  if (local_.size() >= opt_.max_entries && !local_.contains(key)) local_.clear();
  local_[key] = Entry{labels, generation, now_ns};
  return labels;
}

uint64_t IdentityCache::RemoteGeneration(const IdentityLabels& l, uint64_t store_gen,
                                         uint64_t dns_gen) {
  const bool below_dns = l.source == IdentitySource::kDns || l.source == IdentitySource::kCidr ||
                         l.source == IdentitySource::kExternal;
  // Both counters only grow: the sum moves whenever either does.
  return below_dns ? store_gen + dns_gen : store_gen;
}

IdentityPtr IdentityCache::Remote(const IpAddress& ip, uint64_t now_ns) {
  const uint64_t generation = store_ != nullptr ? store_->generation() : 0;
  const DnsCache* dns = resolver_ != nullptr ? resolver_->dns() : nullptr;
  const uint64_t dns_generation = dns != nullptr ? dns->generation() : 0;
  {
    absl::MutexLock l(&mu_);
    auto it = remote_.find(ip);
    if (it != remote_.end() &&
        Fresh(it->second, RemoteGeneration(*it->second.labels, generation, dns_generation),
              now_ns)) {
      return it->second.labels;
    }
  }
  IdentityPtr labels;
  Identity id;
  if (resolver_ != nullptr) id = resolver_->ResolveRemote(ip, now_ns);
  if (resolver_ == nullptr || id.source == IdentitySource::kLoopback) {
    // Unknown peers on this host keep their address: the families that
    // name local peers by their process do so before asking here.
    auto l = std::make_shared<IdentityLabels>();
    l->source = resolver_ == nullptr ? IdentitySource::kExternal : IdentitySource::kLoopback;
    l->name = ip.ToString();
    l->service_name = l->name;
    labels = std::move(l);
  } else {
    labels = FromIdentity(std::move(id));
  }
  absl::MutexLock l(&mu_);
  ++misses_;
  if (remote_.size() >= opt_.max_entries && !remote_.contains(ip)) remote_.clear();
  remote_[ip] = Entry{labels, RemoteGeneration(*labels, generation, dns_generation), now_ns};
  return labels;
}

size_t IdentityCache::local_entries() const {
  absl::MutexLock l(&mu_);
  return local_.size();
}

size_t IdentityCache::remote_entries() const {
  absl::MutexLock l(&mu_);
  return remote_.size();
}

uint64_t IdentityCache::misses() const {
  absl::MutexLock l(&mu_);
  return misses_;
}

}  // namespace redmap
