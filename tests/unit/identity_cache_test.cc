// IdentityCache (the per-span identity lookup every family labels through)
// over a real Store and CgroupResolver on a fake /proc, and the families'
// use of it: RED identity labels, dropped labels and route patterns; the
// service graph's namespaces, counting rule for cluster peers, external
// grouping and self-edges; the TCP edges' namespaces and identity labels.
#include "aggregators/metadata/identity_cache.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "aggregators/network/tcp_aggregator.h"
#include "aggregators/red/red_aggregator.h"
#include "aggregators/red/route_normalizer.h"
#include "aggregators/servicemap/service_graph.h"
#include "tests/testlib/metric_labels.h"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

namespace fs = std::filesystem;
using k8s::ParseIp;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using ::redmap::testing::IsOk;
using ::redmap::testing::HasLabels;
using ::redmap::testing::Labels;

constexpr uint64_t kSec = 1'000'000'000;
constexpr char kUid[] = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

class IdentityCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("redmap-idcache-" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "cg");
    Proc(200, "python3",
         PodCgroupFile());
    Proc(100, "nginx", "0::/system.slice/nginx.service\n");
    CgroupResolverOptions co;
    co.cgroup_root = (root_ / "cg").string();
    co.proc_root = (root_ / "proc").string();
    cgroups_ = std::make_unique<CgroupResolver>(co);
    cidrs_ = *CidrNames::Create({{"198.51.100.0/24", "partner-api"}});

    k8s::Pod pod;
    pod.meta.namespace_ = "shop";
    pod.meta.name = "frontend-7d4b9c6f8-x2x9q";
    pod.meta.uid = kUid;
    pod.meta.labels = {{"app", "frontend"}, {"pod-template-hash", "7d4b9c6f8"}};
    pod.meta.owners = {{"ReplicaSet", "frontend-7d4b9c6f8", "rs", true}};
    pod.node_name = "node-a";
    pod.phase = "Running";
    pod.ips = {ParseIp("10.244.1.17")};
    pod.host_ip = ParseIp("192.168.10.11");
    k8s::Pod backend = pod;
    backend.meta.name = "backend-0";
    backend.meta.uid = "b0";
    backend.meta.labels = {{"app", "backend"}};
    backend.meta.owners = {{"StatefulSet", "backend", "ss", true}};
    backend.node_name = "node-b";
    backend.ips = {ParseIp("10.244.2.9")};
    store_.ReplacePods({pod, backend});
    k8s::Service svc;
    svc.meta.namespace_ = "shop";
    svc.meta.name = "web";
    svc.selector = {{"app", "frontend"}};
    svc.cluster_ips = {ParseIp("10.96.120.5")};
    store_.ReplaceServices({svc});
  }
  void TearDown() override { fs::remove_all(root_); }

  static std::string PodCgroupFile() {
    std::string uid = kUid;
    for (char& c : uid) c = c == '-' ? '_' : c;
    return "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid +
           ".slice/cri-containerd-" + std::string(64, 'a') + ".scope\n";
  }
  void Proc(int pid, const std::string& comm, const std::string& cgroup) {
    fs::path d = root_ / "proc" / std::to_string(pid);
    fs::create_directories(d);
    std::ofstream(d / "comm") << comm << "\n";
    std::ofstream(d / "cgroup") << cgroup;
  }
  std::unique_ptr<IdentityResolver> Resolver(EdgeLevel level) {
    IdentityOptions o;
    o.edge_level = level;
    o.node_name = "node-a";
    return std::make_unique<IdentityResolver>(o, &store_, cgroups_.get(), nullptr, &cidrs_,
                                              nullptr);
  }
  IdentityCache Cache(const IdentityResolver* r) {
    IdentityCacheOptions o;
    o.node_name = "node-a";
    o.max_entries = 4;
    return IdentityCache(o, r, &store_, [this](uint32_t tgid, std::string_view comm, uint64_t) {
      ++process_lookups_;
      return tgid == 100 ? std::string("nginx") : std::string(comm);
    });
  }

  fs::path root_;
  std::unique_ptr<CgroupResolver> cgroups_;
  CidrNames cidrs_;
  k8s::Store store_;
  int process_lookups_ = 0;
};

