// DNS answers come from the network: anything that sends a UDP datagram from
// port 53 to or through this node is parsed. Neither the answer parser nor
// the frame path (link, IP and UDP headers) may crash, read past the input
// or keep more than they are allowed to. Seeds: tests/fixtures/dns (real
// dnsmasq answers).
#include <pcap/pcap.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregators/metadata/dns_answer.h"
#include "aggregators/metadata/dns_cache.h"
#include "aggregators/metadata/dns_capture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  redmap::DnsAnswer answer;
  const redmap::DnsAnswerResult r =
      redmap::ParseDnsAnswer(std::string_view(reinterpret_cast<const char*>(data), size), &answer);
  if (r == redmap::DnsAnswerResult::kParsed &&
      (answer.name.empty() || answer.addresses.empty() ||
       answer.addresses.size() > redmap::kMaxDnsAnswerAddresses)) {
    __builtin_trap();
  }
  if (r != redmap::DnsAnswerResult::kParsed && !answer.addresses.empty()) __builtin_trap();

  // The same bytes as a captured frame of each link type the capture sees.
  redmap::DnsCacheOptions o;
  o.max_entries = 8;
  redmap::DnsCache cache(o);
  redmap::DnsAnswerFeed feed(&cache);
  for (int linktype : {DLT_RAW, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_EN10MB}) {
    feed.OnFrame(linktype, data, size, size, 1);
    if (size > 1) feed.OnFrame(linktype, data, size - 1, size, 1);  // cut by the snap length
  }
  if (cache.size() > 8) __builtin_trap();
  return 0;
}
