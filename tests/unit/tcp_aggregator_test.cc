#include "aggregators/network/tcp_aggregator.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <string>

#include "tests/testlib/metric_labels.h"

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using ::redmap::testing::HasLabels;
using ::redmap::testing::Labels;

constexpr uint64_t kSec = 1000000000ull;

Endpoint Ep(const char* ip, uint16_t port) {
  Endpoint e;
  e.addr = IpAddress::V4(inet_addr(ip));
  e.port = port;
  return e;
}

// Events as the kernel side writes them for one connection end.
TcpEvent Event(TcpEventKind kind, uint64_t sk, Role role, uint32_t tgid, Endpoint local,
               Endpoint remote, uint64_t ts = 1 * kSec) {
  TcpEvent e;
  e.kind = kind;
  e.sk = sk;
  e.role = role;
  e.tgid = tgid;
  e.local = local;
  e.remote = remote;
  e.ts_ns = ts;
  return e;
}

class TcpAggregatorTest : public ::testing::Test {
 protected:
  TcpAggregatorTest() : agg_(Options(), [](uint32_t tgid, std::string_view, uint64_t) {
    return tgid == 100 ? std::string("frontend") : tgid == 200 ? "backend" : "other";
  }) {}

  static NetworkOptions Options() {
    NetworkOptions o;
    o.connect_buckets = {0.001, 0.01, 1};
    o.rtt_buckets = {0.0001, 0.001};
    o.max_series = 8;
    o.max_connections = 4;
    o.series_ttl_ns = 60 * kSec;
    return o;
  }

  // Value of the series of `name` whose labels include all of `want`;
  // -1 if there is none.
  double Value(const std::string& name, const Labels& want) {
    for (const MetricFamily& f : agg_.Collect()) {
      std::string base = f.name;
      for (const ClientMetric& m : f.metric) {
        if (!HasLabels(m, want)) continue;
        if (name == base) {
          return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
        }
        if (name == base + "_count") return static_cast<double>(m.histogram.sample_count);
        if (name == base + "_sum") return m.histogram.sample_sum;
      }
    }
    return -1;
  }

  // One connection frontend(10.0.0.2:40000) -> backend(10.0.0.1:8080), seen
  // from both ends, established.
  void Connect(uint64_t client_sk = 1, uint64_t server_sk = 2, uint16_t client_port = 40000) {
    TcpEvent c = Event(TcpEventKind::kEstablished, client_sk, Role::kClient, 100,
                       Ep("10.0.0.2", client_port), Ep("10.0.0.1", 8080));
    c.value = 250000;  // 250 us handshake
    agg_.OnTcp(c);
    agg_.OnTcp(Event(TcpEventKind::kEstablished, server_sk, Role::kServer, 200,
                     Ep("10.0.0.1", 8080), Ep("10.0.0.2", client_port)));
  }

  TcpAggregator agg_;
  const Labels client_ = {{"side", "client"}, {"client", "frontend"}, {"server", "backend"},
                          {"server_port", "8080"}};
  const Labels server_ = {{"side", "server"}, {"client", "frontend"}, {"server", "backend"},
                          {"server_port", "8080"}};
};

TEST_F(TcpAggregatorTest, BothEndsNameEachOtherAndCountConnections) {
  Connect();
  EXPECT_EQ(Value("redmap_tcp_connections", client_), 1);
  EXPECT_EQ(Value("redmap_tcp_connections", server_), 1);
  EXPECT_EQ(Value("redmap_tcp_connect_duration_seconds_count", client_), 1);
  EXPECT_DOUBLE_EQ(Value("redmap_tcp_connect_duration_seconds_sum", client_), 0.00025);
  // The server never observes a handshake latency.
  EXPECT_EQ(Value("redmap_tcp_connect_duration_seconds_count", server_), -1);
}

