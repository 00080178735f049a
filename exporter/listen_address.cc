#include "exporter/listen_address.h"

#include <arpa/inet.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace redmap {

std::string ListenAddress::ToString() const {
  if (ipv6) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host.empty() ? "0.0.0.0" : host, ":", port);
}

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text) {
  ListenAddress a;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError("must be HOST:PORT, e.g. [::1]:9435");
    }
    a.host = text.substr(1, close - 1);
    a.ipv6 = true;
    port = text.substr(close + 2);
    in6_addr tmp;
    if (inet_pton(AF_INET6, a.host.c_str(), &tmp) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("'", a.host, "' is not an IPv6 address"));
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError("must be HOST:PORT, e.g. 0.0.0.0:9435");
    }
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    in_addr tmp;
    if (!a.host.empty() && a.host != "localhost" && inet_pton(AF_INET, a.host.c_str(), &tmp) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", a.host, "' is not an IPv4 address (use [addr] for IPv6)"));
    }
    if (a.host == "localhost") a.host = "127.0.0.1";
  }
  uint32_t p;
  if (!absl::SimpleAtoi(port, &p) || p > 65535 || port.empty() ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("port '", port, "' is not a number 0-65535"));
  }
  a.port = static_cast<uint16_t>(p);
  return a;
}

}  // namespace redmap
