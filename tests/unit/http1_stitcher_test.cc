// HTTP/1 over a connection, through the ConnTracker: real message bytes
// (tests/fixtures/http1) cut into syscall-sized events the way the kernel
// side delivers them — truncated payloads, gaps, duplicates, pipelining.
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
    spans.back().process_name = {};  // only valid during the call
    names.emplace_back(s.process_name);
  }
  std::vector<Span> spans;
  std::vector<std::string> names;
};

// Builds events for one connection as seen from one process.
class Conn {
 public:
  Conn(ConnTracker* t, Role role, uint32_t fd = 5) : t_(t), role_(role) {
    key_ = ConnKey{100, static_cast<int32_t>(fd), 1};
    local_.addr = IpAddress::V4(0x0100007f);
    local_.port = role == Role::kServer ? 8080 : 40000;
    remote_.addr = IpAddress::V4(0x0100007f);
    remote_.port = role == Role::kServer ? 40000 : 8080;
  }

  // Sends `bytes` in direction d; only `captured` of them are known
  // (npos: all). Returns the event's exit time.
  uint64_t Send(Direction d, std::string_view bytes, size_t captured = std::string::npos,
                Role event_role = Role::kUnknown, uint32_t byte_count = 0) {
    DataEvent e;
    e.conn = key_;
    e.tid = 7;
    e.direction = d;
    e.protocol = Protocol::kHttp1;
    e.role = event_role == Role::kUnknown && !infer_role_ ? role_ : event_role;
    e.enter_ns = now_ += 1000;
    e.exit_ns = now_ += 1000;
    e.byte_count = byte_count ? byte_count : static_cast<uint32_t>(bytes.size());
    uint32_t& seq = d == Direction::kEgress ? egress_seq_ : ingress_seq_;
    e.tcp_seq = seq;
    e.has_tcp_seq = true;
    seq += e.byte_count;
    e.local = local_;
    e.remote = remote_;
    e.process_name = "testproc";
    e.payload = bytes.substr(0, std::min(captured, bytes.size()));
    t_->OnData(e);
    return e.exit_ns;
  }
  // A server reads requests and writes responses; a client the opposite.
  Direction RequestDir() const {
    return role_ == Role::kServer ? Direction::kIngress : Direction::kEgress;
  }
  Direction ResponseDir() const {
    return role_ == Role::kServer ? Direction::kEgress : Direction::kIngress;
  }
  uint64_t Request(std::string_view b, size_t captured = std::string::npos) {
    return Send(RequestDir(), b, captured);
  }
  uint64_t Response(std::string_view b, size_t captured = std::string::npos) {
    return Send(ResponseDir(), b, captured);
  }
  void Close() { t_->OnClose(CloseEvent{key_, now_}); }
  void SetSeqs(uint32_t egress, uint32_t ingress) {
    egress_seq_ = egress;
    ingress_seq_ = ingress;
  }
  void InferRole() { infer_role_ = true; }
  void Skip(Direction d, uint32_t n) { (d == Direction::kEgress ? egress_seq_ : ingress_seq_) += n; }

 private:
  ConnTracker* t_;
  Role role_;
  ConnKey key_;
  Endpoint local_, remote_;
  uint64_t now_ = 1'000'000;
  uint32_t egress_seq_ = 1000;
  uint32_t ingress_seq_ = 5000;
  bool infer_role_ = false;
};

class Http1StitcherTest : public ::testing::Test {
 protected:
  ConnTrackerOptions options_;
  SelfMetrics self_;
  Spans sink_;
  ConnTracker tracker_{options_, &sink_, &self_};
  std::string get_ = Fixture("http1/curl_get.req");
  std::string post_ = Fixture("http1/curl_post.req");
  std::string ok_ = Fixture("http1/nginx_200.resp");
  std::string not_found_ = Fixture("http1/nginx_404.resp");
  std::string chunked_ = Fixture("http1/chunked.resp");
};

