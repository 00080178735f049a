// The connection table (bounds, LRU eviction, idle expiry, close, role) and
// the per-direction stream bookkeeping (DataStreamBuffer: positions, wraps,
// duplicates, gaps, held bytes). HTTP/1 bytes are curl's and nginx's
// (tests/fixtures/http1/README.md).
#include "aggregators/conntrack/conn_tracker.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "aggregators/conntrack/data_stream_buffer.h"
#include "aggregators/self/self_metrics.h"
#include "tests/testlib/fixtures.h"

namespace redmap {
namespace {

using ::redmap::testing::Fixture;

// ---- DataStreamBuffer ------------------------------------------------------

// What a parser was handed, copied out of the segment.
struct Seen {
  uint64_t pos;
  uint32_t seq;
  std::string data;
  uint64_t unknown;
  size_t held;
  uint64_t held_exit_ns;
  uint64_t exit_ns;
  bool at_event_start;
};

class StreamTest : public ::testing::Test {
 protected:
  // Adds an event; the parser uses `use` bytes of each segment (npos: all).
  DataStreamBuffer::AddResult Add(std::string_view payload, uint32_t byte_count = 0,
                                  std::optional<uint32_t> seq = std::nullopt,
                                  size_t use = std::string::npos) {
    DataEvent e;
    e.enter_ns = now_ += 10;
    e.exit_ns = now_ += 10;
    e.byte_count = byte_count ? byte_count : static_cast<uint32_t>(payload.size());
    e.has_tcp_seq = seq.has_value();
    e.tcp_seq = seq.value_or(0);
    e.payload = payload;
    return buf_.Add(e, [&](const StreamSegment& s) {
      seen_.push_back(Seen{s.pos, s.seq, std::string(s.data), s.unknown, s.held,
                           s.held_event.exit_ns, s.event.exit_ns, s.at_event_start});
      return std::min(use, s.data.size());
    });
  }
  uint64_t now_ = 0;
  DataStreamBuffer buf_{1024};
  std::vector<Seen> seen_;
};

TEST_F(StreamTest, ContiguousEventsAreOneSegmentEach) {
  ASSERT_EQ(Add("abc", 0, 100), DataStreamBuffer::AddResult::kAdded);
  ASSERT_EQ(Add("defg", 10, 103), DataStreamBuffer::AddResult::kAdded);  // 6 bytes not captured
  ASSERT_EQ(Add("x", 0, 113), DataStreamBuffer::AddResult::kAdded);
  ASSERT_EQ(seen_.size(), 3u);
  EXPECT_EQ(seen_[0].data, "abc");
  EXPECT_EQ(seen_[0].seq, 100u);
  EXPECT_EQ(seen_[0].unknown, 0u);
  EXPECT_TRUE(seen_[0].at_event_start);
  EXPECT_EQ(seen_[1].pos, seen_[0].pos + 3);
  EXPECT_EQ(seen_[1].data, "defg");
  EXPECT_EQ(seen_[1].unknown, 6u);
  EXPECT_EQ(seen_[2].seq, 113u);
  EXPECT_EQ(buf_.end(), seen_[0].pos + 14);
}

TEST_F(StreamTest, UnconsumedBytesAreHeldForTheNextEvent) {
  Add("GET /x HT", 0, 7, /*use=*/0);
  EXPECT_EQ(buf_.held_bytes(), 9u);
  const uint64_t first_exit = now_;
  Add("TP/1.1\r\n", 0, 16, /*use=*/2);
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_EQ(seen_[1].data, "GET /x HTTP/1.1\r\n");
  EXPECT_EQ(seen_[1].held, 9u);
  EXPECT_EQ(seen_[1].held_exit_ns, first_exit);
  EXPECT_EQ(seen_[1].pos, seen_[0].pos);
  EXPECT_EQ(seen_[1].seq, 7u);
  // Still inside the first event's bytes: the hold keeps the first event.
  Add("\r\n", 0, 24);
  EXPECT_EQ(seen_[2].data, "T /x HTTP/1.1\r\n\r\n");
  EXPECT_EQ(seen_[2].held_exit_ns, first_exit);
  EXPECT_EQ(seen_[2].seq, 9u);
  EXPECT_EQ(buf_.held_bytes(), 0u);
}

TEST_F(StreamTest, HoldStartingInALaterEventCarriesThatEvent) {
  Add("abc", 0, 0, /*use=*/0);
  Add("def", 0, 3, /*use=*/4);  // keeps "ef", which came with the second event
  const uint64_t second_exit = now_;
  Add("g", 0, 6);
  EXPECT_EQ(seen_[2].data, "efg");
  EXPECT_EQ(seen_[2].held_exit_ns, second_exit);
}

TEST_F(StreamTest, NothingIsHeldInFrontOfAGap) {
  Add("GET /x", 100, 0, /*use=*/0);  // 94 bytes unknown after the known ones
  EXPECT_EQ(buf_.held_bytes(), 0u);
  Add("abc", 0, 100);
  EXPECT_EQ(seen_[1].held, 0u);
  EXPECT_EQ(seen_[1].data, "abc");
}

TEST_F(StreamTest, PositionJumpBecomesAnUnknownRun) {
  Add("abc", 0, 50, /*use=*/1);  // holds "bc"
  const uint64_t first_exit = now_;
  Add("xyz", 0, 60);
  ASSERT_EQ(seen_.size(), 3u);
  // The held bytes, then the 7 bytes no event reported.
  EXPECT_EQ(seen_[1].data, "bc");
  EXPECT_EQ(seen_[1].seq, 51u);
  EXPECT_EQ(seen_[1].unknown, 7u);
  EXPECT_EQ(seen_[1].exit_ns, first_exit);
  EXPECT_FALSE(seen_[1].at_event_start);
  EXPECT_EQ(seen_[2].data, "xyz");
  EXPECT_EQ(seen_[2].seq, 60u);
  EXPECT_EQ(seen_[2].held, 0u);
  // Without held bytes the jump is only unknown bytes.
  Add("!", 0, 70);
  EXPECT_EQ(seen_[3].data, "");
  EXPECT_EQ(seen_[3].unknown, 7u);
}

TEST_F(StreamTest, DuplicatesAndOverlapsAreTrimmed) {
  Add("abcdef", 0, 10);
  EXPECT_EQ(Add("abcdef", 0, 10), DataStreamBuffer::AddResult::kDuplicate);
  EXPECT_EQ(Add("cd", 0, 12), DataStreamBuffer::AddResult::kDuplicate);
  EXPECT_EQ(seen_.size(), 1u);
  ASSERT_EQ(Add("defghi", 0, 13), DataStreamBuffer::AddResult::kAdded);
  EXPECT_EQ(seen_[1].data, "ghi");
  EXPECT_EQ(seen_[1].seq, 16u);
  EXPECT_FALSE(seen_[1].at_event_start);
  // Overlap reaching past the captured bytes: only unknown ones are new.
  ASSERT_EQ(Add("gh", 20, 16), DataStreamBuffer::AddResult::kAdded);
  EXPECT_EQ(seen_[2].data, "");
  EXPECT_EQ(seen_[2].unknown, 17u);
  EXPECT_EQ(buf_.end(), seen_[0].pos + 26);
}

TEST_F(StreamTest, SequenceNumbersWrap) {
  Add("abcd", 0, 0xfffffffe);
  Add("efgh", 0, 2);  // 0xfffffffe + 4 wraps to 2
  Add("ijkl", 0, 6);
  ASSERT_EQ(seen_.size(), 3u);
  EXPECT_EQ(seen_[1].pos, seen_[0].pos + 4);
  EXPECT_EQ(seen_[1].seq, 2u);
  EXPECT_EQ(seen_[1].unknown, 0u);
  EXPECT_EQ(seen_[2].pos, seen_[0].pos + 8);
  // A retransmit from before the wrap is still recognised as old.
  EXPECT_EQ(Add("abcd", 0, 0xfffffffe), DataStreamBuffer::AddResult::kDuplicate);
  Add("mn", 0, 10);
  EXPECT_EQ(seen_.back().pos, seen_[0].pos + 12);
}

TEST_F(StreamTest, LongStreamsKeepCounting) {
  // Over 4 GiB of stream in 1 GiB steps: positions keep growing.
  uint32_t seq = 7;
  for (int i = 0; i < 6; ++i) {
    Add("x", 1u << 30, seq);
    seq += 1u << 30;
  }
  ASSERT_EQ(seen_.size(), 6u);
  EXPECT_EQ(seen_[5].pos - seen_[0].pos, 5ull << 30);
  EXPECT_EQ(seen_[5].seq, static_cast<uint32_t>(7 + (5ull << 30)));
}

TEST_F(StreamTest, WithoutSequenceNumbersEventsFollowEachOther) {
  Add("ab");
  Add("cd", 5);
  Add("e");
  ASSERT_EQ(seen_.size(), 3u);
  EXPECT_EQ(seen_[1].pos, seen_[0].pos + 2);
  EXPECT_EQ(seen_[2].pos, seen_[0].pos + 7);
  EXPECT_EQ(seen_[2].seq, 7u);  // byte count since the first event
  // Numbered events later on continue from there.
  Add("f", 0, 900);
  Add("g", 0, 902);
  EXPECT_EQ(seen_[3].pos, seen_[0].pos + 8);
  EXPECT_EQ(seen_[3].seq, 900u);
  EXPECT_EQ(seen_[4].data, "");
  EXPECT_EQ(seen_[4].unknown, 1u);  // the jump 901 -> 902
  EXPECT_EQ(seen_[5].data, "g");
}

TEST_F(StreamTest, EmptyEventsAndOversizedPayloads) {
  EXPECT_EQ(Add("", 0, 5), DataStreamBuffer::AddResult::kDuplicate);
  EXPECT_TRUE(seen_.empty());
  Add("abcdef", 2, 5);  // an inconsistent source: only byte_count bytes count
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].data, "ab");
  EXPECT_EQ(seen_[0].unknown, 0u);
  EXPECT_EQ(buf_.end(), seen_[0].pos + 2);
}

