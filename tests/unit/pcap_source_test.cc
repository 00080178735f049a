#include "aggregators/sources/pcap_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using ::redmap::testing::IsOk;
using ::redmap::testing::StatusIs;
using ::testing::HasSubstr;

struct Recorded {
  ConnKey conn;
  Role role;
  Direction dir;
  uint32_t seq;
  uint32_t len;
  std::string payload;
  Endpoint local, remote;
};

class Recorder : public EventSink {
 public:
  void OnData(const DataEvent& e) override {
    data.push_back({e.conn, e.role, e.direction, e.tcp_seq, e.byte_count, std::string(e.payload),
                    e.local, e.remote});
  }
  void OnClose(const CloseEvent& e) override { closes.push_back(e); }
  // Concatenated payload the client view sent (egress) or received.
  std::string Stream(Role role, Direction dir) const {
    std::string s;
    for (const auto& r : data)
      if (r.role == role && r.dir == dir) s += r.payload;
    return s;
  }
  std::vector<Recorded> data;
  std::vector<CloseEvent> closes;
};

// Builds captures packet by packet with libpcap's own writer.
class CaptureBuilder {
 public:
  explicit CaptureBuilder(int linktype) : linktype_(linktype) {
    char tmpl[] = "/tmp/redmap-pcap-XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    path_ = tmpl;
    dead_ = pcap_open_dead_with_tstamp_precision(linktype, 65535, PCAP_TSTAMP_PRECISION_NANO);
    dumper_ = pcap_dump_open(dead_, path_.c_str());
  }
  ~CaptureBuilder() {
    Finish();
    unlink(path_.c_str());
  }
  const std::string& Finish() {
    if (dumper_) {
      pcap_dump_close(dumper_);
      dumper_ = nullptr;
      pcap_close(dead_);
    }
    return path_;
  }

  // A TCP segment between 10.0.0.1:port_a (client) and 10.0.0.2:80.
  void Tcp(bool from_client, uint32_t seq, uint8_t flags, const std::string& payload,
           bool v6 = false, size_t truncate_to = 0) {
    std::string tcp(20, '\0');
    uint16_t sport = htons(from_client ? 40000 : 80), dport = htons(from_client ? 80 : 40000);
    std::memcpy(&tcp[0], &sport, 2);
    std::memcpy(&tcp[2], &dport, 2);
    uint32_t nseq = htonl(seq);
    std::memcpy(&tcp[4], &nseq, 4);
    tcp[12] = 5 << 4;
    tcp[13] = static_cast<char>(flags);
    tcp += payload;
    std::string ip;
    if (!v6) {
      ip.assign(20, '\0');
      ip[0] = 0x45;
      uint16_t total = htons(static_cast<uint16_t>(20 + tcp.size()));
      std::memcpy(&ip[2], &total, 2);
      ip[8] = 64;
      ip[9] = 6;
      uint32_t a = htonl(0x0a000001), b = htonl(0x0a000002);
      std::memcpy(&ip[12], from_client ? &a : &b, 4);
      std::memcpy(&ip[16], from_client ? &b : &a, 4);
    } else {
      ip.assign(40, '\0');
      ip[0] = 0x60;
      uint16_t plen = htons(static_cast<uint16_t>(tcp.size()));
      std::memcpy(&ip[4], &plen, 2);
      ip[6] = 6;
      ip[7] = 64;
      ip[8 + 15] = from_client ? 1 : 2;   // src ::1 / ::2
      ip[24 + 15] = from_client ? 2 : 1;  // dst
    }
    std::string link;
    if (linktype_ == DLT_EN10MB) {
      link.assign(14, '\0');
      link[12] = v6 ? '\x86' : '\x08';
      link[13] = v6 ? '\xdd' : '\x00';
    } else if (linktype_ == 276) {  // SLL2: protocol first
      link.assign(20, '\0');
      link[0] = v6 ? '\x86' : '\x08';
      link[1] = v6 ? '\xdd' : '\x00';
    }
    Write(link + ip + tcp, truncate_to);
  }
  void Raw(const std::string& bytes) { Write(bytes, 0); }

 private:
  void Write(const std::string& pkt, size_t truncate_to) {
    pcap_pkthdr h{};
    ts_ += 1000;
    h.ts.tv_sec = 1700000000;
    h.ts.tv_usec = static_cast<suseconds_t>(ts_);  // nanoseconds with nano precision
    h.len = static_cast<bpf_u_int32>(pkt.size());
    h.caplen = static_cast<bpf_u_int32>(truncate_to ? std::min(truncate_to, pkt.size()) : pkt.size());
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, reinterpret_cast<const u_char*>(pkt.data()));
  }

  int linktype_;
  std::string path_;
  pcap_t* dead_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
  uint64_t ts_ = 0;
};

constexpr uint8_t kSyn = 0x02, kAck = 0x10, kFin = 0x01, kRst = 0x04;
const std::string kReq = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const std::string kResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

Recorder Replay(const std::string& path, PcapSource::Stats* stats = nullptr) {
  auto source = PcapSource::Open(path);
  EXPECT_THAT(source, IsOk());
  Recorder r;
  if (!source.ok()) return r;
  std::atomic<bool> stop{false};
  EXPECT_THAT((*source)->Run(&r, stop), IsOk());
  if (stats) *stats = (*source)->stats();
  return r;
}

void Handshake(CaptureBuilder& b, uint32_t c_isn, uint32_t s_isn, bool v6 = false) {
  b.Tcp(true, c_isn, kSyn, "", v6);
  b.Tcp(false, s_isn, kSyn | kAck, "", v6);
  b.Tcp(true, c_isn + 1, kAck, "", v6);
}

