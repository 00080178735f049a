// The link-layer and IP headers of one captured packet, as libpcap hands it
// over: shared by the capture replay (TCP, pcap_source.cc) and the live DNS
// answer capture (UDP, metadata/dns_capture.cc). Bounds-checked against the
// captured length; never reads past it.
#ifndef REDMAP_AGGREGATORS_SOURCES_PACKET_HEADERS_H_
#define REDMAP_AGGREGATORS_SOURCES_PACKET_HEADERS_H_

#include <cstddef>
#include <cstdint>

#include "aggregators/sources/event.h"

namespace redmap {

inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1/v2 (the `any`
// device), raw IPv4/IPv6 and BSD loopback.
bool LinkTypeSupported(int linktype);

enum class HeaderResult {
  kOk,
  kUnsupported,  // not IPv4/IPv6 (ARP, ...), or an IPv6 extension not followed
  kFragment,     // an IP fragment: the transport header is in the first one only
  kMalformed,    // headers cut short or inconsistent
};

struct IpPacket {
  IpAddress src, dst;        // canonical (IPv4-mapped IPv6 is IPv4)
  uint8_t protocol = 0;      // kIpProtoTcp, kIpProtoUdp, ...
  const uint8_t* l4 = nullptr;  // the transport header
  size_t l4_captured = 0;    // bytes from l4 the capture kept (may include link padding)
  uint32_t l4_len = 0;       // transport header + payload, from the IP header
};

// `caplen` bytes are at `d`; `wirelen` is how long the packet was on the wire.
HeaderResult ParseIpHeaders(int linktype, const uint8_t* d, size_t caplen, size_t wirelen,
                            IpPacket* out);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SOURCES_PACKET_HEADERS_H_
