#include "exporter/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "exporter/exporter.h"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using ::redmap::testing::IsOk;
using ::redmap::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ConfigTest, EmptyIsDefaults) {
  auto c = Config::FromYaml("");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->web.listen_address, "0.0.0.0:9435");
  EXPECT_EQ(c->capture.payload_bytes, 1024u);
  EXPECT_EQ(c->red.buckets.front(), 0.00005);
  EXPECT_EQ(c->red.buckets.back(), 10);
}

TEST(ConfigTest, ShippedDefaultFileMatchesBuiltInDefaults) {
  auto file = Config::FromFile(std::string(REDMAP_SOURCE_DIR) + "/config/redmap.yaml");
  ASSERT_THAT(file, IsOk());
  Config d;
  EXPECT_EQ(file->web.listen_address, d.web.listen_address);
  EXPECT_EQ(file->capture.payload_bytes, d.capture.payload_bytes);
  EXPECT_EQ(file->capture.ring_buffer_bytes, d.capture.ring_buffer_bytes);
  EXPECT_EQ(file->capture.max_connections, d.capture.max_connections);
  EXPECT_EQ(file->capture.wakeup_bytes, d.capture.wakeup_bytes);
  EXPECT_EQ(file->capture.poll_interval_ms, d.capture.poll_interval_ms);
  EXPECT_EQ(file->capture.trace_self, d.capture.trace_self);
  EXPECT_EQ(file->conntrack.max_connections, d.conntrack.max_connections);
  EXPECT_EQ(file->conntrack.idle_timeout_seconds, d.conntrack.idle_timeout_seconds);
  EXPECT_EQ(file->conntrack.max_buffer_bytes, d.conntrack.max_buffer_bytes);
  EXPECT_EQ(file->red.buckets, d.red.buckets);
  EXPECT_EQ(file->red.max_series, d.red.max_series);
  EXPECT_EQ(file->red.series_ttl_seconds, d.red.series_ttl_seconds);
  EXPECT_EQ(file->network.enabled, d.network.enabled);
  EXPECT_EQ(file->network.max_connections, d.network.max_connections);
  EXPECT_EQ(file->network.ring_buffer_bytes, d.network.ring_buffer_bytes);
  EXPECT_EQ(file->network.connect_buckets, d.network.connect_buckets);
  EXPECT_EQ(file->network.rtt_buckets, d.network.rtt_buckets);
  EXPECT_EQ(file->network.max_series, d.network.max_series);
  EXPECT_EQ(file->network.series_ttl_seconds, d.network.series_ttl_seconds);
  EXPECT_EQ(file->service_graph.max_series, d.service_graph.max_series);
  EXPECT_EQ(file->service_graph.series_ttl_seconds, d.service_graph.series_ttl_seconds);
  EXPECT_EQ(file->debug.listen_address, d.debug.listen_address);
  EXPECT_EQ(file->debug.bearer_token_file, d.debug.bearer_token_file);
  EXPECT_EQ(file->traces.enabled, d.traces.enabled);
  EXPECT_EQ(file->traces.assembly_wait_ms, d.traces.assembly_wait_ms);
  EXPECT_EQ(file->traces.max_pending_spans, d.traces.max_pending_spans);
  EXPECT_EQ(file->traces.payload_snippet_bytes, d.traces.payload_snippet_bytes);
  EXPECT_EQ(file->traces.sample_ratio, d.traces.sample_ratio);
  EXPECT_EQ(file->traces.slow_threshold_ms, d.traces.slow_threshold_ms);
  EXPECT_EQ(file->traces.keep_slower_than_route_p99, d.traces.keep_slower_than_route_p99);
  EXPECT_EQ(file->traces.max_traces_per_second, d.traces.max_traces_per_second);
  EXPECT_EQ(file->traces.max_spans_per_second, d.traces.max_spans_per_second);
  EXPECT_EQ(file->traces.ring_max_bytes, d.traces.ring_max_bytes);
  EXPECT_EQ(file->traces.ring_max_traces, d.traces.ring_max_traces);
  EXPECT_EQ(file->traces.redact_headers, d.traces.redact_headers);
  EXPECT_EQ(file->traces.redact_query_params, d.traces.redact_query_params);
  EXPECT_EQ(file->red.route_patterns, d.red.route_patterns);
  EXPECT_EQ(file->red.server_drop_labels, d.red.server_drop_labels);
  EXPECT_EQ(file->red.client_drop_labels, d.red.client_drop_labels);
  EXPECT_EQ(file->red.server_keep_labels, d.red.server_keep_labels);
  EXPECT_EQ(file->red.client_keep_labels, d.red.client_keep_labels);
  EXPECT_EQ(file->network.drop_labels, d.network.drop_labels);
  EXPECT_EQ(file->network.keep_labels, d.network.keep_labels);
  EXPECT_EQ(file->service_graph.drop_labels, d.service_graph.drop_labels);
  EXPECT_EQ(file->service_graph.keep_labels, d.service_graph.keep_labels);
  EXPECT_EQ(file->kubernetes.enabled, d.kubernetes.enabled);
  EXPECT_EQ(file->kubernetes.kubeconfig, d.kubernetes.kubeconfig);
  EXPECT_EQ(file->kubernetes.node_name, d.kubernetes.node_name);
  EXPECT_EQ(file->kubernetes.cluster_wide, d.kubernetes.cluster_wide);
  EXPECT_EQ(file->kubernetes.watch_services, d.kubernetes.watch_services);
  EXPECT_EQ(file->kubernetes.watch_owners, d.kubernetes.watch_owners);
  EXPECT_EQ(file->kubernetes.max_objects_per_kind, d.kubernetes.max_objects_per_kind);
  EXPECT_EQ(file->kubernetes.list_page_size, d.kubernetes.list_page_size);
  EXPECT_EQ(file->kubernetes.watch_timeout_seconds, d.kubernetes.watch_timeout_seconds);
  EXPECT_EQ(file->kubernetes.backoff_initial_ms, d.kubernetes.backoff_initial_ms);
  EXPECT_EQ(file->kubernetes.backoff_max_ms, d.kubernetes.backoff_max_ms);
  EXPECT_EQ(file->identity.edge_level, d.identity.edge_level);
  EXPECT_EQ(file->identity.external_name, d.identity.external_name);
  EXPECT_EQ(file->identity.cidr_names, d.identity.cidr_names);
  EXPECT_EQ(file->identity.pod_name_label, d.identity.pod_name_label);
  EXPECT_EQ(file->identity.cgroup_root, d.identity.cgroup_root);
  EXPECT_EQ(file->identity.cgroup_cache_entries, d.identity.cgroup_cache_entries);
  EXPECT_EQ(file->identity.cache_entries, d.identity.cache_entries);
  EXPECT_EQ(file->identity.dns_cache_entries, d.identity.dns_cache_entries);
}

