// HTTP/1 over a connection, through the ConnTracker: real bytes
// (tests/fixtures/http1, see README.md there: curl 7.88.1, nginx 1.22.1,
// Python 3.11.7) cut into syscall-sized events the way the kernel side
// delivers them: truncated payloads, gaps, duplicates, pipelining.
#include "aggregators/protocols/http1/http1_stitcher.h"

#include <gtest/gtest.h>

#include <algorithm>
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

// Events of one connection as seen from one process.
class Conn {
 public:
  Conn(ConnTracker* t, Role role, int32_t fd = 5) : t_(t), role_(role) {
    key_ = ConnKey{100, fd, 1};
    local_.addr = IpAddress::V4(0x0100007f);
    local_.port = role == Role::kServer ? 8080 : 40000;
    remote_.addr = IpAddress::V4(0x0200007f);
    remote_.port = role == Role::kServer ? 40000 : 8080;
  }

  struct Sent {
    uint64_t enter_ns, exit_ns;
    uint32_t tid, seq;
  };
  // Moves `bytes` in direction d; only the first `captured` are known
  // (npos: all). byte_count > bytes.size() adds uncaptured bytes.
  Sent Send(Direction d, std::string_view bytes, size_t captured = std::string::npos,
            uint32_t byte_count = 0) {
    DataEvent e;
    e.conn = key_;
    e.tid = ++tid_;
    e.direction = d;
    e.protocol = Protocol::kHttp1;
    e.role = infer_role_ ? Role::kUnknown : role_;
    e.enter_ns = now_ += 1000;
    e.exit_ns = now_ += 500;
    e.byte_count = byte_count ? byte_count : static_cast<uint32_t>(bytes.size());
    uint32_t& seq = d == Direction::kEgress ? egress_seq_ : ingress_seq_;
    e.tcp_seq = use_seq_ ? seq : 0;
    e.has_tcp_seq = use_seq_;
    seq += e.byte_count;
    e.local = local_;
    e.remote = remote_;
    e.process_name = "testproc";
    e.payload = bytes.substr(0, std::min(captured, bytes.size()));
    t_->OnData(e);
    return Sent{e.enter_ns, e.exit_ns, e.tid, e.tcp_seq};
  }
  Direction RequestDir() const {
    return role_ == Role::kServer ? Direction::kIngress : Direction::kEgress;
  }
  Direction ResponseDir() const {
    return role_ == Role::kServer ? Direction::kEgress : Direction::kIngress;
  }
  Sent Request(std::string_view b, size_t captured = std::string::npos, uint32_t count = 0) {
    return Send(RequestDir(), b, captured, count);
  }
  Sent Response(std::string_view b, size_t captured = std::string::npos, uint32_t count = 0) {
    return Send(ResponseDir(), b, captured, count);
  }
  void Close() { t_->OnClose(CloseEvent{key_, now_}); }
  void SetSeqs(uint32_t egress, uint32_t ingress) {
    egress_seq_ = egress;
    ingress_seq_ = ingress;
  }
  // Bytes that move without any event (splice, a lost ring-buffer record).
  void Skip(Direction d, uint32_t n) {
    (d == Direction::kEgress ? egress_seq_ : ingress_seq_) += n;
  }
  void InferRole() { infer_role_ = true; }
  void NoSeq() { use_seq_ = false; }

 private:
  ConnTracker* t_;
  Role role_;
  ConnKey key_;
  Endpoint local_, remote_;
  uint64_t now_ = 1'000'000;
  uint32_t tid_ = 0;
  uint32_t egress_seq_ = 1000;
  uint32_t ingress_seq_ = 5000;
  bool infer_role_ = false;
  bool use_seq_ = true;
};

// Splits a recorded direction into its messages, at the starts of lines
// that begin a message (the fixtures' bodies hold no such lines).
std::vector<std::string> SplitMessages(const std::string& stream, bool requests) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < stream.size(); ++i) {
    if (i > 0 && stream[i - 1] != '\n') continue;
    std::string_view rest = std::string_view(stream).substr(i);
    bool start = false;
    if (requests) {
      for (std::string_view m : {"GET /", "POST /", "HEAD /"})
        start |= rest.substr(0, m.size()) == m;
    } else {
      start = rest.substr(0, 9) == "HTTP/1.1 " || rest.substr(0, 9) == "HTTP/1.0 ";
    }
    if (start) starts.push_back(i);
  }
  std::vector<std::string> out;
  for (size_t k = 0; k < starts.size(); ++k) {
    size_t end = k + 1 < starts.size() ? starts[k + 1] : stream.size();
    out.push_back(stream.substr(starts[k], end - starts[k]));
  }
  return out;
}

