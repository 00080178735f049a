// http_route from a raw request-target: the path without query or fragment,
// with the segments that identify instances rather than routes replaced by
// placeholders, so that /api/users/42 and /api/users/43 are one series.
//
// Segment rules (first match wins; no regex, this runs per span):
//   all digits                                    -> {id}
//   UUID 8-4-4-4-12 hex, any case                 -> {uuid}
//   >= 16 hex digits (hashes, object ids)         -> {hex}
//   >= 20 chars of [A-Za-z0-9_-] with >= 4 digits -> {token} (base64url ids, JWT parts)
//   longer than kMaxRouteSegmentBytes             -> {token}
//   anything else (words, v1, user123, deadbeef)  -> kept
// Short hex words and letter+digit mixes are kept on purpose: they are far
// more often names (v2, s3, deadbeef, ipv6) than ids, and real ids are caught
// by the length rules above.
// A segment's ";params" (e.g. ;jsessionid=...) are dropped, and a short file
// extension survives its placeholder: /img/123.png -> /img/{id}.png.
// Also: absolute-form targets (http://host/p) keep only the path; "*" stays
// "*" (OPTIONS *); an empty target is "/"; at most kMaxRouteSegments
// segments and kMaxRouteBytes bytes (the rest becomes /{*}); a target with
// bytes outside printable ASCII, or one that is neither "/..." nor absolute
// (e.g. CONNECT's host:port), is the single route "{invalid}".
#ifndef REDMAP_AGGREGATORS_RED_ROUTE_NORMALIZER_H_
#define REDMAP_AGGREGATORS_RED_ROUTE_NORMALIZER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace redmap {

inline constexpr size_t kMaxRouteSegments = 8;
inline constexpr size_t kMaxRouteSegmentBytes = 64;
inline constexpr size_t kMaxRouteBytes = 128;  // "/{*}" may follow

std::string NormalizeRoute(std::string_view target);
// Same, into *out (cleared first): no allocation once *out has capacity.
void NormalizeRoute(std::string_view target, std::string* out);

// Configured routes (red.route_patterns), tried before the heuristics
// above: "/api/users/{id}/orders", "/static/**". A pattern is a path of
// segments; "{anything}" or "*" matches exactly one non-empty segment, a
// final "**" matches the rest of the path (zero or more segments); any other
// segment matches itself exactly (case-sensitive). The first pattern that
// matches the request's path (query and fragment removed) is the http_route,
// verbatim. At most kMaxRoutePatterns patterns of at most kMaxRouteBytes.
inline constexpr size_t kMaxRoutePatterns = 256;

class RoutePatterns {
 public:
  // Errors name the offending pattern; `key` prefixes them (the config key).
  static absl::StatusOr<RoutePatterns> Create(const std::vector<std::string>& patterns,
                                              std::string_view key = "red.route_patterns");
  RoutePatterns() = default;

  // The first matching pattern, or nullptr.
  const std::string* Match(std::string_view target) const;
  bool empty() const { return patterns_.empty(); }

 private:
  struct Pattern {
    std::string text;
    std::vector<std::string> segments;  // "*" for a one-segment wildcard
    bool rest = false;                  // ends in "**"
  };
  std::vector<Pattern> patterns_;
};

// The route of a target: the first matching pattern if any, else
// NormalizeRoute(). patterns may be null.
void RouteOf(const RoutePatterns* patterns, std::string_view target, std::string* out);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_RED_ROUTE_NORMALIZER_H_