TEST_F(TcpAggregatorTest, CloseCountsBytesAndRttAndReleasesTheConnection) {
  Connect();
  TcpEvent c = Event(TcpEventKind::kClosed, 1, Role::kClient, 100, Ep("10.0.0.2", 40000),
                     Ep("10.0.0.1", 8080));
  c.has_close_stats = true;
  c.value = 3000017;
  c.value2 = 1234;
  c.srtt_us = 50;
  agg_.OnTcp(c);
  EXPECT_EQ(Value("redmap_tcp_sent_bytes_total", client_), 3000017);
  EXPECT_EQ(Value("redmap_tcp_received_bytes_total", client_), 1234);
  EXPECT_EQ(Value("redmap_tcp_rtt_seconds_count", client_), 1);
  EXPECT_DOUBLE_EQ(Value("redmap_tcp_rtt_seconds_sum", client_), 0.00005);
  EXPECT_EQ(Value("redmap_tcp_connections", client_), 0);
  EXPECT_EQ(Value("redmap_tcp_connections", server_), 1);
  EXPECT_EQ(agg_.connections(), 1u);
}

TEST_F(TcpAggregatorTest, EventsWithoutOwnerFollowTheTrackedConnection) {
  Connect();
  // Retransmits fire in softirq: no tgid, but the socket is known.
  TcpEvent r = Event(TcpEventKind::kRetransmit, 2, Role::kUnknown, 0, Ep("10.0.0.1", 8080),
                     Ep("10.0.0.2", 40000));
  r.value = 3;  // one GSO skb of three segments
  agg_.OnTcp(r);
  Labels data = server_;
  data["kind"] = "data";
  EXPECT_EQ(Value("redmap_tcp_retransmits_total", data), 3);
}

TEST_F(TcpAggregatorTest, AResetAfterTheClientClosedStillNamesTheClient) {
  Connect();
  agg_.OnTcp(Event(TcpEventKind::kClosed, 1, Role::kClient, 100, Ep("10.0.0.2", 40000),
                   Ep("10.0.0.1", 8080)));
  agg_.OnTcp(Event(TcpEventKind::kClosed, 2, Role::kServer, 200, Ep("10.0.0.1", 8080),
                   Ep("10.0.0.2", 40000)));
  agg_.OnTcp(Event(TcpEventKind::kResetSent, 2, Role::kServer, 200, Ep("10.0.0.1", 8080),
                   Ep("10.0.0.2", 40000)));
  EXPECT_EQ(Value("redmap_tcp_resets_sent_total", server_), 1);
}

TEST_F(TcpAggregatorTest, FailedConnectsByReasonAndSynRetransmits) {
  for (int err : {ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ECONNRESET, 0, EACCES}) {
    TcpEvent f = Event(TcpEventKind::kConnectFailed, 9, Role::kClient, 100, Ep("10.0.0.2", 40001),
                       Ep("10.0.0.9", 81));
    f.error = err;
    agg_.OnTcp(f);
  }
  TcpEvent syn = Event(TcpEventKind::kRetransmit, 9, Role::kClient, 100, Ep("10.0.0.2", 40001),
                       Ep("10.0.0.9", 81));
  syn.retransmit = RetransmitKind::kSyn;
  syn.value = 1;
  agg_.OnTcp(syn);
  Labels edge = {{"side", "client"}, {"client", "frontend"}, {"server", "10.0.0.9"},
                 {"server_port", "81"}};
  for (const char* reason : {"refused", "timeout", "unreachable", "reset", "aborted", "other"}) {
    Labels l = edge;
    l["reason"] = reason;
    EXPECT_EQ(Value("redmap_tcp_connect_failures_total", l), 1) << reason;
  }
  Labels l = edge;
  l["kind"] = "syn";
  EXPECT_EQ(Value("redmap_tcp_retransmits_total", l), 1);
  l["kind"] = "data";
  EXPECT_EQ(Value("redmap_tcp_retransmits_total", l), 0);
}

