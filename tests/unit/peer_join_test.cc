// Parse once when both ends are local: the client end's spans built from
// the server end's parse, through the ConnTracker, with the event orders the
// kernel side can produce (aggregators/conntrack/peer_join.h).
#include "aggregators/conntrack/peer_join.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "aggregators/conntrack/conn_tracker.h"
#include "aggregators/self/self_metrics.h"
#include "tests/testlib/fixtures.h"

namespace redmap {
namespace {

using ::redmap::testing::Fixture;

class Spans : public SpanSink {
 public:
  void OnSpan(const Span& s) override {
    spans.push_back(s);
    request_heads.emplace_back(s.request_head);
  }
  std::vector<Span> spans;
  std::vector<std::string> request_heads;
};

constexpr uint32_t kRequestSeq = 0xfffffff0;  // wraps inside the first request
constexpr uint32_t kResponseSeq = 5000;

class PeerJoinTest : public ::testing::Test {
 protected:
  // An event of the client end (curl, 127.0.0.1:50000 -> :80) or of the
  // server end (nginx), at stream position seq of its direction.
  DataEvent Client(Direction d, uint32_t seq, std::string_view payload, uint32_t bytes, uint64_t t,
                   bool peer_parses) {
    DataEvent e = Base(d, seq, payload, bytes, t);
    e.conn = ConnKey{10, 3, 1};
    e.tid = 11;
    e.role = Role::kClient;
    e.local = endpoint_a_;
    e.remote = endpoint_b_;
    e.process_name = "curl";
    e.peer_parses = peer_parses;
    return e;
  }
  // The same end's write or read from a compact record (redmap_peer_event):
  // no endpoints, cgroup or process name.
  DataEvent Compact(Direction d, uint32_t seq, uint32_t bytes, uint64_t t) {
    DataEvent e = Client(d, seq, "", bytes, t, true);
    e.exit_ns = e.enter_ns;
    e.local = e.remote = Endpoint{};
    e.process_name = {};
    e.compact = true;
    return e;
  }
  DataEvent Server(Direction d, uint32_t seq, std::string_view payload, uint64_t t) {
    DataEvent e = Base(d, seq, payload, static_cast<uint32_t>(payload.size()), t);
    e.conn = ConnKey{20, 7, 2};
    e.tid = 21;
    e.role = Role::kServer;
    e.local = endpoint_b_;
    e.remote = endpoint_a_;
    e.process_name = "nginx";
    e.peer_local = true;
    return e;
  }
  static DataEvent Base(Direction d, uint32_t seq, std::string_view payload, uint32_t bytes,
                        uint64_t t) {
    DataEvent e;
    e.direction = d;
    e.protocol = Protocol::kHttp1;
    e.enter_ns = t;
    e.exit_ns = t + 100;
    e.byte_count = bytes;
    e.tcp_seq = seq;
    e.has_tcp_seq = true;
    e.payload = payload;
    return e;
  }
  const Span* Side(Role side, size_t nth = 0) const {
    for (const Span& s : sink_.spans) {
      if (s.side == side && nth-- == 0) return &s;
    }
    return nullptr;
  }
  uint32_t ReqBytes() const { return static_cast<uint32_t>(get_.size()); }
  uint32_t RespBytes() const { return static_cast<uint32_t>(ok_.size()); }