int StatusOf(const std::string& response) { return std::stoi(response.substr(9, 3)); }
size_t HeadLength(const std::string& m) { return m.find("\r\n\r\n") + 4; }
size_t StartLineLength(const std::string& m) { return m.find('\n') + 1; }

struct Expected {
  std::string method;
  std::string target;
  int status;
};

// A recorded conversation: requests and, for each, its responses (interim
// ones first).
struct Conversation {
  std::string name;
  std::vector<std::string> requests;
  std::vector<std::vector<std::string>> responses;
  std::vector<Expected> expected;
};

Conversation Load(const std::string& name, std::vector<Expected> expected) {
  Conversation c;
  c.name = name;
  c.requests = SplitMessages(Fixture("http1/" + name + ".c2s"), true);
  std::vector<std::string> resp = SplitMessages(Fixture("http1/" + name + ".s2c"), false);
  size_t r = 0;
  for (size_t i = 0; i < c.requests.size(); ++i) {
    c.responses.emplace_back();
    while (r < resp.size()) {
      c.responses.back().push_back(resp[r]);
      if (StatusOf(resp[r++]) >= 200) break;
    }
  }
  c.expected = std::move(expected);
  return c;
}

std::vector<Conversation> Conversations() {
  return {
      Load("nginx_keepalive",
           {{"GET", "/ok", 200}, {"GET", "/missing", 404}, {"GET", "/static/hello.txt", 200}}),
      Load("nginx_bodyless", {{"HEAD", "/static/hello.txt", 200},
                              {"GET", "/static/hello.txt", 304},
                              {"GET", "/empty", 204},
                              {"GET", "/ok", 200}}),
      Load("nginx_ssi_chunked", {{"GET", "/ssi/page.html", 200}}),
      Load("nginx_gzip_chunked", {{"GET", "/static/words.txt", 200}}),
      Load("nginx_pipelined", {{"GET", "/ok", 200},
                               {"GET", "/missing", 404},
                               {"GET", "/empty", 204},
                               {"GET", "/ok", 200}}),
      Load("curl_chunked_upload", {{"POST", "/ok", 200}}),
      Load("python_100_continue", {{"POST", "/upload", 201}}),
      Load("nginx_http10_until_close", {{"GET", "/ssi/page.html", 200}}),
      Load("python_until_close", {{"GET", "/stream", 200}}),
  };
}

class ConversationTest : public ::testing::TestWithParam<Role> {};

// How the events of an exchange are cut.
struct Cut {
  size_t split_at = 0;                  // each message in two events at this offset (0: one)
  size_t captured = std::string::npos;  // bytes known per event
};

struct Outcome {
  std::vector<Span> spans;
  uint64_t parse_errors = 0;
};

Outcome Replay(const Conversation& c, Role role, const Cut& cut) {
  SelfMetrics self;
  Spans sink;
  ConnTracker t(ConnTrackerOptions{}, &sink, &self);
  Conn conn(&t, role);
  auto send = [&](Direction d, const std::string& m) {
    if (cut.split_at == 0 || cut.split_at >= m.size()) {
      conn.Send(d, m, cut.captured);
    } else {
      conn.Send(d, std::string_view(m).substr(0, cut.split_at), cut.captured);
      conn.Send(d, std::string_view(m).substr(cut.split_at), cut.captured);
    }
  };
  for (size_t i = 0; i < c.requests.size(); ++i) {
    send(conn.RequestDir(), c.requests[i]);
    for (const std::string& r : c.responses[i]) send(conn.ResponseDir(), r);
  }
  // Connections end: what is delimited by the end (or lost its framing)
  // completes there.
  conn.Close();
  return Outcome{sink.spans, self.parse_errors(Protocol::kHttp1)};
}

void ExpectExact(const Conversation& c, const Outcome& run, const std::string& what) {
  ASSERT_EQ(run.spans.size(), c.expected.size()) << c.name << " " << what;
  for (size_t i = 0; i < c.expected.size(); ++i) {
    const Span& s = run.spans[i];
    EXPECT_EQ(s.http.method, c.expected[i].method) << c.name << " " << what << " #" << i;
    EXPECT_EQ(s.http.target, c.expected[i].target) << c.name << " " << what << " #" << i;
    EXPECT_EQ(s.http.status, c.expected[i].status) << c.name << " " << what << " #" << i;
    EXPECT_EQ(s.http.request_bytes, c.requests[i].size()) << c.name << " " << what << " #" << i;
    EXPECT_EQ(s.http.response_bytes, c.responses[i].back().size())
        << c.name << " " << what << " #" << i;
  }
  EXPECT_EQ(run.parse_errors, 0u) << c.name << " " << what;
}

