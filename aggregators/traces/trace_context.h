// What a request head says about the trace it belongs to, and how heads are
// redacted before any copy of them is kept.
//
// Propagation headers, first found wins in this order: W3C `traceparent`,
// SkyWalking `sw8`, Jaeger `uber-trace-id`, B3 single (`b3`) and multi
// (`x-b3-traceid` / `x-b3-spanid`). `X-Request-ID` is read as well: it is a
// correlation key, not a trace id, and gives one only when no trace header
// is present (the same request id gives the same trace id on every node).
//
// Redaction masks the values of Authorization, Proxy-Authorization, Cookie,
// Set-Cookie and configured header names, and the values of configured
// query parameters in the request line and in Referer/Location headers.
// Everything here parses untrusted bytes: bounded, no allocation beyond the
// output string, never reads past the view.
#ifndef REDMAP_AGGREGATORS_TRACES_TRACE_CONTEXT_H_
#define REDMAP_AGGREGATORS_TRACES_TRACE_CONTEXT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/hash/hash.h"

namespace redmap::traces {

struct TraceId {
  uint64_t hi = 0;
  uint64_t lo = 0;

  bool valid() const { return hi != 0 || lo != 0; }
  std::string Hex() const;  // 32 lowercase hex digits
  // 1 to 32 hex digits (shorter ids are left-padded with zeros, as Jaeger
  // and B3 64-bit ids are); nullopt for anything else or all zeros.
  static std::optional<TraceId> FromHex(std::string_view hex);
  // A stable 128-bit id for an opaque string (SkyWalking ids, request ids).
  static TraceId FromKey(std::string_view key);

  friend bool operator==(const TraceId&, const TraceId&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const TraceId& t) {
    return H::combine(std::move(h), t.hi, t.lo);
  }
};

std::string SpanIdHex(uint64_t id);  // 16 lowercase hex digits

enum class Propagation : uint8_t { kNone, kW3c, kSkyWalking, kJaeger, kB3, kRequestId };
std::string_view PropagationName(Propagation p);  // "traceparent", "sw8", ...

struct PropagatedContext {
  Propagation format = Propagation::kNone;  // which header gave trace_id
  TraceId trace_id;
  uint64_t parent_span_id = 0;  // the sender's span id, when the header has one
  std::string_view request_id;  // X-Request-ID value (a view into the head)
};

// Reads the propagation headers of an HTTP/1 request head (start line first,
// may be cut anywhere). A request id alone sets format kRequestId and a
// trace id derived from it.
PropagatedContext ExtractContext(std::string_view head);

class Redactor {
 public:
  // Names are matched case-insensitively; the four credential headers are
  // always masked whatever `headers` says.
  Redactor(const std::vector<std::string>& headers, const std::vector<std::string>& query_params);

  static constexpr std::string_view kMask = "[redacted]";

  // Appends `head` to *out with masked values, at most max_bytes of it (the
  // cut is made after masking, so a cut never reveals a masked value).
  void RedactHead(std::string_view head, size_t max_bytes, std::string* out) const;
  // A request target (or URL) with masked query parameter values.
  void RedactTarget(std::string_view target, std::string* out) const;

  bool IsSensitiveHeader(std::string_view name) const;
  bool IsSensitiveParam(std::string_view name) const;

 private:
  std::vector<std::string> headers_;  // lowercase
  std::vector<std::string> params_;   // lowercase
};

}  // namespace redmap::traces

#endif  // REDMAP_AGGREGATORS_TRACES_TRACE_CONTEXT_H_