TEST(ConfigTest, KubernetesIdentityAndCardinalityKeys) {
  auto c = Config::FromYaml(R"(
kubernetes:
  enabled: "true"
  kubeconfig: /etc/redmap/kubeconfig
  node_name: node-7
  cluster_wide: false
  max_objects_per_kind: 5000
identity:
  edge_level: service
  external_name: internet
  cidr_names: {"10.20.0.0/16": corp-vpn, "192.0.2.0/24": lab}
  pod_name_label: true
  dns_capture: false
red:
  route_patterns: ["/api/users/{id}", "/static/**"]
  server_drop_labels: [k8s_owner_kind, http_response_status_code]
  client_drop_labels: [server_port]
  server_keep_labels: [http_route, k8s_namespace_name]
)");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->kubernetes.enabled, Config::Kubernetes::Mode::kOn);
  EXPECT_EQ(c->kubernetes.kubeconfig, "/etc/redmap/kubeconfig");
  EXPECT_EQ(c->kubernetes.node_name, "node-7");
  EXPECT_FALSE(c->kubernetes.cluster_wide);
  EXPECT_EQ(c->kubernetes.max_objects_per_kind, 5000u);
  EXPECT_EQ(c->identity.edge_level, "service");
  EXPECT_EQ(c->identity.external_name, "internet");
  ASSERT_EQ(c->identity.cidr_names.size(), 2u);
  EXPECT_TRUE(c->identity.pod_name_label);
  EXPECT_EQ(c->identity.dns_capture, Config::AutoMode::kOff);
  EXPECT_EQ(Config().identity.dns_capture, Config::AutoMode::kAuto);
  EXPECT_EQ(c->red.route_patterns.size(), 2u);
  EXPECT_EQ(c->red.server_drop_labels.size(), 2u);
  EXPECT_EQ(c->red.client_drop_labels, std::vector<std::string>{"server_port"});
  // Allow list: everything else but service_name is dropped.
  const std::vector<std::string> dropped =
      DroppedLabels(true, c->red.server_drop_labels, c->red.server_keep_labels);
  for (const char* kept : {"service_name", "http_route", "k8s_namespace_name"}) {
    EXPECT_EQ(std::count(dropped.begin(), dropped.end(), kept), 0) << kept;
  }
  for (const char* gone : {"http_request_method", "k8s_node_name", "k8s_owner_kind"}) {
    EXPECT_EQ(std::count(dropped.begin(), dropped.end(), gone), 1) << gone;
  }
  EXPECT_EQ(DroppedLabels(false, {"server_port"}, {}), std::vector<std::string>{"server_port"});

  struct Case {
    const char* yaml;
    const char* message;
  } bad[] = {
      {"kubernetes:\n  enabled: maybe\n", "kubernetes.enabled: must be auto, true or false"},
      {"identity:\n  edge_level: node\n", "identity.edge_level: must be pod, workload or service"},
      {"identity:\n  dns_capture: on\n", "identity.dns_capture: must be auto, true or false"},
      {"identity:\n  cidr_names: {\"10.0.0.0/33\": x}\n", "identity.cidr_names:"},
      {"identity:\n  cidr_names: [a]\n", "identity.cidr_names: must be a map"},
      {"red:\n  route_patterns: [\"api/x\"]\n", "red.route_patterns: pattern \"api/x\""},
      {"red:\n  server_drop_labels: [service_name]\n", "red.server_drop_labels: every entry"},
      {"red:\n  client_drop_labels: [nope]\n", "red.client_drop_labels: every entry"},
      {"red:\n  server_keep_labels: [service_name]\n",
       "(service_name names the series and is always kept)"},
      {"network:\n  drop_labels: [client]\n",
       "network.drop_labels: every entry must be one of server_port, client_service_namespace, "
       "server_service_namespace, k8s_namespace_name, k8s_pod_name, k8s_owner_kind, "
       "k8s_owner_name, k8s_deployment_name, k8s_node_name (side, client, server name the "
       "series and are always kept), got 'client' (line 2)"},
      {"network:\n  keep_labels: [reason]\n", "network.keep_labels: every entry must be one of"},
      {"network:\n  drop_labels: k8s_pod_name\n",
       "network.drop_labels: must be a list of label names"},
      {"service_graph:\n  drop_labels: [server]\n",
       "service_graph.drop_labels: every entry must be one of client_service_namespace, "
       "server_service_namespace, connection_type, k8s_node_name (client, server name the "
       "series and are always kept), got 'server'"},
      {"service_graph:\n  keep_labels: [http_route]\n",
       "service_graph.keep_labels: every entry"},
      {"kubernetes:\n  list_page_size: 0\n", "kubernetes.list_page_size: must be between"},
      {"kubernetes:\n  colour: blue\n", "unknown key 'kubernetes.colour'"},
  };
  for (const Case& b : bad) {
    auto r = Config::FromYaml(b.yaml);
    ASSERT_FALSE(r.ok()) << b.yaml;
    EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr(b.message)) << b.yaml;
  }
}