  Endpoint endpoint_a_{IpAddress::V4(0x0100007f), 50000};
  Endpoint endpoint_b_{IpAddress::V4(0x0100007f), 80};
  std::string get_ = Fixture("http1/curl_get.req");
  std::string ok_ = Fixture("http1/nginx_200.resp");
  SelfMetrics self_;
  Spans sink_;
};

TEST_F(PeerJoinTest, ClientSpanComesFromTheServerParseWithClientTimes) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  // The client's first write is copied (the kernel infers the protocol from
  // it); its read afterwards is not.
  t.OnData(Client(Direction::kEgress, kRequestSeq, get_, ReqBytes(), 1000, false));
  t.OnData(Server(Direction::kIngress, kRequestSeq, get_, 2000));
  t.OnData(Server(Direction::kEgress, kResponseSeq, ok_, 3000));
  ASSERT_EQ(sink_.spans.size(), 1u);  // the client end has not read it yet
  t.OnData(Client(Direction::kIngress, kResponseSeq, "", RespBytes(), 4000, true));
  ASSERT_EQ(sink_.spans.size(), 2u);
  const Span* server = Side(Role::kServer);
  const Span* client = Side(Role::kClient);
  ASSERT_NE(server, nullptr);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(server->start_ns, 2100u);
  EXPECT_EQ(server->end_ns, 3100u);
  EXPECT_EQ(client->start_ns, 1000u);  // the write's start
  EXPECT_EQ(client->end_ns, 4100u);    // the read's return
  EXPECT_EQ(client->tid, 11u);
  EXPECT_EQ(client->conn, (ConnKey{10, 3, 1}));
  EXPECT_EQ(client->client, endpoint_a_);
  EXPECT_EQ(client->server, endpoint_b_);
  EXPECT_EQ(client->http.method, "GET");
  EXPECT_EQ(client->http.target, server->http.target);
  EXPECT_EQ(client->http.status, 200);
  EXPECT_EQ(client->http.request_bytes, get_.size());
  EXPECT_EQ(client->http.response_bytes, ok_.size());
  EXPECT_EQ(client->request_tcp_seq, kRequestSeq);
  EXPECT_EQ(client->response_tcp_seq, kResponseSeq);
  EXPECT_EQ(sink_.request_heads[1], sink_.request_heads[0]);  // the same head, for traces
  EXPECT_EQ(self_.spans(Protocol::kHttp1), 2u);
  EXPECT_EQ(self_.peer_spans(), 1u);
  EXPECT_EQ(self_.dropped(DropReason::kPeerUnmatched), 0u);
}

TEST_F(PeerJoinTest, CompactEventsOfAKnownConnectionMakeTheSameSpan) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  // Keep-alive: the first request's write is a full event, everything
  // after it comes compact, each read with the write before it.
  t.OnData(Client(Direction::kEgress, kRequestSeq, get_, ReqBytes(), 1000, false));
  t.OnData(Server(Direction::kIngress, kRequestSeq, get_, 2000));
  t.OnData(Server(Direction::kEgress, kResponseSeq, ok_, 3000));
  t.OnData(Compact(Direction::kIngress, kResponseSeq, RespBytes(), 4000));
  t.OnData(Compact(Direction::kEgress, kRequestSeq + ReqBytes(), ReqBytes(), 5000));
  t.OnData(Server(Direction::kIngress, kRequestSeq + ReqBytes(), get_, 6000));
  t.OnData(Server(Direction::kEgress, kResponseSeq + RespBytes(), ok_, 7000));
  t.OnData(Compact(Direction::kIngress, kResponseSeq + RespBytes(), RespBytes(), 8000));
  ASSERT_NE(Side(Role::kClient, 1), nullptr);
  for (int i = 0; i < 2; ++i) {
    const Span* client = Side(Role::kClient, i);
    EXPECT_EQ(client->start_ns, 1000u + 4000u * i);
    EXPECT_EQ(client->end_ns, 4000u + 4000u * i);
    EXPECT_EQ(client->client, endpoint_a_);  // from the connection's first event
    EXPECT_EQ(client->process_name, "curl");
    EXPECT_EQ(client->http.status, 200);
  }
  EXPECT_EQ(self_.peer_spans(), 2u);
  EXPECT_EQ(self_.dropped(DropReason::kPeerUnmatched), 0u);
}

TEST_F(PeerJoinTest, ACompactEventOfAnUnknownConnectionIsDroppedAndCounted) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  t.OnData(Compact(Direction::kIngress, kResponseSeq, RespBytes(), 4000));
  EXPECT_EQ(t.connections(), 0u);  // not made from an event without endpoints
  EXPECT_EQ(self_.dropped(DropReason::kPeerUnmatched), 1u);
  // Nor is one of a connection the tracker took for unpaired (its first read
  // came with bytes): there is nothing to parse.
  t.OnData(Client(Direction::kEgress, kRequestSeq, get_, ReqBytes(), 1000, false));
  t.OnData(Client(Direction::kIngress, kResponseSeq, ok_, RespBytes(), 2000, false));
  t.OnData(Compact(Direction::kIngress, kResponseSeq + RespBytes(), RespBytes(), 3000));
  EXPECT_EQ(self_.dropped(DropReason::kPeerUnmatched), 2u);
  EXPECT_EQ(self_.spans(Protocol::kHttp1), 1u);  // the unpaired end's own span
}