TEST_F(Http1StitcherTest, ServerSideRequestResponse) {
  Conn c(&tracker_, Role::kServer);
  uint64_t req_exit = c.Request(get_);
  uint64_t resp_exit = c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  const Span& s = sink_.spans[0];
  EXPECT_EQ(s.side, Role::kServer);
  EXPECT_EQ(s.http.method, "GET");
  EXPECT_EQ(s.http.target, "/api/items/42?page=2");
  EXPECT_EQ(s.http.status, 200);
  // Server side: the request is seen when the read returns.
  EXPECT_EQ(s.start_ns, req_exit);
  EXPECT_EQ(s.end_ns, resp_exit);
  EXPECT_EQ(s.server.port, 8080);
  EXPECT_EQ(s.client.port, 40000);
  EXPECT_EQ(s.request_tcp_seq, 5000u);
  EXPECT_EQ(s.http.request_bytes, get_.size());
  EXPECT_EQ(s.http.response_bytes, ok_.size());
  EXPECT_EQ(sink_.names[0], "testproc");
  EXPECT_EQ(self_.spans(Protocol::kHttp1), 1u);
  EXPECT_EQ(self_.parse_errors(Protocol::kHttp1), 0u);
}

TEST_F(Http1StitcherTest, ClientSideTimingStartsAtWriteEntry) {
  Conn c(&tracker_, Role::kClient);
  uint64_t req_exit = c.Request(get_);
  c.Response(not_found_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].side, Role::kClient);
  EXPECT_EQ(sink_.spans[0].start_ns, req_exit - 1000);  // entry of the write
  EXPECT_EQ(sink_.spans[0].http.status, 404);
  EXPECT_EQ(sink_.spans[0].server.port, 8080);
}

TEST_F(Http1StitcherTest, KeepAliveSequence) {
  Conn c(&tracker_, Role::kServer);
  for (int i = 0; i < 5; ++i) {
    c.Request(get_);
    c.Response(i % 2 ? not_found_ : ok_);
  }
  ASSERT_EQ(sink_.spans.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(sink_.spans[i].http.status, i % 2 ? 404 : 200);
}

TEST_F(Http1StitcherTest, PipelinedInOneEvent) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_ + post_ + get_);
  c.Response(ok_ + not_found_ + ok_);
  ASSERT_EQ(sink_.spans.size(), 3u);
  EXPECT_EQ(sink_.spans[0].http.method, "GET");
  EXPECT_EQ(sink_.spans[1].http.method, "POST");
  EXPECT_EQ(sink_.spans[1].http.status, 404);
  EXPECT_EQ(sink_.spans[2].http.status, 200);
}

TEST_F(Http1StitcherTest, RequestBodyAcrossEvents) {
  Conn c(&tracker_, Role::kServer);
  size_t head = post_.size() - 11;
  c.Request(std::string_view(post_).substr(0, head));
  c.Request(std::string_view(post_).substr(head));
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].http.method, "POST");
  EXPECT_EQ(sink_.spans[0].http.request_bytes, post_.size());
}

TEST_F(Http1StitcherTest, HeadSplitAtEveryOffset) {
  for (size_t cut = 1; cut < get_.size(); ++cut) {
    Spans sink;
    SelfMetrics self;
    ConnTracker t(options_, &sink, &self);
    Conn c(&t, Role::kServer);
    c.Request(std::string_view(get_).substr(0, cut));
    c.Request(std::string_view(get_).substr(cut));
    c.Response(std::string_view(ok_).substr(0, cut % ok_.size()));
    c.Response(std::string_view(ok_).substr(cut % ok_.size()));
    ASSERT_EQ(sink.spans.size(), 1u) << "cut " << cut;
    EXPECT_EQ(sink.spans[0].http.target, "/api/items/42?page=2");
    EXPECT_EQ(sink.spans[0].http.status, 200);
    EXPECT_EQ(self.parse_errors(Protocol::kHttp1), 0u);
  }
}

TEST_F(Http1StitcherTest, ChunkedResponseSplitAtEveryOffset) {
  for (size_t cut = 0; cut <= chunked_.size(); ++cut) {
    Spans sink;
    SelfMetrics self;
    ConnTracker t(options_, &sink, &self);
    Conn c(&t, Role::kServer);
    c.Request(get_);
    c.Response(std::string_view(chunked_).substr(0, cut));
    uint64_t last = c.Response(std::string_view(chunked_).substr(cut));
    // The next exchange proves framing ended exactly at the 0-chunk.
    c.Request(get_);
    c.Response(ok_);
    ASSERT_EQ(sink.spans.size(), 2u) << "cut " << cut;
    EXPECT_EQ(sink.spans[0].end_ns, cut == chunked_.size() ? last - 2000 : last) << cut;
    EXPECT_EQ(sink.spans[0].http.response_bytes, chunked_.size()) << cut;
    EXPECT_EQ(sink.spans[1].http.status, 200);
    EXPECT_EQ(self.parse_errors(Protocol::kHttp1), 0u) << cut;
  }
}

