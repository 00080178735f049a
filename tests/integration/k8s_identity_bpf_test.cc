// Kubernetes identities end to end: the real exporter (real BPF) on a "node"
// with fake pods laid out as kubelet + containerd lay them out (netns + the
// kubepods.slice cgroup, pod_util.h), real servers inside them (nginx in the
// backend pod, curl and redis-cli in the frontend pod, redis-server in a
// StatefulSet's pod and a python HTTP server in a Deployment's pod, both
// appearing through the watch), and the Kubernetes API played by
// tests/fixtures/k8s/fake_apiserver.py (list + chunked watch streams in the
// API's JSON shapes) reached through a kubeconfig. Every figure asserted is
// exact and comes from /metrics: the frontend -> backend edge at workload
// level, failures = 5xx, namespaces, external destinations grouped (and a
// configured CIDR name), no self-edges, the TCP edges' namespaces and
// Kubernetes labels (and one dropped by network.drop_labels), a pod deleted
// through the watch losing its series (service graph, RED and TCP) after the
// TTL, a route explosion capped with overflow, the API's 410 Gone and
// dropped watch survived, and promtool-clean output.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/harness_util.h"
#include "tests/integration/pod_util.h"
#include "tests/testlib/fake_apiserver.h"

namespace redmap {
namespace {

using ::redmap::testing::ExporterProcess;
using ::redmap::testing::Exposition;
using ::redmap::testing::FakeApiServer;
using ::redmap::testing::FakePod;
using ::redmap::testing::HttpGet;
using ::redmap::testing::json;
using ::redmap::testing::Owner;
using ::redmap::testing::OwnerJson;
using ::redmap::testing::PodJson;
using ::redmap::testing::PodNetwork;
using ::redmap::testing::RunShell;
using ::redmap::testing::ServiceJson;
using ::redmap::testing::SliceJson;
using ::redmap::testing::Subprocess;
using ::redmap::testing::TempDir;
using ::redmap::testing::WaitUntil;
using Labels = std::map<std::string, std::string>;

constexpr char kServer[] = "http_server_request_duration_seconds";
constexpr char kEdges[] = "traces_service_graph_request_total";
constexpr char kFailed[] = "traces_service_graph_request_failed_total";
constexpr int kSeriesCap = 60;
constexpr int kTtlSeconds = 4;

constexpr char kBackendUid[] = "5f0c3e64-1d2b-4a51-9f7e-2b7a8c9d0e11";
constexpr char kFrontendUid[] = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
constexpr char kBatchUid[] = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b";

// The sample lines of families whose names start with `prefix`.
std::vector<std::string> Lines(const Exposition& e, const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(e.text(), '\n'))) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  }
  return out;
}

