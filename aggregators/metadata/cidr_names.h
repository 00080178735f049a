// Names for address ranges outside the cluster, from the config:
// "10.20.0.0/16" -> "corp-vpn", "0.0.0.0/0" -> "internet". The longest
// matching prefix wins; IPv4 and IPv6 ranges live side by side (an IPv4
// address never matches an IPv6 range, IPv4-mapped IPv6 addresses are
// treated as IPv4).
#ifndef REDMAP_AGGREGATORS_METADATA_CIDR_NAMES_H_
#define REDMAP_AGGREGATORS_METADATA_CIDR_NAMES_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "aggregators/sources/event.h"

namespace redmap {

struct CidrName {
  IpAddress network;  // host bits cleared
  int prefix_len = 0;
  std::string name;
};

// "10.0.0.0/8" (or a bare address: a /32 or /128).
absl::StatusOr<CidrName> ParseCidr(std::string_view cidr, std::string name);

class CidrNames {
 public:
  // Fails on the first malformed range, naming it.
  static absl::StatusOr<CidrNames> Create(
      const std::vector<std::pair<std::string, std::string>>& cidr_to_name);
  CidrNames() = default;

  // The name of the most specific range holding `ip`, or nullptr.
  const std::string* Lookup(const IpAddress& ip) const;
  size_t size() const { return ranges_.size(); }

 private:
  std::vector<CidrName> ranges_;  // longest prefix first
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_CIDR_NAMES_H_