TEST_F(StreamTest, TooMuchHeldIsDroppedAsAGap) {
  DataStreamBuffer small(16);
  std::vector<Seen> seen;
  auto add = [&](std::string_view p) {
    DataEvent e;
    e.byte_count = static_cast<uint32_t>(p.size());
    e.payload = p;
    return small.Add(e, [&](const StreamSegment& s) {
      seen.push_back(
          Seen{s.pos, s.seq, std::string(s.data), s.unknown, s.held, 0, 0, s.at_event_start});
      return size_t{0};  // never enough
    });
  };
  EXPECT_EQ(add("0123456789"), DataStreamBuffer::AddResult::kAdded);
  EXPECT_EQ(add("0123456789"), DataStreamBuffer::AddResult::kOverflow);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].data, "");
  EXPECT_EQ(seen[2].unknown, 20u);
  EXPECT_EQ(seen[2].pos, seen[0].pos);
  EXPECT_EQ(small.held_bytes(), 0u);
  EXPECT_EQ(add("abc"), DataStreamBuffer::AddResult::kAdded);
  EXPECT_EQ(small.held_bytes(), 3u);
}

// ---- ConnTracker ------------------------------------------------------------

class Spans : public SpanSink {
 public:
  void OnSpan(const Span& s) override { spans.push_back(s); }
  std::vector<Span> spans;
};