TEST_F(IdentityCacheTest, LocalPodProcessIsItsWorkloadAndIsCached) {
  auto r = Resolver(EdgeLevel::kWorkload);
  IdentityCache c = Cache(r.get());
  IdentityPtr id = c.Local(200, 0, "python3", 1 * kSec);
  EXPECT_EQ(id->source, IdentitySource::kPod);
  EXPECT_EQ(id->name, "frontend");
  EXPECT_EQ(id->service_name, "frontend");
  EXPECT_EQ(id->service_namespace, "shop");
  EXPECT_EQ(id->k8s_namespace_name, "shop");
  EXPECT_EQ(id->k8s_owner_kind, "Deployment");
  EXPECT_EQ(id->k8s_deployment_name, "frontend");
  EXPECT_EQ(id->k8s_node_name, "node-a");
  EXPECT_EQ(id->k8s_pod_name, "") << "pod names only at edge level pod";
  EXPECT_EQ(c.Local(200, 0, "python3", 2 * kSec).get(), id.get()) << "cached";
  EXPECT_EQ(c.misses(), 1u);

  // A host process keeps its process name, on this node.
  IdentityPtr host = c.Local(100, 0, "nginx", 1 * kSec);
  EXPECT_EQ(host->source, IdentitySource::kProcess);
  EXPECT_EQ(host->name, "nginx");
  EXPECT_EQ(host->k8s_namespace_name, "");
  EXPECT_EQ(host->k8s_node_name, "node-a");

  // The pod goes away: the store's generation moves, and once the entry is
  // older than kRefreshNs it is resolved again (here: no pod any more).
  k8s::ObjectMeta gone;
  gone.namespace_ = "shop";
  gone.name = "frontend-7d4b9c6f8-x2x9q";
  store_.DeletePod(gone);
  EXPECT_EQ(c.Local(200, 0, "python3", kSec + kSec / 2)->name, "frontend") << "within kRefreshNs";
  EXPECT_EQ(c.Local(200, 0, "python3", 3 * kSec)->name, "python3");
}

TEST_F(IdentityCacheTest, PodLevelNamesPodsAndLabelsThem) {
  auto r = Resolver(EdgeLevel::kPod);
  IdentityCache c = Cache(r.get());
  IdentityPtr id = c.Local(200, 0, "python3", kSec);
  EXPECT_EQ(id->name, "frontend-7d4b9c6f8-x2x9q");
  EXPECT_EQ(id->k8s_pod_name, "frontend-7d4b9c6f8-x2x9q");
  EXPECT_EQ(id->service_name, "frontend");
}

TEST_F(IdentityCacheTest, RemoteAddresses) {
  auto r = Resolver(EdgeLevel::kWorkload);
  IdentityCache c = Cache(r.get());
  EXPECT_EQ(c.Remote(ParseIp("10.244.2.9"), kSec)->name, "backend");
  EXPECT_EQ(c.Remote(ParseIp("10.244.2.9"), kSec)->k8s_owner_kind, "StatefulSet");
  EXPECT_EQ(c.Remote(ParseIp("10.244.2.9"), kSec)->k8s_node_name, "node-b");
  EXPECT_TRUE(c.Remote(ParseIp("10.244.2.9"), kSec)->in_cluster());
  IdentityPtr svc = c.Remote(ParseIp("10.96.120.5"), kSec);
  EXPECT_EQ(svc->name, "web");
  EXPECT_EQ(svc->service_namespace, "shop");
  EXPECT_TRUE(svc->in_cluster());
  EXPECT_EQ(c.Remote(ParseIp("198.51.100.7"), kSec)->name, "partner-api");
  EXPECT_FALSE(c.Remote(ParseIp("198.51.100.7"), kSec)->in_cluster());
  EXPECT_EQ(c.Remote(ParseIp("203.0.113.10"), kSec)->name, "external");
  EXPECT_EQ(c.Remote(ParseIp("203.0.113.20"), kSec)->name, "external");
  // Loopback peers stay addresses: the families name local peers first.
  EXPECT_EQ(c.Remote(ParseIp("127.0.0.1"), kSec)->name, "127.0.0.1");
  // Bounded: max_entries 4 per table, cleared when full.
  EXPECT_LE(c.remote_entries(), 4u);
}