TEST_P(ConversationTest, FixturesSplitIntoTheExpectedMessages) {
  for (const Conversation& c : Conversations()) {
    ASSERT_EQ(c.requests.size(), c.expected.size()) << c.name;
    for (size_t i = 0; i < c.expected.size(); ++i) {
      ASSERT_FALSE(c.responses[i].empty()) << c.name;
      EXPECT_EQ(StatusOf(c.responses[i].back()), c.expected[i].status) << c.name;
    }
  }
}

TEST_P(ConversationTest, OneEventPerMessage) {
  for (const Conversation& c : Conversations()) ExpectExact(c, Replay(c, GetParam(), {}), "");
}

TEST_P(ConversationTest, EveryMessageSplitAtEveryOffset) {
  for (const Conversation& c : Conversations()) {
    size_t longest = 0;
    for (const auto& m : c.requests) longest = std::max(longest, m.size());
    for (const auto& rs : c.responses) {
      for (const auto& m : rs) longest = std::max(longest, m.size());
    }
    for (size_t k = 1; k < longest; ++k) {
      ExpectExact(c, Replay(c, GetParam(), {.split_at = k}), "split " + std::to_string(k));
    }
  }
}

TEST_P(ConversationTest, EveryByteItsOwnEvent) {
  for (const Conversation& c : Conversations()) {
    if (c.name == "curl_chunked_upload" || c.name == "python_100_continue") continue;  // 11 KB
    SelfMetrics self;
    Spans sink;
    ConnTracker t(ConnTrackerOptions{}, &sink, &self);
    Conn conn(&t, GetParam());
    for (size_t i = 0; i < c.requests.size(); ++i) {
      for (char b : c.requests[i]) conn.Request(std::string(1, b));
      for (const auto& r : c.responses[i]) {
        for (char b : r) conn.Response(std::string(1, b));
      }
    }
    conn.Close();
    ExpectExact(c, Outcome{sink.spans, self.parse_errors(Protocol::kHttp1)}, "bytewise");
  }
}

TEST_P(ConversationTest, AllRequestsThenAllResponsesInOneEventEach) {
  // Pipelining: every request in one write, every response in one write.
  for (const Conversation& c : Conversations()) {
    SelfMetrics self;
    Spans sink;
    ConnTracker t(ConnTrackerOptions{}, &sink, &self);
    Conn conn(&t, GetParam());
    conn.Request(Fixture("http1/" + c.name + ".c2s"));
    conn.Response(Fixture("http1/" + c.name + ".s2c"));
    conn.Close();
    ExpectExact(c, Outcome{sink.spans, self.parse_errors(Protocol::kHttp1)}, "pipelined");
  }
}

