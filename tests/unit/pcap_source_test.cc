#include "aggregators/sources/pcap_source.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "tests/testlib/fixtures.h"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using ::redmap::testing::IsOk;
using ::redmap::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Recorded {
  ConnKey conn;
  Protocol protocol;
  Role role;
  Direction dir;
  uint64_t ts;
  uint32_t seq;
  bool has_seq;
  uint32_t len;
  std::string payload;
  Endpoint local, remote;
};

class Recorder : public EventSink {
 public:
  void OnData(const DataEvent& e) override {
    EXPECT_EQ(e.enter_ns, e.exit_ns);
    EXPECT_LE(e.payload.size(), e.byte_count);
    data.push_back({e.conn, e.protocol, e.role, e.direction, e.exit_ns, e.tcp_seq, e.has_tcp_seq,
                    e.byte_count, std::string(e.payload), e.local, e.remote});
  }
  void OnClose(const CloseEvent& e) override { closes.push_back(e); }

  // Concatenated payload of one view and direction (of one connection, fd >= 0).
  std::string Stream(Role role, Direction dir, int32_t fd = -1) const {
    std::string s;
    for (const auto& r : data) {
      if (r.role == role && r.dir == dir && (fd < 0 || r.conn.fd == fd)) s += r.payload;
    }
    return s;
  }
  uint64_t Bytes(Role role, Direction dir, int32_t fd = -1) const {
    uint64_t n = 0;
    for (const auto& r : data) {
      if (r.role == role && r.dir == dir && (fd < 0 || r.conn.fd == fd)) n += r.len;
    }
    return n;
  }
  std::vector<int32_t> ClosedFds() const {
    std::vector<int32_t> fds;
    for (const auto& c : closes) fds.push_back(c.conn.fd);
    return fds;
  }
  // Every connection's events (data, then its close) have non-decreasing times.
  bool MonotonicPerConnection() const {
    std::map<int32_t, uint64_t> last;
    for (const auto& r : data) {
      if (r.ts < last[r.conn.fd]) return false;
      last[r.conn.fd] = r.ts;
    }
    for (const auto& c : closes) {
      if (c.ts_ns < last[c.conn.fd]) return false;
    }
    return true;
  }

  std::vector<Recorded> data;
  std::vector<CloseEvent> closes;
};

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
constexpr uint64_t kBaseNs = 1700000000ull * 1000000000ull;
const std::string kReq = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const std::string kResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

std::string Be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string Be32(uint32_t v) { return Be16(static_cast<uint16_t>(v >> 16)) + Be16(v & 0xffff); }

std::string TcpHeader(uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags) {
  std::string t = Be16(sport) + Be16(dport) + Be32(seq) + Be32(0);
  t += static_cast<char>(5 << 4);
  t += static_cast<char>(flags);
  t += std::string(6, '\0');  // window, checksum, urgent
  return t;
}

// 10.0.0.1 (client) <-> 10.0.0.2 (server), or ::1 <-> ::2.
std::string Ipv4(bool from_client, uint8_t proto, const std::string& l4, uint16_t frag = 0) {
  std::string ip = "\x45";
  ip += '\0';
  ip += Be16(static_cast<uint16_t>(20 + l4.size()));
  ip += Be16(0) + Be16(frag);
  ip += '\x40';
  ip += static_cast<char>(proto);
  ip += Be16(0);
  const std::string client = Be32(0x0a000001), server = Be32(0x0a000002);
  ip += from_client ? client + server : server + client;
  return ip + l4;
}

// `ext` is a chain of extension headers that starts with header type `next`.
std::string Ipv6(bool from_client, uint8_t next, const std::string& l4,
                 const std::string& ext = "") {
  std::string ip = "\x60";
  ip += std::string(3, '\0');
  ip += Be16(static_cast<uint16_t>(ext.size() + l4.size()));
  ip += static_cast<char>(next);
  ip += '\x40';
  std::string client(16, '\0'), server(16, '\0');
  client[15] = 1;
  server[15] = 2;
  ip += from_client ? client + server : server + client;
  return ip + ext + l4;
}

struct Opts {
  bool v6 = false;
  uint16_t client_port = 40000;
  size_t caplen = 0;   // 0: the whole packet
  uint64_t ts_ns = 0;  // 0: 1 us after the previous packet
};

// Builds captures packet by packet with libpcap's own writer.
class CaptureBuilder {
 public:
  explicit CaptureBuilder(int linktype, int vlan_tags = 0)
      : linktype_(linktype), vlan_tags_(vlan_tags) {
    char tmpl[] = "/tmp/redmap-pcap-test-XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    path_ = tmpl;
    dead_ = pcap_open_dead_with_tstamp_precision(linktype, 262144, PCAP_TSTAMP_PRECISION_NANO);
    dumper_ = pcap_dump_open(dead_, path_.c_str());
  }
  ~CaptureBuilder() {
    Finish();
    unlink(path_.c_str());
  }
  const std::string& Finish() {
    if (dumper_ != nullptr) {
      pcap_dump_close(dumper_);
      pcap_close(dead_);
      dumper_ = nullptr;
    }
    return path_;
  }
  // Whole file contents (after Finish).
  std::string Bytes() {
    Finish();
    FILE* f = fopen(path_.c_str(), "rb");
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    fclose(f);
    return s;
  }