TEST_F(IdentityCacheTest, ADnsAnswerRenamesAnExternalPeerWithinASecond) {
  DnsCache dns;
  IdentityOptions o;
  o.node_name = "node-a";
  IdentityResolver r(o, &store_, cgroups_.get(), nullptr, &cidrs_, &dns);
  IdentityCache c = Cache(&r);
  // Seen before its answer was read: external, and the partner range by CIDR.
  EXPECT_EQ(c.Remote(ParseIp("203.0.113.10"), kSec)->name, "external");
  EXPECT_EQ(c.Remote(ParseIp("198.51.100.7"), kSec)->name, "partner-api");
  EXPECT_EQ(c.Remote(ParseIp("10.244.2.9"), kSec)->name, "backend");
  dns.Add(ParseIp("203.0.113.10"), "api.example.com", 300, kSec);
  dns.Add(ParseIp("198.51.100.7"), "partner.example.net", 300, kSec);
  dns.Add(ParseIp("10.244.2.9"), "backend.example.net", 300, kSec);
  // Cached for the refresh interval, then named by DNS, which outranks a
  // CIDR but never a pod.
  EXPECT_EQ(c.Remote(ParseIp("203.0.113.10"), kSec + kSec / 2)->name, "external");
  EXPECT_EQ(c.Remote(ParseIp("203.0.113.10"), 2 * kSec)->name, "api.example.com");
  EXPECT_EQ(c.Remote(ParseIp("203.0.113.10"), 2 * kSec)->source, IdentitySource::kDns);
  EXPECT_FALSE(c.Remote(ParseIp("203.0.113.10"), 2 * kSec)->in_cluster());
  EXPECT_EQ(c.Remote(ParseIp("198.51.100.7"), 2 * kSec)->name, "partner.example.net");
  EXPECT_EQ(c.Remote(ParseIp("10.244.2.9"), 2 * kSec)->name, "backend");
  // A pod entry is not refreshed by DNS answers: one resolution each so far.
  const uint64_t misses = c.misses();
  dns.Add(ParseIp("203.0.113.99"), "other.example.com", 300, 3 * kSec);
  EXPECT_EQ(c.Remote(ParseIp("10.244.2.9"), 5 * kSec)->name, "backend");
  EXPECT_EQ(c.misses(), misses);
}

TEST_F(IdentityCacheTest, WithoutKubernetesNamesAreProcessesAndAddresses) {
  IdentityCache c = Cache(nullptr);
  IdentityPtr id = c.Local(200, 0, "python3", kSec);
  EXPECT_EQ(id->name, "python3");
  EXPECT_EQ(id->k8s_node_name, "") << "no identity labels without Kubernetes";
  EXPECT_EQ(c.Remote(ParseIp("203.0.113.10"), kSec)->name, "203.0.113.10");
  EXPECT_FALSE(c.enabled());
}

// ---- RED with identities -----------------------------------------------------

const ClientMetric* FindSeries(const std::vector<MetricFamily>& fams, const std::string& family,
                               const Labels& want) {
  for (const MetricFamily& f : fams) {
    if (f.name != family) continue;
    for (const ClientMetric& m : f.metric) {
      if (HasLabels(m, want)) return &m;
    }
  }
  return nullptr;
}

Span HttpSpan(Role side, const char* target, int status, uint32_t tgid = 200) {
  Span s;
  s.protocol = Protocol::kHttp1;
  s.side = side;
  s.start_ns = kSec;
  s.end_ns = kSec + 1000000;
  s.conn.tgid = tgid;
  s.client.addr = ParseIp("10.244.1.17");
  s.client.port = 40000;
  s.server.addr = ParseIp("10.244.2.9");
  s.server.port = 8080;
  s.http.method = "GET";
  s.http.target = target;
  s.http.status = status;
  return s;
}

