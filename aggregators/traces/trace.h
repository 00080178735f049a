// A sampled trace as redmap keeps it: copies of the spans of one request
// tree, with every payload-derived string already redacted. Only the
// TraceSampler makes these, and only the TraceRing keeps them.
#ifndef REDMAP_AGGREGATORS_TRACES_TRACE_H_
#define REDMAP_AGGREGATORS_TRACES_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "aggregators/sources/event.h"
#include "aggregators/traces/trace_context.h"

namespace redmap::traces {

// How a span found its parent.
enum class Link : uint8_t {
  kNone,     // a root: no parent observed on this node
  kTcpSeq,   // client and server halves of one request (same connection, same first byte)
  kThread,   // a client call made by the thread serving the parent request
  kHeader,   // same trace id / request id in the same process (any thread)
};
std::string_view LinkName(Link l);  // "", "tcp_seq", "thread", "header"

struct TraceSpan {
  uint64_t span_id = 0;
  uint64_t parent_id = 0;  // 0: root of this trace
  Link link = Link::kNone;
  Protocol protocol = Protocol::kUnknown;
  Role side = Role::kUnknown;
  uint64_t start_ns = 0;  // the source's clock (monotonic, or capture time)
  uint64_t end_ns = 0;
  uint32_t tgid = 0;
  uint32_t tid = 0;
  uint64_t cgroup_id = 0;
  std::string service;  // service_name, as in the RED labels
  std::string process;  // the kernel's name of the process (comm)
  std::string method;
  std::string target;  // redacted
  std::string route;   // http_route
  int status = 0;
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  Endpoint client;
  Endpoint server;
  uint32_t tcp_seq = 0;
  bool has_tcp_seq = false;
  // What the request's headers said (format kNone: nothing).
  Propagation propagation = Propagation::kNone;
  TraceId header_trace_id;
  uint64_t header_parent_id = 0;
  std::string request_id;     // X-Request-ID
  std::string request_head;   // redacted, at most traces.payload_snippet_bytes
  std::string response_head;  // redacted, likewise

  uint64_t duration_ns() const { return end_ns > start_ns ? end_ns - start_ns : 0; }
  bool error() const { return status >= 500; }
  // Approximate heap + inline size, for the ring's byte bound.
  size_t Bytes() const;
};

struct Trace {
  TraceId id;
  // Added to a span's clock to get Unix time in ns (0 when the clock already
  // is Unix time, as in a capture).
  int64_t unix_offset_ns = 0;
  std::string keep_reason;  // "error", "slow", "route_p99", "ratio"
  std::vector<std::string> warnings;  // why the trace may be partial, or lacks heads
  bool partial = false;  // a warning says spans may be missing (not just heads)
  std::vector<TraceSpan> spans;  // spans[0] is the root; parents precede children
  uint64_t sequence = 0;  // insertion order in the ring

  uint64_t start_ns() const;
  uint64_t end_ns() const;
  uint64_t duration_ns() const { return end_ns() - start_ns(); }
  bool error() const;
  size_t Bytes() const;
  static std::string EndpointString(const Endpoint& e);  // "ip:port", "[ip]:port"
};

}  // namespace redmap::traces

#endif  // REDMAP_AGGREGATORS_TRACES_TRACE_H_