TEST_F(Http1StitcherTest, TruncatedCaptureAtEveryOffset) {
  // The kernel copies only a prefix of each syscall's bytes: whatever the
  // prefix, nothing crashes, and once the start line is known the span has
  // its method/target and status.
  const size_t req_line = get_.find('\n') + 1;
  const size_t status_line = ok_.find('\n') + 1;
  for (size_t k = 0; k <= get_.size(); ++k) {
    Spans sink;
    SelfMetrics self;
    ConnTracker t(options_, &sink, &self);
    Conn c(&t, Role::kServer);
    c.Request(get_, k);
    c.Response(ok_);
    if (k >= req_line) {
      ASSERT_EQ(sink.spans.size(), 1u) << k;
      EXPECT_EQ(sink.spans[0].http.target, "/api/items/42?page=2");
    } else {
      EXPECT_EQ(sink.spans.size(), 0u) << k;
    }
  }
  for (size_t k = 0; k <= ok_.size(); ++k) {
    Spans sink;
    SelfMetrics self;
    ConnTracker t(options_, &sink, &self);
    Conn c(&t, Role::kServer);
    c.Request(get_);
    c.Response(ok_, k);
    c.Close();
    if (k >= status_line) {
      ASSERT_EQ(sink.spans.size(), 1u) << k;
      EXPECT_EQ(sink.spans[0].http.status, 200);
    } else {
      EXPECT_EQ(sink.spans.size(), 0u) << k;
    }
  }
}

TEST_F(Http1StitcherTest, TruncatedChunkedFramingRecoversAtNextResponse) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  c.Response(chunked_, 150);  // chunk sizes beyond the first 150 bytes unknown
  c.Request(get_);
  uint64_t end = c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[0].http.status, 200);
  EXPECT_EQ(sink_.spans[1].end_ns, end);
}

TEST_F(Http1StitcherTest, LargeBodySentWithoutCapture) {
  // Head written with writev, body by sendfile: the body's bytes are all gap.
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 4194307\r\n\r\n";
  c.Response(head);
  c.Send(Direction::kEgress, "", 0, Role::kUnknown, 2000000);
  EXPECT_TRUE(sink_.spans.empty());
  uint64_t end = c.Send(Direction::kEgress, "", 0, Role::kUnknown, 2194307);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].end_ns, end);
  EXPECT_EQ(sink_.spans[0].http.response_bytes, head.size() + 4194307);
}

TEST_F(Http1StitcherTest, PositionJumpIsAGapNotCorruption) {
  // Bytes the kernel never reported (splice, a dropped event) show up as a
  // jump in tcp_seq: the body is skipped by position.
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  c.Response(head);
  c.Skip(Direction::kEgress, 100);
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[1].http.status, 200);
}

TEST_F(Http1StitcherTest, DuplicateEventsAreIgnored) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  c.Response(ok_);
  // Same stream positions again (a retransmit seen twice in a capture).
  c.SetSeqs(1000, 5000);
  c.Request(get_);
  c.Response(ok_);
  EXPECT_EQ(sink_.spans.size(), 1u);
}

TEST_F(Http1StitcherTest, SequenceWrapAround) {
  Conn c(&tracker_, Role::kServer);
  c.SetSeqs(0xffffffff - 20, 0xffffffff - 30);
  for (int i = 0; i < 3; ++i) {
    c.Request(get_);
    c.Response(ok_);
  }
  ASSERT_EQ(sink_.spans.size(), 3u);
  EXPECT_EQ(sink_.spans[1].request_tcp_seq, static_cast<uint32_t>(0xffffffff - 30 + get_.size()));
}