TEST_F(TcpAggregatorTest, ServerNamedAtScrapeOnceItIsKnown) {
  // The client connects before redmap has seen the server accept anything.
  TcpEvent c = Event(TcpEventKind::kEstablished, 1, Role::kClient, 100, Ep("10.0.0.2", 40000),
                     Ep("10.0.0.1", 8080));
  agg_.OnTcp(c);
  Labels by_ip = client_;
  by_ip["server"] = "10.0.0.1";
  EXPECT_EQ(Value("redmap_tcp_connections", by_ip), 1);
  // Now it accepts: the same series moves under its name, nothing is lost.
  agg_.OnTcp(Event(TcpEventKind::kEstablished, 2, Role::kServer, 200, Ep("10.0.0.1", 8080),
                   Ep("10.0.0.2", 40000)));
  EXPECT_EQ(Value("redmap_tcp_connections", by_ip), -1);
  EXPECT_EQ(Value("redmap_tcp_connections", client_), 1);
}

TEST_F(TcpAggregatorTest, WildcardListenerNamesLocalAddressesOnly) {
  TcpEvent l = Event(TcpEventKind::kListen, 5, Role::kServer, 200, Ep("0.0.0.0", 9000),
                     Ep("0.0.0.0", 0));
  agg_.OnTcp(l);
  // To loopback: that is the local listener.
  agg_.OnTcp(Event(TcpEventKind::kEstablished, 1, Role::kClient, 100, Ep("127.0.0.1", 40000),
                   Ep("127.0.0.1", 9000)));
  // To a remote host on the same port: not ours.
  agg_.OnTcp(Event(TcpEventKind::kEstablished, 3, Role::kClient, 100, Ep("10.0.0.2", 40002),
                   Ep("192.0.2.7", 9000)));
  EXPECT_EQ(Value("redmap_tcp_connections", {{"server", "backend"}, {"server_port", "9000"}}), 1);
  EXPECT_EQ(Value("redmap_tcp_connections", {{"server", "192.0.2.7"}}), 1);
}

TEST_F(TcpAggregatorTest, ZeroWindowsByWhoseWindow) {
  Connect();
  agg_.OnTcp(Event(TcpEventKind::kZeroWindowLocal, 2, Role::kServer, 0, Ep("10.0.0.1", 8080),
                   Ep("10.0.0.2", 40000)));
  agg_.OnTcp(Event(TcpEventKind::kZeroWindowPeer, 1, Role::kClient, 0, Ep("10.0.0.2", 40000),
                   Ep("10.0.0.1", 8080)));
  Labels l = server_;
  l["window"] = "local";
  EXPECT_EQ(Value("redmap_tcp_zero_window_segments_total", l), 1);
  l["window"] = "peer";
  EXPECT_EQ(Value("redmap_tcp_zero_window_segments_total", l), 0);
  l = client_;
  l["window"] = "peer";
  EXPECT_EQ(Value("redmap_tcp_zero_window_segments_total", l), 1);
}

TEST_F(TcpAggregatorTest, ReusedSocketAddressReplacesTheOldConnection) {
  Connect(1, 2, 40000);
  // Socket memory 1 comes back as a new connection; the old close was lost.
  agg_.OnTcp(Event(TcpEventKind::kEstablished, 1, Role::kClient, 100, Ep("10.0.0.2", 40005),
                   Ep("10.0.0.1", 8080)));
  EXPECT_EQ(Value("redmap_tcp_connections", client_), 1);
  EXPECT_EQ(agg_.connections(), 2u);
}

TEST_F(TcpAggregatorTest, ConnectionTableAndEdgesAreBounded) {
  for (uint16_t i = 0; i < 20; ++i) {
    agg_.OnTcp(Event(TcpEventKind::kEstablished, 100 + i, Role::kClient, 100,
                     Ep("10.0.0.2", 40000 + i), Ep("192.0.2.1", 1000 + i)));
  }
  EXPECT_EQ(agg_.connections(), 4u);  // max_connections
  EXPECT_EQ(Value("redmap_tcp_connections_untracked_total", {}), 16);
  EXPECT_LE(agg_.edges(), 9u);  // max_series + the overflow edge
  EXPECT_GT(Value("redmap_tcp_edges_overflow_total", {}), 0);
}