class K8sIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const int n = getpid() % 200 + 20;
    net_ = PodNetwork::Create(absl::StrCat("10.216.", n));
    ASSERT_NE(net_, nullptr);
    backend_ = FakePod::Create(net_.get(), {.name = "kbe", .uid = kBackendUid,
                                            .container_id = std::string(64, 'b'),
                                            .host_octet = 10});
    frontend_ = FakePod::Create(net_.get(), {.name = "kfe", .uid = kFrontendUid,
                                             .container_id = std::string(64, 'f'),
                                             .qos = "besteffort", .host_octet = 20});
    batch_ = FakePod::Create(net_.get(), {.name = "kbt", .uid = kBatchUid,
                                          .container_id = std::string(64, 'c'),
                                          .host_octet = 30});
    ASSERT_NE(backend_, nullptr);
    ASSERT_NE(frontend_, nullptr);
    ASSERT_NE(batch_, nullptr);

    // The API: two Deployments (through their ReplicaSets) in "shop", a
    // CronJob's Job pod in "jobs", the backend's Service and its slice.
    api_ = std::make_unique<FakeApiServer>();
    api_->Put("replicasets", OwnerJson("shop", "frontend-7d9c", Owner("Deployment", "frontend")));
    api_->Put("replicasets", OwnerJson("shop", "backend-5f6b", Owner("Deployment", "backend")));
    api_->Put("jobs", OwnerJson("jobs", "report-28551", Owner("CronJob", "report")));
    api_->Put("pods", PodJson("shop", "frontend-7d9c-x2x4q", kFrontendUid, "node-a",
                              frontend_->ip(), {{"app", "frontend"}},
                              Owner("ReplicaSet", "frontend-7d9c")));
    api_->Put("pods", PodJson("shop", "backend-5f6b-k8p2z", kBackendUid, "node-a",
                              backend_->ip(), {{"app", "backend"}},
                              Owner("ReplicaSet", "backend-5f6b")));
    api_->Put("pods", PodJson("jobs", "report-28551-q7m2n", kBatchUid, "node-a", batch_->ip(),
                              {{"job-name", "report-28551"}}, Owner("Job", "report-28551")));
    api_->Put("services", ServiceJson("shop", "backend", {{"app", "backend"}}, "10.96.40.10"));
    api_->Put("endpointslices", SliceJson("shop", "backend-abcde", "backend", {backend_->ip()}));

    kubeconfig_ = dir_.Write("kubeconfig", testing::KubeconfigFor(api_->port()));
    const std::string config = dir_.Write(
        "redmap.yaml",
        absl::StrCat("kubernetes:\n  enabled: true\n  kubeconfig: ", kubeconfig_,
                     "\n  node_name: node-a\n  backoff_initial_ms: 100\n  backoff_max_ms: 500\n"
                     "identity:\n  edge_level: workload\n  cidr_names:\n"
                     "    198.51.100.0/24: partner-api\n"
                     "red:\n  max_series: ", kSeriesCap, "\n  series_ttl_seconds: ", kTtlSeconds,
                     "\n  route_patterns: [\"/sku/{sku}\"]\n"
                     "  server_drop_labels: [k8s_owner_kind]\n"
                     "  client_keep_labels: [http_route, http_response_status_code, "
                     "k8s_namespace_name]\n"
                     "network:\n  drop_labels: [k8s_owner_kind]\n  series_ttl_seconds: ",
                     kTtlSeconds,
                     "\nservice_graph:\n  series_ttl_seconds: ", kTtlSeconds, "\n"));

    // The backend: nginx in its pod, 200 for everything, 503 under /fail/.
    const std::string ndir = dir_.path() + "/nginx";
    ASSERT_EQ(RunShell("mkdir -p " + ndir).exit_code, 0);
    const std::string conf = dir_.Write(
        "nginx/nginx.conf",
        testing::NginxConfig(ndir, absl::StrCat("server { listen ", backend_->ip(),
                                                ":8080; keepalive_requests 100000;\n"
                                                "  location /fail/ { return 503; }\n"
                                                "  location / { return 200 'ok'; } }")));
    nginx_ = backend_->Start({"nginx", "-c", conf});
    ASSERT_NE(nginx_, nullptr);
    ASSERT_TRUE(WaitUntil([&] { return Curl(frontend_.get(), "/warmup", 1) == 0; }, 10));

    // Outside the cluster: one server on the node; the frontend pod reaches
    // it as 203.0.113.10, 203.0.113.20 (external) and 198.51.100.7
    // (partner-api by CIDR) through DNAT in its netns, so its client side
    // sees those addresses.
    outside_port_ = testing::FreePort();
    ASSERT_TRUE(outside_.Start({"python3", "-m", "http.server", "--bind", net_->gateway(),
                                std::to_string(outside_port_)}));
    ASSERT_TRUE(testing::WaitForPort(net_->gateway(), outside_port_, std::chrono::seconds(10)));
    std::string rules = "table ip rmnat {\n chain out {\n  type nat hook output priority -100;\n";
    for (const char* a : {"203.0.113.10", "203.0.113.20", "198.51.100.7"}) {
      absl::StrAppend(&rules, "  ip daddr ", a, " tcp dport 80 dnat to ", net_->gateway(), ":",
                      outside_port_, "\n");
    }
    rules += " }\n}\n";
    auto nat = frontend_->Run("nft -f " + dir_.Write("nat.nft", rules));
    ASSERT_EQ(nat.exit_code, 0) << nat.output;

    std::string why;
    ASSERT_TRUE(exporter_.Start({"--config.file=" + config}, &why)) << why;
    ASSERT_TRUE(WaitUntil([&] {
      return exporter_.Scrape().Sum("redmap_kubernetes_synced") == 5 &&
             exporter_.Scrape().Sum("redmap_kubernetes_degraded") == 0;
    }, 30)) << exporter_.Scrape().text() << exporter_.Output();
  }

  void TearDown() override {
    std::string why;
    if (exporter_.Running()) EXPECT_TRUE(exporter_.Stop(&why)) << why;
  }

  // `count` GETs of http://backend:8080<path>/[1-count] on one keep-alive
  // connection (curl's URL glob), from `pod`; curl's exit code.
  int Curl(FakePod* pod, const std::string& path, int count) {
    std::string url = absl::StrCat("http://", backend_->ip(), ":8080", path);
    if (count > 1) url += absl::StrCat("/[1-", count, "]");
    return pod->Run(absl::StrCat("curl -s -o /dev/null '", url, "'")).exit_code;
  }

  Exposition ScrapeWhen(const std::function<bool(const Exposition&)>& cond) {
    Exposition e = exporter_.Scrape();
    WaitUntil([&] { return cond(e = exporter_.Scrape()); }, 20);
    return e;
  }

  TempDir dir_;
  std::unique_ptr<PodNetwork> net_;
  std::unique_ptr<FakePod> backend_, frontend_, batch_;
  std::unique_ptr<FakeApiServer> api_;
  std::unique_ptr<Subprocess> nginx_;
  Subprocess outside_;
  int outside_port_ = 0;
  std::string kubeconfig_;
  ExporterProcess exporter_;
};