TEST_P(ConversationTest, CaptureTruncatedAtEveryLength) {
  // The kernel copies only a prefix of each syscall's bytes. Whatever the
  // prefix: no crash; a span never pairs a request with another's
  // response; every exchange whose start lines were captured is reported
  // with its method, target and status; when all heads were captured, the
  // spans are exact.
  for (const Conversation& c : Conversations()) {
    size_t longest = 0, heads = 0;
    for (size_t i = 0; i < c.requests.size(); ++i) {
      longest = std::max(longest, c.requests[i].size());
      heads = std::max(heads, HeadLength(c.requests[i]));
      for (const auto& m : c.responses[i]) {
        longest = std::max(longest, m.size());
        heads = std::max(heads, HeadLength(m));
      }
    }
    for (size_t k = 0; k <= std::min<size_t>(longest, 2048); ++k) {
      const std::string what = "captured " + std::to_string(k);
      Outcome run = Replay(c, GetParam(), {.captured = k});
      if (k >= heads) {
        ExpectExact(c, run, what);
        continue;
      }
      size_t next = 0;  // spans must come in order, each a real exchange
      for (size_t i = 0; i < c.expected.size(); ++i) {
        bool visible = StartLineLength(c.requests[i]) <= k;
        for (const auto& m : c.responses[i]) visible &= StartLineLength(m) <= k;
        const bool found = next < run.spans.size() &&
                           run.spans[next].http.target == c.expected[i].target &&
                           run.spans[next].http.method == c.expected[i].method &&
                           run.spans[next].http.status == c.expected[i].status;
        if (found) {
          EXPECT_EQ(run.spans[next].http.request_bytes, c.requests[i].size()) << c.name << what;
          EXPECT_EQ(run.spans[next].http.response_bytes, c.responses[i].back().size())
              << c.name << what;
          ++next;
        } else {
          EXPECT_FALSE(visible) << c.name << " " << what << " exchange " << i;
        }
      }
      EXPECT_EQ(next, run.spans.size()) << c.name << " " << what << ": a span was mispaired";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BothSides, ConversationTest,
                         ::testing::Values(Role::kServer, Role::kClient), [](const auto& info) {
                           return info.param == Role::kServer ? "Server" : "Client";
                         });

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
  uint64_t errors() const { return self_.parse_errors(Protocol::kHttp1); }
};

TEST_F(Http1StitcherTest, ServerSideSpanFields) {
  Conn c(&tracker_, Role::kServer);
  Conn::Sent req = c.Request(get_);
  Conn::Sent resp = c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  const Span& s = sink_.spans[0];
  EXPECT_EQ(s.protocol, Protocol::kHttp1);
  EXPECT_EQ(s.side, Role::kServer);
  EXPECT_EQ(s.http.method, "GET");
  EXPECT_EQ(s.http.target, "/api/items/42?page=2");
  EXPECT_EQ(s.http.status, 200);
  // Server side: a request is seen when the read returns.
  EXPECT_EQ(s.start_ns, req.exit_ns);
  EXPECT_EQ(s.end_ns, resp.exit_ns);
  EXPECT_EQ(s.tid, req.tid);
  EXPECT_EQ(s.server.port, 8080);
  EXPECT_EQ(s.server.addr, IpAddress::V4(0x0100007f));
  EXPECT_EQ(s.client.port, 40000);
  EXPECT_EQ(s.client.addr, IpAddress::V4(0x0200007f));
  EXPECT_EQ(s.conn, (ConnKey{100, 5, 1}));
  EXPECT_TRUE(s.has_tcp_seq);
  EXPECT_EQ(s.request_tcp_seq, 5000u);
  EXPECT_EQ(s.http.request_bytes, get_.size());
  EXPECT_EQ(s.http.response_bytes, ok_.size());
  EXPECT_EQ(sink_.names[0], "testproc");
  EXPECT_EQ(self_.spans(Protocol::kHttp1), 1u);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, ClientSideSpanFields) {
  Conn c(&tracker_, Role::kClient);
  Conn::Sent req = c.Request(get_);
  c.Response(std::string_view(not_found_).substr(0, 100));
  Conn::Sent last = c.Response(std::string_view(not_found_).substr(100));
  ASSERT_EQ(sink_.spans.size(), 1u);
  const Span& s = sink_.spans[0];
  EXPECT_EQ(s.side, Role::kClient);
  EXPECT_EQ(s.start_ns, req.enter_ns);  // the request leaves when the write starts
  EXPECT_EQ(s.end_ns, last.exit_ns);
  EXPECT_EQ(s.http.status, 404);
  EXPECT_EQ(s.server.port, 8080);
  EXPECT_EQ(s.server.addr, IpAddress::V4(0x0200007f));
  EXPECT_EQ(s.client.port, 40000);
  EXPECT_EQ(s.request_tcp_seq, 1000u);
}

TEST_F(Http1StitcherTest, SpanStartsWithTheEventOfTheFirstRequestByte) {
  Conn c(&tracker_, Role::kServer);
  c.Request(ok_.substr(0, 0));  // nothing: no position, no event
  Conn::Sent first = c.Request(std::string_view(get_).substr(0, 10));
  c.Request(std::string_view(get_).substr(10));
  c.Response(ok_);
  Conn::Sent second = c.Request(post_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[0].start_ns, first.exit_ns);
  EXPECT_EQ(sink_.spans[0].tid, first.tid);
  EXPECT_EQ(sink_.spans[0].request_tcp_seq, first.seq);
  EXPECT_EQ(sink_.spans[1].start_ns, second.exit_ns);
  EXPECT_EQ(sink_.spans[1].tid, second.tid);
  EXPECT_EQ(sink_.spans[1].request_tcp_seq, 5000u + get_.size());
}

TEST_F(Http1StitcherTest, PipelinedRequestsInOneEventHaveTheirOwnSequenceNumbers) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_ + post_ + get_);
  c.Response(ok_ + not_found_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 3u);
  EXPECT_EQ(sink_.spans[0].http.method, "GET");
  EXPECT_EQ(sink_.spans[1].http.method, "POST");
  EXPECT_EQ(sink_.spans[1].http.status, 404);
  EXPECT_EQ(sink_.spans[2].http.status, 200);
  EXPECT_EQ(sink_.spans[1].request_tcp_seq, 5000u + get_.size());
  EXPECT_EQ(sink_.spans[2].request_tcp_seq, 5000u + get_.size() + post_.size());
  EXPECT_EQ(sink_.spans[0].end_ns, sink_.spans[1].end_ns);  // same write
  EXPECT_LT(sink_.spans[1].end_ns, sink_.spans[2].end_ns);
}

