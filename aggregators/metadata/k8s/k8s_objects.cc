#include "aggregators/metadata/k8s/k8s_objects.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace redmap::k8s {
namespace {

using nlohmann::json;

// Accessors that never throw: a missing or mistyped field reads as empty.
const json* Field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string Str(const json& j, const char* key) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : std::string();
}

bool Bool(const json& j, const char* key) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_boolean() && f->get<bool>();
}

const json& Obj(const json& j, const char* key) {
  static const json kEmpty = json::object();
  const json* f = Field(j, key);
  return f != nullptr && f->is_object() ? *f : kEmpty;
}

const json& Arr(const json& j, const char* key) {
  static const json kEmpty = json::array();
  const json* f = Field(j, key);
  return f != nullptr && f->is_array() ? *f : kEmpty;
}

Labels StringMap(const json& j) {
  Labels out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_string()) out.emplace_back(it.key(), it.value().get<std::string>());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void AddIp(std::vector<IpAddress>* ips, std::string_view s) {
  IpAddress ip = ParseIp(s);
  if (ip.family == 0) return;
  if (std::find(ips->begin(), ips->end(), ip) == ips->end()) ips->push_back(ip);
}

}  // namespace

const OwnerRef* ObjectMeta::ControllerOwner() const {
  for (const auto& o : owners) {
    if (o.controller) return &o;
  }
  return owners.empty() ? nullptr : &owners.front();
}

IpAddress ParseIp(std::string_view s) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (s.empty() || s.size() >= sizeof(buf)) return {};
  std::copy(s.begin(), s.end(), buf);
  buf[s.size()] = '\0';
  uint8_t bytes[16];
  if (inet_pton(AF_INET, buf, bytes) == 1) {
    uint32_t v4;
    std::copy(bytes, bytes + 4, reinterpret_cast<uint8_t*>(&v4));
    return IpAddress::V4(v4);
  }
  if (inet_pton(AF_INET6, buf, bytes) == 1) return IpAddress::V6(bytes).Canonical();
  return {};
}

bool SelectorMatches(const Labels& selector, const Labels& labels) {
  if (selector.empty()) return false;
  // Both sorted by key: one merge pass.
  auto it = labels.begin();
  for (const auto& [k, v] : selector) {
    while (it != labels.end() && it->first < k) ++it;
    if (it == labels.end() || it->first != k || it->second != v) return false;
  }
  return true;
}

absl::StatusOr<ObjectMeta> ParseObjectMeta(const json& j) {
  const json& m = Obj(j, "metadata");
  ObjectMeta meta;
  meta.name = Str(m, "name");
  if (meta.name.empty()) return absl::InvalidArgumentError("object without metadata.name");
  meta.namespace_ = Str(m, "namespace");
  meta.uid = Str(m, "uid");
  meta.resource_version = Str(m, "resourceVersion");
  meta.labels = StringMap(Obj(m, "labels"));
  meta.deleting = Field(m, "deletionTimestamp") != nullptr &&
                  !Field(m, "deletionTimestamp")->is_null();
  for (const json& o : Arr(m, "ownerReferences")) {
    OwnerRef ref{Str(o, "kind"), Str(o, "name"), Str(o, "uid"), Bool(o, "controller")};
    if (!ref.kind.empty() && !ref.name.empty()) meta.owners.push_back(std::move(ref));
  }
  return meta;
}

absl::StatusOr<Pod> ParsePod(const json& j) {
  auto meta = ParseObjectMeta(j);
  if (!meta.ok()) return meta.status();
  Pod p;
  p.meta = std::move(*meta);
  const json& spec = Obj(j, "spec");
  const json& status = Obj(j, "status");
  p.node_name = Str(spec, "nodeName");
  p.host_network = Bool(spec, "hostNetwork");
  p.phase = Str(status, "phase");
  for (const json& ip : Arr(status, "podIPs")) AddIp(&p.ips, Str(ip, "ip"));
  AddIp(&p.ips, Str(status, "podIP"));
  p.host_ip = ParseIp(Str(status, "hostIP"));
  return p;
}

absl::StatusOr<Service> ParseService(const json& j) {
  auto meta = ParseObjectMeta(j);
  if (!meta.ok()) return meta.status();
  Service s;
  s.meta = std::move(*meta);
  const json& spec = Obj(j, "spec");
  s.selector = StringMap(Obj(spec, "selector"));
  s.type = Str(spec, "type");
  for (const json& ip : Arr(spec, "clusterIPs")) {
    if (ip.is_string()) AddIp(&s.cluster_ips, ip.get<std::string>());
  }
  AddIp(&s.cluster_ips, Str(spec, "clusterIP"));  // "None" (headless) is not an address
  return s;
}

absl::StatusOr<EndpointSlice> ParseEndpointSlice(const json& j) {
  auto meta = ParseObjectMeta(j);
  if (!meta.ok()) return meta.status();
  EndpointSlice e;
  e.meta = std::move(*meta);
  for (const auto& [k, v] : e.meta.labels) {
    if (k == "kubernetes.io/service-name") e.service_name = v;
  }
  for (const json& ep : Arr(j, "endpoints")) {
    for (const json& a : Arr(ep, "addresses")) {
      if (a.is_string()) AddIp(&e.addresses, a.get<std::string>());
    }
  }
  return e;
}

absl::StatusOr<OwnerObject> ParseOwnerObject(const json& j) {
  auto meta = ParseObjectMeta(j);
  if (!meta.ok()) return meta.status();
  // Only the owner chain is needed; labels can be large (helm, argo).
  meta->labels.clear();
  return OwnerObject{std::move(*meta)};
}

}  // namespace redmap::k8s
