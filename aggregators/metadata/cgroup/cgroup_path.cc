#include "aggregators/metadata/cgroup/cgroup_path.h"

#include <array>
#include <vector>

#include "aggregators/common/string_view.h"

namespace redmap {
namespace {

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A runtime's container id: 64 lower-case hex digits; after a runtime
// prefix (where there is no doubt) 12 or more.
bool IsContainerId(std::string_view s, bool prefixed) {
  if (s.size() == 64) return IsHex(s);
  return prefixed && s.size() >= 12 && s.size() <= 64 && IsHex(s);
}

// "8c1f2d0e-..." or, from a systemd slice, "8c1f2d0e_...": 36 characters in
// 8-4-4-4-12 groups. Returns the dashed, lower-case form, or "".
std::string NormalizePodUid(std::string_view s) {
  if (s.size() != 36) return {};
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    char& c = out[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-' && c != '_') return {};
      c = '-';
      continue;
    }
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return {};
  }
  return out;
}

struct RuntimePrefix {
  std::string_view prefix;
  ContainerRuntime runtime;
  bool conmon;
};
// Longest first where one prefix extends another.
constexpr std::array<RuntimePrefix, 6> kPrefixes = {{
    {"cri-containerd-", ContainerRuntime::kContainerd, false},
    {"crio-conmon-", ContainerRuntime::kCrio, true},
    {"crio-", ContainerRuntime::kCrio, false},
    {"docker-", ContainerRuntime::kDocker, false},
    {"libpod-conmon-", ContainerRuntime::kPodman, true},
    {"libpod-", ContainerRuntime::kPodman, false},
}};

// Fills id/runtime when `c` (one path component) names a container.
bool MatchContainer(std::string_view c, std::string_view parent, CgroupIdentity* out) {
  // runc's systemd driver outside systemd: "<slice>:<prefix>:<id>", e.g.
  // "kubepods-burstable-pod<UID_>.slice:cri-containerd:<ID>".
  if (size_t colon = c.rfind(':'); colon != std::string_view::npos) {
    std::string_view id = c.substr(colon + 1);
    std::string_view head = c.substr(0, colon);
    size_t colon2 = head.rfind(':');
    std::string_view prefix = colon2 == std::string_view::npos ? head : head.substr(colon2 + 1);
    if (!IsContainerId(id, true)) return false;
    out->container_id = std::string(id);
    out->runtime = ContainerRuntime::kUnknown;
    for (const auto& p : kPrefixes) {
      if (std::string(prefix) + "-" == p.prefix) {
        out->runtime = p.runtime;
        out->conmon = p.conmon;
        break;
      }
    }
    return true;
  }
  std::string_view body = c;
  if (EndsWith(body, ".scope")) body.remove_suffix(6);
  for (const auto& p : kPrefixes) {
    if (StartsWith(body, p.prefix) && IsContainerId(body.substr(p.prefix.size()), true)) {
      out->container_id = std::string(body.substr(p.prefix.size()));
      out->runtime = p.runtime;
      out->conmon = p.conmon;
      return true;
    }
  }
  // cgroupfs driver: the bare id, under pod<UID> (kubelet) or docker/.
  if (body == c && IsContainerId(c, false)) {
    out->container_id = std::string(c);
    out->runtime = parent == "docker" ? ContainerRuntime::kDocker : ContainerRuntime::kUnknown;
    return true;
  }
  return false;
}

// Fills pod_uid/qos when `c` names a pod's cgroup: "pod<UID>" (cgroupfs) or
// "kubepods[-<qos>]-pod<UID_>.slice" (systemd; kind prefixes "kubelet-").
bool MatchPod(std::string_view c, std::string_view parent, CgroupIdentity* out) {
  if (StartsWith(c, "pod")) {
    std::string uid = NormalizePodUid(c.substr(3));
    if (uid.empty()) return false;
    out->pod_uid = std::move(uid);
    out->qos = parent == "burstable" || parent == "besteffort" ? std::string(parent)
               : parent == "kubepods"                          ? "guaranteed"
                                                               : "";
    return true;
  }
  if (!EndsWith(c, ".slice")) return false;
  std::string_view name = c.substr(0, c.size() - 6);
  size_t pod = name.rfind("-pod");
  if (pod == std::string_view::npos) return false;
  std::string uid = NormalizePodUid(name.substr(pod + 4));
  if (uid.empty()) return false;
  out->pod_uid = std::move(uid);
  std::string_view slice = name.substr(0, pod);  // "kubepods-burstable", "kubepods"
  if (EndsWith(slice, "-burstable")) {
    out->qos = "burstable";
  } else if (EndsWith(slice, "-besteffort")) {
    out->qos = "besteffort";
  } else if (EndsWith(slice, "kubepods")) {
    out->qos = "guaranteed";
  }
  return true;
}

}  // namespace