TEST_F(K8sIdentityTest, EdgesRedAndCardinalityNameWorkloads) {
  const Labels edge = {{"client", "frontend"},
                       {"server", "backend"},
                       {"client_service_namespace", "shop"},
                       {"server_service_namespace", "shop"},
                       {"connection_type", ""},
                       {"k8s_node_name", "node-a"}};
  const Exposition before = exporter_.Scrape();
  const double total0 = before.Sum(kEdges, edge);
  const double failed0 = before.Sum(kFailed, edge);

  // 40 successes and 7 failures, plus a route the config names.
  ASSERT_EQ(Curl(frontend_.get(), "/api/orders", 40), 0);
  ASSERT_EQ(Curl(frontend_.get(), "/fail/x", 7), 0);
  ASSERT_EQ(frontend_->Run(absl::StrCat("curl -s -o /dev/null http://", backend_->ip(),
                                        ":8080/sku/ab-CD-12"))
                .exit_code,
            0);
  Exposition e = ScrapeWhen(
      [&](const Exposition& x) { return x.Sum(kEdges, edge) - total0 >= 48; });
  EXPECT_EQ(e.Sum(kEdges, edge) - total0, 48) << e.text();
  EXPECT_EQ(e.Sum(kFailed, edge) - failed0, 7);
  // Counted once: the server side counts; the client side only times.
  EXPECT_EQ(e.Count(kEdges, {{"client", "frontend"}, {"server", "backend"}}), 1) << e.text();
  EXPECT_GE(e.Sum("traces_service_graph_request_client_seconds_count", edge) , 48);

  // RED: the backend's server histogram carries its identity.
  const Labels red = {{"service_name", "backend"},
                      {"service_namespace", "shop"},
                      {"k8s_namespace_name", "shop"},
                      {"k8s_owner_name", "backend"},
                      {"k8s_deployment_name", "backend"},
                      {"k8s_node_name", "node-a"},
                      {"http_route", "/api/orders/{id}"}};
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"), red), 40) << e.text();
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"),
                  {{"service_name", "backend"}, {"http_route", "/sku/{sku}"}}),
            1);
  // Dropped by config: k8s_owner_kind never appears on the server family.
  EXPECT_EQ(e.text().find("http_server_request_duration_seconds_count{k8s_owner_kind"),
            std::string::npos);
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(e.text(), '\n'))) {
    if (line.rfind(kServer, 0) == 0) {
      EXPECT_EQ(line.find("k8s_owner_kind="), std::string::npos) << line;
    }
  }
  // Allow list on the client family: service_name and the three kept only.
  EXPECT_GE(e.Sum("http_client_request_duration_seconds_count",
                  {{"service_name", "frontend"},
                   {"k8s_namespace_name", "shop"},
                   {"http_route", "/api/orders/{id}"},
                   {"http_response_status_code", "200"}}),
            40);
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(e.text(), '\n'))) {
    if (line.rfind("http_client_request_duration_seconds", 0) == 0) {
      EXPECT_EQ(line.find("server_address="), std::string::npos) << line;
      EXPECT_EQ(line.find("k8s_node_name="), std::string::npos) << line;
    }
  }
  EXPECT_EQ(e.Count(absl::StrCat(kServer, "_count"), {{"k8s_pod_name", "backend-5f6b-k8p2z"}}), 0)
      << "pod names only at edge level pod";

  // A CronJob's pod is named by its CronJob; the Service's ClusterIP is
  // the Service.
  ASSERT_EQ(batch_->Run(absl::StrCat("curl -s -o /dev/null http://", backend_->ip(),
                                     ":8080/report/[1-3]"))
                .exit_code,
            0);
  e = ScrapeWhen([&](const Exposition& x) {
    return x.Sum(kEdges, {{"client", "report"}, {"server", "backend"}}) >= 3;
  });
  EXPECT_EQ(e.Sum(kEdges, {{"client", "report"},
                           {"client_service_namespace", "jobs"},
                           {"server", "backend"},
                           {"server_service_namespace", "shop"}}),
            3)
      << e.text();

  // External destinations: two unknown addresses are one "external" node;
  // a configured range has its name. Nothing observes those servers, so
  // the client side counts them (virtual_node).
  for (const char* a : {"203.0.113.10", "203.0.113.20", "203.0.113.10"}) {
    auto r = frontend_->Run(absl::StrCat("curl -sS -o /dev/null http://", a, "/"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  ASSERT_EQ(frontend_->Run("curl -sS -o /dev/null http://198.51.100.7/").exit_code, 0);
  const Labels ext = {{"client", "frontend"}, {"server", "external"},
                      {"connection_type", "virtual_node"}, {"server_service_namespace", ""}};
  e = ScrapeWhen([&](const Exposition& x) {
    return x.Sum(kEdges, ext) >= 3 && x.Sum(kEdges, {{"server", "partner-api"}}) >= 1;
  });
  EXPECT_EQ(e.Sum(kEdges, ext), 3) << e.text();
  EXPECT_EQ(e.Sum(kEdges, {{"client", "frontend"}, {"server", "partner-api"}}), 1);
  EXPECT_EQ(e.Count(kEdges, {{"server", "203.0.113.10"}}), 0);
  // The TCP edges name the same far ends.
  EXPECT_EQ(e.Sum("redmap_tcp_connect_duration_seconds_count",
                  {{"client", "frontend"}, {"server", "external"}, {"server_port", "80"}}),
            3)
      << e.text();
  EXPECT_EQ(e.Count("redmap_tcp_connect_duration_seconds_count", {{"server", "203.0.113.10"}}), 0);
  // ... with both ends' namespaces and the observing end's Kubernetes
  // labels: three connections frontend -> backend so far (/api/orders,
  // /fail, /sku), one per curl.
  const Labels tcp_client = {{"side", "client"},
                             {"client", "frontend"},
                             {"server", "backend"},
                             {"server_port", "8080"},
                             {"client_service_namespace", "shop"},
                             {"server_service_namespace", "shop"},
                             {"k8s_namespace_name", "shop"},
                             {"k8s_owner_name", "frontend"},
                             {"k8s_deployment_name", "frontend"},
                             {"k8s_node_name", "node-a"}};
  EXPECT_EQ(e.Sum("redmap_tcp_connect_duration_seconds_count", tcp_client), 3) << e.text();
  EXPECT_EQ(e.Count("redmap_tcp_connections", tcp_client), 1);
  // The backend's end of the same edge, labelled as the backend.
  EXPECT_EQ(e.Count("redmap_tcp_connections", {{"side", "server"},
                                               {"client", "frontend"},
                                               {"server", "backend"},
                                               {"client_service_namespace", "shop"},
                                               {"server_service_namespace", "shop"},
                                               {"k8s_namespace_name", "shop"},
                                               {"k8s_owner_name", "backend"},
                                               {"k8s_deployment_name", "backend"},
                                               {"k8s_node_name", "node-a"}}),
            1)
      << e.text();
  EXPECT_EQ(e.Sum("redmap_tcp_connect_duration_seconds_count",
                  {{"client", "report"}, {"client_service_namespace", "jobs"},
                   {"k8s_namespace_name", "jobs"}, {"k8s_owner_name", "report"},
                   {"server", "backend"}, {"server_service_namespace", "shop"}}),
            1);
  for (const std::string& line : Lines(e, "redmap_tcp_")) {
    // Dropped by network.drop_labels; pod names only at edge level pod.
    EXPECT_EQ(line.find("k8s_owner_kind="), std::string::npos) << line;
    EXPECT_EQ(line.find("k8s_pod_name="), std::string::npos) << line;
    // Outside the cluster there is no namespace: the label is absent.
    if (line.find("server=\"external\"") != std::string::npos) {
      EXPECT_EQ(line.find("server_service_namespace="), std::string::npos) << line;
    }
  }
  // Short-lived curls are named by their pod (the cgroup id the TCP event
  // carries), never by their executable.
  EXPECT_EQ(e.Count("redmap_tcp_connect_duration_seconds_count", {{"client", "curl"}}), 0);
  EXPECT_EQ(e.Sum("redmap_tcp_connect_duration_seconds_count",
                  {{"client", "report"}, {"server", "backend"}, {"server_port", "8080"}}),
            1);

  // No self-edges anywhere.
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(e.text(), '\n'))) {
    if (line.rfind("traces_service_graph_", 0) != 0) continue;
    const size_t c = line.find("client=\""), s = line.find("server=\"");
    const size_t cn = line.find("client_service_namespace=\""),
                 sn = line.find("server_service_namespace=\"");
    if (c == std::string::npos || s == std::string::npos) continue;
    auto value = [&](size_t at, size_t skip) {
      const size_t from = at + skip;
      return line.substr(from, line.find('"', from) - from);
    };
    EXPECT_FALSE(value(c, 8) == value(s, 8) && value(cn, 26) == value(sn, 26)) << line;
  }

  // Cardinality: 10,000 distinct ids the heuristics keep ("k123" looks like
  // a name) explode http_route; the family stays at its cap plus one
  // overflow series, and the overflow counter says how much went there.
  ASSERT_EQ(Curl(frontend_.get(), "/api/orders", 2), 0);  // the edge is fresh
  e = ScrapeWhen([&](const Exposition& x) { return x.Sum(kEdges, edge) - total0 >= 50; });
  const double total1 = e.Sum(kEdges, edge);
  ASSERT_EQ(frontend_->Run(absl::StrCat("curl -s -o /dev/null 'http://", backend_->ip(),
                                        ":8080/explode/k[1-10000]'"))
                .exit_code,
            0);
  e = ScrapeWhen([&](const Exposition& x) { return x.Sum(kEdges, edge) - total1 >= 10000; });
  EXPECT_EQ(e.Sum(kEdges, edge) - total1, 10000);
  // At the cap, plus the one overflow series.
  EXPECT_LE(e.Count(absl::StrCat(kServer, "_count")), kSeriesCap + 1);
  EXPECT_EQ(e.Sum("redmap_series", {{"family", kServer}}),
            e.Count(absl::StrCat(kServer, "_count")));
  EXPECT_EQ(e.Count(absl::StrCat(kServer, "_count"), {{"http_route", "__overflow__"}}), 1);
  EXPECT_GT(e.Sum("redmap_series_overflow_total", {{"family", kServer}}), 10000 - kSeriesCap);
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"), {{"http_route", "__overflow__"}}),
            e.Sum("redmap_series_overflow_total", {{"family", kServer}}));

  // Series counts, for the record (docs/metrics.md): what the identity
  // labels cost.
  int tcp_samples = 0, graph_samples = 0, samples = 0;
  size_t tcp_bytes = 0;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(e.text(), '\n'))) {
    if (line.empty() || line[0] == '#') continue;
    ++samples;
    if (line.rfind("redmap_tcp_", 0) == 0) ++tcp_samples, tcp_bytes += line.size() + 1;
    if (line.rfind("traces_service_graph_", 0) == 0) ++graph_samples;
  }
  std::printf("[ series ] tcp edges %d, redmap_tcp_* samples %d (%zu bytes), service-graph "
              "samples %d, all samples %d\n",
              e.Count("redmap_tcp_connections"), tcp_samples, tcp_bytes, graph_samples, samples);

  TempDir lint_dir;
  auto lint = RunShell("promtool check metrics < " + lint_dir.Write("metrics.txt", e.text()));
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
}