  // A TCP segment between the client port and server port 80.
  void Tcp(bool from_client, uint32_t seq, uint8_t flags, const std::string& payload, Opts o = {}) {
    const uint16_t sport = from_client ? o.client_port : 80;
    const uint16_t dport = from_client ? 80 : o.client_port;
    const std::string l4 = TcpHeader(sport, dport, seq, flags) + payload;
    Ip(o.v6 ? Ipv6(from_client, 6, l4) : Ipv4(from_client, 6, l4), o);
  }
  // An IP packet, wrapped in this capture's link header.
  void Ip(const std::string& ip, Opts o = {}) {
    const bool v6 = (ip[0] >> 4) == 6;
    std::string link;
    const std::string ethertype = v6 ? Be16(0x86dd) : Be16(0x0800);
    switch (linktype_) {
      case DLT_EN10MB:
        link = std::string(12, '\x02');
        for (int i = 0; i < vlan_tags_; ++i)
          link += Be16(i == 0 && vlan_tags_ > 1 ? 0x88a8 : 0x8100) + Be16(42);
        link += ethertype;
        break;
      case DLT_LINUX_SLL:
        link = Be16(0) + Be16(772) + Be16(6) + std::string(8, '\0') + ethertype;
        break;
      case DLT_LINUX_SLL2:
        link = ethertype + Be16(0) + Be32(1) + Be16(772) + '\0' + '\x06' + std::string(8, '\0');
        break;
      case DLT_NULL: {  // host byte order of the writer: little-endian here
        const uint32_t family = v6 ? 30 : 2;
        link.assign(reinterpret_cast<const char*>(&family), 4);
        break;
      }
      case DLT_LOOP:
        link = Be32(v6 ? 24 : 2);
        break;
      default:
        break;
    }
    Raw(link + ip, o.caplen, o.ts_ns);
  }
  // Any bytes as one record.
  void Raw(const std::string& pkt, size_t caplen = 0, uint64_t ts_ns = 0) {
    ts_ns_ = ts_ns != 0 ? ts_ns : ts_ns_ + 1000;
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(ts_ns_ / 1000000000);
    h.ts.tv_usec = static_cast<suseconds_t>(ts_ns_ % 1000000000);  // ns with nano precision
    h.len = static_cast<bpf_u_int32>(pkt.size());
    h.caplen = static_cast<bpf_u_int32>(caplen != 0 ? std::min(caplen, pkt.size()) : pkt.size());
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, reinterpret_cast<const u_char*>(pkt.data()));
  }

 private:
  int linktype_;
  int vlan_tags_;
  std::string path_;
  pcap_t* dead_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
  uint64_t ts_ns_ = kBaseNs;
};

Recorder Replay(const std::string& path, PcapSource::Stats* stats = nullptr,
                const PcapSource::Options& options = {}) {
  Recorder r;
  auto source = PcapSource::Open(path, options);
  EXPECT_THAT(source, IsOk());
  if (!source.ok()) return r;
  std::atomic<bool> stop{false};
  EXPECT_THAT((*source)->Run(&r, stop), IsOk());
  EXPECT_TRUE(r.MonotonicPerConnection());
  if (stats != nullptr) *stats = (*source)->stats();
  return r;
}

void Handshake(CaptureBuilder& b, uint32_t c_isn, uint32_t s_isn, Opts o = {}) {
  b.Tcp(true, c_isn, kSyn, "", o);
  b.Tcp(false, s_isn, kSyn | kAck, "", o);
  b.Tcp(true, c_isn + 1, kAck, "", o);
}

void Teardown(CaptureBuilder& b, uint32_t c_next, uint32_t s_next, Opts o = {}) {
  b.Tcp(true, c_next, kFin | kAck, "", o);
  b.Tcp(false, s_next, kFin | kAck, "", o);
  b.Tcp(true, c_next + 1, kAck, "", o);
}

// One request/response on a fresh connection, closed by FIN.
void Exchange(CaptureBuilder& b, uint32_t c_isn, uint32_t s_isn, Opts o = {}) {
  Handshake(b, c_isn, s_isn, o);
  b.Tcp(true, c_isn + 1, kAck | kPsh, kReq, o);
  b.Tcp(false, s_isn + 1, kAck | kPsh, kResp, o);
  Teardown(b, c_isn + 1 + static_cast<uint32_t>(kReq.size()),
           s_isn + 1 + static_cast<uint32_t>(kResp.size()), o);
}