TEST_F(IdentityCacheTest, RedSeriesCarryIdentityLabelsDropListsAndRoutePatterns) {
  auto r = Resolver(EdgeLevel::kWorkload);
  IdentityCache c = Cache(r.get());
  RedOptions o;
  o.buckets = {0.01, 0.1};
  auto patterns = RoutePatterns::Create({"/sku/{sku}", "/static/**"});
  ASSERT_THAT(patterns, IsOk());
  o.route_patterns = *patterns;
  o.server_drop_labels = {"k8s_owner_kind", "http_response_status_code"};
  RedAggregator red(o, ServiceNameResolver([&](const Span& s) {
                      return c.Local(s.conn.tgid, s.cgroup_id, s.process_name, s.end_ns);
                    }));
  red.OnSpan(HttpSpan(Role::kServer, "/sku/ab-CD-1", 200));
  red.OnSpan(HttpSpan(Role::kServer, "/sku/zz-YY-2", 503));
  red.OnSpan(HttpSpan(Role::kServer, "/static/css/a.css?v=3", 200));
  red.OnSpan(HttpSpan(Role::kClient, "/x/42", 200, /*tgid=*/100));
  auto fams = red.Collect();
  const ClientMetric* sku = FindSeries(fams, "http_server_request_duration_seconds",
                                       {{"service_name", "frontend"},
                                        {"http_route", "/sku/{sku}"},
                                        {"k8s_namespace_name", "shop"},
                                        {"service_namespace", "shop"},
                                        {"k8s_deployment_name", "frontend"},
                                        {"k8s_node_name", "node-a"}});
  ASSERT_NE(sku, nullptr);
  EXPECT_EQ(sku->histogram.sample_count, 2u) << "status dropped: 200 and 503 merge";
  for (const auto& l : sku->label) {
    EXPECT_NE(l.name, "k8s_owner_kind");
    EXPECT_NE(l.name, "k8s_pod_name") << "empty identity labels are absent";
  }
  EXPECT_NE(FindSeries(fams, "http_server_request_duration_seconds",
                       {{"http_route", "/static/**"}}),
            nullptr);
  // The host process's client series has no Kubernetes labels but its node.
  const ClientMetric* client = FindSeries(fams, "http_client_request_duration_seconds",
                                          {{"service_name", "nginx"}, {"http_route", "/x/{id}"}});
  ASSERT_NE(client, nullptr);
  Labels got;
  for (const auto& l : client->label) got[l.name] = l.value;
  EXPECT_EQ(got.count("k8s_namespace_name"), 0u);
  EXPECT_EQ(got["k8s_node_name"], "node-a");
  EXPECT_EQ(RedLabelNames(true).size(), 4u + kNumIdentityLabels);
}

TEST(RoutePatternsTest, MatchesSegmentsAndRest) {
  auto p = RoutePatterns::Create({"/api/users/{id}/orders", "/api/*", "/files/**", "/"});
  ASSERT_THAT(p, IsOk());
  auto route = [&](const char* t) {
    std::string out;
    RouteOf(&*p, t, &out);
    return out;
  };
  EXPECT_EQ(route("/api/users/u-17/orders?x=1"), "/api/users/{id}/orders");
  EXPECT_EQ(route("/api/users"), "/api/*");
  EXPECT_EQ(route("/api/users/17"), "/api/users/{id}") << "heuristics after patterns";
  EXPECT_EQ(route("/api/"), "/api/");  // an empty segment is no match for "*"
  EXPECT_EQ(route("/files"), "/files/**");
  EXPECT_EQ(route("/files/a/b/c.txt"), "/files/**");
  EXPECT_EQ(route("/"), "/");
  EXPECT_EQ(route("/other/9"), "/other/{id}");
  EXPECT_FALSE(RoutePatterns::Create({"api/x"}).ok());
  EXPECT_FALSE(RoutePatterns::Create({"/a/**/b"}).ok());
  EXPECT_FALSE(RoutePatterns::Create({"/a b"}).ok());
  EXPECT_FALSE(RoutePatterns::Create(std::vector<std::string>(kMaxRoutePatterns + 1, "/a")).ok());
  EXPECT_NE(std::string(RoutePatterns::Create({"x"}).status().message()).find("red.route_patterns"),
            std::string::npos);
}

// ---- service graph with identities --------------------------------------------

class NoPeers : public PeerNames {
 public:
  IdentityPtr ClientAt(const Endpoint&) const override { return nullptr; }
  IdentityPtr ServerAt(const Endpoint&) const override { return nullptr; }
};

double Counter(const std::vector<MetricFamily>& fams, const std::string& name, const Labels& l) {
  const ClientMetric* m = FindSeries(fams, name, l);
  return m == nullptr ? -1 : m->counter.value;
}

