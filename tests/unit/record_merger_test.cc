#include "aggregators/sources/record_merger.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "bpf/socket_trace.h"
#include "bpf/tcp_health.h"

namespace redmap {
namespace {

class Order : public EventSink {
 public:
  void OnData(const DataEvent& e) override { seen.push_back(e.exit_ns); }
  void OnClose(const CloseEvent& e) override { seen.push_back(e.ts_ns); }
  void OnTcp(const TcpEvent& e) override { seen.push_back(e.ts_ns); }
  std::vector<uint64_t> seen;
};

redmap_data_event Data(uint64_t ts) {
  redmap_data_event h{};
  h.type = REDMAP_EVENT_DATA;
  h.direction = REDMAP_DIR_EGRESS;
  h.family = REDMAP_AF_INET;
  h.enter_ns = h.exit_ns = ts;
  return h;
}

redmap_close_event Close(uint64_t ts) {
  redmap_close_event c{};
  c.type = REDMAP_EVENT_CLOSE;
  c.close_ns = ts;
  return c;
}

redmap_tcp_event Tcp(uint64_t ts) {
  redmap_tcp_event t{};
  t.type = REDMAP_EVENT_TCP;
  t.kind = REDMAP_TCP_RESET_SENT;
  t.family = REDMAP_AF_INET;
  t.ts_ns = ts;
  return t;
}

TEST(RecordMergerTest, DeliversRecordsFromSeveralRingsInTimeOrder) {
  RecordMerger m;
  // Ring of CPU 0 read first, then CPU 1's, then the TCP ring.
  auto d30 = Data(30), d10 = Data(10);
  auto c20 = Close(20);
  auto t15 = Tcp(15);
  m.Add(0, &d10, sizeof(d10));
  m.Add(0, &d30, sizeof(d30));
  m.Add(1, &c20, sizeof(c20));
  m.Add(2, &t15, sizeof(t15));
  Order sink;
  EXPECT_EQ(m.Deliver(std::numeric_limits<uint64_t>::max(), &sink), 0u);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{10, 15, 20, 30}));
  EXPECT_EQ(m.delivered(0), 2u);
  EXPECT_EQ(m.delivered(1), 1u);
  EXPECT_EQ(m.delivered(2), 1u);
  EXPECT_EQ(m.delivered(3), 0u);
  EXPECT_EQ(m.held_back(), 0u);
}

TEST(RecordMergerTest, HoldsBackEachRingFromItsFirstRecordAtOrAfterTheCutoff) {
  RecordMerger m;
  auto a = Data(100), b = Data(200), c = Data(300), d = Data(150);
  m.Add(0, &a, sizeof(a));
  m.Add(0, &c, sizeof(c));
  m.Add(0, &d, sizeof(d));  // older than the cutoff, but behind c in its ring
  Order sink;
  m.Deliver(250, &sink);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{100}));
  EXPECT_EQ(m.delivered(0), 1u);
  EXPECT_EQ(m.held_back(), 2u);
  // Next round: what stayed in ring 0, and a late record of ring 1 from
  // before the held ones, which still comes first.
  m.Add(0, &c, sizeof(c));
  m.Add(0, &d, sizeof(d));
  m.Add(1, &b, sizeof(b));
  m.Deliver(std::numeric_limits<uint64_t>::max(), &sink);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{100, 150, 200, 300}));
  EXPECT_EQ(m.delivered(0), 2u);
  EXPECT_EQ(m.delivered(1), 1u);
  EXPECT_EQ(m.held_back(), 0u);
}

TEST(RecordMergerTest, ARingWithNothingBeforeTheCutoffDeliversNothing) {
  RecordMerger m;
  auto a = Data(100), b = Data(500);
  m.Add(0, &b, sizeof(b));
  m.Add(1, &a, sizeof(a));
  Order sink;
  m.Deliver(250, &sink);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{100}));
  EXPECT_EQ(m.delivered(0), 0u);
  EXPECT_EQ(m.delivered(1), 1u);
  // A round with nothing noted resets the counts.
  m.Deliver(250, &sink);
  EXPECT_EQ(m.delivered(1), 0u);
  EXPECT_EQ(m.held_back(), 0u);
}

TEST(RecordMergerTest, EqualTimestampsKeepArrivalOrder) {
  RecordMerger m;
  auto d = Data(50);
  auto c = Close(50);
  m.Add(0, &d, sizeof(d));
  m.Add(1, &c, sizeof(c));
  struct Kinds : EventSink {
    void OnData(const DataEvent&) override { kinds.push_back('d'); }
    void OnClose(const CloseEvent&) override { kinds.push_back('c'); }
    std::string kinds;
  } sink;
  m.Deliver(std::numeric_limits<uint64_t>::max(), &sink);
  EXPECT_EQ(sink.kinds, "dc");
}

TEST(RecordMergerTest, MalformedRecordsAreCountedNotDelivered) {
  RecordMerger m;
  uint8_t junk[3] = {1, 2, 3};
  uint32_t unknown_type = 77;
  auto d = Data(5);
  m.Add(0, junk, sizeof(junk));
  m.Add(0, &unknown_type, sizeof(unknown_type));
  m.Add(1, &d, sizeof(d) - 1);  // truncated
  Order sink;
  EXPECT_EQ(m.Deliver(1000, &sink), 3u);
  EXPECT_TRUE(sink.seen.empty());
  // Rejected records are gone from their rings all the same.
  EXPECT_EQ(m.delivered(0), 2u);
  EXPECT_EQ(m.delivered(1), 1u);
}