TEST(PcapSourceTest, EmitsClientAndServerViewOfEachSegment) {
  CaptureBuilder b(DLT_EN10MB);
  Exchange(b, 100, 900);
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  ASSERT_EQ(r.data.size(), 4u);
  const uint64_t start = kBaseNs + 1000;  // the SYN
  // Request: client view egress, then server view ingress.
  EXPECT_EQ(r.data[0].conn, (ConnKey{0, 0, start}));
  EXPECT_EQ(r.data[0].role, Role::kClient);
  EXPECT_EQ(r.data[0].dir, Direction::kEgress);
  EXPECT_EQ(r.data[1].conn, (ConnKey{0, 1, start}));
  EXPECT_EQ(r.data[1].role, Role::kServer);
  EXPECT_EQ(r.data[1].dir, Direction::kIngress);
  for (int i : {0, 1}) {
    EXPECT_EQ(r.data[i].payload, kReq);
    EXPECT_EQ(r.data[i].len, kReq.size());
    EXPECT_EQ(r.data[i].seq, 101u);
    EXPECT_TRUE(r.data[i].has_seq);
    EXPECT_EQ(r.data[i].protocol, Protocol::kHttp1);
    EXPECT_EQ(r.data[i].ts, kBaseNs + 4000);  // the fourth packet
  }
  EXPECT_EQ(r.data[0].local.addr.ToString(), "10.0.0.1");
  EXPECT_EQ(r.data[0].local.port, 40000);
  EXPECT_EQ(r.data[0].remote.addr.ToString(), "10.0.0.2");
  EXPECT_EQ(r.data[0].remote.port, 80);
  EXPECT_EQ(r.data[1].local, r.data[0].remote);
  EXPECT_EQ(r.data[1].remote, r.data[0].local);
  // Response: client view ingress, server view egress.
  EXPECT_EQ(r.data[2].dir, Direction::kIngress);
  EXPECT_EQ(r.data[2].role, Role::kClient);
  EXPECT_EQ(r.data[3].dir, Direction::kEgress);
  EXPECT_EQ(r.data[3].role, Role::kServer);
  EXPECT_EQ(r.data[3].seq, 901u);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
  // Both FINs end both views, at the second FIN.
  EXPECT_THAT(r.ClosedFds(), ElementsAre(0, 1));
  EXPECT_EQ(r.closes[0].ts_ns, kBaseNs + 7000);
  EXPECT_EQ(stats.packets, 8u);
  EXPECT_EQ(stats.tcp_segments, 2u);
  EXPECT_EQ(stats.connections, 1u);
  EXPECT_EQ(stats.payload_bytes, kReq.size() + kResp.size());
  EXPECT_EQ(stats.duplicate_bytes, 0u);
  EXPECT_EQ(stats.unsupported_packets + stats.malformed_packets, 0u);
}

TEST(PcapSourceTest, OutOfOrderAndRetransmittedSegments) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 100, 900);
  b.Tcp(true, 101 + 10, kAck, kReq.substr(10));  // second part first
  b.Tcp(true, 101 + 10, kAck, kReq.substr(10));  // ... and again while waiting
  b.Tcp(true, 101, kAck, kReq.substr(0, 10));
  b.Tcp(true, 101, kAck, kReq.substr(0, 10));  // retransmit
  b.Tcp(false, 901, kAck, kResp.substr(0, 20));
  b.Tcp(false, 901 + 5, kAck, kResp.substr(5));  // overlaps what was sent
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kIngress), kReq);
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
  EXPECT_EQ(stats.out_of_order, 2u);
  EXPECT_EQ(stats.duplicate_bytes, (kReq.size() - 10) + 10 + 15);
  EXPECT_EQ(stats.payload_bytes, kReq.size() + kResp.size());
  // Each chunk carries the sequence number of its first byte.
  std::vector<uint32_t> seqs;
  for (const auto& e : r.data) {
    if (e.role == Role::kClient) seqs.push_back(e.seq);
  }
  EXPECT_THAT(seqs, ElementsAre(101, 111, 901, 921));
}

TEST(PcapSourceTest, BufferedSegmentsNeverGoBackInTime) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 100, 900);
  b.Tcp(true, 111, kAck, kReq.substr(10), {.ts_ns = kBaseNs + 50000});
  b.Tcp(true, 101, kAck, kReq.substr(0, 10), {.ts_ns = kBaseNs + 60000});
  Recorder r = Replay(b.Finish());  // checks monotonic times
  ASSERT_EQ(r.data.size(), 4u);
  EXPECT_EQ(r.data[3].ts, kBaseNs + 60000);
}

