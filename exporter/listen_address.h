// HOST:PORT for --web.listen-address ("0.0.0.0:9435", "[::1]:9435", ":9435").
#ifndef REDMAP_EXPORTER_LISTEN_ADDRESS_H_
#define REDMAP_EXPORTER_LISTEN_ADDRESS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace redmap {

struct ListenAddress {
  std::string host;  // without brackets; "" means all addresses
  uint16_t port = 0;
  bool ipv6 = false;
  std::string ToString() const;  // as given back to users: "127.0.0.1:9435", "[::1]:9435"
};

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

}  // namespace redmap

#endif  // REDMAP_EXPORTER_LISTEN_ADDRESS_H_
