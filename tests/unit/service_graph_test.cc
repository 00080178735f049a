#include "aggregators/servicemap/service_graph.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

#include "tests/testlib/metric_labels.h"

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using ::redmap::testing::HasLabels;
using ::redmap::testing::Labels;

Endpoint Ep(const char* ip, uint16_t port) {
  Endpoint e;
  e.addr = IpAddress::V4(inet_addr(ip));
  e.port = port;
  return e;
}

// Names from TCP events, as the TcpAggregator would give them.
class FakePeers : public PeerNames {
 public:
  IdentityPtr ClientAt(const Endpoint& ep) const override {
    auto it = clients.find(ep.port);
    return it == clients.end() ? nullptr : NamedIdentity(it->second);
  }
  IdentityPtr ServerAt(const Endpoint& ep) const override {
    auto it = servers.find(ep.port);
    return it == servers.end() ? nullptr : NamedIdentity(it->second);
  }
  std::map<uint16_t, std::string> clients, servers;
};

Span MakeSpan(Role side, const std::string& process, Endpoint client, Endpoint server, int status,
              uint64_t duration_ns = 2000000) {
  static std::string name;
  name = process;
  Span s;
  s.protocol = Protocol::kHttp1;
  s.side = side;
  s.start_ns = 1000000000;
  s.end_ns = s.start_ns + duration_ns;
  s.client = client;
  s.server = server;
  s.process_name = name;
  s.http.status = status;
  return s;
}

// A counter's value, or a histogram's count with name + "_count"; -1 when absent.
double ValueOf(const ServiceGraphAggregator& agg, const std::string& name, const Labels& want) {
  for (const MetricFamily& f : agg.Collect()) {
    for (const ClientMetric& m : f.metric) {
      if (!HasLabels(m, want)) continue;
      if (name == f.name) return m.counter.value;
      if (name == f.name + "_count") return static_cast<double>(m.histogram.sample_count);
    }
  }
  return -1;
}

ServiceGraphOptions GraphOptions(size_t max_series) {
  ServiceGraphOptions o;
  o.buckets = {0.001, 0.01, 0.1};
  o.max_series = max_series;
  o.series_ttl_ns = 60ull * 1000000000;
  o.node_name = "node-a";
  return o;
}

class ServiceGraphTest : public ::testing::Test {
 protected:
  ServiceGraphTest()
      : agg_(Options(), [](const Span& s) { return std::string(s.process_name); }, &peers_) {}

  static ServiceGraphOptions Options() { return GraphOptions(4); }

  double Value(const std::string& name, const Labels& want) { return ValueOf(agg_, name, want); }

  FakePeers peers_;
  ServiceGraphAggregator agg_;
  const Endpoint fe_ = Ep("10.0.0.2", 40000);
  const Endpoint be_ = Ep("10.0.0.1", 8080);
};

TEST_F(ServiceGraphTest, BothEndsObservedCountOnceOnTheServerSide) {
  peers_.clients[40000] = "frontend";
  for (int i = 0; i < 3; ++i) {
    agg_.OnSpan(MakeSpan(Role::kServer, "backend", fe_, be_, i == 0 ? 503 : 200));
    agg_.OnSpan(MakeSpan(Role::kClient, "frontend", fe_, be_, i == 0 ? 503 : 200));
  }
  const Labels edge = {{"client", "frontend"}, {"server", "backend"}, {"connection_type", ""},
                       {"k8s_node_name", "node-a"}};
  EXPECT_EQ(Value("traces_service_graph_request_total", edge), 3);
  EXPECT_EQ(Value("traces_service_graph_request_failed_total", edge), 1);
  EXPECT_EQ(Value("traces_service_graph_request_server_seconds_count", edge), 3);
  EXPECT_EQ(Value("traces_service_graph_request_client_seconds_count", edge), 3);
  EXPECT_EQ(agg_.edges(), 1u);
}

TEST_F(ServiceGraphTest, ServerPredatingRedmapIsKnownFromItsOwnSpans) {
  // No listen()/accept() seen for the backend: its server span names it.
  agg_.OnSpan(MakeSpan(Role::kServer, "backend", fe_, be_, 200));
  agg_.OnSpan(MakeSpan(Role::kClient, "frontend", fe_, be_, 200));
  // Not counted twice: one request in total, whatever the labels.
  EXPECT_EQ(Value("traces_service_graph_request_total", {}), 1);
}

TEST_F(ServiceGraphTest, UnobservedServerIsCountedByTheClientAsVirtualNode) {
  const Endpoint external = Ep("192.0.2.9", 443);
  agg_.OnSpan(MakeSpan(Role::kClient, "frontend", fe_, external, 500));
  const Labels edge = {{"client", "frontend"}, {"server", "192.0.2.9"},
                       {"connection_type", "virtual_node"}};
  EXPECT_EQ(Value("traces_service_graph_request_total", edge), 1);
  EXPECT_EQ(Value("traces_service_graph_request_failed_total", edge), 1);
  EXPECT_EQ(Value("traces_service_graph_request_client_seconds_count", edge), 1);
}

TEST_F(ServiceGraphTest, UnknownClientIsAVirtualNodeByAddress) {
  agg_.OnSpan(MakeSpan(Role::kServer, "backend", Ep("198.51.100.7", 5555), be_, 200));
  EXPECT_EQ(Value("traces_service_graph_request_total",
                  {{"client", "198.51.100.7"}, {"server", "backend"},
                   {"connection_type", "virtual_node"}}),
            1);
}

TEST_F(ServiceGraphTest, NoSelfEdges) {
  peers_.clients[40000] = "backend";
  agg_.OnSpan(MakeSpan(Role::kServer, "backend", fe_, be_, 200));
  EXPECT_EQ(agg_.edges(), 0u);
}