TEST(PcapSourceTest, SequenceWrapAround) {
  CaptureBuilder b(DLT_EN10MB);
  const uint32_t isn = 0xffffffff - 5;
  Handshake(b, isn, 7);
  // 8 bytes cross 2^32; the rest arrive before the bytes just after the wrap.
  b.Tcp(true, isn + 1, kAck, kReq.substr(0, 8));
  b.Tcp(true, isn + 17, kAck, kReq.substr(16));
  b.Tcp(true, isn + 9, kAck, kReq.substr(8, 8));
  b.Tcp(true, isn + 1, kAck, kReq.substr(0, 8));  // an old retransmit from before the wrap
  b.Tcp(false, 8, kAck, kResp);
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
  ASSERT_GE(r.data.size(), 6u);
  EXPECT_EQ(r.data[0].seq, 0xfffffffbu);
  EXPECT_EQ(r.data[2].seq, 3u);
  EXPECT_EQ(stats.duplicate_bytes, 8u);
  EXPECT_EQ(stats.gap_bytes, 0u);
}

// Link types x IP versions: the same exchange replays the same everywhere.
class LinkTypeTest : public ::testing::TestWithParam<std::tuple<int, int, bool>> {};

TEST_P(LinkTypeTest, ReassemblesTheExchange) {
  const auto [linktype, vlan_tags, v6] = GetParam();
  CaptureBuilder b(linktype, vlan_tags);
  Exchange(b, 1000, 2000, {.v6 = v6});
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq);
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kIngress), kResp);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kIngress), kReq);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
  ASSERT_FALSE(r.data.empty());
  EXPECT_EQ(r.data[0].local.addr.ToString(), v6 ? "::1" : "10.0.0.1");
  EXPECT_EQ(r.data[0].remote.addr.ToString(), v6 ? "::2" : "10.0.0.2");
  EXPECT_EQ(r.closes.size(), 2u);
  EXPECT_EQ(stats.unsupported_packets + stats.malformed_packets, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    AllLinkTypes, LinkTypeTest,
    ::testing::Values(std::make_tuple(DLT_EN10MB, 0, false), std::make_tuple(DLT_EN10MB, 0, true),
                      std::make_tuple(DLT_EN10MB, 1, false), std::make_tuple(DLT_EN10MB, 2, true),
                      std::make_tuple(DLT_LINUX_SLL, 0, false),
                      std::make_tuple(DLT_LINUX_SLL, 0, true),
                      std::make_tuple(DLT_LINUX_SLL2, 0, false),
                      std::make_tuple(DLT_LINUX_SLL2, 0, true), std::make_tuple(DLT_RAW, 0, false),
                      std::make_tuple(DLT_RAW, 0, true), std::make_tuple(DLT_IPV4, 0, false),
                      std::make_tuple(DLT_IPV6, 0, true), std::make_tuple(DLT_NULL, 0, false),
                      std::make_tuple(DLT_NULL, 0, true), std::make_tuple(DLT_LOOP, 0, false),
                      std::make_tuple(DLT_LOOP, 0, true)),
    [](const auto& info) {
      const char* name = pcap_datalink_val_to_name(std::get<0>(info.param));
      return std::string(name != nullptr ? name : "unknown") + "_vlan" +
             std::to_string(std::get<1>(info.param)) + (std::get<2>(info.param) ? "_v6" : "_v4");
    });

TEST(PcapSourceTest, Ipv6ExtensionHeadersAreSkipped) {
  CaptureBuilder b(DLT_RAW);
  // Hop-by-hop (8 bytes: next=dest-opts, len 0, PadN) then destination options (16 bytes).
  std::string ext = std::string("\x3c\x00\x01\x04", 4) + std::string(4, '\0');
  ext += std::string("\x06\x01\x01\x0c", 4) + std::string(12, '\0');
  auto seg = [&](bool from_client, uint32_t seq, uint8_t flags, const std::string& payload) {
    const std::string tcp =
        TcpHeader(from_client ? 40000 : 80, from_client ? 80 : 40000, seq, flags) + payload;
    b.Ip(Ipv6(from_client, 0, tcp, ext));
  };
  seg(true, 1, kSyn, "");
  seg(false, 50, kSyn | kAck, "");
  seg(true, 2, kAck, kReq);
  seg(false, 51, kAck, kResp);
  // A fragment header: not followed.
  b.Ip(Ipv6(true, 44, TcpHeader(40000, 80, 99, kAck) + "x",
            std::string("\x06\x00\x00\x01\x00\x00\x00\x07", 8)));
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kIngress), kReq);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
  EXPECT_EQ(stats.unsupported_packets, 1u);
}

TEST(PcapSourceTest, NonTcpPacketsAreCountedAndSkipped) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 1, 2);
  b.Ip(Ipv4(true, 17, Be16(5353) + Be16(53) + Be16(12) + Be16(0) + "GET "));   // UDP
  b.Ip(Ipv4(true, 6, TcpHeader(40000, 80, 2, kAck) + kReq, /*frag=*/0x2000));  // first fragment
  b.Ip(Ipv4(true, 6, "xxxx", /*frag=*/0x0004));                                // a later one
  b.Raw(std::string(12, '\x02') + Be16(0x0806) + std::string(28, '\0'));       // ARP
  b.Tcp(true, 2, kAck, kReq);
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kIngress), kReq);
  EXPECT_EQ(stats.unsupported_packets, 4u);
  EXPECT_EQ(stats.malformed_packets, 0u);
  EXPECT_EQ(stats.packets, 8u);
}