TEST_F(Http1StitcherTest, GarbageResyncsAndCountsOnce) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  c.Response(ok_);
  c.Request("\x16\x03\x01 not http at all \x00\x01");
  c.Request("more garbage");
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(self_.parse_errors(Protocol::kHttp1), 1u);
}

TEST_F(Http1StitcherTest, InterimAndBodylessResponses) {
  Conn c(&tracker_, Role::kServer);
  c.Request("POST /upload HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  c.Response("HTTP/1.1 100 Continue\r\n\r\n");
  c.Request("abc");
  c.Response("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  c.Request("HEAD /x HTTP/1.1\r\n\r\n");
  c.Response("HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n");  // no body after HEAD
  c.Request("GET /y HTTP/1.1\r\n\r\n");
  c.Response("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n");
  c.Request("GET /z HTTP/1.1\r\n\r\n");
  c.Response("HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_EQ(sink_.spans.size(), 4u);
  EXPECT_EQ(sink_.spans[0].http.status, 201);
  EXPECT_EQ(sink_.spans[1].http.method, "HEAD");
  EXPECT_EQ(sink_.spans[2].http.status, 304);
  EXPECT_EQ(sink_.spans[3].http.status, 204);
}

TEST_F(Http1StitcherTest, ResponseUntilCloseEndsAtClose) {
  Conn c(&tracker_, Role::kClient);
  c.Request(get_);
  c.Response("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome");
  uint64_t last = c.Response(" more body");
  EXPECT_TRUE(sink_.spans.empty());
  c.Close();
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].end_ns, last);
  EXPECT_EQ(tracker_.connections(), 0u);
}

TEST_F(Http1StitcherTest, RoleInferredWhenKernelDidNotKnow) {
  Conn c(&tracker_, Role::kClient);
  c.InferRole();
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].side, Role::kClient);
}

TEST_F(Http1StitcherTest, MidStreamStartWaitsForAMessageStart) {
  // redmap started while a response body was in flight.
  Conn c(&tracker_, Role::kClient);
  c.Response("tail of an earlier body");
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(self_.parse_errors(Protocol::kHttp1), 0u);
}

TEST(ConnTrackerTest, BoundedTableEvictsLeastRecentlyUsed) {
  ConnTrackerOptions options;
  options.max_connections = 2;
  SelfMetrics self;
  Spans sink;
  ConnTracker t(options, &sink, &self);
  std::string get = Fixture("http1/curl_get.req");
  Conn a(&t, Role::kServer, 1), b(&t, Role::kServer, 2), c(&t, Role::kServer, 3);
  a.Request(get);
  b.Request(get);
  a.Request(get);  // a is now more recent than b
  c.Request(get);  // evicts b
  EXPECT_EQ(t.connections(), 2u);
  EXPECT_EQ(self.dropped(DropReason::kConnTableFull), 1u);
}

TEST(ConnTrackerTest, IdleConnectionsExpire) {
  ConnTrackerOptions options;
  options.idle_timeout_ns = 1'000'000'000;
  SelfMetrics self;
  Spans sink;
  ConnTracker t(options, &sink, &self);
  Conn a(&t, Role::kServer, 1);
  a.Request(Fixture("http1/curl_get.req"));
  t.ExpireIdle(1'500'000'000);  // last event at ~1 ms: still within 1 s? no: 1.5 s - 1 s > 1 ms
  EXPECT_EQ(t.connections(), 0u);
  Conn b(&t, Role::kServer, 2);
  b.Request(Fixture("http1/curl_get.req"));
  t.ExpireIdle(500'000'000);
  EXPECT_EQ(t.connections(), 1u);
}

TEST(ConnTrackerTest, PendingRequestsAreBounded) {
  ConnTrackerOptions options;
  SelfMetrics self;
  Spans sink;
  ConnTracker t(options, &sink, &self);
  Conn a(&t, Role::kServer, 1);
  std::string get = Fixture("http1/curl_get.req");
  for (int i = 0; i < 200; ++i) a.Request(get);
  EXPECT_GT(self.parse_errors(Protocol::kHttp1), 0u);  // the oldest were dropped and counted
  a.Response(Fixture("http1/nginx_200.resp"));
  EXPECT_EQ(sink.spans.size(), 1u);
}

}  // namespace
}  // namespace redmap