TEST_F(IdentityCacheTest, ServiceGraphNamesClusterPeersAndCountsOnce) {
  auto r = Resolver(EdgeLevel::kWorkload);
  IdentityCache c = Cache(r.get());
  ServiceGraphOptions o;
  o.buckets = {0.01, 0.1};
  o.node_name = "node-a";
  NoPeers peers;
  ServiceGraphAggregator g(
      o,
      ServiceGraphAggregator::LocalIdentityFn([&](const Span& s) {
        return c.Local(s.conn.tgid, s.cgroup_id, s.process_name, s.end_ns);
      }),
      ServiceGraphAggregator::RemoteIdentityFn(
          [&](const IpAddress& ip, uint64_t now) { return c.Remote(ip, now); }),
      &peers);
  // frontend (local pod) calls backend (a pod on node-b): the client side
  // only times it, node-b's redmap counts it.
  g.OnSpan(HttpSpan(Role::kClient, "/", 200));
  // An external server is counted here, grouped as "external".
  Span ext = HttpSpan(Role::kClient, "/", 502);
  ext.server.addr = ParseIp("203.0.113.10");
  g.OnSpan(ext);
  ext.server.addr = ParseIp("203.0.113.20");
  g.OnSpan(ext);
  // backend -> frontend as the server sees it: the client is a pod by IP.
  Span in = HttpSpan(Role::kServer, "/", 500);
  in.client.addr = ParseIp("10.244.2.9");
  g.OnSpan(in);
  // A self-edge (frontend calling its own workload's pod) is dropped.
  Span self = HttpSpan(Role::kServer, "/", 200);
  g.OnSpan(self);
  auto fams = g.Collect();
  const char* total = "traces_service_graph_request_total";
  const char* failed = "traces_service_graph_request_failed_total";
  EXPECT_EQ(Counter(fams, total, {{"client", "frontend"}, {"server", "backend"}}), -1);
  EXPECT_NE(FindSeries(fams, "traces_service_graph_request_client_seconds",
                       {{"client", "frontend"},
                        {"server", "backend"},
                        {"client_service_namespace", "shop"},
                        {"server_service_namespace", "shop"},
                        {"connection_type", ""}}),
            nullptr);
  EXPECT_EQ(Counter(fams, total,
                    {{"client", "frontend"}, {"server", "external"},
                     {"connection_type", "virtual_node"}, {"server_service_namespace", ""}}),
            2);
  EXPECT_EQ(Counter(fams, failed, {{"client", "frontend"}, {"server", "external"}}), 2);
  EXPECT_EQ(Counter(fams, total,
                    {{"client", "backend"}, {"server", "frontend"},
                     {"client_service_namespace", "shop"}, {"connection_type", ""}}),
            1);
  EXPECT_EQ(Counter(fams, total, {{"client", "frontend"}, {"server", "frontend"}}), -1);
  EXPECT_EQ(g.edges(), 3u);
}

// ---- TCP edges with identities ---------------------------------------------------

TcpEvent Tcp(TcpEventKind kind, uint64_t sk, Role role, uint32_t tgid, const char* local_ip,
             uint16_t local_port, const char* remote_ip, uint16_t remote_port) {
  TcpEvent e;
  e.kind = kind;
  e.sk = sk;
  e.ts_ns = kSec;
  e.role = role;
  e.tgid = tgid;
  e.local = {ParseIp(local_ip), local_port};
  e.remote = {ParseIp(remote_ip), remote_port};
  return e;
}

Labels LabelsOf(const ClientMetric* m) {
  Labels out;
  if (m == nullptr) return {{"missing", "series"}};
  for (const auto& l : m->label) out[l.name] = l.value;
  return out;
}

std::unique_ptr<TcpAggregator> TcpWith(IdentityCache& c, std::vector<std::string> drop = {}) {
  NetworkOptions o;
  o.node_name = "node-a";
  o.drop_labels = std::move(drop);
  return std::make_unique<TcpAggregator>(
      o,
      ProcessIdentityResolver([&c](uint32_t tgid, uint64_t cgroup_id, std::string_view comm,
                                   uint64_t ts) { return c.Local(tgid, cgroup_id, comm, ts); }),
      RemoteIdentityResolver([&c](const IpAddress& ip, uint64_t ts) {
        return c.Remote(ip, ts == 0 ? kSec : ts);
      }));
}