TEST(PcapSourceTest, GarbagePacketsAreCountedAndSkipped) {
  CaptureBuilder b(DLT_EN10MB);
  const std::string eth = std::string(12, '\x02') + Be16(0x0800);
  const std::string good = Ipv4(true, 6, TcpHeader(40000, 80, 2, kAck) + kReq);
  Handshake(b, 1, 2);
  b.Raw("garbage");                             // shorter than Ethernet
  b.Raw(eth);                                   // no IP header
  b.Raw(eth + "\x45" + std::string(10, '\0'));  // IPv4 header cut short
  b.Raw(eth + "\x75" + good.substr(1));         // IP version 7
  b.Raw(eth + "\x43" + good.substr(1));         // IHL below 20 bytes
  std::string long_total = good;
  long_total[2] = '\x7f';  // claims more than the wire held
  b.Raw(eth + long_total);
  std::string bad_offset = good;
  bad_offset[20 + 12] = '\x10';  // TCP data offset 4 bytes
  b.Raw(eth + bad_offset);
  std::string past_end = good;
  past_end[20 + 12] = '\xf0';  // TCP header longer than the segment
  b.Raw(eth + past_end.substr(0, 50), 0);
  b.Raw(eth + Ipv6(true, 6, "").substr(0, 30));                // IPv6 header cut short
  b.Raw(eth + Ipv6(true, 0, "", std::string("\x06\x20", 2)));  // extension past the end
  b.Raw(eth + good, 14 + 20 + 10);                             // TCP header cut by the snap length
  b.Tcp(true, 2, kAck, kReq);
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kIngress), kReq);
  EXPECT_EQ(stats.malformed_packets, 11u);
  EXPECT_EQ(stats.unsupported_packets, 0u);
}

TEST(PcapSourceTest, TruncatedPayloadGivesKnownPrefixAndFullLength) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 1, 2);
  b.Tcp(true, 2, kAck, kReq, {.caplen = 14 + 20 + 20 + 10});  // snap length cut after 10 bytes
  b.Tcp(false, 3, kAck, kResp);
  b.Tcp(true, 2, kRst, "");
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  ASSERT_EQ(r.data.size(), 4u);
  EXPECT_EQ(r.data[0].len, kReq.size());
  EXPECT_EQ(r.data[0].payload, kReq.substr(0, 10));
  EXPECT_EQ(r.data[2].seq, 3u);
  EXPECT_EQ(r.data[2].payload, kResp);
  EXPECT_EQ(stats.truncated_packets, 1u);
  EXPECT_EQ(stats.payload_bytes, kReq.size() + kResp.size());
  EXPECT_THAT(r.ClosedFds(), ElementsAre(0, 1));  // RST ends both views
}

TEST(PcapSourceTest, MidStreamCaptureTakesRolesFromTheFirstBytes) {
  // No handshake; the first bytes are the server's response.
  CaptureBuilder b(DLT_EN10MB);
  b.Tcp(false, 5000, kAck, kResp);
  b.Tcp(true, 77, kAck, kReq);
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  ASSERT_EQ(r.data.size(), 4u);
  EXPECT_EQ(r.data[0].role, Role::kClient);
  EXPECT_EQ(r.data[0].dir, Direction::kIngress);
  EXPECT_EQ(r.data[0].local.port, 40000);
  EXPECT_EQ(r.data[0].seq, 5000u);
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
  EXPECT_EQ(r.closes.size(), 2u);  // the end of the capture closes it

  // First bytes a request, from the endpoint that sorts last.
  CaptureBuilder c(DLT_EN10MB);
  const std::string l4 = TcpHeader(80, 40000, 9, kAck) + kReq;
  c.Ip(Ipv4(false, 6, l4));  // 10.0.0.2:80 sends a request: it is the client
  Recorder r2 = Replay(c.Finish());
  ASSERT_EQ(r2.data.size(), 2u);
  EXPECT_EQ(r2.data[0].role, Role::kClient);
  EXPECT_EQ(r2.data[0].dir, Direction::kEgress);
  EXPECT_EQ(r2.data[0].local.addr.ToString(), "10.0.0.2");
}

TEST(PcapSourceTest, RolesFromSynAckWhenTheSynWasMissed) {
  CaptureBuilder b(DLT_EN10MB);
  b.Tcp(false, 2, kSyn | kAck, "");
  b.Tcp(false, 3, kAck, kResp);  // server speaks first; still the server
  b.Tcp(true, 2, kAck, kReq);
  Recorder r = Replay(b.Finish());
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp);
}