TEST(ConfigTest, NetworkAndServiceGraphLabelLists) {
  auto c = Config::FromYaml(R"(
network:
  drop_labels: [k8s_owner_kind, server_port]
  keep_labels: [client_service_namespace, server_service_namespace, k8s_owner_kind, server_port]
service_graph:
  drop_labels: [connection_type]
)");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->network.drop_labels, (std::vector<std::string>{"k8s_owner_kind", "server_port"}));
  EXPECT_EQ(c->service_graph.drop_labels, std::vector<std::string>{"connection_type"});
  const PipelineOptions o = PipelineOptionsFromConfig(*c);
  // The allow list keeps the namespaces; the deny list still drops two of
  // the kept ones; the edge itself (side, client, server) always stays.
  std::vector<std::string> dropped = o.network.drop_labels;
  std::sort(dropped.begin(), dropped.end());
  EXPECT_EQ(dropped, (std::vector<std::string>{"k8s_deployment_name", "k8s_namespace_name",
                                               "k8s_node_name", "k8s_owner_kind",
                                               "k8s_owner_name", "k8s_pod_name",
                                               "server_port"}));
  EXPECT_EQ(o.service_graph.drop_labels, std::vector<std::string>{"connection_type"});
  // Without lists nothing is dropped.
  auto d = Config::FromYaml("");
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(PipelineOptionsFromConfig(*d).network.drop_labels.empty());
  EXPECT_TRUE(PipelineOptionsFromConfig(*d).service_graph.drop_labels.empty());
  // A keep list of the service graph: every label but client, server and
  // the kept ones goes.
  auto k = Config::FromYaml("service_graph:\n  keep_labels: [k8s_node_name]\n");
  ASSERT_THAT(k, IsOk());
  dropped = PipelineOptionsFromConfig(*k).service_graph.drop_labels;
  std::sort(dropped.begin(), dropped.end());
  EXPECT_EQ(dropped, (std::vector<std::string>{"client_service_namespace", "connection_type",
                                               "server_service_namespace"}));
}

