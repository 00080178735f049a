// DNS answers -> names, on real answers from dnsmasq 2.90 (tests/fixtures/dns/,
// README there), and the frame path the live capture feeds: link, IP and UDP
// headers around them, truncation, fragments and garbage.
#include "aggregators/metadata/dns_answer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <string>
#include <vector>

#include "aggregators/metadata/dns_cache.h"
#include "aggregators/metadata/dns_capture.h"
#include "aggregators/metadata/k8s/k8s_store.h"
#include "tests/testlib/fixtures.h"

namespace redmap {
namespace {

using k8s::ParseIp;
using ::redmap::testing::Fixture;

constexpr uint64_t kSec = 1'000'000'000;

DnsAnswerResult Parse(const std::string& fixture, DnsAnswer* a) {
  return ParseDnsAnswer(Fixture("dns/" + fixture), a);
}

TEST(DnsAnswerTest, ARecord) {
  DnsAnswer a;
  // dig-style query with EDNS: the answer carries an OPT record too.
  ASSERT_EQ(Parse("a_api.bin", &a), DnsAnswerResult::kParsed);
  EXPECT_EQ(a.name, "api.example.test");
  ASSERT_EQ(a.addresses.size(), 1u);
  EXPECT_EQ(a.addresses[0].ip, ParseIp("198.18.0.10"));
  EXPECT_EQ(a.addresses[0].ttl_s, 300u);
}

TEST(DnsAnswerTest, AaaaRecord) {
  DnsAnswer a;
  ASSERT_EQ(Parse("aaaa_v6.bin", &a), DnsAnswerResult::kParsed);
  EXPECT_EQ(a.name, "v6.example.test");
  ASSERT_EQ(a.addresses.size(), 1u);
  EXPECT_EQ(a.addresses[0].ip, ParseIp("2001:db8::10"));
  EXPECT_EQ(a.addresses[0].ip.family, 6);
}

TEST(DnsAnswerTest, CnameChainIsNamedByTheQuestionWithTheShorterTtl) {
  DnsAnswer a;
  // www.example.test CNAME target.example.test (TTL 120), A 198.18.0.30 (300).
  ASSERT_EQ(Parse("a_cname.bin", &a), DnsAnswerResult::kParsed);
  EXPECT_EQ(a.name, "www.example.test");
  ASSERT_EQ(a.addresses.size(), 1u);
  EXPECT_EQ(a.addresses[0].ip, ParseIp("198.18.0.30"));
  EXPECT_EQ(a.addresses[0].ttl_s, 120u);
}

TEST(DnsAnswerTest, SeveralAddressesAndCase) {
  DnsAnswer a;
  ASSERT_EQ(Parse("a_multi.bin", &a), DnsAnswerResult::kParsed);
  EXPECT_EQ(a.name, "multi.example.test");
  ASSERT_EQ(a.addresses.size(), 2u);
  EXPECT_EQ(a.addresses[0].ip, ParseIp("198.18.0.21"));
  EXPECT_EQ(a.addresses[1].ip, ParseIp("198.18.0.22"));
  // dnsmasq echoes the question's case; names are lower-cased.
  ASSERT_EQ(Parse("a_mixed_case.bin", &a), DnsAnswerResult::kParsed);
  EXPECT_EQ(a.name, "api.example.test");
}

TEST(DnsAnswerTest, AnswersWithoutAddresses) {
  DnsAnswer a;
  EXPECT_EQ(Parse("a_nxdomain.bin", &a), DnsAnswerResult::kNoRecords);
  EXPECT_EQ(Parse("aaaa_nodata.bin", &a), DnsAnswerResult::kNoRecords);
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_EQ(Parse("ptr.bin", &a), DnsAnswerResult::kOtherType);
}

TEST(DnsAnswerTest, QueriesTruncationAndGarbage) {
  DnsAnswer a;
  std::string m = Fixture("dns/a_api.bin");
  std::string query = m;
  query[2] = static_cast<char>(query[2] & 0x7f);  // QR = 0
  EXPECT_EQ(ParseDnsAnswer(query, &a), DnsAnswerResult::kMalformed);
  std::string tc = m;
  tc[2] = static_cast<char>(tc[2] | 0x02);  // TC: the client retries over TCP
  EXPECT_EQ(ParseDnsAnswer(tc, &a), DnsAnswerResult::kTruncated);
  // Every prefix of a real answer is refused, never read past.
  for (size_t n = 0; n < m.size() - 11; ++n) {  // the OPT record is not needed
    const DnsAnswerResult r = ParseDnsAnswer(std::string_view(m).substr(0, n), &a);
    EXPECT_NE(r, DnsAnswerResult::kParsed) << n;
    EXPECT_TRUE(a.addresses.empty()) << n;
  }
  std::string lying = Fixture("dns/a_multi.bin");
  lying[7] = 9;  // ANCOUNT 9, two present
  EXPECT_EQ(ParseDnsAnswer(lying, &a), DnsAnswerResult::kMalformed);
  std::string loop = m;
  loop[12] = static_cast<char>(0xc0);  // the question name points at itself
  loop[13] = 12;
  EXPECT_EQ(ParseDnsAnswer(loop, &a), DnsAnswerResult::kMalformed);
  EXPECT_EQ(ParseDnsAnswer(std::string(512, '\x80'), &a), DnsAnswerResult::kMalformed);
  EXPECT_EQ(DnsAnswerResultName(DnsAnswerResult::kNoRecords), "no_records");
}

// A raw-IP frame (DLT_RAW): IPv4 + UDP from `sport` around `payload`.
std::string Ipv4UdpFrame(const std::string& payload, uint16_t sport = 53) {
  std::string f(28, '\0');
  const size_t total = 28 + payload.size();
  f[0] = 0x45;
  f[2] = static_cast<char>(total >> 8);
  f[3] = static_cast<char>(total);
  f[8] = 64;
  f[9] = 17;
  const uint32_t src = inet_addr("10.96.0.10"), dst = inet_addr("10.244.1.17");
  memcpy(&f[12], &src, 4);
  memcpy(&f[16], &dst, 4);
  f[20] = static_cast<char>(sport >> 8);
  f[21] = static_cast<char>(sport);
  f[22] = static_cast<char>(0xc3);
  f[23] = 0x50;
  const size_t udp = 8 + payload.size();
  f[24] = static_cast<char>(udp >> 8);
  f[25] = static_cast<char>(udp);
  return f + payload;
}

// Linux cooked v2 (the `any` device) + IPv6 + UDP.
std::string Sll2Ipv6UdpFrame(const std::string& payload) {
  std::string f(20 + 48, '\0');
  f[0] = static_cast<char>(0x86);
  f[1] = static_cast<char>(0xdd);
  char* ip = &f[20];
  ip[0] = 0x60;
  const size_t udp = 8 + payload.size();
  ip[4] = static_cast<char>(udp >> 8);
  ip[5] = static_cast<char>(udp);
  ip[6] = 17;
  ip[7] = 64;
  ip[8 + 15] = 1;   // ::1
  ip[24 + 15] = 1;  // ::1
  ip[41] = 53;
  ip[44] = static_cast<char>(udp >> 8);
  ip[45] = static_cast<char>(udp);
  return f + payload;
}

DnsAnswerResult Feed(DnsAnswerFeed* feed, int linktype, const std::string& frame,
                     size_t caplen, uint64_t now = kSec) {
  return feed->OnFrame(linktype, reinterpret_cast<const uint8_t*>(frame.data()), caplen,
                       frame.size(), now);
}

TEST(DnsAnswerFeedTest, FramesFeedTheCacheAndAreCounted) {
  DnsCache cache;
  DnsAnswerFeed feed(&cache);
  const std::string v4 = Ipv4UdpFrame(Fixture("dns/a_multi.bin"));
  EXPECT_EQ(Feed(&feed, DLT_RAW, v4, v4.size()), DnsAnswerResult::kParsed);
  EXPECT_EQ(cache.Lookup(ParseIp("198.18.0.22"), kSec), "multi.example.test");
  const std::string v6 = Sll2Ipv6UdpFrame(Fixture("dns/aaaa_v6.bin"));
  EXPECT_EQ(Feed(&feed, DLT_LINUX_SLL2, v6, v6.size()), DnsAnswerResult::kParsed);
  EXPECT_EQ(cache.Lookup(ParseIp("2001:db8::10"), kSec), "v6.example.test");
  EXPECT_EQ(feed.addresses(), 3u);

  // Cut by the snap length: truncated, nothing learned.
  const std::string cname = Ipv4UdpFrame(Fixture("dns/a_cname.bin"));
  EXPECT_EQ(Feed(&feed, DLT_RAW, cname, cname.size() - 1), DnsAnswerResult::kTruncated);
  EXPECT_EQ(Feed(&feed, DLT_RAW, cname, 30), DnsAnswerResult::kTruncated);
  EXPECT_EQ(cache.Lookup(ParseIp("198.18.0.30"), kSec), std::nullopt);
  // The first fragment of a large answer.
  std::string frag = v4;
  frag[6] = 0x20;  // more fragments
  EXPECT_EQ(Feed(&feed, DLT_RAW, frag, frag.size()), DnsAnswerResult::kTruncated);
  // Not from port 53, not UDP, a UDP length beyond the packet, garbage.
  const std::string mdns = Ipv4UdpFrame(Fixture("dns/a_api.bin"), 5353);
  EXPECT_EQ(Feed(&feed, DLT_RAW, mdns, mdns.size()), DnsAnswerResult::kMalformed);
  std::string tcp = v4;
  tcp[9] = 6;
  EXPECT_EQ(Feed(&feed, DLT_RAW, tcp, tcp.size()), DnsAnswerResult::kMalformed);
  std::string long_udp = v4;
  long_udp[24] = 0x7f;
  EXPECT_EQ(Feed(&feed, DLT_RAW, long_udp, long_udp.size()), DnsAnswerResult::kMalformed);
  const std::string junk = Ipv4UdpFrame(std::string(40, '\x5a'));
  EXPECT_EQ(Feed(&feed, DLT_RAW, junk, junk.size()), DnsAnswerResult::kMalformed);
  const std::string nx = Ipv4UdpFrame(Fixture("dns/a_nxdomain.bin"));
  EXPECT_EQ(Feed(&feed, DLT_RAW, nx, nx.size()), DnsAnswerResult::kNoRecords);

  const auto counts = feed.answers();
  EXPECT_EQ(counts[static_cast<size_t>(DnsAnswerResult::kParsed)], 2u);
  EXPECT_EQ(counts[static_cast<size_t>(DnsAnswerResult::kTruncated)], 3u);
  EXPECT_EQ(counts[static_cast<size_t>(DnsAnswerResult::kMalformed)], 4u);
  EXPECT_EQ(counts[static_cast<size_t>(DnsAnswerResult::kNoRecords)], 1u);
  EXPECT_EQ(counts[static_cast<size_t>(DnsAnswerResult::kOtherType)], 0u);
}

TEST(DnsCaptureTest, OpenErrorsSayWhatFailed) {
  DnsCache cache;
  DnsCaptureOptions o;
  o.device = "rmnosuch0";
  auto c = DnsCapture::Open(&cache, o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("cannot capture DNS answers on rmnosuch0: "),
            std::string::npos)
      << c.status();
}

}  // namespace
}  // namespace redmap