TEST_F(IdentityCacheTest, TcpEdgesCarryNamespacesAndTheObservingEndsLabels) {
  auto r = Resolver(EdgeLevel::kWorkload);
  IdentityCache c = Cache(r.get());
  auto tcp = TcpWith(c);
  // frontend (a pod here) -> backend (a pod on node-b), client side.
  tcp->OnTcp(Tcp(TcpEventKind::kEstablished, 1, Role::kClient, 200, "10.244.1.17", 40000,
                 "10.244.2.9", 8080));
  // frontend answers an outside client.
  tcp->OnTcp(Tcp(TcpEventKind::kEstablished, 2, Role::kServer, 200, "10.244.1.17", 8080,
                 "203.0.113.10", 50000));
  // A host process calls a partner range and a Service's ClusterIP.
  tcp->OnTcp(Tcp(TcpEventKind::kEstablished, 3, Role::kClient, 100, "192.168.10.11", 40001,
                 "198.51.100.7", 443));
  tcp->OnTcp(Tcp(TcpEventKind::kEstablished, 4, Role::kClient, 100, "192.168.10.11", 40002,
                 "10.96.120.5", 80));
  const auto fams = tcp->Collect();
  const char* conns = "redmap_tcp_connections";
  const Labels frontend_labels = {{"k8s_namespace_name", "shop"},
                                  {"k8s_owner_kind", "Deployment"},
                                  {"k8s_owner_name", "frontend"},
                                  {"k8s_deployment_name", "frontend"},
                                  {"k8s_node_name", "node-a"}};
  Labels want = frontend_labels;
  want.insert({{"side", "client"}, {"client", "frontend"}, {"server", "backend"},
               {"server_port", "8080"}, {"client_service_namespace", "shop"},
               {"server_service_namespace", "shop"}});
  EXPECT_EQ(LabelsOf(FindSeries(fams, conns, {{"server", "backend"}})), want)
      << "no k8s_pod_name below edge level pod";
  want = frontend_labels;
  want.insert({{"side", "server"}, {"client", "external"}, {"server", "frontend"},
               {"server_port", "8080"}, {"server_service_namespace", "shop"}});
  EXPECT_EQ(LabelsOf(FindSeries(fams, conns, {{"client", "external"}})), want)
      << "an outside client has no namespace: the label is absent";
  EXPECT_EQ(LabelsOf(FindSeries(fams, conns, {{"server", "partner-api"}})),
            (Labels{{"side", "client"}, {"client", "nginx"}, {"server", "partner-api"},
                    {"server_port", "443"}, {"k8s_node_name", "node-a"}}));
  EXPECT_EQ(LabelsOf(FindSeries(fams, conns, {{"server", "web"}})),
            (Labels{{"side", "client"}, {"client", "nginx"}, {"server", "web"},
                    {"server_port", "80"}, {"server_service_namespace", "shop"},
                    {"k8s_node_name", "node-a"}}));

  // The local client behind an endpoint, for the service graph: with its
  // namespace, which the service-graph edge then carries.
  IdentityPtr at = tcp->ClientAt({ParseIp("10.244.1.17"), 40000});
  ASSERT_NE(at, nullptr);
  EXPECT_EQ(at->name, "frontend");
  EXPECT_EQ(at->service_namespace, "shop");
  ServiceGraphOptions go;
  go.buckets = {0.01};
  go.node_name = "node-a";
  ServiceGraphAggregator g(
      go, ServiceGraphAggregator::LocalIdentityFn([](const Span&) { return NamedIdentity("db"); }),
      ServiceGraphAggregator::RemoteIdentityFn(), tcp.get());
  Span in = HttpSpan(Role::kServer, "/", 200);
  in.client.addr = ParseIp("10.244.1.17");
  in.client.port = 40000;
  g.OnSpan(in);
  EXPECT_EQ(Counter(g.Collect(), "traces_service_graph_request_total",
                    {{"client", "frontend"}, {"client_service_namespace", "shop"},
                     {"server", "db"}, {"server_service_namespace", ""}}),
            1);
}

TEST_F(IdentityCacheTest, TcpEdgesAtPodLevelNameAndLabelPodsAndDropLabels) {
  auto r = Resolver(EdgeLevel::kPod);
  IdentityCache c = Cache(r.get());
  auto tcp = TcpWith(c, {"k8s_owner_kind", "client_service_namespace"});
  tcp->OnTcp(Tcp(TcpEventKind::kEstablished, 1, Role::kClient, 200, "10.244.1.17", 40000,
                 "10.244.2.9", 8080));
  EXPECT_EQ(LabelsOf(FindSeries(tcp->Collect(), "redmap_tcp_connections", {})),
            (Labels{{"side", "client"},
                    {"client", "frontend-7d4b9c6f8-x2x9q"},
                    {"server", "backend-0"},
                    {"server_port", "8080"},
                    {"server_service_namespace", "shop"},
                    {"k8s_namespace_name", "shop"},
                    {"k8s_pod_name", "frontend-7d4b9c6f8-x2x9q"},
                    {"k8s_owner_name", "frontend"},
                    {"k8s_deployment_name", "frontend"},
                    {"k8s_node_name", "node-a"}}));
}

}  // namespace
}  // namespace redmap
