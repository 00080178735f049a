#include "exporter/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "aggregators/metadata/cidr_names.h"
#include "aggregators/metadata/identity.h"
#include "aggregators/network/tcp_aggregator.h"
#include "aggregators/red/red_aggregator.h"
#include "aggregators/red/route_normalizer.h"
#include "aggregators/servicemap/service_graph.h"
#include "exporter/listen_address.h"
#include "yaml-cpp/yaml.h"

namespace redmap {
namespace {

// One table of every key: its path, and how to read and check it. Unknown
// keys are anything not in the table.
using Setter = std::function<absl::Status(const YAML::Node&, const std::string& key, Config*)>;

absl::Status BadValue(const std::string& key, const std::string& what, const YAML::Node& n) {
  std::string got = n.IsScalar()     ? absl::StrCat("'", n.Scalar(), "'")
                    : n.IsSequence() ? "a list"
                    : n.IsMap()      ? "a map"
                                     : "nothing";
  return absl::InvalidArgumentError(
      absl::StrCat(key, ": ", what, ", got ", got, " (line ", n.Mark().line + 1, ")"));
}

template <typename T>
absl::Status ReadUint(const YAML::Node& n, const std::string& key, uint64_t lo, uint64_t hi,
                      T* out) {
  if (!n.IsScalar()) return BadValue(key, "must be a number", n);
  const std::string& s = n.Scalar();
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 12) {
    return BadValue(key, absl::StrCat("must be an integer between ", lo, " and ", hi), n);
  }
  uint64_t v = std::stoull(s);
  if (v < lo || v > hi) {
    return BadValue(key, absl::StrCat("must be between ", lo, " and ", hi), n);
  }
  *out = static_cast<T>(v);
  return absl::OkStatus();
}

absl::Status ReadBool(const YAML::Node& n, const std::string& key, bool* out) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true") return *out = true, absl::OkStatus();
    if (s == "false") return *out = false, absl::OkStatus();
  }
  return BadValue(key, "must be true or false", n);
}

// A number in [lo, hi] (decimals allowed).
absl::Status ReadDouble(const YAML::Node& n, const std::string& key, double lo, double hi,
                        double* out) {
  double v;
  if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v)) {
    return BadValue(key, absl::StrCat("must be a number between ", lo, " and ", hi), n);
  }
  if (v < lo || v > hi) return BadValue(key, absl::StrCat("must be between ", lo, " and ", hi), n);
  *out = v;
  return absl::OkStatus();
}

// A list of names: header names or query parameter names (RFC 9110 token
// characters), at most 100.
template <typename Section>
Setter Names(Section Config::*section, std::vector<std::string> Section::*field) {
  return [=](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
    if (!n.IsSequence()) return BadValue(key, "must be a list of names", n);
    std::vector<std::string> names;
    for (const auto& item : n) {
      if (!item.IsScalar() || item.Scalar().empty() || item.Scalar().size() > 128 ||
          item.Scalar().find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789!#$%&'*+-.^_`|~") != std::string::npos) {
        return BadValue(key, "every entry must be a header or parameter name", item);
      }
      names.push_back(item.Scalar());
    }
    if (names.size() > 100) return BadValue(key, "at most 100 names", n);
    (c->*section).*field = std::move(names);
    return absl::OkStatus();
  };
}

template <typename Section>
Setter U32(Section Config::*section, uint32_t Section::*field, uint64_t lo, uint64_t hi) {
  return [=](const YAML::Node& n, const std::string& key, Config* c) {
    return ReadUint(n, key, lo, hi, &((c->*section).*field));
  };
}

// A histogram bucket list: positive, finite, strictly increasing, <= 100.
template <typename Section>
Setter Buckets(Section Config::*section, std::vector<double> Section::*field) {
  return [=](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
    if (!n.IsSequence() || n.size() == 0) {
      return BadValue(key, "must be a non-empty list of seconds", n);
    }
    std::vector<double> b;
    for (const auto& item : n) {
      double v;
      if (!item.IsScalar() || !YAML::convert<double>::decode(item, v) || !std::isfinite(v) ||
          v <= 0) {
        return BadValue(key, "every bucket must be a positive finite number", item);
      }
      if (!b.empty() && v <= b.back()) {
        return BadValue(key, "buckets must be strictly increasing", item);
      }
      b.push_back(v);
    }
    if (b.size() > 100) return BadValue(key, "at most 100 buckets", n);
    (c->*section).*field = std::move(b);
    return absl::OkStatus();
  };
}