TEST_F(PeerJoinTest, TheClientsReadMayReturnBeforeTheServersWrite) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  t.OnData(Client(Direction::kEgress, kRequestSeq, get_, ReqBytes(), 1000, false));
  t.OnData(Server(Direction::kIngress, kRequestSeq, get_, 2000));
  // The response is read in two parts, the first before the server's write
  // returned.
  t.OnData(Client(Direction::kIngress, kResponseSeq, "", 10, 2900, true));
  t.OnData(Client(Direction::kIngress, kResponseSeq + 10, "", RespBytes() - 10, 2950, true));
  t.OnData(Server(Direction::kEgress, kResponseSeq, ok_, 3000));
  ASSERT_EQ(sink_.spans.size(), 2u);
  const Span* client = Side(Role::kClient);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->start_ns, 1000u);
  EXPECT_EQ(client->end_ns, 3050u);  // the read that held the last byte
}

TEST_F(PeerJoinTest, KeepAliveRequestsAndAPipelinedPair) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  const std::string two_gets = get_ + get_, two_oks = ok_ + ok_;
  uint32_t req = kRequestSeq, resp = kResponseSeq;
  t.OnData(Client(Direction::kEgress, req, get_, ReqBytes(), 1000, false));
  t.OnData(Server(Direction::kIngress, req, get_, 1100));
  t.OnData(Server(Direction::kEgress, resp, ok_, 1200));
  t.OnData(Client(Direction::kIngress, resp, "", RespBytes(), 1300, true));
  req += ReqBytes();
  resp += RespBytes();
  // Two requests in one write, their responses in one read.
  t.OnData(Client(Direction::kEgress, req, "", 2 * ReqBytes(), 2000, true));
  t.OnData(Server(Direction::kIngress, req, two_gets, 2100));
  t.OnData(Server(Direction::kEgress, resp, two_oks, 2200));
  t.OnData(Client(Direction::kIngress, resp, "", 2 * RespBytes(), 2300, true));
  ASSERT_EQ(sink_.spans.size(), 6u);
  EXPECT_EQ(self_.peer_spans(), 3u);
  const Span* second = Side(Role::kClient, 1);
  const Span* third = Side(Role::kClient, 2);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(second->start_ns, 2000u);
  EXPECT_EQ(second->end_ns, 2400u);
  EXPECT_EQ(second->request_tcp_seq, req);
  EXPECT_EQ(third->start_ns, 2000u);
  EXPECT_EQ(third->end_ns, 2400u);
  EXPECT_EQ(third->request_tcp_seq, req + ReqBytes());
  EXPECT_EQ(self_.dropped(DropReason::kPeerUnmatched), 0u);
}

TEST_F(PeerJoinTest, AClientEndTheKernelCopiesIsParsedAsUsual) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  DataEvent server_in = Server(Direction::kIngress, kRequestSeq, get_, 2000);
  DataEvent server_out = Server(Direction::kEgress, kResponseSeq, ok_, 3000);
  server_in.peer_local = server_out.peer_local = false;  // not a pair
  t.OnData(Client(Direction::kEgress, kRequestSeq, get_, ReqBytes(), 1000, false));
  t.OnData(server_in);
  t.OnData(server_out);
  t.OnData(Client(Direction::kIngress, kResponseSeq, ok_, RespBytes(), 4000, false));
  ASSERT_EQ(sink_.spans.size(), 2u);
  const Span* client = Side(Role::kClient);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->end_ns, 4100u);
  EXPECT_EQ(client->http.status, 200);
  EXPECT_EQ(self_.peer_spans(), 0u);
}

TEST_F(PeerJoinTest, UnclaimedSpansAreCountedWhenTheClientEnds) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  t.OnData(Client(Direction::kEgress, kRequestSeq, get_, ReqBytes(), 1000, false));
  t.OnData(Client(Direction::kIngress, kResponseSeq - 5, "", 5, 1050, true));  // paired
  t.OnData(Server(Direction::kIngress, kRequestSeq, get_, 2000));
  t.OnData(Server(Direction::kEgress, kResponseSeq, ok_, 3000));
  // The client closes without reading the response.
  t.OnClose(CloseEvent{ConnKey{10, 3, 1}, 5000});
  EXPECT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(self_.dropped(DropReason::kPeerUnmatched), 1u);
}

