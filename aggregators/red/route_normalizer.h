// http_route from a raw request-target: the path without query or fragment,
// with the segments that identify instances rather than routes replaced by
// placeholders, so that /api/users/42 and /api/users/43 are one series.
//
// Segment rules (first match wins; no regex, this runs per span):
//   all digits                                  -> {id}
//   UUID 8-4-4-4-12 hex                         -> {uuid}
//   >= 16 hex digits (hashes, object ids)       -> {hex}
//   >= 20 chars of [A-Za-z0-9_-] with >= 4 digits -> {token} (base64url ids, JWT parts)
//   anything else (words, v1, user123)          -> kept
// Also: absolute-form targets (http://host/p) keep only the path; "*" stays;
// at most kMaxSegments segments (the rest becomes /{*}); bytes outside
// printable ASCII make the whole route "{invalid}".
#ifndef REDMAP_AGGREGATORS_RED_ROUTE_NORMALIZER_H_
#define REDMAP_AGGREGATORS_RED_ROUTE_NORMALIZER_H_

#include <string>
#include <string_view>

namespace redmap {

inline constexpr size_t kMaxRouteSegments = 8;
inline constexpr size_t kMaxRouteSegmentBytes = 64;

std::string NormalizeRoute(std::string_view target);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_RED_ROUTE_NORMALIZER_H_
