#include "aggregators/metadata/identity.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "aggregators/common/string_view.h"

namespace redmap {

absl::StatusOr<EdgeLevel> ParseEdgeLevel(std::string_view s) {
  if (s == "pod") return EdgeLevel::kPod;
  if (s == "workload") return EdgeLevel::kWorkload;
  if (s == "service") return EdgeLevel::kService;
  return absl::InvalidArgumentError(
      absl::StrCat("edge level \"", AbslView(s), "\": must be pod, workload or service"));
}

std::string_view EdgeLevelName(EdgeLevel l) {
  switch (l) {
    case EdgeLevel::kPod:
      return "pod";
    case EdgeLevel::kWorkload:
      return "workload";
    case EdgeLevel::kService:
      return "service";
  }
  return "workload";
}

std::string_view IdentitySourceName(IdentitySource s) {
  switch (s) {
    case IdentitySource::kPod:
      return "pod";
    case IdentitySource::kService:
      return "service";
    case IdentitySource::kNode:
      return "node";
    case IdentitySource::kLoopback:
      return "loopback";
    case IdentitySource::kDns:
      return "dns";
    case IdentitySource::kCidr:
      return "cidr";
    case IdentitySource::kExternal:
      return "external";
    case IdentitySource::kProcess:
      return "process";
  }
  return "external";
}

IdentityResolver::IdentityResolver(IdentityOptions options, const k8s::Store* store,
                                   CgroupResolver* cgroups, ProcessResolver* processes,
                                   const CidrNames* cidrs, DnsCache* dns)
    : opt_(std::move(options)),
      store_(store),
      cgroups_(cgroups),
      processes_(processes),
      cidrs_(cidrs),
      dns_(dns) {}

Identity IdentityResolver::Count(Identity id) const {
  resolved_[static_cast<size_t>(id.source)].fetch_add(1, std::memory_order_relaxed);
  return id;
}

std::array<uint64_t, kNumIdentitySources> IdentityResolver::resolved() const {
  std::array<uint64_t, kNumIdentitySources> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = resolved_[i].load(std::memory_order_relaxed);
  return out;
}

Identity IdentityResolver::FromObject(const k8s::ObjectIdentity& o) const {
  Identity id;
  id.k8s_namespace = o.namespace_;
  id.node = o.node;
  id.host_network = o.host_network;
  if (!o.services.empty()) {
    id.service_name = o.services.front();
    id.service_namespace = o.namespace_;
  }
  switch (o.source) {
    case k8s::ObjectIdentity::Source::kPod:
      id.source = IdentitySource::kPod;
      id.pod = o.pod;
      id.pod_uid = o.pod_uid;
      id.workload_kind = o.workload.kind;
      id.workload_name = o.workload.name;
      switch (opt_.edge_level) {
        case EdgeLevel::kPod:
          id.name = o.pod;
          break;
        case EdgeLevel::kService:
          id.name = id.service_name.empty() ? o.workload.name : id.service_name;
          break;
        case EdgeLevel::kWorkload:
          id.name = o.workload.name;
          break;
      }
      if (id.name.empty()) id.name = o.pod;
      break;
    case k8s::ObjectIdentity::Source::kService:
      id.source = IdentitySource::kService;
      id.name = id.service_name;
      break;
    case k8s::ObjectIdentity::Source::kNode:
    case k8s::ObjectIdentity::Source::kNone:
      id.source = IdentitySource::kNode;
      id.name = o.node;
      break;
  }
  return id;
}

Identity IdentityResolver::ResolveLocal(uint32_t tgid, uint64_t cgroup_id, uint64_t now_ns,
                                        std::string_view comm) const {
  std::optional<CgroupIdentity> cg;
  if (cgroups_ != nullptr) {
    if (cgroup_id != 0) cg = cgroups_->IdentityOf(cgroup_id, now_ns);
    // The cgroup id is the BPF side's; /proc is the fallback (pcap replay
    // has no cgroup ids, and a root-cgroup id says nothing).
    if ((!cg || (!cg->in_pod() && !cg->in_container())) && tgid != 0) {
      if (auto from_proc = cgroups_->IdentityOfProcess(tgid)) cg = std::move(from_proc);
    }
  }
  if (cg && cg->in_pod() && store_ != nullptr) {
    if (auto o = store_->ByPodUid(cg->pod_uid)) {
      Identity id = FromObject(*o);
      id.container_id = cg->container_id;
      if (id.node.empty()) id.node = opt_.node_name;
      return Count(std::move(id));
    }
  }
  Identity id;
  id.source = IdentitySource::kProcess;
  id.node = opt_.node_name;
  if (cg) {
    id.pod_uid = cg->pod_uid;
    id.container_id = cg->container_id;
  }
  id.name = processes_ != nullptr ? processes_->ServiceName(tgid, now_ns, comm)
                                  : ServiceNameFromComm(comm);
  return Count(std::move(id));
}

Identity IdentityResolver::ResolveRemote(const IpAddress& ip_in, uint64_t now_ns) const {
  const IpAddress ip = ip_in.Canonical();
  Identity id;
  if (ip.IsLoopback()) {
    id.source = IdentitySource::kLoopback;
    id.name = opt_.loopback_name;
    id.node = opt_.node_name;
    return Count(std::move(id));
  }
  if (store_ != nullptr) {
    if (auto o = store_->ByIp(ip)) return Count(FromObject(*o));
  }
  if (dns_ != nullptr) {
    if (auto name = dns_->Lookup(ip, now_ns)) {
      id.source = IdentitySource::kDns;
      id.name = std::move(*name);
      return Count(std::move(id));
    }
  }
  if (cidrs_ != nullptr) {
    if (const std::string* name = cidrs_->Lookup(ip)) {
      id.source = IdentitySource::kCidr;
      id.name = *name;
      return Count(std::move(id));
    }
  }
  id.source = IdentitySource::kExternal;
  id.name = opt_.external_name;
  return Count(std::move(id));
}

Identity IdentityResolver::Resolve(const IdentityQuery& q, uint64_t now_ns) const {
  return q.local ? ResolveLocal(q.tgid, q.cgroup_id, now_ns, q.comm) : ResolveRemote(q.ip, now_ns);
}

}  // namespace redmap