double Gauge(const SelfMetrics& self, const std::string& name) {
  for (const auto& f : self.Collect()) {
    if (f.name == name && !f.metric.empty()) return f.metric[0].gauge.value;
  }
  return -1;
}

class ConnTrackerTest : public ::testing::Test {
 protected:
  DataEvent Event(int32_t fd, Direction d, std::string_view payload, uint64_t t,
                  Role role = Role::kServer) {
    DataEvent e;
    e.conn = ConnKey{42, fd, 7};
    e.tid = 43;
    e.direction = d;
    e.protocol = Protocol::kHttp1;
    e.role = role;
    e.enter_ns = t;
    e.exit_ns = t + 100;
    e.byte_count = static_cast<uint32_t>(payload.size());
    e.local.addr = IpAddress::V4(0x0100007f);
    e.local.port = 80;
    e.remote.addr = IpAddress::V4(0x0100007f);
    e.remote.port = static_cast<uint16_t>(50000 + fd);
    e.payload = payload;
    e.process_name = "nginx";
    return e;
  }
  // A request read and, unless `answer` is empty, a response written.
  void Exchange(ConnTracker& t, int32_t fd, uint64_t time, std::string_view answer) {
    t.OnData(Event(fd, Direction::kIngress, get_, time));
    if (!answer.empty()) t.OnData(Event(fd, Direction::kEgress, answer, time + 1000));
  }
  std::string get_ = Fixture("http1/curl_get.req");
  std::string ok_ = Fixture("http1/nginx_200.resp");
  // A response delimited by close: pending until the connection ends.
  std::string until_close_ = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody";
  SelfMetrics self_;
  Spans sink_;
};

