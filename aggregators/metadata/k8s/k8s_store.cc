#include "aggregators/metadata/k8s/k8s_store.h"

#include <algorithm>

#include "aggregators/common/string_view.h"
#include "absl/strings/str_cat.h"

namespace redmap::k8s {
namespace {

std::string Key(const ObjectMeta& m) { return absl::StrCat(m.namespace_, "/", m.name); }

std::string_view Label(const Labels& labels, std::string_view key) {
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
  }
  return {};
}

}  // namespace

std::string_view KindName(Kind k) {
  switch (k) {
    case Kind::kPods:
      return "pods";
    case Kind::kServices:
      return "services";
    case Kind::kEndpointSlices:
      return "endpointslices";
    case Kind::kReplicaSets:
      return "replicasets";
    case Kind::kJobs:
      return "jobs";
  }
  return "unknown";
}

Store::Store(size_t max_objects_per_kind) : max_objects_(std::max<size_t>(max_objects_per_kind, 1)) {}

bool Store::Full(Kind k, size_t size) {
  if (size < max_objects_) return false;
  ++dropped_[static_cast<size_t>(k)];
  return true;
}

// ---- pods ------------------------------------------------------------------

void Store::IndexPod(const PodPtr& p) {
  if (!p->meta.uid.empty()) pods_by_uid_[p->meta.uid] = p;
  if (!p->host_network && !p->terminated()) {
    for (const IpAddress& ip : p->ips) {
      // A reused IP belongs to the newest pod, unless this one is on its way
      // out and the other is not.
      PodPtr& slot = pod_ips_[ip];
      if (slot != nullptr && slot != p && p->meta.deleting && !slot->meta.deleting) continue;
      slot = p;
    }
  }
  if (p->host_ip.family != 0 && !p->node_name.empty()) {
    NodeIp& n = node_ips_[p->host_ip];
    n.node = p->node_name;
    ++n.pods;
  }
}

void Store::UnindexPod(const PodPtr& p) {
  if (auto it = pods_by_uid_.find(p->meta.uid); it != pods_by_uid_.end() && it->second == p) {
    pods_by_uid_.erase(it);
  }
  for (const IpAddress& ip : p->ips) {
    if (auto it = pod_ips_.find(ip); it != pod_ips_.end() && it->second == p) pod_ips_.erase(it);
  }
  if (p->host_ip.family != 0 && !p->node_name.empty()) {
    if (auto it = node_ips_.find(p->host_ip); it != node_ips_.end() && --it->second.pods == 0) {
      node_ips_.erase(it);
    }
  }
}

void Store::ReplacePods(std::vector<Pod> pods) {
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  pods_.clear();
  pods_by_uid_.clear();
  pod_ips_.clear();
  node_ips_.clear();
  for (Pod& pod : pods) {
    if (Full(Kind::kPods, pods_.size())) continue;
    auto p = std::make_shared<const Pod>(std::move(pod));
    auto [it, inserted] = pods_.try_emplace(Key(p->meta), p);
    if (!inserted) {
      UnindexPod(it->second);
      it->second = p;
    }
    IndexPod(p);
  }
}

void Store::UpsertPod(Pod pod) {
  auto p = std::make_shared<const Pod>(std::move(pod));
  std::string key = Key(p->meta);
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  auto it = pods_.find(key);
  if (it != pods_.end()) {
    UnindexPod(it->second);
    it->second = p;
  } else {
    if (Full(Kind::kPods, pods_.size())) return;
    pods_.emplace(std::move(key), p);
  }
  IndexPod(p);
}

void Store::DeletePod(const ObjectMeta& meta) {
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  auto it = pods_.find(Key(meta));
  if (it == pods_.end()) return;
  UnindexPod(it->second);
  pods_.erase(it);
}

// ---- services ----------------------------------------------------------------

void Store::IndexService(const ServicePtr& s) {
  for (const IpAddress& ip : s->cluster_ips) service_ips_[ip] = s;
}

void Store::UnindexService(const ServicePtr& s) {
  for (const IpAddress& ip : s->cluster_ips) {
    if (auto it = service_ips_.find(ip); it != service_ips_.end() && it->second == s) {
      service_ips_.erase(it);
    }
  }
}

void Store::ReplaceServices(std::vector<Service> services) {
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  services_.clear();
  service_ips_.clear();
  service_count_ = 0;
  for (Service& svc : services) {
    if (Full(Kind::kServices, service_count_)) continue;
    auto s = std::make_shared<const Service>(std::move(svc));
    auto [it, inserted] = services_[s->meta.namespace_].try_emplace(s->meta.name, s);
    if (!inserted) {
      UnindexService(it->second);
      it->second = s;
    } else {
      ++service_count_;
    }
    IndexService(s);
  }
}