TEST_F(ServiceGraphTest, EdgesAreCappedAndExpire) {
  for (int i = 0; i < 10; ++i) {
    std::string ip = "192.0.2." + std::to_string(i + 1);
    agg_.OnSpan(MakeSpan(Role::kClient, "frontend", fe_, Ep(ip.c_str(), 80), 200));
  }
  EXPECT_EQ(agg_.edges(), 5u);  // 4 + overflow
  EXPECT_EQ(Value("traces_service_graph_request_total", {{"server", "__overflow__"}}), 6);
  EXPECT_EQ(Value("redmap_service_graph_edges_overflow_total", {}), 6);
  agg_.Expire(1000ull * 1000000000);
  EXPECT_EQ(agg_.edges(), 0u);
}

TEST_F(ServiceGraphTest, DroppedLabelsAreLeftOutAndTheirEdgesMerge) {
  ServiceGraphOptions o = Options();
  o.drop_labels = {"connection_type", "k8s_node_name", "client"};  // client stays: ignored
  ServiceGraphAggregator agg(o, [](const Span& s) { return std::string(s.process_name); },
                             &peers_);
  // One request from an unknown client (virtual_node) and one from a known
  // one, same names: with connection_type dropped they are one edge.
  agg.OnSpan(MakeSpan(Role::kServer, "backend", Ep("10.0.0.2", 40001), be_, 200));
  peers_.clients[40000] = "10.0.0.2";
  agg.OnSpan(MakeSpan(Role::kServer, "backend", fe_, be_, 500));
  EXPECT_EQ(agg.edges(), 1u);
  std::vector<MetricFamily> fams = agg.Collect();
  bool seen = false;
  for (const MetricFamily& f : fams) {
    if (f.name != "traces_service_graph_request_total") continue;
    ASSERT_EQ(f.metric.size(), 1u);
    EXPECT_EQ(f.metric[0].counter.value, 2);
    Labels got;
    for (const auto& l : f.metric[0].label) got[l.name] = l.value;
    // Kept labels stay even when empty (as Tempo writes them).
    EXPECT_EQ(got, (Labels{{"client", "10.0.0.2"},
                           {"server", "backend"},
                           {"client_service_namespace", ""},
                           {"server_service_namespace", ""}}));
    seen = true;
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(ServiceGraphLabelNames().size(), 6u);
  EXPECT_EQ(ServiceGraphLabelNames()[kServiceGraphEdgeLabels - 1], "server");
}

// Identities that stay the same object from span to span, as the identity
// cache hands them out: repeated edges hit the aggregator's edge memo.
TEST(ServiceGraphMemoTest, RepeatedEdgesStayExactAcrossExpiryAndTheCap) {
  std::map<std::string, IdentityPtr> ids;
  for (const char* n : {"frontend", "backend", "cache", "db", "worker"}) ids[n] = NamedIdentity(n);
  FakePeers peers;
  peers.clients[40000] = "frontend";
  ServiceGraphAggregator agg(
      GraphOptions(3), [&ids](const Span& s) { return ids.at(std::string(s.process_name)); }, nullptr, &peers);
  const Endpoint fe = Ep("10.0.0.2", 40000);
  const Endpoint be = Ep("10.0.0.1", 8080);
  const Labels edge = {{"client", "frontend"}, {"server", "backend"}, {"connection_type", ""}};
  auto exchange = [&](const char* server, Endpoint at, int status) {
    agg.OnSpan(MakeSpan(Role::kServer, server, fe, at, status));
    agg.OnSpan(MakeSpan(Role::kClient, "frontend", fe, at, status));
  };
  for (int i = 0; i < 4; ++i) exchange("backend", be, i == 0 ? 500 : 200);
  EXPECT_EQ(ValueOf(agg, "traces_service_graph_request_total", edge), 4);
  EXPECT_EQ(ValueOf(agg, "traces_service_graph_request_failed_total", edge), 1);
  EXPECT_EQ(ValueOf(agg, "traces_service_graph_request_client_seconds_count", edge), 4);

  // Expiry erases the edge the memo points at: the next span makes a new one.
  agg.Expire(1000ull * 1000000000);
  EXPECT_EQ(agg.edges(), 0u);
  exchange("backend", be, 200);
  exchange("backend", be, 200);
  EXPECT_EQ(ValueOf(agg, "traces_service_graph_request_total", edge), 2);
  EXPECT_EQ(ValueOf(agg, "traces_service_graph_request_server_seconds_count", edge), 2);

  // At the cap, every span of an edge that overflowed counts as overflowed.
  exchange("cache", Ep("10.0.0.3", 6379), 200);
  exchange("db", Ep("10.0.0.4", 5432), 200);  // third edge: the cap
  for (int i = 0; i < 3; ++i) {
    agg.OnSpan(MakeSpan(Role::kServer, "worker", fe, Ep("10.0.0.6", 7000), 200));
  }
  EXPECT_EQ(agg.edges(), 4u);  // 3 + overflow
  EXPECT_EQ(ValueOf(agg, "traces_service_graph_request_total", {{"server", "__overflow__"}}), 3);
  EXPECT_EQ(ValueOf(agg, "redmap_service_graph_edges_overflow_total", {}), 3);
  EXPECT_EQ(ValueOf(agg, "traces_service_graph_request_total", edge), 2);

  // A self-edge stays unrecorded however often it repeats.
  for (int i = 0; i < 2; ++i) {
    Span self = MakeSpan(Role::kServer, "frontend", fe, Ep("10.0.0.5", 9000), 200);
    agg.OnSpan(self);
  }
  EXPECT_EQ(agg.edges(), 4u);
}

}  // namespace
}  // namespace redmap