TEST_F(Http1StitcherTest, ChunkedResponseSplitAtEveryOffsetEndsExactly) {
  for (size_t cut = 0; cut <= chunked_.size(); ++cut) {
    Spans sink;
    SelfMetrics self;
    ConnTracker t(options_, &sink, &self);
    Conn c(&t, Role::kServer);
    c.Request(get_);
    Conn::Sent a = c.Response(std::string_view(chunked_).substr(0, cut));
    Conn::Sent b = c.Response(std::string_view(chunked_).substr(cut));
    // The next exchange proves framing ended exactly at the 0-chunk.
    c.Request(get_);
    c.Response(ok_);
    ASSERT_EQ(sink.spans.size(), 2u) << "cut " << cut;
    EXPECT_EQ(sink.spans[0].end_ns, cut == chunked_.size() ? a.exit_ns : b.exit_ns) << cut;
    EXPECT_EQ(sink.spans[0].http.response_bytes, chunked_.size()) << cut;
    EXPECT_EQ(sink.spans[1].http.status, 200);
    EXPECT_EQ(self.parse_errors(Protocol::kHttp1), 0u) << cut;
  }
}

TEST_F(Http1StitcherTest, ChunkDataInGapsIsSkippedByPosition) {
  // Only each write's first 10 bytes are known: the chunk-size lines are
  // always at the start of a write, the data is not needed.
  Conn c(&tracker_, Role::kClient);
  c.Request(get_);
  c.Response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  std::string data(5000, 'x');
  c.Response("1388\r\n" + data + "\r\n", 10);
  c.Response("1388\r\n" + data + "\r\n", 10);
  Conn::Sent last = c.Response("0\r\n\r\n", 3);  // the final CRLF is a gap too
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].end_ns, last.exit_ns);
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, ChunkSizeLineInAGapEndsAtTheNextResponse) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  c.Response(chunked_, 180);  // chunk sizes after the first 180 bytes unknown
  Conn::Sent more = c.Response("5\r\nhello\r\n");
  c.Request(get_);
  Conn::Sent end = c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[0].http.status, 200);
  EXPECT_EQ(sink_.spans[0].end_ns, more.exit_ns);  // the last event before the next response
  EXPECT_EQ(sink_.spans[0].http.response_bytes, chunked_.size() + 10);
  EXPECT_EQ(sink_.spans[1].end_ns, end.exit_ns);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, LostChunkFramingEndsAtALastChunkOrAtClose) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  c.Response(chunked_, 180);
  Conn::Sent end = c.Response("\r\n5\r\nhello\r\n0\r\n\r\n");
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].end_ns, end.exit_ns);
  c.Request(get_);
  c.Response(chunked_, 180);
  Conn::Sent last = c.Response("more");
  c.Close();
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[1].end_ns, last.exit_ns);
}

TEST_F(Http1StitcherTest, LargeBodySentWithoutCapture) {
  // Head by write, body by sendfile: the body's bytes are all unknown.
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 4194307\r\n\r\n";
  c.Response(head);
  c.Response("", 0, 2000000);
  EXPECT_TRUE(sink_.spans.empty());
  Conn::Sent end = c.Response("", 0, 2194307);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].end_ns, end.exit_ns);
  EXPECT_EQ(sink_.spans[0].http.response_bytes, head.size() + 4194307);
  c.Request(get_);
  c.Response(ok_);
  EXPECT_EQ(sink_.spans.size(), 2u);
}

TEST_F(Http1StitcherTest, PositionJumpIsAGapNotCorruption) {
  // Bytes no event reported (splice, a lost record) show up as a jump in
  // tcp_seq: the body is skipped by position and ends with the last event.
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  Conn::Sent head = c.Response("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
  c.Skip(Direction::kEgress, 100);
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[0].end_ns, head.exit_ns);
  EXPECT_EQ(sink_.spans[1].http.status, 200);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, JumpOverAWholeResponseDropsItsRequest) {
  // A lost response (its event dropped) must not shift the pairing.
  Conn c(&tracker_, Role::kClient);
  c.Request("GET /zero HTTP/1.1\r\n\r\n");
  c.Response(ok_);
  c.Request("GET /first HTTP/1.1\r\n\r\n");
  c.Skip(Direction::kIngress, static_cast<uint32_t>(not_found_.size()));
  c.Request("GET /second HTTP/1.1\r\n\r\n");
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[1].http.target, "/second");
}