TEST_F(ConnTrackerTest, TracksConnectionsAndReportsTheTableSize) {
  ConnTrackerOptions o;
  o.max_connections = 10;
  ConnTracker t(o, &sink_, &self_);
  EXPECT_EQ(Gauge(self_, "redmap_tracked_connections_limit"), 10);
  EXPECT_EQ(Gauge(self_, "redmap_tracked_connections"), 0);
  Exchange(t, 1, 1000, ok_);
  Exchange(t, 2, 2000, ok_);
  EXPECT_EQ(t.connections(), 2u);
  EXPECT_EQ(Gauge(self_, "redmap_tracked_connections"), 2);
  t.OnClose(CloseEvent{ConnKey{42, 1, 7}, 5000});
  t.OnClose(CloseEvent{ConnKey{42, 9, 7}, 5000});  // never seen: nothing happens
  EXPECT_EQ(t.connections(), 1u);
  EXPECT_EQ(Gauge(self_, "redmap_tracked_connections"), 1);
  EXPECT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(self_.spans(Protocol::kHttp1), 2u);
}

TEST_F(ConnTrackerTest, UnknownProtocolIsIgnored) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  DataEvent e = Event(1, Direction::kIngress, get_, 1000);
  e.protocol = Protocol::kUnknown;
  t.OnData(e);
  EXPECT_EQ(t.connections(), 0u);
}

TEST_F(ConnTrackerTest, ConnectionsDoNotMix) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  const std::string a = "GET /a HTTP/1.1\r\n\r\n", b = "GET /b HTTP/1.1\r\n\r\n";
  t.OnData(Event(1, Direction::kIngress, a, 1000));
  t.OnData(Event(2, Direction::kIngress, b, 2000));
  t.OnData(Event(2, Direction::kEgress, ok_, 3000));
  t.OnData(Event(1, Direction::kEgress, ok_, 4000));
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[0].http.target, "/b");
  EXPECT_EQ(sink_.spans[0].client.port, 50002);
  EXPECT_EQ(sink_.spans[1].http.target, "/a");
  EXPECT_EQ(sink_.spans[1].start_ns, 1100u);
  EXPECT_EQ(sink_.spans[1].end_ns, 4100u);
}

TEST_F(ConnTrackerTest, ReusedFdIsANewConnection) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  t.OnData(Event(1, Direction::kIngress, get_, 1000));
  DataEvent e = Event(1, Direction::kEgress, ok_, 2000);
  e.conn.start_ns = 8;  // same tgid and fd, another socket
  t.OnData(e);
  EXPECT_EQ(t.connections(), 2u);
  EXPECT_TRUE(sink_.spans.empty());
}

