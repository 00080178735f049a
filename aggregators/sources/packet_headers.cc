#include "aggregators/sources/packet_headers.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace redmap {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;

// Link header -> offset of the IP header. Any ethertype/family that is not
// IPv4 or IPv6 is kUnsupported.
HeaderResult SkipLink(int linktype, const uint8_t* d, size_t n, size_t* off) {
  uint16_t ethertype;
  switch (linktype) {
    case DLT_EN10MB: {
      if (n < 14) return HeaderResult::kMalformed;
      size_t o = 14;
      ethertype = Be16(d + 12);
      // 802.1Q / 802.1ad tags, possibly stacked.
      while (ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100) {
        if (n < o + 4) return HeaderResult::kMalformed;
        ethertype = Be16(d + o + 2);
        o += 4;
      }
      *off = o;
      break;
    }
    case DLT_LINUX_SLL:
      if (n < 16) return HeaderResult::kMalformed;
      ethertype = Be16(d + 14);
      *off = 16;
      break;
    case DLT_LINUX_SLL2:
      if (n < 20) return HeaderResult::kMalformed;
      ethertype = Be16(d);
      *off = 20;
      break;
    case DLT_NULL:
    case DLT_LOOP: {
      if (n < 4) return HeaderResult::kMalformed;
      // Address family in the writer's byte order (DLT_NULL) or network
      // order (DLT_LOOP); the values are small, so either order reads right.
      uint32_t family = Be32(d);
      if (family > 0xffff) family = __builtin_bswap32(family);
      *off = 4;
      // AF_INET everywhere; AF_INET6 on Linux, Net/OpenBSD, FreeBSD, macOS.
      if (family == 2) return HeaderResult::kOk;
      if (family == 10 || family == 24 || family == 28 || family == 30) return HeaderResult::kOk;
      return HeaderResult::kUnsupported;
    }
    default:  // raw IP
      *off = 0;
      return HeaderResult::kOk;
  }
  return ethertype == kEtherIpv4 || ethertype == kEtherIpv6 ? HeaderResult::kOk
                                                            : HeaderResult::kUnsupported;
}

}  // namespace

bool LinkTypeSupported(int linktype) {
  switch (linktype) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
      return true;
    default:
      return false;
  }
}

HeaderResult ParseIpHeaders(int linktype, const uint8_t* d, size_t caplen, size_t wirelen,
                            IpPacket* p) {
  size_t off = 0;
  HeaderResult link = SkipLink(linktype, d, caplen, &off);
  if (link != HeaderResult::kOk) return link;
  if (caplen <= off) return HeaderResult::kMalformed;
  d += off;
  const size_t n = caplen - off;
  const size_t wire = std::max(wirelen, caplen) - off;
  size_t l4;  // offset of the transport header
  const uint8_t version = d[0] >> 4;
  if (version == 4) {
    if (n < 20) return HeaderResult::kMalformed;
    const size_t ihl = (d[0] & 0x0f) * 4u;
    uint32_t total = Be16(d + 2);
    // Segmentation offload can leave 0 here; the capture length then tells.
    if (total == 0) total = static_cast<uint32_t>(std::min<size_t>(wire, UINT32_MAX));
    if (ihl < 20 || total < ihl || total > wire || n < ihl) return HeaderResult::kMalformed;
    if ((Be16(d + 6) & 0x3fff) != 0) return HeaderResult::kFragment;
    uint32_t s, t;
    std::memcpy(&s, d + 12, 4);
    std::memcpy(&t, d + 16, 4);
    p->src = IpAddress::V4(s);
    p->dst = IpAddress::V4(t);
    p->protocol = d[9];
    l4 = ihl;
    p->l4_len = total - static_cast<uint32_t>(ihl);
  } else if (version == 6) {
    if (n < 40) return HeaderResult::kMalformed;
    uint32_t payload = Be16(d + 4);
    if (payload == 0) payload = static_cast<uint32_t>(std::min<size_t>(wire - 40, UINT32_MAX));
    if (40 + size_t{payload} > wire) return HeaderResult::kMalformed;
    p->src = IpAddress::V6(d + 8).Canonical();
    p->dst = IpAddress::V6(d + 24).Canonical();
    uint8_t next = d[6];
    l4 = 40;
    // Hop-by-hop, routing, destination options and AH carry their own
    // length; anything else (ESP, ...) is not followed.
    for (int i = 0; i < 8; ++i) {
      size_t len;
      if (next == 0 || next == 43 || next == 60) {
        if (n < l4 + 2) return HeaderResult::kMalformed;
        len = (d[l4 + 1] + 1u) * 8;
      } else if (next == 51) {
        if (n < l4 + 2) return HeaderResult::kMalformed;
        len = (d[l4 + 1] + 2u) * 4;
      } else {
        break;
      }
      if (payload < len) return HeaderResult::kMalformed;
      next = d[l4];
      l4 += len;
      payload -= static_cast<uint32_t>(len);
    }
    if (next == 44) return HeaderResult::kFragment;
    p->protocol = next;
    p->l4_len = payload;
  } else {
    return HeaderResult::kMalformed;
  }
  if (n < l4) return HeaderResult::kMalformed;
  p->l4 = d + l4;
  p->l4_captured = n - l4;
  return HeaderResult::kOk;
}

}  // namespace redmap
