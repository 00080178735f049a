#include "aggregators/sources/event_decoder.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "bpf/socket_trace.h"
#include "bpf/tcp_health.h"

namespace redmap {
namespace {

class Capture : public EventSink {
 public:
  void OnData(const DataEvent& e) override {
    data.push_back(e);
    payloads.emplace_back(e.payload);
  }
  void OnClose(const CloseEvent& e) override { closes.push_back(e); }
  void OnTcp(const TcpEvent& e) override {
    tcp.push_back(e);
    tcp_names.emplace_back(e.process_name);
  }
  std::vector<TcpEvent> tcp;
  std::vector<std::string> tcp_names;
  std::vector<DataEvent> data;
  std::vector<std::string> payloads;
  std::vector<CloseEvent> closes;
};

std::vector<uint8_t> DataRecord(const std::string& payload, uint32_t byte_count) {
  redmap_data_event h{};
  h.type = REDMAP_EVENT_DATA;
  h.direction = REDMAP_DIR_INGRESS;
  h.tgid = 42;
  h.tid = 43;
  h.fd = 7;
  h.protocol = REDMAP_PROTO_HTTP1;
  h.conn_start_ns = 1000;
  h.enter_ns = 2000;
  h.exit_ns = 2500;
  h.cgroup_id = 99;
  h.byte_count = byte_count;
  h.captured_len = payload.size();
  h.tcp_seq = 0xfffffff0;
  h.family = REDMAP_AF_INET;
  h.role = REDMAP_ROLE_SERVER;
  h.local_port = 8080;
  h.remote_port = 51234;
  h.syscall = REDMAP_SYS_READ;
  uint32_t lo = htonl(0x7f000001);
  std::memcpy(h.local_addr, &lo, 4);
  std::memcpy(h.remote_addr, &lo, 4);
  std::vector<uint8_t> rec(sizeof(h) + payload.size());
  std::memcpy(rec.data(), &h, sizeof(h));
  std::memcpy(rec.data() + sizeof(h), payload.data(), payload.size());
  return rec;
}

TEST(EventDecoderTest, DecodesDataRecord) {
  Capture sink;
  auto rec = DataRecord("GET / HTTP/1.1\r\n", 5000);
  ASSERT_EQ(DecodeRecord(rec.data(), rec.size(), &sink), DecodeResult::kData);
  ASSERT_EQ(sink.data.size(), 1u);
  const DataEvent& e = sink.data[0];
  EXPECT_EQ(e.conn, (ConnKey{42, 7, 1000}));
  EXPECT_EQ(e.tid, 43u);
  EXPECT_EQ(e.direction, Direction::kIngress);
  EXPECT_EQ(e.role, Role::kServer);
  EXPECT_EQ(e.protocol, Protocol::kHttp1);
  EXPECT_EQ(e.byte_count, 5000u);
  EXPECT_EQ(e.tcp_seq, 0xfffffff0u);
  EXPECT_TRUE(e.has_tcp_seq);
  EXPECT_EQ(e.local.addr.ToString(), "127.0.0.1");
  EXPECT_EQ(e.local.port, 8080);
  EXPECT_EQ(e.remote.port, 51234);
  EXPECT_EQ(sink.payloads[0], "GET / HTTP/1.1\r\n");
}

TEST(EventDecoderTest, PeerFlagsAreTakenOnlyWhereTheyMakeSense) {
  Capture sink;
  auto rec = DataRecord("GET / HTTP/1.1\r\n", 5000);
  redmap_data_event h;
  std::memcpy(&h, rec.data(), sizeof(h));
  h.flags = REDMAP_EVENT_F_PEER_LOCAL;  // a server end whose client is local
  std::memcpy(rec.data(), &h, sizeof(h));
  ASSERT_EQ(DecodeRecord(rec.data(), rec.size(), &sink), DecodeResult::kData);
  h.role = REDMAP_ROLE_CLIENT;
  h.flags = REDMAP_EVENT_F_PEER_PARSES;  // a client end with bytes: parsed as usual
  std::memcpy(rec.data(), &h, sizeof(h));
  ASSERT_EQ(DecodeRecord(rec.data(), rec.size(), &sink), DecodeResult::kData);
  h.captured_len = 0;  // a client end without them: the server end parses
  std::memcpy(rec.data(), &h, sizeof(h));
  ASSERT_EQ(DecodeRecord(rec.data(), sizeof(h), &sink), DecodeResult::kData);
  ASSERT_EQ(sink.data.size(), 3u);
  EXPECT_TRUE(sink.data[0].peer_local);
  EXPECT_FALSE(sink.data[0].peer_parses);
  EXPECT_FALSE(sink.data[1].peer_parses);
  EXPECT_FALSE(sink.data[1].peer_local);
  EXPECT_TRUE(sink.data[2].peer_parses);
  EXPECT_TRUE(sink.data[2].payload.empty());
}

redmap_peer_event PeerRecord(uint32_t send_len, uint32_t recv_len) {
  redmap_peer_event h{};
  h.type = REDMAP_EVENT_PEER;
  h.tgid = 42;
  h.fd = 7;
  h.protocol = REDMAP_PROTO_HTTP1;
  h.conn_start_ns = 1000;
  h.ts_ns = 3000;
  h.send_ns = 2000;
  h.send_seq = 0xfffffff0;
  h.send_len = send_len;
  h.send_tid = 44;
  h.recv_tid = 45;
  h.recv_seq = 500;
  h.recv_len = recv_len;
  return h;
}

TEST(EventDecoderTest, APeerRecordIsTheWriteThenTheRead) {
  Capture sink;
  redmap_peer_event h = PeerRecord(40, 150);
  ASSERT_EQ(DecodeRecord(&h, sizeof(h), &sink), DecodeResult::kData);
  ASSERT_EQ(sink.data.size(), 2u);
  for (const DataEvent& e : sink.data) {
    EXPECT_EQ(e.conn, (ConnKey{42, 7, 1000}));
    EXPECT_EQ(e.role, Role::kClient);
    EXPECT_EQ(e.protocol, Protocol::kHttp1);
    EXPECT_TRUE(e.has_tcp_seq);
    EXPECT_TRUE(e.peer_parses);
    EXPECT_TRUE(e.compact);
    EXPECT_TRUE(e.payload.empty());
    EXPECT_TRUE(e.process_name.empty());
  }
  const DataEvent& send = sink.data[0];
  EXPECT_EQ(send.direction, Direction::kEgress);
  EXPECT_EQ(send.tid, 44u);
  EXPECT_EQ(send.enter_ns, 2000u);
  EXPECT_EQ(send.exit_ns, 2000u);
  EXPECT_EQ(send.tcp_seq, 0xfffffff0u);
  EXPECT_EQ(send.byte_count, 40u);
  const DataEvent& recv = sink.data[1];
  EXPECT_EQ(recv.direction, Direction::kIngress);
  EXPECT_EQ(recv.tid, 45u);
  EXPECT_EQ(recv.exit_ns, 3000u);
  EXPECT_EQ(recv.tcp_seq, 500u);
  EXPECT_EQ(recv.byte_count, 150u);
  uint64_t ts = 0;
  EXPECT_TRUE(RecordTimestamp(&h, sizeof(h), &ts));
  EXPECT_EQ(ts, 3000u);
  EXPECT_EQ(NextEventSize(&h, sizeof(h) + 8), sizeof(h));

  // A part of length 0 is absent.
  sink.data.clear();
  h = PeerRecord(40, 0);
  ASSERT_EQ(DecodeRecord(&h, sizeof(h), &sink), DecodeResult::kData);
  h = PeerRecord(0, 150);
  ASSERT_EQ(DecodeRecord(&h, sizeof(h), &sink), DecodeResult::kData);
  ASSERT_EQ(sink.data.size(), 2u);
  EXPECT_EQ(sink.data[0].direction, Direction::kEgress);
  EXPECT_EQ(sink.data[1].direction, Direction::kIngress);
}

TEST(EventDecoderTest, RejectsBadPeerRecords) {
  Capture sink;
  redmap_peer_event h = PeerRecord(0, 0);  // nothing in it
  EXPECT_EQ(DecodeRecord(&h, sizeof(h), &sink), DecodeResult::kInvalid);
  h = PeerRecord(40, 150);
  h.protocol = REDMAP_PROTO_NONE;
  EXPECT_EQ(DecodeRecord(&h, sizeof(h), &sink), DecodeResult::kInvalid);
  h = PeerRecord(40, 150);
  h.send_ns = h.ts_ns + 1;  // written after the record was
  EXPECT_EQ(DecodeRecord(&h, sizeof(h), &sink), DecodeResult::kInvalid);
  h = PeerRecord(40, 150);
  for (size_t n = 0; n < sizeof(h); ++n) {
    EXPECT_EQ(DecodeRecord(&h, n, &sink), DecodeResult::kInvalid) << n;
  }
  EXPECT_TRUE(sink.data.empty());
}

TEST(EventDecoderTest, MappedIpv6BecomesIpv4) {
  Capture sink;
  auto rec = DataRecord("", 10);
  redmap_data_event h;
  std::memcpy(&h, rec.data(), sizeof(h));
  h.family = REDMAP_AF_INET6;
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
  std::memcpy(h.remote_addr, mapped, 16);
  std::memcpy(rec.data(), &h, sizeof(h));
  ASSERT_EQ(DecodeRecord(rec.data(), rec.size(), &sink), DecodeResult::kData);
  EXPECT_EQ(sink.data[0].remote.addr.ToString(), "10.1.2.3");
}

TEST(EventDecoderTest, DecodesCloseRecord) {
  redmap_close_event c{};
  c.type = REDMAP_EVENT_CLOSE;
  c.tgid = 5;
  c.fd = 6;
  c.conn_start_ns = 77;
  c.close_ns = 88;
  Capture sink;
  ASSERT_EQ(DecodeRecord(&c, sizeof(c), &sink), DecodeResult::kClose);
  ASSERT_EQ(sink.closes.size(), 1u);
  EXPECT_EQ(sink.closes[0].conn, (ConnKey{5, 6, 77}));
  EXPECT_EQ(sink.closes[0].ts_ns, 88u);
}

redmap_tcp_event TcpRecord() {
  redmap_tcp_event t{};
  t.type = REDMAP_EVENT_TCP;
  t.kind = REDMAP_TCP_CLOSED;
  t.sk = 0xffff888812345678ull;
  t.ts_ns = 99;
  t.value = 3000017;
  t.value2 = 1234;
  t.tgid = 77;
  t.aux = REDMAP_TCP_CLOSED_HAS_STATS;
  t.srtt_us = 42;
  t.family = REDMAP_AF_INET;
  t.role = REDMAP_ROLE_CLIENT;
  t.local_port = 40000;
  t.remote_port = 8080;
  uint32_t a = htonl(0x0a000002), b = htonl(0x0a000001);
  std::memcpy(t.local_addr, &a, 4);
  std::memcpy(t.remote_addr, &b, 4);
  std::memcpy(t.comm, "curl", 4);
  t.cgroup_id = 0x1234;
  return t;
}

TEST(EventDecoderTest, DecodesTcpRecord) {
  redmap_tcp_event t = TcpRecord();
  Capture sink;
  ASSERT_EQ(DecodeRecord(&t, sizeof(t), &sink), DecodeResult::kTcp);
  ASSERT_EQ(sink.tcp.size(), 1u);
  const TcpEvent& e = sink.tcp[0];
  EXPECT_EQ(e.kind, TcpEventKind::kClosed);
  EXPECT_EQ(e.sk, 0xffff888812345678ull);
  EXPECT_TRUE(e.has_close_stats);
  EXPECT_EQ(e.value, 3000017u);
  EXPECT_EQ(e.value2, 1234u);
  EXPECT_EQ(e.srtt_us, 42u);
  EXPECT_EQ(e.role, Role::kClient);
  EXPECT_EQ(e.local.addr.ToString(), "10.0.0.2");
  EXPECT_EQ(e.remote.addr.ToString(), "10.0.0.1");
  EXPECT_EQ(e.remote.port, 8080);
  EXPECT_EQ(sink.tcp_names[0], "curl");
  EXPECT_EQ(e.cgroup_id, 0x1234u);

  t.kind = REDMAP_TCP_CONNECT_FAILED;
  t.aux = 111;  // ECONNREFUSED
  ASSERT_EQ(DecodeRecord(&t, sizeof(t), &sink), DecodeResult::kTcp);
  EXPECT_EQ(sink.tcp[1].kind, TcpEventKind::kConnectFailed);
  EXPECT_EQ(sink.tcp[1].error, 111);
  t.kind = REDMAP_TCP_RETRANSMIT;
  t.aux = REDMAP_TCP_RETRANS_SYN;
  ASSERT_EQ(DecodeRecord(&t, sizeof(t), &sink), DecodeResult::kTcp);
  EXPECT_EQ(sink.tcp[2].retransmit, RetransmitKind::kSyn);
}

TEST(EventDecoderTest, RejectsBadTcpRecords) {
  Capture sink;
  redmap_tcp_event t = TcpRecord();
  for (size_t n = 0; n < sizeof(t); ++n) {
    EXPECT_EQ(DecodeRecord(&t, n, &sink), DecodeResult::kInvalid) << n;
  }
  t.kind = 0;
  EXPECT_EQ(DecodeRecord(&t, sizeof(t), &sink), DecodeResult::kInvalid);
  t.kind = REDMAP_TCP_LISTEN + 1;
  EXPECT_EQ(DecodeRecord(&t, sizeof(t), &sink), DecodeResult::kInvalid);
  t = TcpRecord();
  t.family = 1;
  EXPECT_EQ(DecodeRecord(&t, sizeof(t), &sink), DecodeResult::kInvalid);
  t = TcpRecord();
  t.kind = REDMAP_TCP_RETRANSMIT;
  t.aux = 9;
  EXPECT_EQ(DecodeRecord(&t, sizeof(t), &sink), DecodeResult::kInvalid);
  EXPECT_TRUE(sink.tcp.empty());
}

TEST(EventDecoderTest, RejectsEveryShortPrefix) {
  auto rec = DataRecord("HTTP/1.1 200 OK\r\n", 17);
  Capture sink;
  for (size_t n = 0; n < rec.size(); ++n) {
    EXPECT_EQ(DecodeRecord(rec.data(), n, &sink), DecodeResult::kInvalid) << n;
  }
  EXPECT_TRUE(sink.data.empty());
}

TEST(EventDecoderTest, RejectsInconsistentLengths) {
  Capture sink;
  auto rec = DataRecord("abcdef", 3);  // captured more than the syscall moved
  EXPECT_EQ(DecodeRecord(rec.data(), rec.size(), &sink), DecodeResult::kInvalid);
  uint32_t bogus_type = 7;
  EXPECT_EQ(DecodeRecord(&bogus_type, sizeof(bogus_type), &sink), DecodeResult::kInvalid);
  EXPECT_EQ(DecodeRecord(nullptr, 0, &sink), DecodeResult::kInvalid);
  EXPECT_TRUE(sink.data.empty());
}

TEST(NextEventSizeTest, EventsArePaddedToEightBytesAndNeverPastTheRecord) {
  std::vector<uint8_t> rec(sizeof(redmap_data_event) + 3 + 5 + sizeof(redmap_close_event), 0);
  redmap_data_event h{};
  h.type = REDMAP_EVENT_DATA;
  h.captured_len = 3;
  std::memcpy(rec.data(), &h, sizeof(h));
  redmap_close_event c{};
  c.type = REDMAP_EVENT_CLOSE;
  std::memcpy(rec.data() + sizeof(h) + 8, &c, sizeof(c));
  EXPECT_EQ(NextEventSize(rec.data(), rec.size()), sizeof(h) + 8);
  EXPECT_EQ(NextEventSize(rec.data() + sizeof(h) + 8, sizeof(c)), sizeof(c));
  // The last event of a record needs no padding.
  EXPECT_EQ(NextEventSize(rec.data(), sizeof(h) + 3), sizeof(h) + 3);
  // Not a whole event: the rest of the record, rejected by the decoder.
  EXPECT_EQ(NextEventSize(rec.data(), sizeof(h) + 2), sizeof(h) + 2);
  EXPECT_EQ(NextEventSize(rec.data(), 3), 3u);
  const uint32_t unknown = 99;
  EXPECT_EQ(NextEventSize(&unknown, sizeof(unknown)), sizeof(unknown));
}

}  // namespace
}  // namespace redmap