TEST(ConfigTest, TraceKeys) {
  auto c = Config::FromYaml(R"(
debug:
  listen_address: "0.0.0.0:7000"
  bearer_token_file: /etc/redmap/token
traces:
  enabled: false
  assembly_wait_ms: 250
  max_pending_spans: 100
  payload_snippet_bytes: 0
  sample_ratio: 0.5
  slow_threshold_ms: 0
  keep_slower_than_route_p99: false
  max_traces_per_second: 7
  max_spans_per_second: 0
  ring_max_bytes: 65536
  ring_max_traces: 10
  redact_headers: [X-Secret]
  redact_query_params: []
)");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->debug.listen_address, "0.0.0.0:7000");
  EXPECT_EQ(c->debug.bearer_token_file, "/etc/redmap/token");
  EXPECT_FALSE(c->traces.enabled);
  EXPECT_EQ(c->traces.assembly_wait_ms, 250u);
  EXPECT_EQ(c->traces.max_pending_spans, 100u);
  EXPECT_EQ(c->traces.payload_snippet_bytes, 0u);
  EXPECT_EQ(c->traces.sample_ratio, 0.5);
  EXPECT_EQ(c->traces.slow_threshold_ms, 0u);
  EXPECT_FALSE(c->traces.keep_slower_than_route_p99);
  EXPECT_EQ(c->traces.max_traces_per_second, 7u);
  EXPECT_EQ(c->traces.max_spans_per_second, 0u);
  EXPECT_EQ(c->traces.ring_max_bytes, 65536u);
  EXPECT_EQ(c->traces.ring_max_traces, 10u);
  EXPECT_EQ(c->traces.redact_headers, std::vector<std::string>{"X-Secret"});
  EXPECT_TRUE(c->traces.redact_query_params.empty());

  struct Case {
    const char* yaml;
    const char* message;
  } bad[] = {
      {"traces:\n  sample_ratio: 1.5\n", "traces.sample_ratio: must be between 0 and 1"},
      {"traces:\n  sample_ratio: some\n", "traces.sample_ratio: must be a number"},
      {"traces:\n  ring_max_bytes: 100\n", "traces.ring_max_bytes: must be between 4096"},
      {"traces:\n  ring_max_traces: 0\n", "traces.ring_max_traces: must be between 1"},
      {"traces:\n  max_pending_spans: 0\n", "traces.max_pending_spans: must be between 1"},
      {"traces:\n  assembly_wait_ms: 0\n", "traces.assembly_wait_ms: must be between 1"},
      {"traces:\n  max_traces_per_second: 0\n", "traces.max_traces_per_second: must be between 1"},
      {"traces:\n  max_spans_per_second: -1\n", "traces.max_spans_per_second: must be an integer between 0"},
      {"traces:\n  payload_snippet_bytes: 20000\n", "traces.payload_snippet_bytes: must be between"},
      {"traces:\n  enabled: yes\n", "traces.enabled: must be true or false"},
      {"traces:\n  redact_headers: X-A\n", "traces.redact_headers: must be a list of names"},
      {"traces:\n  redact_headers: [\"a b\"]\n", "traces.redact_headers: every entry must be"},
      {"traces:\n  redact_query_params: [[x]]\n", "traces.redact_query_params: every entry"},
      {"traces:\n  sample_rate: 1\n", "unknown key 'traces.sample_rate'"},
      {"debug:\n  listen_address: nope\n", "debug.listen_address: must be HOST:PORT"},
      {"debug:\n  bearer_token_file: [a]\n", "debug.bearer_token_file: must be a file path"},
      {"debug:\n  token: x\n", "unknown key 'debug.token'"},
  };
  for (const Case& b : bad) {
    EXPECT_THAT(Config::FromYaml(b.yaml),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(b.message)))
        << b.yaml;
  }
}

