// Per-connection stream state: places each direction's bytes by stream
// position, hands them to the connection's protocol parser, and passes the
// resulting spans on. Bounded: at most max_connections entries (LRU eviction,
// counted), at most max_buffer_bytes unparsed bytes per direction.
// Single-threaded: called from the source's thread only.
#ifndef REDMAP_AGGREGATORS_CONNTRACK_CONN_TRACKER_H_
#define REDMAP_AGGREGATORS_CONNTRACK_CONN_TRACKER_H_

#include <cstdint>
#include <memory>

#include "aggregators/self/self_metrics.h"
#include "aggregators/sources/event.h"
#include "aggregators/span/span.h"

namespace redmap {

struct ConnTrackerOptions {
  size_t max_connections = 65536;
  uint64_t idle_timeout_ns = 300ull * 1000 * 1000 * 1000;
  size_t max_buffer_bytes = 256 * 1024;
  // Copy each message's head bytes onto its span (Span::request_head,
  // response_head). Only trace assembly reads them: off when traces are.
  bool keep_heads = true;
};

class ConnTracker : public EventSink {
 public:
  // `spans` and `self` must outlive the tracker.
  ConnTracker(const ConnTrackerOptions& options, SpanSink* spans, SelfMetrics* self);
  ~ConnTracker() override;

  void OnData(const DataEvent& event) override;
  void OnClose(const CloseEvent& event) override;

  // Forgets connections with no event for idle_timeout_ns before now_ns
  // (flushing what can still be completed, e.g. read-until-close bodies).
  void ExpireIdle(uint64_t now_ns);
  // Flushes and forgets everything (end of a replay).
  void Flush();

  size_t connections() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_CONNTRACK_CONN_TRACKER_H_