TEST_F(Http1StitcherTest, HeadSplitAcrossEventsThenCutByAGap) {
  // The head's start line arrived whole, the rest was not captured.
  Conn c(&tracker_, Role::kServer);
  std::string big = "GET /big HTTP/1.1\r\nCookie: " + std::string(3000, 'c') + "\r\n\r\n";
  Conn::Sent first = c.Request(std::string_view(big).substr(0, 12));
  c.Request(std::string_view(big).substr(12), 1000);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].http.target, "/big");
  EXPECT_EQ(sink_.spans[0].start_ns, first.exit_ns);
  EXPECT_EQ(sink_.spans[0].http.request_bytes, big.size());
  EXPECT_EQ(errors(), 0u);
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
  c.Request(get_);
  c.Response(ok_);
  EXPECT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, OverlappingRetransmitContributesOnlyNewBytes) {
  Conn c(&tracker_, Role::kServer);
  c.Request(std::string_view(get_).substr(0, 50));
  // Retransmit of bytes 20.. together with the rest of the request.
  c.SetSeqs(1000, 5020);
  c.Request(std::string_view(get_).substr(20));
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].http.request_bytes, get_.size());
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, PeekThenReadSeesTheRequestOnce) {
  // MSG_PEEK reports the bytes at the same position the read reports them.
  Conn c(&tracker_, Role::kServer);
  Conn::Sent peek = c.Request(get_);
  c.SetSeqs(1000, 5000);
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].start_ns, peek.exit_ns);
}

TEST_F(Http1StitcherTest, SequenceWrapAround) {
  Conn c(&tracker_, Role::kServer);
  c.SetSeqs(0xffffffff - 20, 0xffffffff - 30);
  for (int i = 0; i < 3; ++i) {
    c.Request(get_);
    c.Response(chunked_);
  }
  ASSERT_EQ(sink_.spans.size(), 3u);
  EXPECT_EQ(sink_.spans[0].request_tcp_seq, 0xffffffffu - 30);
  EXPECT_EQ(sink_.spans[1].request_tcp_seq, static_cast<uint32_t>(0xffffffff - 30 + get_.size()));
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, WithoutSequenceNumbersPositionsAreRunningSums) {
  Conn c(&tracker_, Role::kServer);
  c.NoSeq();
  for (int i = 0; i < 3; ++i) {
    c.Request(std::string_view(post_).substr(0, 30));
    c.Request(std::string_view(post_).substr(30));
    c.Response(chunked_, 200, static_cast<uint32_t>(chunked_.size()));
  }
  tracker_.Flush();  // the last response's framing was lost: it ends at the end
  ASSERT_EQ(sink_.spans.size(), 3u);
  EXPECT_FALSE(sink_.spans[2].has_tcp_seq);
  EXPECT_EQ(sink_.spans[2].http.method, "POST");
}

TEST_F(Http1StitcherTest, GarbageBetweenMessagesResyncsAndCountsOnce) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  c.Response(ok_);
  c.Request(std::string("\x16\x03\x01 not http at all \x00\x01", 22));
  c.Request("more garbage");
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(errors(), 1u);
}

TEST_F(Http1StitcherTest, GarbageResponseDoesNotShiftPairing) {
  Conn c(&tracker_, Role::kServer);
  c.Request("GET /a HTTP/1.1\r\n\r\n");
  c.Response("HTTP/1.1 2xx broken\r\n\r\n");
  c.Request("GET /b HTTP/1.1\r\n\r\n");
  c.Response(not_found_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].http.target, "/b");
  EXPECT_EQ(sink_.spans[0].http.status, 404);
  EXPECT_EQ(errors(), 1u);
}

TEST_F(Http1StitcherTest, GarbageInsideAnEventIsNotAResyncPoint) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  c.Response(ok_);
  c.Request("NOT HTTP\r\n" + get_);  // the GET inside cannot be trusted
  c.Response(ok_);                   // answers a request that was not read
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(errors(), 1u);
}