// auto | true | false
template <typename Section>
Setter Auto(Section Config::*section, Config::AutoMode Section::*field) {
  return [=](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
    const std::string v = n.IsScalar() ? n.Scalar() : "";
    if (v == "auto") {
      (c->*section).*field = Config::AutoMode::kAuto;
    } else if (v == "true") {
      (c->*section).*field = Config::AutoMode::kOn;
    } else if (v == "false") {
      (c->*section).*field = Config::AutoMode::kOff;
    } else {
      return BadValue(key, "must be auto, true or false", n);
    }
    return absl::OkStatus();
  };
}

template <typename Section>
Setter Bool(Section Config::*section, bool Section::*field) {
  return [=](const YAML::Node& n, const std::string& key, Config* c) {
    return ReadBool(n, key, &((c->*section).*field));
  };
}

template <typename Section>
Setter Text(Section Config::*section, std::string Section::*field, const char* what) {
  return [=](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
    if (!n.IsScalar()) return BadValue(key, what, n);
    (c->*section).*field = n.Scalar();
    return absl::OkStatus();
  };
}

// A drop or keep list of a family's labels: `names` are all its labels, the
// first `required` of them name what the series is about and cannot be
// left out.
template <typename Section>
Setter LabelList(Section Config::*section, std::vector<std::string> Section::*field,
                 std::vector<std::string> names, size_t required) {
  return [=](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
    if (!n.IsSequence()) return BadValue(key, "must be a list of label names", n);
    // "every entry must be one of a, b (x and y name the series and are
    // always kept)".
    const std::string kept = absl::StrJoin(names.begin(), names.begin() + required, ", ");
    const std::string allowed =
        absl::StrCat("every entry must be one of ",
                     absl::StrJoin(names.begin() + required, names.end(), ", "), " (", kept,
                     required == 1 ? " names the series and is" : " name the series and are",
                     " always kept)");
    std::vector<std::string> out;
    for (const auto& item : n) {
      if (!item.IsScalar() ||
          std::find(names.begin() + required, names.end(), item.Scalar()) == names.end()) {
        return BadValue(key, allowed, item);
      }
      out.push_back(item.Scalar());
    }
    (c->*section).*field = std::move(out);
    return absl::OkStatus();
  };
}

Setter RedLabels(bool server, std::vector<std::string> Config::Red::*field) {
  return LabelList(&Config::red, field, RedLabelNames(server), 1);
}
Setter TcpLabels(std::vector<std::string> Config::Network::*field) {
  return LabelList(&Config::network, field, TcpLabelNames(), kTcpEdgeLabels);
}
Setter ServiceGraphLabels(std::vector<std::string> Config::ServiceGraph::*field) {
  return LabelList(&Config::service_graph, field, ServiceGraphLabelNames(),
                   kServiceGraphEdgeLabels);
}