std::string_view ContainerRuntimeName(ContainerRuntime r) {
  switch (r) {
    case ContainerRuntime::kNone:
      return "none";
    case ContainerRuntime::kContainerd:
      return "containerd";
    case ContainerRuntime::kCrio:
      return "cri-o";
    case ContainerRuntime::kDocker:
      return "docker";
    case ContainerRuntime::kPodman:
      return "podman";
    case ContainerRuntime::kUnknown:
      break;
  }
  return "unknown";
}

CgroupIdentity ParseCgroupPath(std::string_view path) {
  CgroupIdentity out;
  out.path = std::string(path);
  std::vector<std::string_view> parts;
  for (std::string_view rest = path; !rest.empty();) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (!part.empty()) parts.push_back(part);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  // Innermost first: with nesting (Docker-in-Docker, kind), the innermost
  // container is the process's own.
  size_t container_at = parts.size();
  for (size_t i = parts.size(); i-- > 0;) {
    if (MatchContainer(parts[i], i > 0 ? parts[i - 1] : std::string_view(), &out)) {
      container_at = i;
      break;
    }
  }
  // The pod holding that container, or (no container: a process in the pod's
  // own cgroup) the innermost pod.
  for (size_t i = std::min(container_at + 1, parts.size()); i-- > 0;) {
    if (MatchPod(parts[i], i > 0 ? parts[i - 1] : std::string_view(), &out)) break;
  }
  // "slice:prefix:id" carries its pod slice inside the component.
  if (out.pod_uid.empty() && container_at < parts.size()) {
    std::string_view c = parts[container_at];
    if (size_t colon = c.find(':'); colon != std::string_view::npos) {
      MatchPod(c.substr(0, colon), {}, &out);
    }
  }
  for (size_t i = parts.size(); i-- > 0;) {
    if (EndsWith(parts[i], ".service")) {
      out.systemd_unit = std::string(parts[i]);
      break;
    }
  }
  return out;
}

std::string_view UnifiedCgroupPath(std::string_view proc_cgroup) {
  for (std::string_view rest = proc_cgroup; !rest.empty();) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    if (StartsWith(line, "0::")) return line.substr(3);
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return {};
}

CgroupIdentity ParseProcCgroup(std::string_view proc_cgroup) {
  // Candidate lines in preference order: v2, name=systemd, then the rest.
  std::vector<std::string_view> v2, systemd, v1;
  for (std::string_view rest = proc_cgroup; !rest.empty();) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    if (nl == std::string_view::npos) {
      rest = {};
    } else {
      rest.remove_prefix(nl + 1);
    }
    size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view id = line.substr(0, c1);
    std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string_view path = line.substr(c2 + 1);
    if (id == "0" && controllers.empty()) {
      v2.push_back(path);
    } else if (controllers == "name=systemd") {
      systemd.push_back(path);
    } else {
      v1.push_back(path);
    }
  }
  for (const auto* group : {&v2, &systemd, &v1}) {
    for (std::string_view path : *group) {
      CgroupIdentity id = ParseCgroupPath(path);
      if (id.in_pod() || id.in_container()) return id;
    }
  }
  if (!v2.empty()) return ParseCgroupPath(v2.front());
  if (!systemd.empty()) return ParseCgroupPath(systemd.front());
  if (!v1.empty()) return ParseCgroupPath(v1.front());
  return {};
}

}  // namespace redmap