TEST(PcapSourceTest, BothViewsOfAnExchange) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 100, 900);
  b.Tcp(true, 101, kAck, kReq);
  b.Tcp(false, 901, kAck, kResp);
  b.Tcp(true, 101 + kReq.size(), kFin | kAck, "");
  b.Tcp(false, 901 + kResp.size(), kFin | kAck, "");
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq);
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kIngress), kResp);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kIngress), kReq);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
  ASSERT_EQ(r.data.size(), 4u);
  EXPECT_EQ(r.data[0].seq, 101u);
  EXPECT_EQ(r.data[0].local.port, 40000);
  EXPECT_EQ(r.data[0].remote.port, 80);
  EXPECT_EQ(r.data[0].remote.addr.ToString(), "10.0.0.2");
  EXPECT_EQ(r.closes.size(), 2u);
  EXPECT_EQ(stats.connections, 1u);
  EXPECT_EQ(stats.payload_bytes, kReq.size() + kResp.size());
}

TEST(PcapSourceTest, OutOfOrderAndRetransmittedSegments) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 100, 900);
  b.Tcp(true, 101 + 10, kAck, kReq.substr(10));  // second half first
  b.Tcp(true, 101, kAck, kReq.substr(0, 10));
  b.Tcp(true, 101, kAck, kReq.substr(0, 10));   // retransmit
  b.Tcp(false, 901, kAck, kResp.substr(0, 20));
  b.Tcp(false, 901 + 5, kAck, kResp.substr(5));  // overlapping retransmit
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kIngress), kReq);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
  EXPECT_EQ(stats.out_of_order, 1u);
  EXPECT_EQ(stats.duplicate_bytes, 10u + 15u);
}

TEST(PcapSourceTest, SequenceWrapAround) {
  CaptureBuilder b(DLT_EN10MB);
  const uint32_t isn = 0xffffffff - 5;
  Handshake(b, isn, 7);
  b.Tcp(true, isn + 1, kAck, kReq.substr(0, 8));
  b.Tcp(true, isn + 9, kAck, kReq.substr(8));
  Recorder r = Replay(b.Finish());
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq);
}

TEST(PcapSourceTest, LinuxCookedV2AndIpv6) {
  CaptureBuilder b(276);
  Handshake(b, 1, 2, /*v6=*/true);
  b.Tcp(true, 2, kAck, kReq, true);
  b.Tcp(false, 3, kAck, kResp, true);
  Recorder r = Replay(b.Finish());
  ASSERT_EQ(r.data.size(), 4u);
  EXPECT_EQ(r.data[0].local.addr.ToString(), "::1");
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
}

TEST(PcapSourceTest, MidStreamCaptureInfersRolesFromTheRequest) {
  CaptureBuilder b(DLT_EN10MB);
  b.Tcp(false, 5000, kAck, kResp);  // the tail of an earlier exchange: not a protocol start
  b.Tcp(true, 77, kAck, kReq);
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  // The first bytes seen were a response: classified as HTTP, server = sender.
  ASSERT_FALSE(r.data.empty());
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq);
}

TEST(PcapSourceTest, UnclassifiedConnectionsAreDropped) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 1, 2);
  b.Tcp(true, 2, kAck, "\x16\x03\x01 TLS hello");
  b.Tcp(false, 3, kAck, "HTTP/1.1 200 OK\r\n\r\n");
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_TRUE(r.data.empty());
  EXPECT_EQ(stats.unclassified_connections, 1u);
}

TEST(PcapSourceTest, TruncatedPacketsGiveKnownPrefixAndFullLength) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 1, 2);
  b.Tcp(true, 2, kAck, kReq, false, 14 + 20 + 20 + 10);  // snaplen cut after 10 payload bytes
  b.Raw("garbage");
  b.Tcp(true, 2, kRst, "");
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  ASSERT_EQ(r.data.size(), 2u);
  EXPECT_EQ(r.data[0].len, kReq.size());
  EXPECT_EQ(r.data[0].payload, kReq.substr(0, 10));
  EXPECT_EQ(stats.unsupported_packets, 1u);
  EXPECT_EQ(r.closes.size(), 2u);  // RST ends both views
}

TEST(PcapSourceTest, RealCaptureOfCurlAndPython) {
  PcapSource::Stats stats;
  Recorder r = Replay(std::string(REDMAP_SOURCE_DIR) +
                          "/tests/fixtures/pcap/curl_python_http_server.pcap",
                      &stats);
  EXPECT_EQ(stats.connections, 2u);
  EXPECT_EQ(r.closes.size(), 4u);
  std::string sent = r.Stream(Role::kClient, Direction::kEgress);
  EXPECT_EQ(sent.rfind("GET / HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(sent.find("GET /x HTTP/1.1\r\n"), std::string::npos);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), r.Stream(Role::kClient, Direction::kIngress));
}

TEST(PcapSourceTest, Errors) {
  EXPECT_THAT(PcapSource::Open("/nonexistent.pcap"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/nonexistent.pcap")));
  CaptureBuilder b(DLT_IEEE802_11);
  b.Raw("x");
  EXPECT_THAT(PcapSource::Open(b.Finish()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unsupported link type")));
  std::string junk = "definitely not a pcap file";
  EXPECT_FALSE(PcapSource::OpenBuffer(junk.data(), junk.size()).ok());
}

}  // namespace
}  // namespace redmap
