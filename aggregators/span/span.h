// A request/response pair observed on one side of a connection. Spans exist
// only in flight: the pipeline builds one, hands it to every SpanSink, and
// forgets it (DESIGN.md, "the one rule of the data path").
#ifndef REDMAP_AGGREGATORS_SPAN_SPAN_H_
#define REDMAP_AGGREGATORS_SPAN_SPAN_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "aggregators/sources/event.h"

namespace redmap {

struct HttpSpanInfo {
  std::string method;  // "GET"
  std::string target;  // raw request-target, query included ("/api/x?id=1")
  int status = 0;      // response status code
  uint64_t request_bytes = 0;   // head + body, as seen on the wire
  uint64_t response_bytes = 0;
};

struct Span {
  Protocol protocol = Protocol::kUnknown;
  // Which end of the connection observed this span: kServer means the traced
  // process answered the request; kClient means it sent it.
  Role side = Role::kUnknown;
  // Latency = start_ns to end_ns, monotonic ns, as seen by the observing side:
  // start is when the request's first byte was sent (client: the send's
  // timestamp) or received (server: the read's return); end is the return
  // of the syscall that carried the response's last byte.
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  ConnKey conn;
  uint32_t tid = 0;  // thread that read (server) or wrote (client) the request
  uint64_t cgroup_id = 0;
  // Kernel's name of the observing process; valid only during OnSpan.
  std::string_view process_name;
  Endpoint client;
  Endpoint server;
  uint32_t request_tcp_seq = 0;  // stream position of the request's first byte
  uint32_t response_tcp_seq = 0;  // and of the response's (the other direction)
  bool has_tcp_seq = false;
  HttpSpanInfo http;
  // The request's and response's heads as captured (start line and header
  // fields, possibly cut where the capture ended), for trace assembly and
  // its redacted snippets (aggregators/traces/). Valid only during OnSpan;
  // empty when the protocol has no head or it was not seen.
  std::string_view request_head;
  std::string_view response_head;
};

class SpanSink {
 public:
  virtual ~SpanSink() = default;
  virtual void OnSpan(const Span& span) = 0;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SPAN_SPAN_H_