TEST_F(Http1StitcherTest, InterimAndBodylessResponses) {
  Conn c(&tracker_, Role::kServer);
  const std::string upload =
      "POST /upload HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
  c.Request(upload);
  c.Response("HTTP/1.1 100 Continue\r\n\r\n");
  c.Request("abc");
  c.Response("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  c.Request("HEAD /x HTTP/1.1\r\n\r\n");
  c.Response("HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n");  // no body after HEAD
  c.Request("GET /y HTTP/1.1\r\n\r\n");
  c.Response("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n");
  c.Request("GET /z HTTP/1.1\r\n\r\n");
  c.Response("HTTP/1.1 204 No Content\r\n\r\n");
  c.Request("GET /hints HTTP/1.1\r\n\r\n");
  c.Response("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 5u);
  EXPECT_EQ(sink_.spans[0].http.status, 201);
  EXPECT_EQ(sink_.spans[0].http.request_bytes, upload.size() + 3);
  EXPECT_EQ(sink_.spans[1].http.method, "HEAD");
  EXPECT_EQ(sink_.spans[2].http.status, 304);
  EXPECT_EQ(sink_.spans[3].http.status, 204);
  EXPECT_EQ(sink_.spans[4].http.status, 200);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, ContinueBetweenHeadAndBodyFromRealBytes) {
  // curl waits for "100 Continue" between its head and its body.
  const std::string c2s = Fixture("http1/python_100_continue.c2s");
  const std::string s2c = Fixture("http1/python_100_continue.s2c");
  const size_t head = c2s.find("\r\n\r\n") + 4;
  const size_t interim = s2c.find("HTTP/1.1 201");
  for (Role role : {Role::kServer, Role::kClient}) {
    Spans sink;
    SelfMetrics self;
    ConnTracker t(options_, &sink, &self);
    Conn c(&t, role);
    Conn::Sent first = c.Request(std::string_view(c2s).substr(0, head));
    c.Response(std::string_view(s2c).substr(0, interim));
    c.Request(std::string_view(c2s).substr(head), 1024);
    Conn::Sent last = c.Response(std::string_view(s2c).substr(interim));
    ASSERT_EQ(sink.spans.size(), 1u);
    const Span& s = sink.spans[0];
    EXPECT_EQ(s.http.method, "POST");
    EXPECT_EQ(s.http.status, 201);
    EXPECT_EQ(s.start_ns, role == Role::kServer ? first.exit_ns : first.enter_ns);
    EXPECT_EQ(s.end_ns, last.exit_ns);
    EXPECT_EQ(s.http.request_bytes, c2s.size());
    EXPECT_EQ(s.http.response_bytes, s2c.size() - interim);
    EXPECT_EQ(self.parse_errors(Protocol::kHttp1), 0u);
  }
}

TEST_F(Http1StitcherTest, EarlyResponseBeforeTheRequestBodyEnds) {
  // The server refuses an upload before reading it; the client sends the
  // body anyway, then the next request.
  Conn c(&tracker_, Role::kServer);
  c.Request("POST /up HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
  c.Response("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n");
  c.Request("0123456789");
  c.Request("GET /next HTTP/1.1\r\n\r\n");
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[0].http.status, 413);
  EXPECT_EQ(sink_.spans[1].http.target, "/next");
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, ResponseUntilCloseEndsAtClose) {
  Conn c(&tracker_, Role::kClient);
  c.Request(get_);
  c.Response("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome");
  Conn::Sent last = c.Response(" more body", 4, 5000);
  EXPECT_TRUE(sink_.spans.empty());
  c.Close();
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].end_ns, last.exit_ns);
  EXPECT_EQ(sink_.spans[0].http.response_bytes, 49u + 5000);
  EXPECT_EQ(tracker_.connections(), 0u);
}

TEST_F(Http1StitcherTest, ResponseUntilCloseEndsAtFlush) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  Conn::Sent last = c.Response("HTTP/1.1 200 OK\r\n\r\nbody");
  tracker_.Flush();
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].end_ns, last.exit_ns);
}

TEST_F(Http1StitcherTest, ResponseCutShortByCloseStillAnswers) {
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  Conn::Sent last = c.Response("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
  c.Close();
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].end_ns, last.exit_ns);
}

TEST_F(Http1StitcherTest, UpgradeStopsParsing) {
  Conn c(&tracker_, Role::kServer);
  c.Request("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  c.Response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
  c.Request("\x81\x05hello");
  c.Response("\x81\x05world");
  c.Request("CONNECT example.com:443 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].http.status, 101);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, ConnectTunnelEndsTheSpanAtTheHead) {
  Conn c(&tracker_, Role::kClient);
  c.Request("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  Conn::Sent head = c.Response("HTTP/1.1 200 Connection established\r\n\r\n");
  c.Request("\x16\x03\x01\x00\x05hello");
  c.Response("\x16\x03\x03\x00\x05world");
  c.Close();
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].http.method, "CONNECT");
  EXPECT_EQ(sink_.spans[0].end_ns, head.exit_ns);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, RoleInferredWhenTheKernelDidNotKnow) {
  for (Role role : {Role::kClient, Role::kServer}) {
    Spans sink;
    SelfMetrics self;
    ConnTracker t(options_, &sink, &self);
    Conn c(&t, role);
    c.InferRole();
    c.Response("tail of a body from before");  // tells nothing
    c.Request(get_);
    c.Response(ok_);
    ASSERT_EQ(sink.spans.size(), 1u);
    EXPECT_EQ(sink.spans[0].side, role);
    EXPECT_EQ(sink.spans[0].server.port, 8080);
  }
}

TEST_F(Http1StitcherTest, RoleInferredFromAResponseFirst) {
  // First bytes seen: a response going out. That end is the server.
  Conn c(&tracker_, Role::kServer);
  c.InferRole();
  c.Response(ok_);
  c.Request(get_);
  c.Response(not_found_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].side, Role::kServer);
  EXPECT_EQ(sink_.spans[0].http.status, 404);
}