TEST(ConfigTest, EveryKeyOverridable) {
  auto c = Config::FromYaml(R"(
web:
  listen_address: "[::1]:9999"
capture:
  payload_bytes: 4096
  ring_buffer_bytes: 16777216
  max_connections: 1000
  wakeup_bytes: 1024
  poll_interval_ms: 10
  trace_self: true
conntrack:
  max_connections: 50
  idle_timeout_seconds: 30
  max_buffer_bytes: 2048
red:
  buckets: [0.001, 0.5, 3]
  max_series: 7
  series_ttl_seconds: 60
network:
  enabled: false
  max_connections: 100
  ring_buffer_bytes: 8192
  connect_buckets: [0.01, 1]
  rtt_buckets: [0.002]
  max_series: 9
  series_ttl_seconds: 61
service_graph:
  max_series: 11
  series_ttl_seconds: 62
)");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->web.listen_address, "[::1]:9999");
  EXPECT_EQ(c->capture.payload_bytes, 4096u);
  EXPECT_EQ(c->capture.ring_buffer_bytes, 16777216u);
  EXPECT_EQ(c->capture.max_connections, 1000u);
  EXPECT_EQ(c->capture.wakeup_bytes, 1024u);
  EXPECT_EQ(c->capture.poll_interval_ms, 10u);
  EXPECT_TRUE(c->capture.trace_self);
  EXPECT_EQ(c->conntrack.max_connections, 50u);
  EXPECT_EQ(c->conntrack.idle_timeout_seconds, 30u);
  EXPECT_EQ(c->conntrack.max_buffer_bytes, 2048u);
  EXPECT_EQ(c->red.buckets, (std::vector<double>{0.001, 0.5, 3}));
  EXPECT_EQ(c->red.max_series, 7u);
  EXPECT_EQ(c->red.series_ttl_seconds, 60u);
  EXPECT_FALSE(c->network.enabled);
  EXPECT_EQ(c->network.max_connections, 100u);
  EXPECT_EQ(c->network.ring_buffer_bytes, 8192u);
  EXPECT_EQ(c->network.connect_buckets, (std::vector<double>{0.01, 1}));
  EXPECT_EQ(c->network.rtt_buckets, (std::vector<double>{0.002}));
  EXPECT_EQ(c->network.max_series, 9u);
  EXPECT_EQ(c->network.series_ttl_seconds, 61u);
  EXPECT_EQ(c->service_graph.max_series, 11u);
  EXPECT_EQ(c->service_graph.series_ttl_seconds, 62u);
}