TEST_F(PeerJoinTest, SpansWhosePositionsWereNotSeenAreDropped) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  // The client end's events start after the request (redmap came late, or
  // the event was lost): that span can never be matched, the next one can.
  t.OnData(Client(Direction::kEgress, kRequestSeq + ReqBytes(), "", ReqBytes(), 1000, true));
  t.OnData(Server(Direction::kIngress, kRequestSeq, get_ + get_, 2000));
  t.OnData(Server(Direction::kEgress, kResponseSeq, ok_ + ok_, 3000));
  t.OnData(Client(Direction::kIngress, kResponseSeq, "", 2 * RespBytes(), 4000, true));
  EXPECT_EQ(self_.dropped(DropReason::kPeerUnmatched), 1u);
  ASSERT_NE(Side(Role::kClient), nullptr);
  EXPECT_EQ(Side(Role::kClient)->request_tcp_seq, kRequestSeq + ReqBytes());
  EXPECT_EQ(self_.peer_spans(), 1u);
}

TEST_F(PeerJoinTest, ANewConnectionOnTheSamePortsKeepsItsPairing) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  // An earlier connection on the same ports, paired, still in the table (its
  // process exited without close()).
  DataEvent old_read = Client(Direction::kIngress, 100, "", 5, 500, true);
  old_read.conn = ConnKey{9, 3, 0};
  t.OnData(old_read);
  t.OnData(Client(Direction::kEgress, kRequestSeq, get_, ReqBytes(), 1000, false));
  t.OnData(Client(Direction::kIngress, kResponseSeq - 5, "", 5, 1050, true));
  t.OnClose(CloseEvent{ConnKey{9, 3, 0}, 1060});  // the old one ends after the new one paired
  t.OnData(Server(Direction::kIngress, kRequestSeq, get_, 2000));
  t.OnData(Server(Direction::kEgress, kResponseSeq, ok_, 3000));
  t.OnData(Client(Direction::kIngress, kResponseSeq, "", RespBytes(), 4000, true));
  ASSERT_NE(Side(Role::kClient), nullptr);
  EXPECT_EQ(Side(Role::kClient)->conn, (ConnKey{10, 3, 1}));
  EXPECT_EQ(self_.peer_spans(), 1u);
}

double Gauge(const SelfMetrics& self, const std::string& name) {
  for (const auto& f : self.Collect()) {
    if (f.name == name && !f.metric.empty()) return f.metric[0].gauge.value;
  }
  return -1;
}

TEST_F(PeerJoinTest, StashedSpansOfAClientThatNeverShowsAreCountedAtHousekeeping) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  EXPECT_EQ(Gauge(self_, "redmap_peer_stash_entries_limit"), PeerStash::kMaxStashed);
  // The server end's span arrives; its client end's events never do.
  t.OnData(Server(Direction::kIngress, kRequestSeq, get_, 2000));
  t.OnData(Server(Direction::kEgress, kResponseSeq, ok_, 3000));
  EXPECT_EQ(Gauge(self_, "redmap_peer_stash_entries"), 1);
  t.ExpireIdle(3100 + PeerStash::kMaxAgeNs - 1);  // not yet 10 s old
  EXPECT_EQ(Gauge(self_, "redmap_peer_stash_entries"), 1);
  EXPECT_EQ(self_.dropped(DropReason::kPeerUnmatched), 0u);
  t.ExpireIdle(3100 + PeerStash::kMaxAgeNs + 1);
  EXPECT_EQ(Gauge(self_, "redmap_peer_stash_entries"), 0);
  EXPECT_EQ(self_.dropped(DropReason::kPeerUnmatched), 1u);
}

TEST(PeerStashTest, BoundedAndAgedOut) {
  PeerStash stash;
  Span server;
  server.side = Role::kServer;
  server.end_ns = 1000;
  const PeerKey a{Endpoint{IpAddress::V4(1), 1}, Endpoint{IpAddress::V4(2), 2}};
  const PeerKey b{Endpoint{IpAddress::V4(1), 3}, Endpoint{IpAddress::V4(2), 2}};
  EXPECT_TRUE(stash.Put(a, server, true));
  for (size_t i = 1; i < PeerStash::kMaxStashed; ++i) EXPECT_TRUE(stash.Put(b, server, false));
  EXPECT_FALSE(stash.Put(b, server, false));  // full: the oldest (a's) goes
  EXPECT_EQ(stash.size(), PeerStash::kMaxStashed);
  PeerClient client;
  EXPECT_EQ(stash.Take(a, 2000, &client), 0u);
  EXPECT_EQ(client.waiting(), 0u);
  // b's spans are too old for a client seen 10 s later.
  EXPECT_EQ(stash.Take(b, 1000 + PeerStash::kMaxAgeNs + 1, &client), PeerStash::kMaxStashed);
  EXPECT_EQ(stash.size(), 0u);
}

}  // namespace
}  // namespace redmap
