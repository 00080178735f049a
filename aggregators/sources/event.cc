#include "aggregators/sources/event.h"

#include <arpa/inet.h>

#include <cstring>

namespace redmap {

std::string_view ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kHttp1:
      return "http1";
    case Protocol::kUnknown:
      break;
  }
  return "unknown";
}

IpAddress IpAddress::V4(uint32_t network_order) {
  IpAddress a;
  a.SetV4(reinterpret_cast<const uint8_t*>(&network_order));
  return a;
}

IpAddress IpAddress::V6(const uint8_t bytes[16]) {
  IpAddress a;
  a.family = 6;
  std::memcpy(a.bytes.data(), bytes, 16);
  return a;
}

IpAddress IpAddress::Canonical() const {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == 6 && std::memcmp(bytes.data(), kMapped, 12) == 0) {
    IpAddress a;
    a.family = 4;
    std::memcpy(a.bytes.data(), bytes.data() + 12, 4);
    return a;
  }
  return *this;
}

bool IpAddress::IsLoopback() const {
  IpAddress c = Canonical();
  if (c.family == 4) return c.bytes[0] == 127;
  if (c.family == 6) {
    for (int i = 0; i < 15; ++i)
      if (c.bytes[i] != 0) return false;
    return c.bytes[15] == 1;
  }
  return false;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == 4) {
    // Per span on the client side: inet_ntop's printf machinery shows in profiles.
    std::string out;
    out.reserve(15);
    for (int i = 0; i < 4; ++i) {
      if (i) out.push_back('.');
      unsigned v = bytes[i];
      if (v >= 100) out.push_back(static_cast<char>('0' + v / 100));
      if (v >= 10) out.push_back(static_cast<char>('0' + v / 10 % 10));
      out.push_back(static_cast<char>('0' + v % 10));
    }
    return out;
  } else if (family == 6) {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
  }
  return buf;
}

}  // namespace redmap
