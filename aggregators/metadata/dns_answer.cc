#include "aggregators/metadata/dns_answer.h"

#include <ares.h>
#include <arpa/inet.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "aggregators/sources/packet_headers.h"

namespace redmap {
namespace {

constexpr size_t kHeaderBytes = 12;
constexpr uint16_t kFlagResponse = 0x8000;
constexpr uint16_t kFlagTruncated = 0x0200;
constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kClassIn = 1;

// c-ares needs no ares_library_init for its parsers: its allocator hooks are
// initialised statically and the parsers keep no state (thread-safe).
struct AresString {
  char* s = nullptr;
  ~AresString() {
    if (s != nullptr) ares_free_string(s);
  }
};

uint32_t Ttl(int ttl) { return ttl < 0 ? 0 : static_cast<uint32_t>(ttl); }

}  // namespace

std::string_view DnsAnswerResultName(DnsAnswerResult r) {
  switch (r) {
    case DnsAnswerResult::kParsed:
      return "parsed";
    case DnsAnswerResult::kNoRecords:
      return "no_records";
    case DnsAnswerResult::kOtherType:
      return "other_type";
    case DnsAnswerResult::kTruncated:
      return "truncated";
    case DnsAnswerResult::kMalformed:
      return "malformed";
  }
  return "malformed";
}

DnsAnswerResult ParseDnsAnswer(std::string_view message, DnsAnswer* out) {
  out->name.clear();
  out->addresses.clear();
  if (message.size() < kHeaderBytes || message.size() > INT_MAX) {
    return DnsAnswerResult::kMalformed;
  }
  const auto* m = reinterpret_cast<const unsigned char*>(message.data());
  const int len = static_cast<int>(message.size());
  const uint16_t flags = Be16(m + 2);
  if ((flags & kFlagResponse) == 0) return DnsAnswerResult::kMalformed;  // a query
  if ((flags & kFlagTruncated) != 0) return DnsAnswerResult::kTruncated;
  const uint16_t opcode = (flags >> 11) & 0xf;
  const uint16_t qdcount = Be16(m + 4);
  if (opcode != 0) return DnsAnswerResult::kOtherType;   // NOTIFY, UPDATE, ...
  if (qdcount == 0) return DnsAnswerResult::kNoRecords;  // e.g. FORMERR without question
  if (qdcount != 1) return DnsAnswerResult::kMalformed;  // never sent by real servers

  AresString qname;
  long enclen = 0;
  if (ares_expand_name(m + kHeaderBytes, m, len, &qname.s, &enclen) != ARES_SUCCESS ||
      enclen <= 0 || kHeaderBytes + static_cast<size_t>(enclen) + 4 > message.size()) {
    return DnsAnswerResult::kMalformed;
  }
  const unsigned char* q = m + kHeaderBytes + enclen;
  const uint16_t qtype = Be16(q), qclass = Be16(q + 2);
  if (qclass != kClassIn || (qtype != kTypeA && qtype != kTypeAaaa)) {
    return DnsAnswerResult::kOtherType;
  }
  if ((flags & 0xf) != 0) return DnsAnswerResult::kNoRecords;  // NXDOMAIN, SERVFAIL, ...

  int status;
  if (qtype == kTypeA) {
    ares_addrttl a[kMaxDnsAnswerAddresses];
    int n = kMaxDnsAnswerAddresses;
    status = ares_parse_a_reply(m, len, nullptr, a, &n);
    if (status == ARES_SUCCESS) {
      for (int i = 0; i < std::clamp(n, 0, kMaxDnsAnswerAddresses); ++i) {
        uint32_t v4;
        std::memcpy(&v4, &a[i].ipaddr, sizeof(v4));
        out->addresses.push_back({IpAddress::V4(v4), Ttl(a[i].ttl)});
      }
    }
  } else {
    ares_addr6ttl a[kMaxDnsAnswerAddresses];
    int n = kMaxDnsAnswerAddresses;
    status = ares_parse_aaaa_reply(m, len, nullptr, a, &n);
    if (status == ARES_SUCCESS) {
      for (int i = 0; i < std::clamp(n, 0, kMaxDnsAnswerAddresses); ++i) {
        uint8_t v6[16];
        std::memcpy(v6, &a[i].ip6addr, sizeof(v6));
        out->addresses.push_back({IpAddress::V6(v6).Canonical(), Ttl(a[i].ttl)});
      }
    }
  }
  if (status == ARES_ENODATA) return DnsAnswerResult::kNoRecords;
  if (status != ARES_SUCCESS) return DnsAnswerResult::kMalformed;
  if (out->addresses.empty()) return DnsAnswerResult::kNoRecords;

  std::string_view name(qname.s);
  while (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) {  // the root
    out->addresses.clear();
    return DnsAnswerResult::kNoRecords;
  }
  out->name.assign(name);
  for (char& c : out->name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return DnsAnswerResult::kParsed;
}

}  // namespace redmap