void Store::UpsertService(Service service) {
  auto s = std::make_shared<const Service>(std::move(service));
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  auto& ns = services_[s->meta.namespace_];
  auto it = ns.find(s->meta.name);
  if (it != ns.end()) {
    UnindexService(it->second);
    it->second = s;
  } else {
    if (Full(Kind::kServices, service_count_)) {
      if (ns.empty()) services_.erase(s->meta.namespace_);
      return;
    }
    ns.emplace(s->meta.name, s);
    ++service_count_;
  }
  IndexService(s);
}

void Store::DeleteService(const ObjectMeta& meta) {
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  auto ns = services_.find(meta.namespace_);
  if (ns == services_.end()) return;
  auto it = ns->second.find(meta.name);
  if (it == ns->second.end()) return;
  UnindexService(it->second);
  ns->second.erase(it);
  --service_count_;
  if (ns->second.empty()) services_.erase(ns);
}

// ---- endpoint slices ---------------------------------------------------------

void Store::IndexSlice(const SlicePtr& s) {
  if (s->service_name.empty()) return;
  for (const IpAddress& ip : s->addresses) endpoint_ips_[ip] = s;
}

void Store::UnindexSlice(const SlicePtr& s) {
  for (const IpAddress& ip : s->addresses) {
    if (auto it = endpoint_ips_.find(ip); it != endpoint_ips_.end() && it->second == s) {
      endpoint_ips_.erase(it);
    }
  }
}

void Store::ReplaceEndpointSlices(std::vector<EndpointSlice> slices) {
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  slices_.clear();
  endpoint_ips_.clear();
  for (EndpointSlice& slice : slices) {
    if (Full(Kind::kEndpointSlices, slices_.size())) continue;
    auto s = std::make_shared<const EndpointSlice>(std::move(slice));
    std::string key = Key(s->meta);
    auto [it, inserted] = slices_.try_emplace(key, s);
    if (!inserted) {
      UnindexSlice(it->second);
      it->second = s;
    }
    IndexSlice(s);
  }
}

void Store::UpsertEndpointSlice(EndpointSlice slice) {
  auto s = std::make_shared<const EndpointSlice>(std::move(slice));
  std::string key = Key(s->meta);
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  auto it = slices_.find(key);
  if (it != slices_.end()) {
    UnindexSlice(it->second);
    it->second = s;
  } else {
    if (Full(Kind::kEndpointSlices, slices_.size())) return;
    slices_.emplace(key, s);
  }
  IndexSlice(s);
}

void Store::DeleteEndpointSlice(const ObjectMeta& meta) {
  std::string key = Key(meta);
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  auto it = slices_.find(key);
  if (it == slices_.end()) return;
  UnindexSlice(it->second);
  slices_.erase(it);
}

// ---- owners --------------------------------------------------------------------

void Store::ReplaceOwners(Kind kind, std::vector<OwnerObject> objects) {
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  auto& table = kind == Kind::kJobs ? jobs_ : replicasets_;
  table.clear();
  for (OwnerObject& o : objects) {
    if (Full(kind, table.size())) continue;
    std::string key = Key(o.meta);
    table.insert_or_assign(std::move(key), std::move(o));
  }
}

void Store::UpsertOwner(Kind kind, OwnerObject object) {
  std::string key = Key(object.meta);
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  auto& table = kind == Kind::kJobs ? jobs_ : replicasets_;
  auto it = table.find(key);
  if (it != table.end()) {
    it->second = std::move(object);
  } else if (!Full(kind, table.size())) {
    table.emplace(std::move(key), std::move(object));
  }
}

void Store::DeleteOwner(Kind kind, const ObjectMeta& meta) {
  absl::MutexLock l(&mu_);
  generation_.fetch_add(1, std::memory_order_release);
  (kind == Kind::kJobs ? jobs_ : replicasets_).erase(Key(meta));
}

// ---- readers -------------------------------------------------------------------

