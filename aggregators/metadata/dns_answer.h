// One DNS response message (a UDP payload from port 53) -> the name the
// client asked for and the addresses it got, with their TTLs. The records
// are parsed by c-ares (ares_parse_a_reply / ares_parse_aaaa_reply, which
// follow the CNAME chain from the question); only the header flags and the
// question's type and class are read here, after c-ares expanded the
// question name (ares_expand_name), so every length is checked by c-ares.
//
// The address is named by the question name, not by the CNAME target: a
// client that asked for api.example.com and got it through
// api.example.com.cdn.net is talking to "api.example.com" as far as its
// owners are concerned, and the target changes with the CDN's whims. Names
// are lower-cased (DNS is case-insensitive; one series per name) and have
// no trailing dot. A record's TTL is the smaller of its own and the CNAMEs'
// it was reached through (c-ares' rule).
//
// Never allocates without bound: at most kMaxDnsAnswerAddresses addresses
// are taken from one message. Never crashes on any input (fuzzed:
// tests/fuzz/dns_answer_fuzzer.cc).
#ifndef REDMAP_AGGREGATORS_METADATA_DNS_ANSWER_H_
#define REDMAP_AGGREGATORS_METADATA_DNS_ANSWER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aggregators/sources/event.h"

namespace redmap {

enum class DnsAnswerResult {
  kParsed,     // an A/AAAA answer with at least one address
  kNoRecords,  // a well-formed answer without addresses: NXDOMAIN, NODATA, SERVFAIL,
               // REFUSED, a CNAME alone
  kOtherType,  // a well-formed answer to another question (PTR, SRV, TXT, MX, ...)
  kTruncated,  // cut short: by the capture's snap length, IP fragmentation, or the
               // server (TC bit; the client retries over TCP, which is not seen)
  kMalformed,  // not a DNS answer: too short, a query, bad names or record lengths
};
inline constexpr size_t kNumDnsAnswerResults = 5;
// "parsed", "no_records", "other_type", "truncated", "malformed".
std::string_view DnsAnswerResultName(DnsAnswerResult r);

inline constexpr int kMaxDnsAnswerAddresses = 32;

struct DnsAnswer {
  struct Address {
    IpAddress ip;
    uint32_t ttl_s = 0;
  };
  std::string name;  // the question name: lower case, no trailing dot
  std::vector<Address> addresses;
};

// `out` is overwritten (its capacity reused); filled only for kParsed.
DnsAnswerResult ParseDnsAnswer(std::string_view message, DnsAnswer* out);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_DNS_ANSWER_H_
