// redmap_exporter's configuration: the YAML file (--config.file) merged with
// command-line flags. Every key, its default and its bound is documented in
// docs/configuration.md and config/redmap.yaml; keep the three in step.
#ifndef REDMAP_EXPORTER_CONFIG_H_
#define REDMAP_EXPORTER_CONFIG_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace redmap {

struct Config {
  // A feature that is on where it can work (auto), always (true: failing at
  // start when it cannot), or never (false).
  enum class AutoMode { kAuto, kOn, kOff };

  struct Web {
    std::string listen_address = "0.0.0.0:9435";  // /metrics, /healthz, /
  } web;

  struct Capture {
    uint32_t payload_bytes = 1024;  // first N bytes of each syscall; <= 16384
    uint32_t ring_buffer_bytes = 8u << 20;  // power of two, >= 4096 pages
    uint32_t max_connections = 65536;       // BPF per-connection LRU map entries
    uint32_t wakeup_bytes = 64u << 10;      // wake userspace when this much is queued
    uint32_t poll_interval_ms = 50;         // otherwise drain at least this often
    bool trace_self = false;                // count redmap's own HTTP traffic
    bool parse_once = true;  // local client/server pairs: copy and parse the server end only
  } capture;

  struct Conntrack {
    uint32_t max_connections = 65536;        // userspace connection table
    uint32_t idle_timeout_seconds = 300;     // forget connections idle this long
    uint32_t max_buffer_bytes = 256u << 10;  // unparsed bytes kept per direction
  } conntrack;

  struct Red {
    std::vector<double> buckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                   0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                   0.5,     1,      2.5,     5,      10};
    uint32_t max_series = 10000;      // per metric family; beyond: overflow series
    uint32_t series_ttl_seconds = 600;  // series not updated this long disappear
    // Routes tried before the heuristics: "/api/users/{id}", "/static/**".
    std::vector<std::string> route_patterns;
    // Labels left out of http_server_* / http_client_* series (deny lists),
    // and, when not empty, the only labels kept besides service_name (allow).
    std::vector<std::string> server_drop_labels;
    std::vector<std::string> client_drop_labels;
    std::vector<std::string> server_keep_labels;
    std::vector<std::string> client_keep_labels;
  } red;

  // TCP network health per edge (redmap_tcp_*).
  struct Network {
    bool enabled = true;  // attach the TCP tracepoints
    uint32_t max_connections = 65536;     // kernel and userspace connection tables
    uint32_t ring_buffer_bytes = 256u << 10;  // tcp_events ring, power of two
    std::vector<double> connect_buckets = {0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                           0.001,    0.0025,  0.005,  0.01,    0.025,
                                           0.05,     0.1,     0.25,   0.5,     1,
                                           2.5,      5,       10,     30,      60};
    std::vector<double> rtt_buckets = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                       0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
                                       0.1,     0.25,     0.5,     1,      2.5};
    uint32_t max_series = 10000;        // edges; beyond: one __overflow__ edge
    uint32_t series_ttl_seconds = 600;  // idle edges without connections disappear
    // Labels left out of redmap_tcp_* edge series (deny list), and, when not
    // empty, the only ones kept besides side, client and server (allow list).
    std::vector<std::string> drop_labels;
    std::vector<std::string> keep_labels;
  } network;

  // Service-map edges (traces_service_graph_*); durations use red.buckets.
  struct ServiceGraph {
    uint32_t max_series = 10000;        // edges; beyond: one __overflow__ edge
    uint32_t series_ttl_seconds = 600;  // edges not updated this long disappear
    // As for network: every label but client and server may be left out.
    std::vector<std::string> drop_labels;
    std::vector<std::string> keep_labels;
  } service_graph;

  // The Kubernetes API (aggregators/metadata/k8s/): list + watch of pods,
  // Services, EndpointSlices, ReplicaSets and Jobs. docs/kubernetes.md.
  struct Kubernetes {
    using Mode = AutoMode;
    // auto: on when `kubeconfig` is set, or in a pod (KUBERNETES_SERVICE_HOST),
    // or $KUBECONFIG is set; on: fail at start without an API; off: never.
    Mode enabled = Mode::kAuto;
    std::string kubeconfig;  // explicit kubeconfig file
    std::string node_name;   // empty: $NODE_NAME, else the host name
    bool cluster_wide = true;    // pods of every node + EndpointSlices
    bool watch_services = true;
    bool watch_owners = true;    // ReplicaSets, Jobs (metadata only)
    uint32_t max_objects_per_kind = 200000;
    uint32_t list_page_size = 500;
    uint32_t watch_timeout_seconds = 300;
    uint32_t backoff_initial_ms = 500;
    uint32_t backoff_max_ms = 30000;
  } kubernetes;

  // How both ends of an edge are named (aggregators/metadata/).
  struct Identity {
    std::string edge_level = "workload";  // pod | workload | service
    std::string external_name = "external";
    std::vector<std::pair<std::string, std::string>> cidr_names;  // CIDR -> name
    bool pod_name_label = false;  // k8s_pod_name at every edge level, not only "pod"
    std::string cgroup_root;      // empty: from /proc/self/mountinfo
    uint32_t cgroup_cache_entries = 16384;
    uint32_t cache_entries = 65536;  // per table (local processes, remote addresses)
    uint32_t dns_cache_entries = 10000;
    // Names for addresses outside the cluster from DNS answers seen on this
    // node (a UDP/53 capture). auto: on with Kubernetes identities when the
    // capture opens; true: fail at start when it cannot.
    AutoMode dns_capture = AutoMode::kAuto;
  } identity;

  // The debug listener: sampled traces (JSON, Jaeger query API, HTML).
  struct Debug {
    // Loopback by default: traces carry (redacted) payloads.
    std::string listen_address = "127.0.0.1:9436";
    std::string bearer_token_file;  // empty: no token required
  } debug;

  // Sampled traces (aggregators/traces/): assembly, tail sampling, the ring.
  struct Traces {
    bool enabled = true;
    uint32_t assembly_wait_ms = 1000;      // a tree is decided this long after its last span
    uint32_t max_pending_spans = 8192;     // spans waiting to be assembled
    uint32_t payload_snippet_bytes = 512;  // redacted head kept per request/response
    double sample_ratio = 0.01;            // uniform share of the unremarkable rest
    uint32_t slow_threshold_ms = 1000;     // keep roots at least this slow (0: off)
    bool keep_slower_than_route_p99 = true;
    uint32_t max_traces_per_second = 100;  // kept traces, all reasons
    // Spans assembled per second; beyond: only 5xx and slow ones (0: no limit).
    uint32_t max_spans_per_second = 10000;
    uint32_t ring_max_bytes = 16u << 20;
    uint32_t ring_max_traces = 1000;
    std::vector<std::string> redact_headers = {"X-Api-Key", "X-Auth-Token"};
    std::vector<std::string> redact_query_params = {"access_token", "api_key", "apikey",
                                                    "password",     "secret",  "token"};
  } traces;

  // Parses YAML text. Unknown keys and bad values are errors naming the key
  // ("capture.payload_bytes: must be between 1 and 16384, got 0").
  static absl::StatusOr<Config> FromYaml(const std::string& yaml_text);
  static absl::StatusOr<Config> FromFile(const std::string& path);
};

}  // namespace redmap

#endif  // REDMAP_EXPORTER_CONFIG_H_