TEST_F(TcpAggregatorTest, IdleEdgesWithoutConnectionsExpire) {
  Connect();
  agg_.OnTcp(Event(TcpEventKind::kConnectFailed, 9, Role::kClient, 100, Ep("10.0.0.2", 40001),
                   Ep("10.0.0.9", 81), 2 * kSec));
  agg_.Expire(200 * kSec);
  // The failed edge went; the edges with a live connection stay.
  EXPECT_EQ(Value("redmap_tcp_connect_failures_total", {{"server_port", "81"}}), -1);
  EXPECT_EQ(Value("redmap_tcp_connections", client_), 1);
  EXPECT_EQ(agg_.edges(), 2u);
}

// The labels of the first series of family `name` (a family's own name,
// not a _count/_bucket sample) whose labels include `want`; "missing" if none.
Labels SeriesLabels(const TcpAggregator& agg, const std::string& name, const Labels& want) {
  for (const MetricFamily& f : agg.Collect()) {
    if (f.name != name) continue;
    for (const ClientMetric& m : f.metric) {
      Labels have;
      for (const auto& l : m.label) have[l.name] = l.value;
      bool match = true;
      for (const auto& [k, v] : want) match &= have.count(k) == 1 && have[k] == v;
      if (match) return have;
    }
  }
  return {{"missing", name}};
}

double Scalar(const TcpAggregator& agg, const std::string& name) {
  for (const MetricFamily& f : agg.Collect()) {
    if (f.name == name && f.metric.size() == 1) {
      return f.type == prometheus::MetricType::Counter ? f.metric[0].counter.value
                                                       : f.metric[0].gauge.value;
    }
  }
  return -1;
}

TEST_F(TcpAggregatorTest, WithoutIdentitiesAnEdgeIsItsFourLabelsAndTheNode) {
  Connect();
  // Names only and no node: exactly the edge, as before identities.
  EXPECT_EQ(SeriesLabels(agg_, "redmap_tcp_connections", client_), client_);
  EXPECT_EQ(SeriesLabels(agg_, "redmap_tcp_connections", server_), server_);
  // The pipeline gives every series the observing node.
  NetworkOptions o = Options();
  o.node_name = "node-a";
  TcpAggregator agg(o, [](uint32_t, std::string_view comm, uint64_t) { return std::string(comm); });
  TcpEvent c = Event(TcpEventKind::kEstablished, 1, Role::kClient, 100, Ep("10.0.0.2", 40000),
                     Ep("10.0.0.1", 8080));
  c.process_name = "curl";
  agg.OnTcp(c);
  EXPECT_EQ(SeriesLabels(agg, "redmap_tcp_connections", {}),
            (Labels{{"side", "client"}, {"client", "curl"}, {"server", "10.0.0.1"},
                    {"server_port", "8080"}, {"k8s_node_name", "node-a"}}));
}