const std::map<std::string, Setter>& Keys() {
  static const auto* keys = new std::map<std::string, Setter>{
      {"web.listen_address",
       [](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
         if (!n.IsScalar()) return BadValue(key, "must be HOST:PORT", n);
         auto parsed = ParseListenAddress(n.Scalar());
         if (!parsed.ok()) return BadValue(key, std::string(parsed.status().message()), n);
         c->web.listen_address = n.Scalar();
         return absl::OkStatus();
       }},
      {"capture.payload_bytes", U32(&Config::capture, &Config::Capture::payload_bytes, 1, 16384)},
      {"capture.ring_buffer_bytes",
       [](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
         uint32_t v;
         absl::Status s = ReadUint(n, key, 4096, 1u << 30, &v);
         if (!s.ok()) return s;
         if ((v & (v - 1)) != 0) return BadValue(key, "must be a power of two", n);
         c->capture.ring_buffer_bytes = v;
         return absl::OkStatus();
       }},
      {"capture.max_connections",
       U32(&Config::capture, &Config::Capture::max_connections, 1, 16u << 20)},
      {"capture.wakeup_bytes", U32(&Config::capture, &Config::Capture::wakeup_bytes, 1, 1u << 30)},
      {"capture.poll_interval_ms",
       U32(&Config::capture, &Config::Capture::poll_interval_ms, 1, 10000)},
      {"capture.trace_self",
       [](const YAML::Node& n, const std::string& key, Config* c) {
         return ReadBool(n, key, &c->capture.trace_self);
       }},
      {"capture.parse_once",
       [](const YAML::Node& n, const std::string& key, Config* c) {
         return ReadBool(n, key, &c->capture.parse_once);
       }},
      {"conntrack.max_connections",
       U32(&Config::conntrack, &Config::Conntrack::max_connections, 1, 16u << 20)},
      {"conntrack.idle_timeout_seconds",
       U32(&Config::conntrack, &Config::Conntrack::idle_timeout_seconds, 1, 86400)},
      {"conntrack.max_buffer_bytes",
       U32(&Config::conntrack, &Config::Conntrack::max_buffer_bytes, 1024, 64u << 20)},
      {"red.buckets", Buckets(&Config::red, &Config::Red::buckets)},
      {"red.max_series", U32(&Config::red, &Config::Red::max_series, 1, 1u << 20)},
      {"red.series_ttl_seconds", U32(&Config::red, &Config::Red::series_ttl_seconds, 1, 86400 * 7)},
      {"red.route_patterns",
       [](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
         if (!n.IsSequence()) return BadValue(key, "must be a list of route patterns", n);
         std::vector<std::string> patterns;
         for (const auto& item : n) {
           if (!item.IsScalar()) return BadValue(key, "every entry must be a route pattern", item);
           patterns.push_back(item.Scalar());
         }
         auto checked = RoutePatterns::Create(patterns, key);
         if (!checked.ok()) return checked.status();
         c->red.route_patterns = std::move(patterns);
         return absl::OkStatus();
       }},
      {"red.server_drop_labels", RedLabels(true, &Config::Red::server_drop_labels)},
      {"red.client_drop_labels", RedLabels(false, &Config::Red::client_drop_labels)},
      {"red.server_keep_labels", RedLabels(true, &Config::Red::server_keep_labels)},
      {"red.client_keep_labels", RedLabels(false, &Config::Red::client_keep_labels)},
      {"kubernetes.enabled", Auto(&Config::kubernetes, &Config::Kubernetes::enabled)},
      {"kubernetes.kubeconfig",
       Text(&Config::kubernetes, &Config::Kubernetes::kubeconfig, "must be a file path")},
      {"kubernetes.node_name",
       Text(&Config::kubernetes, &Config::Kubernetes::node_name, "must be a node name")},
      {"kubernetes.cluster_wide", Bool(&Config::kubernetes, &Config::Kubernetes::cluster_wide)},
      {"kubernetes.watch_services",
       Bool(&Config::kubernetes, &Config::Kubernetes::watch_services)},
      {"kubernetes.watch_owners", Bool(&Config::kubernetes, &Config::Kubernetes::watch_owners)},
      {"kubernetes.max_objects_per_kind",
       U32(&Config::kubernetes, &Config::Kubernetes::max_objects_per_kind, 1, 10000000)},
      {"kubernetes.list_page_size",
       U32(&Config::kubernetes, &Config::Kubernetes::list_page_size, 1, 10000)},
      {"kubernetes.watch_timeout_seconds",
       U32(&Config::kubernetes, &Config::Kubernetes::watch_timeout_seconds, 1, 3600)},
      {"kubernetes.backoff_initial_ms",
       U32(&Config::kubernetes, &Config::Kubernetes::backoff_initial_ms, 1, 600000)},
      {"kubernetes.backoff_max_ms",
       U32(&Config::kubernetes, &Config::Kubernetes::backoff_max_ms, 1, 3600000)},
      {"identity.edge_level",
       [](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
         if (!n.IsScalar() || !ParseEdgeLevel(n.Scalar()).ok()) {
           return BadValue(key, "must be pod, workload or service", n);
         }
         c->identity.edge_level = n.Scalar();
         return absl::OkStatus();
       }},
      {"identity.external_name",
       [](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
         if (!n.IsScalar() || n.Scalar().empty() || n.Scalar().size() > 128) {
           return BadValue(key, "must be a name of 1 to 128 characters", n);
         }
         c->identity.external_name = n.Scalar();
         return absl::OkStatus();
       }},
      {"identity.cidr_names",
       [](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
         if (!n.IsMap()) return BadValue(key, "must be a map of CIDR: name", n);
         std::vector<std::pair<std::string, std::string>> out;
         for (const auto& kv : n) {
           if (!kv.first.IsScalar() || !kv.second.IsScalar() || kv.second.Scalar().empty()) {
             return BadValue(key, "every entry must be CIDR: name", kv.second);
           }
           out.emplace_back(kv.first.Scalar(), kv.second.Scalar());
         }
         if (out.size() > 10000) return BadValue(key, "at most 10000 ranges", n);
         auto checked = CidrNames::Create(out);
         if (!checked.ok()) {
           return absl::InvalidArgumentError(
               absl::StrCat(key, ": ", checked.status().message()));
         }
         c->identity.cidr_names = std::move(out);
         return absl::OkStatus();
       }},
      {"identity.pod_name_label", Bool(&Config::identity, &Config::Identity::pod_name_label)},
      {"identity.cgroup_root",
       Text(&Config::identity, &Config::Identity::cgroup_root, "must be a directory path")},
      {"identity.cgroup_cache_entries",
       U32(&Config::identity, &Config::Identity::cgroup_cache_entries, 1, 1u << 22)},
      {"identity.cache_entries",
       U32(&Config::identity, &Config::Identity::cache_entries, 1, 1u << 22)},
      {"identity.dns_cache_entries",
       U32(&Config::identity, &Config::Identity::dns_cache_entries, 1, 1u << 22)},
      {"identity.dns_capture", Auto(&Config::identity, &Config::Identity::dns_capture)},
      {"network.enabled",
       [](const YAML::Node& n, const std::string& key, Config* c) {
         return ReadBool(n, key, &c->network.enabled);
       }},
      {"network.max_connections",
       U32(&Config::network, &Config::Network::max_connections, 1, 16u << 20)},
      {"network.ring_buffer_bytes",
       [](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
         uint32_t v;
         absl::Status s = ReadUint(n, key, 4096, 1u << 30, &v);
         if (!s.ok()) return s;
         if ((v & (v - 1)) != 0) return BadValue(key, "must be a power of two", n);
         c->network.ring_buffer_bytes = v;
         return absl::OkStatus();
       }},
      {"network.connect_buckets", Buckets(&Config::network, &Config::Network::connect_buckets)},
      {"network.rtt_buckets", Buckets(&Config::network, &Config::Network::rtt_buckets)},
      {"network.max_series", U32(&Config::network, &Config::Network::max_series, 1, 1u << 20)},
      {"network.series_ttl_seconds",
       U32(&Config::network, &Config::Network::series_ttl_seconds, 1, 86400 * 7)},
      {"network.drop_labels", TcpLabels(&Config::Network::drop_labels)},
      {"network.keep_labels", TcpLabels(&Config::Network::keep_labels)},
      {"service_graph.max_series",
       U32(&Config::service_graph, &Config::ServiceGraph::max_series, 1, 1u << 20)},
      {"service_graph.series_ttl_seconds",
       U32(&Config::service_graph, &Config::ServiceGraph::series_ttl_seconds, 1, 86400 * 7)},
      {"service_graph.drop_labels", ServiceGraphLabels(&Config::ServiceGraph::drop_labels)},
      {"service_graph.keep_labels", ServiceGraphLabels(&Config::ServiceGraph::keep_labels)},
      {"debug.listen_address",
       [](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
         if (!n.IsScalar()) return BadValue(key, "must be HOST:PORT", n);
         auto parsed = ParseListenAddress(n.Scalar());
         if (!parsed.ok()) return BadValue(key, std::string(parsed.status().message()), n);
         c->debug.listen_address = n.Scalar();
         return absl::OkStatus();
       }},
      {"debug.bearer_token_file",
       [](const YAML::Node& n, const std::string& key, Config* c) -> absl::Status {
         if (!n.IsScalar()) return BadValue(key, "must be a file path", n);
         c->debug.bearer_token_file = n.Scalar();
         return absl::OkStatus();
       }},
      {"traces.enabled",
       [](const YAML::Node& n, const std::string& key, Config* c) {
         return ReadBool(n, key, &c->traces.enabled);
       }},
      {"traces.assembly_wait_ms",
       U32(&Config::traces, &Config::Traces::assembly_wait_ms, 1, 60000)},
      {"traces.max_pending_spans",
       U32(&Config::traces, &Config::Traces::max_pending_spans, 1, 1u << 20)},
      {"traces.payload_snippet_bytes",
       U32(&Config::traces, &Config::Traces::payload_snippet_bytes, 0, 16384)},
      {"traces.sample_ratio",
       [](const YAML::Node& n, const std::string& key, Config* c) {
         return ReadDouble(n, key, 0, 1, &c->traces.sample_ratio);
       }},
      {"traces.slow_threshold_ms",
       U32(&Config::traces, &Config::Traces::slow_threshold_ms, 0, 3600000)},
      {"traces.keep_slower_than_route_p99",
       [](const YAML::Node& n, const std::string& key, Config* c) {
         return ReadBool(n, key, &c->traces.keep_slower_than_route_p99);
       }},
      {"traces.max_traces_per_second",
       U32(&Config::traces, &Config::Traces::max_traces_per_second, 1, 1000000)},
      {"traces.max_spans_per_second",
       U32(&Config::traces, &Config::Traces::max_spans_per_second, 0, 100000000)},
      {"traces.ring_max_bytes",
       U32(&Config::traces, &Config::Traces::ring_max_bytes, 4096, 1u << 30)},
      {"traces.ring_max_traces",
       U32(&Config::traces, &Config::Traces::ring_max_traces, 1, 1u << 20)},
      {"traces.redact_headers", Names(&Config::traces, &Config::Traces::redact_headers)},
      {"traces.redact_query_params",
       Names(&Config::traces, &Config::Traces::redact_query_params)},
  };
  return *keys;
}