TEST(PcapSourceTest, UnclassifiedConnectionsAreIgnored) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 1, 2);
  const std::string hello = "\x16\x03\x01 TLS hello";
  const std::string reply = "HTTP/1.1 200 OK\r\n\r\n";
  b.Tcp(true, 2, kAck, hello);
  b.Tcp(false, 3, kAck, reply);
  Teardown(b, 2 + static_cast<uint32_t>(hello.size()), 3 + static_cast<uint32_t>(reply.size()));
  Exchange(b, 500, 600, {.client_port = 40001});
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  // Only the second connection is reported; its index is still 1.
  ASSERT_EQ(r.data.size(), 4u);
  EXPECT_EQ(r.data[0].conn.fd, 2);
  EXPECT_THAT(r.ClosedFds(), ElementsAre(2, 3));
  EXPECT_EQ(stats.connections, 2u);
  EXPECT_EQ(stats.unclassified_connections, 1u);
}

TEST(PcapSourceTest, SynWithDataStartsAfterTheSyn) {
  CaptureBuilder b(DLT_EN10MB);
  b.Tcp(true, 10, kSyn, kReq);  // fast open
  b.Tcp(false, 20, kSyn | kAck, "");
  b.Tcp(false, 21, kAck, kResp);
  Recorder r = Replay(b.Finish());
  ASSERT_EQ(r.data.size(), 4u);
  EXPECT_EQ(r.data[0].seq, 11u);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kIngress), kReq);
}

TEST(PcapSourceTest, FinBeforeTheLastDataWaitsForIt) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 100, 900);
  b.Tcp(true, 101, kAck, kReq);
  const uint32_t s_end = 901 + static_cast<uint32_t>(kResp.size());
  b.Tcp(false, s_end, kFin | kAck, "");  // FIN overtook the data
  b.Tcp(true, 101 + static_cast<uint32_t>(kReq.size()), kFin | kAck, "");
  b.Tcp(false, 901, kAck, kResp);  // still delivered
  b.Tcp(false, 901, kAck, kResp);  // a retransmit after the end is not a new connection
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kIngress), kResp);
  EXPECT_THAT(r.ClosedFds(), ElementsAre(0, 1));
  EXPECT_EQ(r.closes[0].ts_ns, kBaseNs + 7000);
  EXPECT_EQ(stats.connections, 1u);
  EXPECT_EQ(stats.duplicate_bytes, kResp.size());
}

TEST(PcapSourceTest, ReusedFourTupleIsANewConnection) {
  CaptureBuilder b(DLT_EN10MB);
  Exchange(b, 100, 900);
  Exchange(b, 5000, 7000);  // same ports, new ISNs
  // Missed the end of the third one: its SYN is enough to start the fourth.
  Handshake(b, 9000, 9500);
  b.Tcp(true, 9001, kAck, kReq);
  Exchange(b, 20000, 30000);
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(stats.connections, 4u);
  EXPECT_THAT(r.ClosedFds(), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
  EXPECT_EQ(r.Bytes(Role::kClient, Direction::kEgress, 6), kReq.size());
  EXPECT_EQ(r.Bytes(Role::kServer, Direction::kEgress, 7), kResp.size());
  EXPECT_NE(r.data.front().conn.start_ns, r.data.back().conn.start_ns);

  // A retransmitted SYN is the same connection.
  CaptureBuilder c(DLT_EN10MB);
  c.Tcp(true, 100, kSyn, "");
  c.Tcp(true, 100, kSyn, "");
  c.Tcp(false, 900, kSyn | kAck, "");
  c.Tcp(true, 101, kAck, kReq);
  Replay(c.Finish(), &stats);
  EXPECT_EQ(stats.connections, 1u);
}

TEST(PcapSourceTest, OutOfOrderBufferIsBoundedHolesBecomeGaps) {
  PcapSource::Options options;
  options.max_out_of_order_bytes = 100;
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 100, 900);
  b.Tcp(true, 101, kAck, kReq);
  const uint32_t next = 101 + static_cast<uint32_t>(kReq.size());
  // 10 bytes lost; 60 + 60 bytes behind the hole overflow the buffer.
  const std::string part(60, 'x');
  b.Tcp(true, next + 10, kAck, part);
  b.Tcp(true, next + 70, kAck, part);
  b.Tcp(true, next + 130, kAck, "tail");  // in order again after the skip
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats, options);
  EXPECT_EQ(stats.gap_bytes, 10u);
  EXPECT_EQ(stats.out_of_order, 2u);
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq + part + part + "tail");
  std::vector<uint32_t> seqs;
  for (const auto& e : r.data) {
    if (e.role == Role::kClient) seqs.push_back(e.seq);
  }
  EXPECT_THAT(seqs, ElementsAre(101, next + 10, next + 70, next + 130));
}