TEST_F(Http1StitcherTest, MidStreamStartWaitsForAMessageStart) {
  // redmap started while a response body was in flight.
  Conn c(&tracker_, Role::kClient);
  c.Response("tail of an earlier body");
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, BodyThatLooksLikeAMethodDoesNotResync) {
  Conn c(&tracker_, Role::kServer);
  c.Request("GET /a HTTP/1.1\r\n\r\n", 5, 40);                    // head cut: resync needed
  c.Request("GET is the method we use for everything here\r\n");  // body-ish text
  c.Request(get_);
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(errors(), 1u);  // the cut head only
}

TEST_F(Http1StitcherTest, StrayLineEndsBetweenMessagesAreTolerated) {
  Conn c(&tracker_, Role::kServer);
  c.Request(post_ + "\r\n");
  c.Response(ok_);
  c.Request(get_);
  c.Response(ok_);
  EXPECT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, BareLineFeeds) {
  Conn c(&tracker_, Role::kClient);
  c.Request("GET /lf HTTP/1.1\nHost: x\n\n");
  c.Response("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n");
  c.Request("GET /lf2 HTTP/1.1\nHost: x\n\n");
  c.Response("HTTP/1.1 404 Not Found\nContent-Length: 2\n\nno");
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[1].http.status, 404);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, TrailersAfterTheLastChunk) {
  Conn c(&tracker_, Role::kClient);
  c.Request(get_);
  std::string resp =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
      "4\r\nabcd\r\n0\r\nX-Sum: 123\r\n\r\n";
  for (size_t cut = 0; cut <= resp.size(); ++cut) {
    c.Response(std::string_view(resp).substr(0, cut));
    c.Response(std::string_view(resp).substr(cut));
    c.Request(get_);
  }
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), resp.size() + 2);
  for (size_t i = 0; i + 1 < sink_.spans.size(); ++i) {
    EXPECT_EQ(sink_.spans[i].http.response_bytes, resp.size()) << i;
  }
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, TrailerFieldCutByTheCaptureIsNotTheFinalLineEnd) {
  // One captured byte of a trailer field is not the CRLF that ends the
  // body: the rest of the field must not be read as the next response.
  Conn c(&tracker_, Role::kServer);
  c.Request(get_);
  c.Request(get_);
  const std::string resp =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\nX-Sum: 123\r\n\r\n";
  const size_t captured = resp.find("X-Sum") + 1;
  Conn::Sent first = c.Response(resp, captured);
  Conn::Sent second = c.Response(not_found_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[0].http.status, 200);
  EXPECT_EQ(sink_.spans[0].end_ns, first.exit_ns);
  EXPECT_EQ(sink_.spans[0].http.response_bytes, resp.size());
  EXPECT_EQ(sink_.spans[1].http.status, 404);
  EXPECT_EQ(sink_.spans[1].end_ns, second.exit_ns);
  EXPECT_EQ(errors(), 0u);
}

TEST_F(Http1StitcherTest, UnansweredRequestsAreBounded) {
  Conn c(&tracker_, Role::kServer);
  for (size_t i = 0; i < http1::kMaxPendingRequests + 72; ++i) {
    c.Request("GET /" + std::to_string(i) + " HTTP/1.1\r\n\r\n");
  }
  EXPECT_EQ(errors(), 72u);  // the oldest were dropped, and counted
  c.Response(ok_);
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].http.target, "/72");
}

TEST(Http1StitcherDirectTest, PendingQueueIsAReusedRing) {
  // Driven directly (no tracker): interleaved queueing and answering.
  SelfMetrics self;
  Spans sink;
  ConnContext ctx;
  ctx.role = Role::kServer;
  ctx.spans = &sink;
  ctx.self = &self;
  http1::Http1Stitcher st;
  uint64_t pos[2] = {0, 0};
  auto feed = [&](Direction d, std::string_view bytes) {
    StreamSegment seg;
    seg.pos = pos[static_cast<int>(d)];
    seg.data = bytes;
    seg.at_event_start = true;
    pos[static_cast<int>(d)] += bytes.size();
    EXPECT_EQ(st.OnSegment(d, seg, ctx), bytes.size());
  };
  int next_answer = 0;
  for (int i = 0; i < 300; ++i) {
    feed(Direction::kIngress, "GET /" + std::to_string(i) + " HTTP/1.1\r\n\r\n");
    if (i % 3 == 2) {
      for (int k = 0; k < 2; ++k) {
        feed(Direction::kEgress, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        ASSERT_EQ(sink.spans.back().http.target, "/" + std::to_string(next_answer++));
      }
    }
  }
  EXPECT_EQ(st.pending_requests(), 100u);
  st.OnEnd(ctx);
  EXPECT_EQ(st.pending_requests(), 0u);
}

}  // namespace
}  // namespace redmap
