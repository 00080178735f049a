#include "aggregators/traces/trace.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace redmap::traces {

std::string_view LinkName(Link l) {
  switch (l) {
    case Link::kNone:
      return "";
    case Link::kTcpSeq:
      return "tcp_seq";
    case Link::kThread:
      return "thread";
    case Link::kHeader:
      return "header";
  }
  return "";
}

size_t TraceSpan::Bytes() const {
  return sizeof(TraceSpan) + service.capacity() + process.capacity() + method.capacity() +
         target.capacity() + route.capacity() + request_id.capacity() +
         request_head.capacity() + response_head.capacity();
}

uint64_t Trace::start_ns() const {
  uint64_t s = spans.empty() ? 0 : spans[0].start_ns;
  for (const TraceSpan& sp : spans) s = std::min(s, sp.start_ns);
  return s;
}

uint64_t Trace::end_ns() const {
  uint64_t e = 0;
  for (const TraceSpan& sp : spans) e = std::max(e, sp.end_ns);
  return std::max(e, start_ns());
}

bool Trace::error() const {
  return std::any_of(spans.begin(), spans.end(), [](const TraceSpan& s) { return s.error(); });
}

size_t Trace::Bytes() const {
  size_t b = sizeof(Trace) + keep_reason.capacity() + spans.capacity() * sizeof(TraceSpan);
  for (const std::string& w : warnings) b += sizeof(std::string) + w.capacity();
  for (const TraceSpan& s : spans) b += s.Bytes() - sizeof(TraceSpan);
  return b;
}

std::string Trace::EndpointString(const Endpoint& e) {
  if (e.addr.family == 6) return absl::StrCat("[", e.addr.ToString(), "]:", e.port);
  return absl::StrCat(e.addr.ToString(), ":", e.port);
}

}  // namespace redmap::traces