absl::Status Walk(const YAML::Node& node, const std::string& prefix, Config* c) {
  if (!node.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix.empty() ? "config" : prefix, ": must be a map of keys (line ",
                     node.Mark().line + 1, ")"));
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat(prefix.empty() ? "config" : prefix,
                                                     ": keys must be plain names (line ",
                                                     kv.first.Mark().line + 1, ")"));
    }
    const std::string& name = kv.first.Scalar();
    const std::string key = prefix.empty() ? name : absl::StrCat(prefix, ".", name);
    auto it = Keys().find(key);
    if (it != Keys().end()) {
      absl::Status s = it->second(kv.second, key, c);
      if (!s.ok()) return s;
      continue;
    }
    bool is_section = false;
    for (const auto& [k, unused] : Keys()) {
      if (k.rfind(key + ".", 0) == 0) is_section = true;
    }
    if (!is_section) {
      return absl::InvalidArgumentError(absl::StrCat("unknown key '", key, "' (line ",
                                                     kv.first.Mark().line + 1, ")"));
    }
    if (kv.second.IsNull()) continue;
    absl::Status s = Walk(kv.second, key, c);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> Config::FromYaml(const std::string& yaml_text) {
  Config c;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (root.IsNull()) return c;  // empty file: defaults
    absl::Status s = Walk(root, "", &c);
    if (!s.ok()) return s;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed YAML at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  }
  if (c.capture.wakeup_bytes >= c.capture.ring_buffer_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "capture.wakeup_bytes: must be smaller than capture.ring_buffer_bytes (",
        c.capture.ring_buffer_bytes, "), got ", c.capture.wakeup_bytes));
  }
  return c;
}

absl::StatusOr<Config> Config::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read config file ", path, ": ",
                                            std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = FromYaml(ss.str());
  if (!c.ok()) {
    return absl::Status(c.status().code(), absl::StrCat(path, ": ", c.status().message()));
  }
  return c;
}

}  // namespace redmap