TEST(ConfigTest, ErrorsNameTheKey) {
  struct Case {
    const char* yaml;
    const char* message;
  } cases[] = {
      {"capture:\n  payload_byts: 5\n", "unknown key 'capture.payload_byts'"},
      {"bogus: 1\n", "unknown key 'bogus'"},
      {"capture:\n  payload_bytes: 0\n", "capture.payload_bytes: must be between 1 and 16384"},
      {"capture:\n  payload_bytes: 20000\n", "capture.payload_bytes: must be between 1 and 16384"},
      {"capture:\n  payload_bytes: lots\n", "capture.payload_bytes: must be an integer"},
      {"capture:\n  ring_buffer_bytes: 10000\n",
       "capture.ring_buffer_bytes: must be a power of two"},
      {"capture:\n  wakeup_bytes: 9000000\n", "capture.wakeup_bytes: must be smaller"},
      {"capture:\n  trace_self: yes please\n", "capture.trace_self: must be true or false"},
      {"red:\n  buckets: [0.1, 0.05]\n", "red.buckets: buckets must be strictly increasing"},
      {"red:\n  buckets: []\n", "red.buckets: must be a non-empty list"},
      {"red:\n  buckets: [0, 1]\n", "red.buckets: every bucket must be a positive finite number"},
      {"red:\n  buckets: [.inf]\n", "red.buckets: every bucket must be a positive finite number"},
      {"web:\n  listen_address: nope\n", "web.listen_address: must be HOST:PORT"},
      {"web:\n  listen_address: 1.2.3.4:99999\n", "web.listen_address: port '99999'"},
      {"capture: 5\n", "capture: must be a map"},
      {"network:\n  enabled: 1\n", "network.enabled: must be true or false"},
      {"network:\n  ring_buffer_bytes: 5000\n", "network.ring_buffer_bytes: must be a power of two"},
      {"network:\n  rtt_buckets: [1, 1]\n", "network.rtt_buckets: buckets must be strictly"},
      {"network:\n  connect_buckets: x\n", "network.connect_buckets: must be a non-empty list"},
      {"network:\n  max_connections: 0\n", "network.max_connections: must be between 1"},
      {"network:\n  rtt_bucket: [1]\n", "unknown key 'network.rtt_bucket'"},
      {"service_graph:\n  max_series: 0\n", "service_graph.max_series: must be between 1"},
      {"capture:\n  payload_bytes: [1\n", "malformed YAML at line"},
      {"web:\n  listen_adress: x\n", "unknown key 'web.listen_adress'"},
      {"red:\n  buckets: [1]\n  max_serie: 3\n", "unknown key 'red.max_serie' (line 3)"},
      {"conntrack:\n  max_connections: 5\n  idle: 3\n", "unknown key 'conntrack.idle'"},
      {"capture:\n  payload_bytes: 0\n", "must be between 1 and 16384, got '0' (line 2)"},
      {"capture:\n  payload_bytes: -1\n", "capture.payload_bytes: must be an integer"},
      {"capture:\n  payload_bytes: 1.5\n", "capture.payload_bytes: must be an integer"},
      {"capture:\n  payload_bytes: 99999999999999999999\n", "capture.payload_bytes"},
      {"capture:\n  payload_bytes:\n", "capture.payload_bytes: must be a number, got nothing"},
      {"capture:\n  payload_bytes: [1]\n", "capture.payload_bytes: must be a number, got a list"},
      {"capture:\n  ring_buffer_bytes: 2048\n", "capture.ring_buffer_bytes: must be between 4096"},
      {"capture:\n  ring_buffer_bytes: 2147483648\n", "capture.ring_buffer_bytes: must be between"},
      {"capture:\n  max_connections: 0\n", "capture.max_connections: must be between 1 and"},
      {"capture:\n  max_connections: 16777217\n", "capture.max_connections: must be between"},
      {"capture:\n  wakeup_bytes: 0\n", "capture.wakeup_bytes: must be between 1"},
      {"capture:\n  ring_buffer_bytes: 4096\n  wakeup_bytes: 4096\n",
       "capture.wakeup_bytes: must be smaller than capture.ring_buffer_bytes (4096), got 4096"},
      {"capture:\n  poll_interval_ms: 0\n",
       "capture.poll_interval_ms: must be between 1 and 10000"},
      {"capture:\n  poll_interval_ms: 10001\n",
       "capture.poll_interval_ms: must be between 1 and 10000"},
      {"capture:\n  trace_self: 1\n", "capture.trace_self: must be true or false"},
      {"conntrack:\n  max_connections: 0\n", "conntrack.max_connections: must be between 1"},
      {"conntrack:\n  idle_timeout_seconds: 0\n",
       "conntrack.idle_timeout_seconds: must be between 1"},
      {"conntrack:\n  max_buffer_bytes: 10\n", "conntrack.max_buffer_bytes: must be between 1024"},
      {"red:\n  buckets: 0.5\n", "red.buckets: must be a non-empty list"},
      {"red:\n  buckets: [0.1, 0.1]\n", "red.buckets: buckets must be strictly increasing"},
      {"red:\n  buckets: [-1]\n", "red.buckets: every bucket must be a positive finite number"},
      {"red:\n  buckets: [.nan]\n", "red.buckets: every bucket must be a positive finite number"},
      {"red:\n  buckets: [fast]\n", "red.buckets: every bucket must be a positive finite number"},
      {"red:\n  buckets: [[1]]\n", "red.buckets: every bucket must be a positive finite number"},
      {"red:\n  max_series: 0\n", "red.max_series: must be between 1"},
      {"red:\n  series_ttl_seconds: 0\n", "red.series_ttl_seconds: must be between 1"},
      {"web:\n  listen_address: [a]\n", "web.listen_address: must be HOST:PORT, got a list"},
      {"web:\n  listen_address: example.com:80\n", "web.listen_address: 'example.com' is not"},
      {"web:\n  listen_address: \"[::1:80\"\n", "web.listen_address: must be HOST:PORT"},
      {"web: []\n", "web: must be a map"},
      {"- a\n- b\n", "config: must be a map"},
      {"just text\n", "config: must be a map"},
      {"? [a, b]\n: 1\n", "config: keys must be plain names"},
      {"capture:\n  payload_bytes: 1\n   bad_indent: 2\n", "malformed YAML at line"},
      {"web: {listen_address: \"1.2.3.4:1\"\n", "malformed YAML at line"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(Config::FromYaml(c.yaml),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.yaml;
  }
}

TEST(ConfigTest, AcceptedForms) {
  struct Case {
    const char* yaml;
    std::function<bool(const Config&)> check;
  } cases[] = {
      {"# only a comment\n", [](const Config& c) { return c.capture.payload_bytes == 1024; }},
      {"capture:\n", [](const Config& c) { return c.capture.payload_bytes == 1024; }},
      {"capture: {}\n", [](const Config& c) { return c.capture.payload_bytes == 1024; }},
      {"capture:\n  payload_bytes: 16384\n",
       [](const Config& c) { return c.capture.payload_bytes == 16384; }},
      {"capture:\n  payload_bytes: 1\n",
       [](const Config& c) { return c.capture.payload_bytes == 1; }},
      {"capture:\n  ring_buffer_bytes: 4096\n  wakeup_bytes: 4095\n",
       [](const Config& c) { return c.capture.ring_buffer_bytes == 4096; }},
      {"capture:\n  ring_buffer_bytes: 1073741824\n",
       [](const Config& c) { return c.capture.ring_buffer_bytes == 1u << 30; }},
      {"web:\n  listen_address: \":9435\"\n",
       [](const Config& c) { return c.web.listen_address == ":9435"; }},
      {"web:\n  listen_address: 127.0.0.1:0\n",
       [](const Config& c) { return c.web.listen_address == "127.0.0.1:0"; }},
      {"red:\n  buckets: [1e-3, 2.5e-1, 10]\n",
       [](const Config& c) {
         return c.red.buckets == std::vector<double>{0.001, 0.25, 10};
       }},
      {"red:\n  buckets:\n    - 0.5\n",
       [](const Config& c) { return c.red.buckets == std::vector<double>{0.5}; }},
      {"capture: {payload_bytes: 10, trace_self: false}\n",
       [](const Config& c) { return c.capture.payload_bytes == 10 && !c.capture.trace_self; }},
  };
  for (const Case& c : cases) {
    auto config = Config::FromYaml(c.yaml);
    ASSERT_THAT(config, IsOk()) << c.yaml;
    EXPECT_TRUE(c.check(*config)) << c.yaml;
  }
}

TEST(ConfigTest, FileErrorsArePrefixedWithThePath) {
  char path[] = "/tmp/redmap-config-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const char text[] = "red:\n  max_series: 0\n";
  ASSERT_EQ(write(fd, text, sizeof(text) - 1), static_cast<ssize_t>(sizeof(text) - 1));
  close(fd);
  EXPECT_THAT(Config::FromFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(std::string(path) + ": red.max_series: must be between 1")));
  unlink(path);
}

TEST(ConfigTest, MissingFileNamesThePath) {
  EXPECT_THAT(Config::FromFile("/nonexistent/redmap.yaml"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/redmap.yaml")));
}

}  // namespace
}  // namespace redmap