Workload Store::OwnerOf(const Pod& p) const {
  const OwnerRef* ref = p.meta.ControllerOwner();
  // Static pods are "owned" by their Node: the pod is its own workload.
  if (ref == nullptr || ref->kind == "Node") return {"Pod", p.meta.name};
  if (ref->kind == "ReplicaSet" || ref->kind == "Job") {
    const auto& table = ref->kind == "Job" ? jobs_ : replicasets_;
    auto it = table.find(absl::StrCat(p.meta.namespace_, "/", ref->name));
    if (it != table.end()) {
      const OwnerRef* up = it->second.meta.ControllerOwner();
      if (up != nullptr) return {up->kind, up->name};
      return {ref->kind, ref->name};
    }
    // Not (yet) known: a Deployment names its ReplicaSets
    // "<deployment>-<pod-template-hash>" and labels their pods with the hash.
    if (ref->kind == "ReplicaSet") {
      std::string_view hash = Label(p.meta.labels, "pod-template-hash");
      if (!hash.empty() && ref->name.size() > hash.size() + 1 &&
          EndsWith(ref->name, "-" + std::string(hash))) {
        return {"Deployment", ref->name.substr(0, ref->name.size() - hash.size() - 1)};
      }
    }
  }
  return {ref->kind, ref->name};
}

ObjectIdentity Store::PodIdentity(const Pod& p) const {
  ObjectIdentity id;
  id.source = ObjectIdentity::Source::kPod;
  id.namespace_ = p.meta.namespace_;
  id.pod = p.meta.name;
  id.pod_uid = p.meta.uid;
  id.node = p.node_name;
  id.host_network = p.host_network;
  id.workload = OwnerOf(p);
  if (auto ns = services_.find(p.meta.namespace_); ns != services_.end()) {
    for (const auto& [name, svc] : ns->second) {
      if (SelectorMatches(svc->selector, p.meta.labels)) id.services.push_back(name);
    }
    std::sort(id.services.begin(), id.services.end());
    if (id.services.size() > ObjectIdentity::kMaxServices) {
      id.services.resize(ObjectIdentity::kMaxServices);
    }
  }
  // A Service without selector (endpoints managed by hand or by a
  // controller) reaches the pod only through its EndpointSlices.
  if (id.services.empty()) {
    for (const IpAddress& ip : p.ips) {
      auto it = endpoint_ips_.find(ip);
      if (it != endpoint_ips_.end() && it->second->meta.namespace_ == p.meta.namespace_) {
        id.services.push_back(it->second->service_name);
        break;
      }
    }
  }
  return id;
}

std::optional<ObjectIdentity> Store::ByPodUid(std::string_view uid) const {
  absl::ReaderMutexLock l(&mu_);
  auto it = pods_by_uid_.find(AbslView(uid));
  if (it == pods_by_uid_.end()) return std::nullopt;
  return PodIdentity(*it->second);
}

std::optional<ObjectIdentity> Store::ByIp(const IpAddress& ip_in) const {
  const IpAddress ip = ip_in.Canonical();
  absl::ReaderMutexLock l(&mu_);
  if (auto it = pod_ips_.find(ip); it != pod_ips_.end()) return PodIdentity(*it->second);
  ObjectIdentity id;
  if (auto it = service_ips_.find(ip); it != service_ips_.end()) {
    id.source = ObjectIdentity::Source::kService;
    id.namespace_ = it->second->meta.namespace_;
    id.services.push_back(it->second->meta.name);
    return id;
  }
  if (auto it = endpoint_ips_.find(ip); it != endpoint_ips_.end()) {
    id.source = ObjectIdentity::Source::kService;
    id.namespace_ = it->second->meta.namespace_;
    id.services.push_back(it->second->service_name);
    return id;
  }
  if (auto it = node_ips_.find(ip); it != node_ips_.end()) {
    id.source = ObjectIdentity::Source::kNode;
    id.node = it->second.node;
    return id;
  }
  return std::nullopt;
}

uint64_t Store::generation() const {
  // Lock-free: read per span by the identity cache. Bumped under mu_ after
  // the write, so a reader that sees the new value finds the new data.
  return generation_.load(std::memory_order_acquire);
}

StoreCounts Store::counts() const {
  absl::ReaderMutexLock l(&mu_);
  StoreCounts c;
  c.objects[static_cast<size_t>(Kind::kPods)] = pods_.size();
  c.objects[static_cast<size_t>(Kind::kServices)] = service_count_;
  c.objects[static_cast<size_t>(Kind::kEndpointSlices)] = slices_.size();
  c.objects[static_cast<size_t>(Kind::kReplicaSets)] = replicasets_.size();
  c.objects[static_cast<size_t>(Kind::kJobs)] = jobs_.size();
  c.dropped = dropped_;
  c.pod_ips = pod_ips_.size();
  c.service_ips = service_ips_.size();
  c.endpoint_ips = endpoint_ips_.size();
  c.node_ips = node_ips_.size();
  return c;
}

}  // namespace redmap::k8s