TEST_F(ConnTrackerTest, FullTableEvictsTheLeastRecentlyUsed) {
  ConnTrackerOptions o;
  o.max_connections = 2;
  ConnTracker t(o, &sink_, &self_);
  Exchange(t, 1, 1000, until_close_);
  Exchange(t, 2, 2000, until_close_);
  t.OnData(Event(1, Direction::kEgress, "more", 3000));  // 1 is now more recent than 2
  Exchange(t, 3, 4000, ok_);                             // evicts 2
  EXPECT_EQ(t.connections(), 2u);
  EXPECT_EQ(self_.dropped(DropReason::kConnTableFull), 1u);
  // Eviction ended 2's response (delimited by the end); 3's was complete.
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_EQ(sink_.spans[0].client.port, 50002);
  EXPECT_EQ(sink_.spans[0].end_ns, 3100u);
  EXPECT_EQ(sink_.spans[1].client.port, 50003);
  Exchange(t, 4, 5000, "");  // evicts 1
  EXPECT_EQ(self_.dropped(DropReason::kConnTableFull), 2u);
  ASSERT_EQ(sink_.spans.size(), 3u);
  EXPECT_EQ(sink_.spans[2].client.port, 50001);
  EXPECT_EQ(sink_.spans[2].end_ns, 3100u);
  EXPECT_EQ(Gauge(self_, "redmap_tracked_connections"), 2);
}

