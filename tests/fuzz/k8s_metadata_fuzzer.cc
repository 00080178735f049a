// Untrusted text redmap parses for identities: /proc/<pid>/cgroup contents
// and cgroup paths (any process can create cgroups with odd names where it
// is delegated a subtree), and API objects (a watch event's JSON). None may
// crash, overrun or throw; the store must stay consistent under any object.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregators/metadata/cgroup/cgroup_path.h"
#include "aggregators/metadata/cidr_names.h"
#include "aggregators/metadata/k8s/k8s_store.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  redmap::CgroupIdentity a = redmap::ParseProcCgroup(in);
  redmap::CgroupIdentity b = redmap::ParseCgroupPath(in);
  volatile size_t sink = a.pod_uid.size() + b.container_id.size() + redmap::UnifiedCgroupPath(in).size();
  (void)sink;
  (void)redmap::ParseCidr(in, "x");

  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  redmap::k8s::Store store(4);
  if (auto p = redmap::k8s::ParsePod(j); p.ok()) {
    store.UpsertPod(*p);
    for (const auto& ip : p->ips) (void)store.ByIp(ip);
    (void)store.ByPodUid(p->meta.uid);
    store.DeletePod(p->meta);
  }
  if (auto s = redmap::k8s::ParseService(j); s.ok()) {
    store.UpsertService(*s);
    store.DeleteService(s->meta);
  }
  if (auto e = redmap::k8s::ParseEndpointSlice(j); e.ok()) {
    store.UpsertEndpointSlice(*e);
    store.DeleteEndpointSlice(e->meta);
  }
  (void)redmap::k8s::ParseOwnerObject(j);
  return 0;
}