// A protocol redmap does not parse still has TCP edges named by identity:
// redis-server in a StatefulSet's pod that appears through the watch, five
// redis-cli connections from the frontend pod.
TEST_F(K8sIdentityTest, RedisStatefulSetPodHasNamedTcpEdges) {
  constexpr char kCacheUid[] = "9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a";
  auto cache = FakePod::Create(net_.get(), {.name = "kca", .uid = kCacheUid,
                                            .container_id = std::string(64, 'd'),
                                            .host_octet = 40});
  ASSERT_NE(cache, nullptr);
  api_->Put("pods", PodJson("shop", "cache-0", kCacheUid, "node-a", cache->ip(),
                            {{"app", "cache"}}, Owner("StatefulSet", "cache")));
  ASSERT_TRUE(WaitUntil([&] {
    return exporter_.Scrape().Sum("redmap_kubernetes_objects", {{"resource", "pods"}}) == 4;
  }, 20));
  auto redis = cache->Start({"redis-server", "--bind", cache->ip(), "--port", "6379",
                             "--save", "", "--appendonly", "no", "--protected-mode", "no"});
  ASSERT_NE(redis, nullptr);
  ASSERT_TRUE(WaitUntil([&] {
    return frontend_->Run(absl::StrCat("redis-cli -h ", cache->ip(), " PING")).output.find(
               "PONG") != std::string::npos;
  }, 10));
  const Labels client_end = {{"side", "client"},
                             {"client", "frontend"},
                             {"server", "cache"},
                             {"server_port", "6379"},
                             {"client_service_namespace", "shop"},
                             {"server_service_namespace", "shop"},
                             {"k8s_namespace_name", "shop"},
                             {"k8s_owner_name", "frontend"},
                             {"k8s_node_name", "node-a"}};
  const Labels server_end = {{"side", "server"},
                             {"client", "frontend"},
                             {"server", "cache"},
                             {"server_port", "6379"},
                             {"client_service_namespace", "shop"},
                             {"server_service_namespace", "shop"},
                             {"k8s_namespace_name", "shop"},
                             {"k8s_owner_name", "cache"},
                             {"k8s_node_name", "node-a"}};
  constexpr char kConnects[] = "redmap_tcp_connect_duration_seconds_count";
  constexpr char kRtt[] = "redmap_tcp_rtt_seconds_count";
  // The pod is new, so are its edges: one PING (the readiness probe above;
  // refused connects before redis listened are failures, not connects) and
  // five SETs, each on its own connection.
  for (int i = 0; i < 5; ++i) {
    auto r = frontend_->Run(absl::StrCat("redis-cli -h ", cache->ip(), " SET k", i, " v"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  Exposition e = ScrapeWhen([&](const Exposition& x) {
    return x.Sum(kConnects, client_end) >= 6 && x.Sum(kRtt, server_end) >= 6;
  });
  EXPECT_EQ(e.Sum(kConnects, client_end), 6) << e.text();
  // The server's end: one RTT per closed connection, named from its pod.
  EXPECT_EQ(e.Sum(kRtt, server_end), 6) << e.text();
  EXPECT_GT(e.Sum("redmap_tcp_received_bytes_total", server_end), 0);
  // No HTTP: no RED or service-graph series for the cache.
  EXPECT_EQ(e.Count(kEdges, {{"server", "cache"}}), 0);
  EXPECT_EQ(e.Count(absl::StrCat(kServer, "_count"), {{"service_name", "cache"}}), 0);
  EXPECT_EQ(e.Count(kConnects, {{"server", cache->ip()}}), 0);
  EXPECT_EQ(e.Count(kConnects, {{"client", "redis-cli"}}), 0);
}

// A python HTTP server in a Deployment's pod added through the watch: its
// RED series and the service-graph edge from the frontend carry its
// workload, with exact counts.
TEST_F(K8sIdentityTest, PythonServerPodIsNamedByItsDeployment) {
  constexpr char kApiUid[] = "2d3e4f50-6172-4839-a4b5-c6d7e8f90a1b";
  auto pod = FakePod::Create(net_.get(), {.name = "kap", .uid = kApiUid,
                                          .container_id = std::string(64, 'e'),
                                          .host_octet = 50});
  ASSERT_NE(pod, nullptr);
  api_->Put("replicasets", OwnerJson("shop", "api-6c7d8", Owner("Deployment", "api")));
  api_->Put("pods", PodJson("shop", "api-6c7d8-w9v8u", kApiUid, "node-a", pod->ip(),
                            {{"app", "api"}}, Owner("ReplicaSet", "api-6c7d8")));
  ASSERT_TRUE(WaitUntil([&] {
    return exporter_.Scrape().Sum("redmap_kubernetes_objects", {{"resource", "pods"}}) == 4;
  }, 20));
  TempDir www;
  www.Write("status", "ok");
  // socketserver's TCPServer, not http.server's HTTPServer: that one looks
  // its own name up in DNS at start, and a pod has no resolver here.
  auto server = pod->Start(
      {"python3", "-c",
       absl::StrCat("import functools, http.server, socketserver\n"
                    "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='",
                    www.path(), "')\n"
                    "socketserver.TCPServer(('", pod->ip(), "', 8000), h).serve_forever()\n")});
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(testing::WaitForPort(pod->ip(), 8000, std::chrono::seconds(10)));
  // 6 found, 2 not found, each on its own connection (HTTP/1.0 server).
  auto r = frontend_->Run(absl::StrCat("curl -s -o /dev/null 'http://", pod->ip(),
                                       ":8000/status?n=[1-6]'"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = frontend_->Run(absl::StrCat("curl -s -o /dev/null 'http://", pod->ip(),
                                  ":8000/missing/[1-2]'"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Labels edge = {{"client", "frontend"}, {"server", "api"},
                       {"client_service_namespace", "shop"},
                       {"server_service_namespace", "shop"}};
  const Labels red = {{"service_name", "api"}, {"service_namespace", "shop"},
                      {"k8s_namespace_name", "shop"}, {"k8s_deployment_name", "api"},
                      {"k8s_node_name", "node-a"}};
  Exposition e = ScrapeWhen([&](const Exposition& x) { return x.Sum(kEdges, edge) >= 8; });
  EXPECT_EQ(e.Sum(kEdges, edge), 8) << e.text();
  EXPECT_EQ(e.Sum(kFailed, edge), 0);  // 404s are not failures
  Labels ok = red, missing = red;
  ok.emplace("http_response_status_code", "200");
  missing.emplace("http_response_status_code", "404");
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"), ok), 6) << e.text();
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"), missing), 2);
  EXPECT_EQ(e.Count(absl::StrCat(kServer, "_count"), {{"service_name", "python3"}}), 0);
}

TEST_F(K8sIdentityTest, WatchSurvives410AndDropsAndDeletedPodsExpire) {
  // The watch breaks mid-stream, then the history is compacted (410 Gone):
  // the client resumes, relists, and keeps naming pods.
  api_->Do({{"op", "drop"}});
  api_->Do({{"op", "compact"}});
  Exposition e = ScrapeWhen([](const Exposition& x) {
    return x.Sum("redmap_kubernetes_relists_total", {{"resource", "pods"}}) >= 1 &&
           x.Sum("redmap_kubernetes_degraded") == 0;
  });
  EXPECT_GE(e.Sum("redmap_kubernetes_relists_total", {{"resource", "pods"}}), 1) << e.text();
  EXPECT_GE(e.Sum("redmap_kubernetes_watch_errors_total"), 1);
  EXPECT_EQ(e.Sum("redmap_kubernetes_degraded"), 0);

  // A pod that appears after the relist is named through the new watch.
  ASSERT_EQ(Curl(batch_.get(), "/before", 2), 0);  // still the Job's CronJob
  e = ScrapeWhen([](const Exposition& x) {
    return x.Sum(kEdges, {{"client", "report"}, {"server", "backend"}}) >= 2;
  });
  ASSERT_EQ(e.Sum(kEdges, {{"client", "report"}, {"server", "backend"}}), 2) << e.text();
  ASSERT_EQ(e.Sum("redmap_kubernetes_objects", {{"resource", "pods"}}), 3);

  // Deleted through the watch: the store forgets it at once, and its series
  // are gone one TTL after its last request.
  api_->Delete("pods", "jobs", "report-28551-q7m2n");
  e = ScrapeWhen([](const Exposition& x) {
    return x.Sum("redmap_kubernetes_objects", {{"resource", "pods"}}) == 2;
  });
  EXPECT_EQ(e.Sum("redmap_kubernetes_objects", {{"resource", "pods"}}), 2);
  e = ScrapeWhen([](const Exposition& x) {
    return x.Count(kEdges, {{"client", "report"}}) == 0 &&
           x.Count("http_client_request_duration_seconds_count", {{"service_name", "report"}}) ==
               0 &&
           x.Count("redmap_tcp_connections", {{"client", "report"}}) == 0;
  });
  EXPECT_EQ(e.Count(kEdges, {{"client", "report"}}), 0) << e.text();
  EXPECT_EQ(e.Count("http_client_request_duration_seconds_count", {{"service_name", "report"}}),
            0);
  // Its TCP edges too (both the client's and the backend's end), and the
  // live-series gauges count only what is left.
  EXPECT_EQ(e.Count("redmap_tcp_connections", {{"client", "report"}}), 0);
  EXPECT_EQ(e.Count("redmap_tcp_connections", {{"client_service_namespace", "jobs"}}), 0);
  EXPECT_EQ(e.Sum("redmap_tcp_edge_series"), e.Count("redmap_tcp_connections"));
  // The other pods' identities are untouched.
  ASSERT_EQ(Curl(frontend_.get(), "/after", 2), 0);
  e = ScrapeWhen([](const Exposition& x) {
    return x.Sum(kEdges, {{"client", "frontend"}, {"server", "backend"}}) >= 2;
  });
  EXPECT_GE(e.Sum(kEdges, {{"client", "frontend"}, {"server", "backend"}}), 2);
}

TEST_F(K8sIdentityTest, UnreachableApiIsDegradedAndMetricsKeepFlowing) {
  // Every request fails for a while: the exporter says so and keeps naming
  // from its cache.
  api_->Do({{"op", "fail"}, {"resource", "pods"}, {"count", 1000000}, {"code", 503}});
  api_->Do({{"op", "drop"}});
  Exposition e = ScrapeWhen(
      [](const Exposition& x) { return x.Sum("redmap_kubernetes_degraded") == 1; });
  EXPECT_EQ(e.Sum("redmap_kubernetes_degraded"), 1) << e.text();
  ASSERT_EQ(Curl(frontend_.get(), "/degraded", 5), 0);
  e = ScrapeWhen([](const Exposition& x) {
    return x.Sum(kEdges, {{"client", "frontend"}, {"server", "backend"}}) >= 5;
  });
  EXPECT_GE(e.Sum(kEdges, {{"client", "frontend"},
                           {"server", "backend"},
                           {"server_service_namespace", "shop"}}),
            5);
  api_->Do({{"op", "fail"}, {"resource", "pods"}, {"count", 0}, {"code", 503}});
  e = ScrapeWhen(
      [](const Exposition& x) { return x.Sum("redmap_kubernetes_degraded") == 0; });
  EXPECT_EQ(e.Sum("redmap_kubernetes_degraded"), 0);
}

}  // namespace
}  // namespace redmap