TEST(PcapSourceTest, DataBehindAHoleIsDeliveredAtTheEnd) {
  CaptureBuilder b(DLT_EN10MB);
  Handshake(b, 100, 900);
  b.Tcp(true, 101, kAck, kReq);
  b.Tcp(false, 901 + 3, kAck, kResp.substr(3));  // the first 3 bytes never captured
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats);
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress), kResp.substr(3));
  EXPECT_EQ(stats.gap_bytes, 3u);
  EXPECT_EQ(r.closes.size(), 2u);
}

TEST(PcapSourceTest, ConnectionTableIsBounded) {
  PcapSource::Options options;
  options.max_connections = 2;
  CaptureBuilder b(DLT_EN10MB);
  // Connection 0 ends; 1 and 2 stay open: the closed one makes room.
  Exchange(b, 100, 200, {.client_port = 1000});
  Handshake(b, 100, 200, {.client_port = 1001});
  b.Tcp(true, 101, kAck, kReq, {.client_port = 1001});
  Handshake(b, 100, 200, {.client_port = 1002});
  b.Tcp(true, 101, kAck, kReq, {.client_port = 1002});
  // Connection 3 evicts the oldest live one, 1, which closes.
  Handshake(b, 100, 200, {.client_port = 1003});
  b.Tcp(true, 101, kAck, kReq, {.client_port = 1003});
  // Late data on 1 is mid-stream data of an unknown connection now.
  b.Tcp(false, 201, kAck, kResp, {.client_port = 1001});
  PcapSource::Stats stats;
  Recorder r = Replay(b.Finish(), &stats, options);
  EXPECT_EQ(stats.evicted_connections, 2u);  // 1, then 2 for the late data of 1
  EXPECT_EQ(stats.connections, 5u);
  EXPECT_THAT(r.ClosedFds(), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
}

TEST(PcapSourceTest, StopEndsTheReplay) {
  CaptureBuilder b(DLT_EN10MB);
  Exchange(b, 1, 2);
  auto source = PcapSource::Open(b.Finish());
  ASSERT_THAT(source, IsOk());
  Recorder r;
  std::atomic<bool> stop{true};
  EXPECT_THAT((*source)->Run(&r, stop), IsOk());
  EXPECT_TRUE(r.data.empty());
  EXPECT_EQ((*source)->stats().packets, 0u);
}

TEST(PcapSourceTest, CorruptCaptureDeliversWhatCameBefore) {
  CaptureBuilder b(DLT_EN10MB);
  Exchange(b, 1, 2);
  std::string bytes = b.Bytes();
  // A record header claiming more bytes than any snap length allows.
  std::string bad(16, '\0');
  const uint32_t huge = 0x7fffffff;
  std::memcpy(&bad[8], &huge, 4);
  std::memcpy(&bad[12], &huge, 4);
  bytes += bad + "xxxx";
  auto source = PcapSource::OpenBuffer(bytes.data(), bytes.size());
  ASSERT_THAT(source, IsOk());
  Recorder r;
  std::atomic<bool> stop{false};
  EXPECT_THAT((*source)->Run(&r, stop),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("8 packets")));
  EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress), kReq);
  EXPECT_EQ(r.closes.size(), 2u);
}