TEST_F(ConnTrackerTest, IdleConnectionsExpire) {
  ConnTrackerOptions o;
  o.idle_timeout_ns = 1'000'000;
  ConnTracker t(o, &sink_, &self_);
  Exchange(t, 1, 1000, until_close_);       // last event ends at 2100
  Exchange(t, 2, 500'000, until_close_);    // ... at 501100
  Exchange(t, 3, 2'000'000, until_close_);  // ... at 2001100
  t.ExpireIdle(500'000);                    // before any timeout
  EXPECT_EQ(t.connections(), 3u);
  t.ExpireIdle(1'002'100);  // 1 has been idle for exactly the timeout: kept
  EXPECT_EQ(t.connections(), 3u);
  t.ExpireIdle(1'502'000);  // 1 and 2 idle for longer
  EXPECT_EQ(t.connections(), 1u);
  ASSERT_EQ(sink_.spans.size(), 2u);  // their read-until-close responses ended
  EXPECT_EQ(sink_.spans[0].end_ns, 2100u);
  EXPECT_EQ(sink_.spans[1].end_ns, 501100u);
  EXPECT_EQ(Gauge(self_, "redmap_tracked_connections"), 1);
  t.Flush();
  EXPECT_EQ(t.connections(), 0u);
  EXPECT_EQ(sink_.spans.size(), 3u);
  EXPECT_EQ(Gauge(self_, "redmap_tracked_connections"), 0);
}

TEST_F(ConnTrackerTest, ActivityKeepsAConnectionAlive) {
  ConnTrackerOptions o;
  o.idle_timeout_ns = 1'000'000;
  ConnTracker t(o, &sink_, &self_);
  Exchange(t, 1, 1000, ok_);
  Exchange(t, 2, 2000, ok_);
  Exchange(t, 1, 1'500'000, ok_);
  t.ExpireIdle(2'000'000);
  EXPECT_EQ(t.connections(), 1u);
  Exchange(t, 1, 2'100'000, ok_);
  EXPECT_EQ(sink_.spans.size(), 4u);
}

TEST_F(ConnTrackerTest, DestructionFlushes) {
  {
    ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
    Exchange(t, 1, 1000, until_close_);
    EXPECT_TRUE(sink_.spans.empty());
  }
  EXPECT_EQ(sink_.spans.size(), 1u);
}

TEST_F(ConnTrackerTest, ZeroCapacityTracksNothing) {
  ConnTrackerOptions o;
  o.max_connections = 0;
  ConnTracker t(o, &sink_, &self_);
  Exchange(t, 1, 1000, ok_);
  EXPECT_EQ(t.connections(), 0u);
  EXPECT_TRUE(sink_.spans.empty());
}

TEST_F(ConnTrackerTest, RoleFromTheEventOrFromTheBytes) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  // Kernel knew: client (it called connect). Requests go out.
  t.OnData(Event(1, Direction::kEgress, get_, 1000, Role::kClient));
  t.OnData(Event(1, Direction::kIngress, ok_, 2000, Role::kClient));
  // Kernel did not know: a request coming in makes this end the server; the
  // event before it (a body tail) told nothing and is not parsed.
  t.OnData(Event(2, Direction::kEgress, "tail", 3000, Role::kUnknown));
  t.OnData(Event(2, Direction::kIngress, get_, 4000, Role::kUnknown));
  t.OnData(Event(2, Direction::kEgress, ok_, 5000, Role::kUnknown));
  // A response going out first: also the server.
  t.OnData(Event(3, Direction::kEgress, ok_, 6000, Role::kUnknown));
  t.OnData(Event(3, Direction::kIngress, get_, 7000, Role::kUnknown));
  t.OnData(Event(3, Direction::kEgress, ok_, 8000, Role::kUnknown));
  ASSERT_EQ(sink_.spans.size(), 3u);
  EXPECT_EQ(sink_.spans[0].side, Role::kClient);
  EXPECT_EQ(sink_.spans[0].server.port, 50001);  // the remote end
  EXPECT_EQ(sink_.spans[0].start_ns, 1000u);     // the write's start
  EXPECT_EQ(sink_.spans[1].side, Role::kServer);
  EXPECT_EQ(sink_.spans[1].server.port, 80);
  EXPECT_EQ(sink_.spans[1].start_ns, 4100u);  // the read's return
  EXPECT_EQ(sink_.spans[2].side, Role::kServer);
  EXPECT_EQ(self_.parse_errors(Protocol::kHttp1), 0u);
}

TEST_F(ConnTrackerTest, UnparsedBytesBeyondTheBufferBoundAreDropped) {
  ConnTrackerOptions o;
  o.max_buffer_bytes = 64;
  ConnTracker t(o, &sink_, &self_);
  // A head that never ends, a few bytes at a time.
  std::string head = "GET /slow HTTP/1.1\r\n";
  for (int i = 0; i < 10; ++i) head += "X-Header-" + std::to_string(i) + ": v\r\n";
  DataEvent e = Event(1, Direction::kIngress, "", 1000);
  e.has_tcp_seq = true;
  uint32_t seq = 1;
  for (size_t i = 0; i < head.size(); i += 10) {
    std::string_view part = std::string_view(head).substr(i, 10);
    e.payload = part;
    e.byte_count = static_cast<uint32_t>(part.size());
    e.tcp_seq = seq;
    seq += e.byte_count;
    t.OnData(e);
  }
  EXPECT_EQ(self_.dropped(DropReason::kBufferOverflow), 1u);
  // The stream recovers at the next request.
  e.payload = get_;
  e.byte_count = static_cast<uint32_t>(get_.size());
  e.tcp_seq = seq;
  t.OnData(e);
  t.OnData(Event(1, Direction::kEgress, ok_, 9000));
  ASSERT_EQ(sink_.spans.size(), 1u);
  EXPECT_EQ(sink_.spans[0].http.target, "/api/items/42?page=2");
}

TEST_F(ConnTrackerTest, SequenceNumbersOrNotIsReportedPerConnection) {
  ConnTracker t(ConnTrackerOptions{}, &sink_, &self_);
  DataEvent req = Event(1, Direction::kIngress, get_, 1000);
  req.has_tcp_seq = true;
  req.tcp_seq = 77;
  t.OnData(req);
  t.OnData(Event(1, Direction::kEgress, ok_, 2000));
  Exchange(t, 2, 3000, ok_);
  ASSERT_EQ(sink_.spans.size(), 2u);
  EXPECT_TRUE(sink_.spans[0].has_tcp_seq);
  EXPECT_EQ(sink_.spans[0].request_tcp_seq, 77u);
  EXPECT_FALSE(sink_.spans[1].has_tcp_seq);
}

}  // namespace
}  // namespace redmap