TEST_F(TcpAggregatorTest, DroppedLabelsAreLeftOutAndTheirSeriesMerge) {
  NetworkOptions o = Options();
  o.node_name = "node-a";
  o.drop_labels = {"server_port", "k8s_node_name", "side"};  // side cannot go: ignored
  TcpAggregator agg(o, [](uint32_t, std::string_view, uint64_t) { return std::string("curl"); });
  for (uint16_t port : {8080, 8081, 8082}) {
    agg.OnTcp(Event(TcpEventKind::kEstablished, port, Role::kClient, 100,
                    Ep("10.0.0.2", 40000 + port), Ep("10.0.0.1", port)));
  }
  const Labels edge = {{"side", "client"}, {"client", "curl"}, {"server", "10.0.0.1"}};
  EXPECT_EQ(SeriesLabels(agg, "redmap_tcp_connections", {}), edge);
  EXPECT_EQ(SeriesLabels(agg, "redmap_tcp_retransmits_total", {}),
            (Labels{{"side", "client"}, {"client", "curl"}, {"server", "10.0.0.1"},
                    {"kind", "data"}}))
      << "the family's own labels stay";
  // Three edges are tracked (and capped), one series is exported.
  EXPECT_EQ(agg.edges(), 3u);
  EXPECT_EQ(Scalar(agg, "redmap_tcp_edges"), 3);
  EXPECT_EQ(Scalar(agg, "redmap_tcp_edge_series"), 1);
  for (const MetricFamily& f : agg.Collect()) {
    if (f.name == "redmap_tcp_connections") {
      ASSERT_EQ(f.metric.size(), 1u);
      EXPECT_EQ(f.metric[0].gauge.value, 3);
    }
  }
  const std::vector<std::string> names = TcpLabelNames();
  EXPECT_EQ(names.size(), 12u);
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + kTcpEdgeLabels),
            (std::vector<std::string>{"side", "client", "server"}));
}

TEST_F(TcpAggregatorTest, OverflowEdgeHasNoIdentityLabels) {
  for (uint16_t i = 0; i < 12; ++i) {
    agg_.OnTcp(Event(TcpEventKind::kEstablished, 100 + i, Role::kClient, 100,
                     Ep("10.0.0.2", 40000 + i), Ep("192.0.2.1", 1000 + i)));
  }
  EXPECT_EQ(SeriesLabels(agg_, "redmap_tcp_connections", {{"client", "__overflow__"}}),
            (Labels{{"side", "client"}, {"client", "__overflow__"}, {"server", "__overflow__"},
                    {"server_port", "__overflow__"}}));
  EXPECT_EQ(Scalar(agg_, "redmap_tcp_edge_series"), 9);  // max_series + overflow
}

TEST_F(TcpAggregatorTest, ClosedEdgesOfAGoneProcessExpireWithTheirSeries) {
  Connect();
  EXPECT_EQ(Scalar(agg_, "redmap_tcp_edge_series"), 2);
  // The pod goes: both ends close, nothing updates the edges any more.
  agg_.OnTcp(Event(TcpEventKind::kClosed, 1, Role::kClient, 100, Ep("10.0.0.2", 40000),
                   Ep("10.0.0.1", 8080), 5 * kSec));
  agg_.OnTcp(Event(TcpEventKind::kClosed, 2, Role::kServer, 200, Ep("10.0.0.1", 8080),
                   Ep("10.0.0.2", 40000), 5 * kSec));
  agg_.Expire(5 * kSec + 60 * kSec);  // exactly the TTL: still there
  EXPECT_EQ(Value("redmap_tcp_connections", client_), 0);
  agg_.Expire(5 * kSec + 61 * kSec);
  EXPECT_EQ(Value("redmap_tcp_connections", client_), -1);
  EXPECT_EQ(Value("redmap_tcp_connections", server_), -1);
  EXPECT_EQ(Scalar(agg_, "redmap_tcp_edges"), 0);
  EXPECT_EQ(Scalar(agg_, "redmap_tcp_edge_series"), 0);
}

TEST(ConnectFailureReasonTest, MapsErrnos) {
  EXPECT_EQ(ConnectFailureReason(ECONNREFUSED), "refused");
  EXPECT_EQ(ConnectFailureReason(ETIMEDOUT), "timeout");
  EXPECT_EQ(ConnectFailureReason(ENETUNREACH), "unreachable");
  EXPECT_EQ(ConnectFailureReason(0), "aborted");
  EXPECT_EQ(ConnectFailureReason(12345), "other");
}

}  // namespace
}  // namespace redmap