TEST(PcapSourceTest, OpenErrors) {
  EXPECT_THAT(PcapSource::Open("/nonexistent/x.pcap"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/nonexistent/x.pcap")));
  CaptureBuilder wifi(DLT_IEEE802_11);
  wifi.Raw("x");
  EXPECT_THAT(PcapSource::Open(wifi.Finish()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unsupported link type 105 (IEEE802_11)")));
  const std::string junk = "definitely not a capture file";
  EXPECT_THAT(PcapSource::OpenBuffer(junk.data(), junk.size()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot read capture")));
  EXPECT_THAT(PcapSource::OpenBuffer("", 0),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  char dir[] = "/tmp/redmap-pcap-dir-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  EXPECT_THAT(PcapSource::Open(dir), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  rmdir(dir);
}

// ---- real captures (tests/fixtures/pcap/README.md says how they were made) ----

std::string FixturePath(const std::string& name) {
  return std::string(REDMAP_SOURCE_DIR) + "/tests/fixtures/pcap/" + name;
}

TEST(PcapSourceTest, CurlAgainstPythonOneRequestPerConnection) {
  PcapSource::Stats stats;
  Recorder r = Replay(FixturePath("curl_python_http_server.pcap"), &stats);
  EXPECT_EQ(stats.connections, 2u);
  EXPECT_THAT(r.ClosedFds(), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(r.Stream(Role::kClient, Direction::kEgress, 0), StartsWith("GET / HTTP/1.1\r\n"));
  EXPECT_THAT(r.Stream(Role::kClient, Direction::kEgress, 2), StartsWith("GET /x HTTP/1.1\r\n"));
  EXPECT_THAT(r.Stream(Role::kClient, Direction::kIngress, 2), StartsWith("HTTP/1.0 404 "));
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kEgress),
            r.Stream(Role::kClient, Direction::kIngress));
  EXPECT_EQ(r.Stream(Role::kServer, Direction::kIngress),
            r.Stream(Role::kClient, Direction::kEgress));
}

TEST(PcapSourceTest, CurlKeepAliveAgainstPythonHttp11) {
  PcapSource::Stats stats;
  Recorder r = Replay(FixturePath("curl_keepalive_python_http11.pcap"), &stats);
  EXPECT_EQ(stats.packets, 42u);
  EXPECT_EQ(stats.connections, 3u);
  EXPECT_EQ(stats.unclassified_connections, 0u);
  EXPECT_EQ(stats.duplicate_bytes + stats.gap_bytes + stats.out_of_order, 0u);
  EXPECT_EQ(stats.payload_bytes, 504u + 1650u);
  // Bytes per connection and direction as curl reported them, in both views.
  const uint64_t up[] = {254, 165, 85}, down[] = {909, 555, 186};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(r.Bytes(Role::kClient, Direction::kEgress, 2 * i), up[i]);
    EXPECT_EQ(r.Bytes(Role::kClient, Direction::kIngress, 2 * i), down[i]);
    EXPECT_EQ(r.Bytes(Role::kServer, Direction::kIngress, 2 * i + 1), up[i]);
    EXPECT_EQ(r.Bytes(Role::kServer, Direction::kEgress, 2 * i + 1), down[i]);
    EXPECT_EQ(r.Stream(Role::kClient, Direction::kEgress, 2 * i).size(), up[i]);  // nothing cut
  }
  const std::string first = r.Stream(Role::kClient, Direction::kEgress, 0);
  EXPECT_THAT(first, StartsWith("GET /a.txt HTTP/1.1\r\n"));
  EXPECT_NE(first.find("GET /b.txt HTTP/1.1\r\n"), std::string::npos);
  EXPECT_NE(first.find("GET /missing HTTP/1.1\r\n"), std::string::npos);
  const std::string replies = r.Stream(Role::kServer, Direction::kEgress, 1);
  EXPECT_THAT(replies, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_NE(replies.find("alpha\n"), std::string::npos);
  EXPECT_NE(replies.find("bravo bravo\n"), std::string::npos);
  EXPECT_NE(replies.find("HTTP/1.1 404 "), std::string::npos);
  EXPECT_THAT(r.Stream(Role::kClient, Direction::kEgress, 2),
              StartsWith("POST /a.txt HTTP/1.1\r\n"));
  EXPECT_THAT(r.Stream(Role::kClient, Direction::kEgress, 4),
              StartsWith("HEAD /b.txt HTTP/1.1\r\n"));
  // Raw sequence numbers: the first request byte is the client's ISN + 1.
  ASSERT_FALSE(r.data.empty());
  EXPECT_EQ(r.data[0].seq, 690361799u);
  EXPECT_EQ(r.data[0].local.addr.ToString(), "127.0.0.1");
  EXPECT_EQ(r.data[0].remote.port, 18081);
  EXPECT_THAT(r.ClosedFds(), ElementsAre(0, 1, 2, 3, 4, 5));
}

TEST(PcapSourceTest, CurlOnAnyInterfaceLinuxCookedV2) {
  PcapSource::Stats stats;
  Recorder r = Replay(FixturePath("curl_any_sll2.pcap"), &stats);
  EXPECT_EQ(stats.connections, 1u);
  EXPECT_EQ(stats.duplicate_bytes, 0u);
  EXPECT_EQ(r.Bytes(Role::kClient, Direction::kEgress), 168u);
  EXPECT_EQ(r.Bytes(Role::kClient, Direction::kIngress), 389u);
  EXPECT_EQ(r.Bytes(Role::kServer, Direction::kIngress), 168u);
  EXPECT_EQ(r.Bytes(Role::kServer, Direction::kEgress), 389u);
  EXPECT_THAT(r.Stream(Role::kClient, Direction::kEgress), StartsWith("GET /a.txt HTTP/1.1\r\n"));
  EXPECT_EQ(r.closes.size(), 2u);
}

TEST(PcapSourceTest, MemoryAndFileReplayAgree) {
  const std::string bytes = testing::Fixture("pcap/curl_keepalive_python_http11.pcap");
  auto source = PcapSource::OpenBuffer(bytes.data(), bytes.size());
  ASSERT_THAT(source, IsOk());
  Recorder from_memory;
  std::atomic<bool> stop{false};
  ASSERT_THAT((*source)->Run(&from_memory, stop), IsOk());
  Recorder from_file = Replay(FixturePath("curl_keepalive_python_http11.pcap"));
  ASSERT_EQ(from_memory.data.size(), from_file.data.size());
  for (size_t i = 0; i < from_file.data.size(); ++i) {
    EXPECT_EQ(from_memory.data[i].payload, from_file.data[i].payload);
    EXPECT_EQ(from_memory.data[i].ts, from_file.data[i].ts);
  }
}

}  // namespace
}  // namespace redmap
