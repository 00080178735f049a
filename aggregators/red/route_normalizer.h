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

namespace redmap {

inline constexpr size_t kMaxRouteSegments = 8;
inline constexpr size_t kMaxRouteSegmentBytes = 64;
inline constexpr size_t kMaxRouteBytes = 128;  // "/{*}" may follow

std::string NormalizeRoute(std::string_view target);
// Same, into *out (cleared first): no allocation once *out has capacity.
void NormalizeRoute(std::string_view target, std::string* out);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_RED_ROUTE_NORMALIZER_H_