// Rounds of a few ordered runs (merged) and of many short ones (sorted),
// with timestamps repeated across runs: always (timestamp, arrival) order.
TEST(RecordMergerTest, RunsAndDisorderComeOutInTimestampThenArrivalOrder) {
  for (int runs : {1, 2, 3, 16, 17, 200}) {
    RecordMerger m;
    std::vector<std::pair<uint64_t, uint32_t>> expected;  // (ts, arrival)
    std::vector<redmap_data_event> records;  // the rings: views must stay valid
    records.reserve(2000);
    uint32_t arrival = 0;
    uint64_t x = 12345;
    for (int r = 0; r < runs; ++r) {
      uint64_t ts = 0;
      for (int k = 0; k < 1000 / runs + 1; ++k) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ts += (x >> 60) % 3;  // steps of 0, 1 or 2: equal timestamps within and across runs
        redmap_data_event& d = records.emplace_back(Data(ts));
        d.byte_count = arrival;  // delivered as DataEvent::byte_count
        m.Add(static_cast<uint32_t>(r), &d, sizeof(d));
        expected.emplace_back(ts, arrival++);
      }
    }
    std::stable_sort(expected.begin(), expected.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    struct Seen : EventSink {
      void OnData(const DataEvent& e) override { got.emplace_back(e.exit_ns, e.byte_count); }
      void OnClose(const CloseEvent&) override {}
      void OnTcp(const TcpEvent&) override {}
      std::vector<std::pair<uint64_t, uint32_t>> got;
    } sink;
    EXPECT_EQ(m.Deliver(std::numeric_limits<uint64_t>::max(), &sink), 0u);
    EXPECT_EQ(sink.got, expected) << runs << " runs";
  }
}

// A batch record as the kernel side writes it: events back to back, each
// padded to 8 bytes.
class Batch {
 public:
  Batch& Add(const void* event, size_t size) {
    const auto* p = static_cast<const uint8_t*>(event);
    bytes_.insert(bytes_.end(), p, p + size);
    bytes_.resize((bytes_.size() + 7) & ~size_t{7}, 0);
    return *this;
  }
  Batch& AddData(uint64_t ts, std::string_view payload) {
    std::vector<uint8_t> e(sizeof(redmap_data_event) + payload.size());
    redmap_data_event h = Data(ts);
    h.byte_count = h.captured_len = static_cast<uint32_t>(payload.size());
    std::memcpy(e.data(), &h, sizeof(h));
    std::memcpy(e.data() + sizeof(h), payload.data(), payload.size());
    return Add(e.data(), e.size());
  }
  Batch& AddRaw(std::string_view bytes) {  // no padding: a malformed tail
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
};

TEST(RecordMergerTest, BatchRecordsAreMergedEventByEventAndCountedAsOneRecord) {
  RecordMerger m;
  const auto c20 = Close(20);
  Batch b;
  b.AddData(10, "GET").Add(&c20, sizeof(c20)).AddData(30, "HTTP/1.1 200 OK\r\n");
  const auto d15 = Data(15), d25 = Data(25);
  m.Add(0, b.data(), b.size());
  m.Add(1, &d15, sizeof(d15));
  m.Add(1, &d25, sizeof(d25));
  Order sink;
  EXPECT_EQ(m.Deliver(std::numeric_limits<uint64_t>::max(), &sink), 0u);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{10, 15, 20, 25, 30}));
  EXPECT_EQ(m.delivered(0), 1u);  // records, for the ring's consumer position
  EXPECT_EQ(m.delivered(1), 2u);
}

TEST(RecordMergerTest, ABatchCutByTheCutoffDeliversItsOlderEventsOnce) {
  RecordMerger m;
  Batch b;
  b.AddData(10, "a").AddData(25, "b").AddData(40, "c");
  const auto d20 = Data(20), d50 = Data(50);
  m.Add(0, b.data(), b.size());
  m.Add(1, &d20, sizeof(d20));
  Order sink;
  m.Deliver(30, &sink);
  // 10 cannot wait for 40: another ring's 20 would overtake it.
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{10, 20, 25}));
  EXPECT_EQ(m.delivered(0), 0u);  // the record stays in its ring
  EXPECT_EQ(m.delivered(1), 1u);
  EXPECT_EQ(m.held_back(), 1u);
  // Noted again from the ring's start, as the ring reader does: what went
  // already is skipped.
  m.Add(0, b.data(), b.size());
  m.Add(1, &d50, sizeof(d50));
  m.Deliver(45, &sink);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{10, 20, 25, 40}));
  EXPECT_EQ(m.delivered(0), 1u);
  EXPECT_EQ(m.held_back(), 1u);
  m.Add(1, &d50, sizeof(d50));
  m.Deliver(std::numeric_limits<uint64_t>::max(), &sink);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{10, 20, 25, 40, 50}));
}

TEST(RecordMergerTest, ARecordShorterThanWhatWasSkippedIsReadWhole) {
  RecordMerger m;
  Batch b;
  b.AddData(10, "a").AddData(40, "b");
  m.Add(0, b.data(), b.size());
  Order sink;
  m.Deliver(30, &sink);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{10}));
  const auto d60 = Data(60);  // not the record that was cut (a misuse): all of it
  m.Add(0, &d60, sizeof(d60));
  m.Deliver(std::numeric_limits<uint64_t>::max(), &sink);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{10, 60}));
}

TEST(RecordMergerTest, AMalformedTailOfABatchIsRejectedOnce) {
  RecordMerger m;
  Batch b;
  b.AddData(10, "GET /").AddRaw("\x01\x00\x00\x00garbage");
  m.Add(0, b.data(), b.size());
  Order sink;
  EXPECT_EQ(m.Deliver(std::numeric_limits<uint64_t>::max(), &sink), 1u);
  EXPECT_EQ(sink.seen, (std::vector<uint64_t>{10}));
  EXPECT_EQ(m.delivered(0), 1u);
}

}  // namespace
}  // namespace redmap
