#include "aggregators/metadata/cidr_names.h"

#include <algorithm>
#include <charconv>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "aggregators/common/string_view.h"
#include "aggregators/metadata/k8s/k8s_objects.h"

namespace redmap {
namespace {

bool PrefixMatches(const IpAddress& ip, const IpAddress& net, int len) {
  if (ip.family != net.family) return false;
  int full = len / 8;
  for (int i = 0; i < full; ++i) {
    if (ip.bytes[i] != net.bytes[i]) return false;
  }
  int rest = len % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.bytes[full] & mask) == (net.bytes[full] & mask);
}

}  // namespace

absl::StatusOr<CidrName> ParseCidr(std::string_view cidr, std::string name) {
  size_t slash = cidr.find('/');
  IpAddress ip = k8s::ParseIp(cidr.substr(0, slash));
  if (ip.family == 0) {
    return absl::InvalidArgumentError(absl::StrCat("\"", AbslView(cidr), "\" is not an address range"));
  }
  const bool v6_text = cidr.substr(0, slash).find(':') != std::string_view::npos;
  const int max = v6_text ? 128 : 32;
  int len = max;
  if (slash != std::string_view::npos) {
    std::string_view l = cidr.substr(slash + 1);
    auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), len);
    if (ec != std::errc() || p != l.data() + l.size() || len < 0 || len > max) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", AbslView(cidr), "\": prefix length must be 0..", max));
    }
  }
  if (v6_text && ip.family == 4) {
    // An IPv4-mapped range (::ffff:10.0.0.0/104) became IPv4 in ParseIp.
    if (len < 96) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", AbslView(cidr), "\": an IPv4-mapped range needs a prefix of 96..128"));
    }
    len -= 96;
  }
  const int bits = ip.family == 4 ? 32 : 128;
  for (int bit = len; bit < bits; ++bit) ip.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat("\"", AbslView(cidr), "\": empty name"));
  return CidrName{ip, len, std::move(name)};
}

absl::StatusOr<CidrNames> CidrNames::Create(
    const std::vector<std::pair<std::string, std::string>>& cidr_to_name) {
  CidrNames out;
  for (const auto& [cidr, name] : cidr_to_name) {
    auto r = ParseCidr(cidr, name);
    if (!r.ok()) return r.status();
    out.ranges_.push_back(std::move(*r));
  }
  std::stable_sort(out.ranges_.begin(), out.ranges_.end(),
                   [](const CidrName& a, const CidrName& b) { return a.prefix_len > b.prefix_len; });
  return out;
}

const std::string* CidrNames::Lookup(const IpAddress& ip_in) const {
  const IpAddress ip = ip_in.Canonical();
  for (const CidrName& r : ranges_) {
    if (PrefixMatches(ip, r.network, r.prefix_len)) return &r.name;
  }
  return nullptr;
}

}  // namespace redmap
