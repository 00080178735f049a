// Trace assembly and tail sampling, per node, without instrumentation.
//
// Every span is copied into a bounded pending table (its target and heads
// redacted on the way into the ring, when its tree is kept: see Fill in
// trace_sampler.cc; the linking fields apart from the strings, see Node)
// and linked to the spans it belongs with:
//   - tcp_seq: a client span and a server span with the same connection
//     endpoints and the same stream position of the request's first byte are
//     the two halves of one request (write_seq at the sender = copied_seq at
//     the receiver): the client span is the parent.
//   - thread: a client span sent by the thread that read a server request,
//     inside that request's [start, end], is its child (the thread's
//     "syscall trace id": the inbound request opens it, the response closes it).
//   - header: a client span whose request carries the same trace id (or
//     X-Request-ID) as a server span of the same process, inside its
//     [start, end], is its child whatever thread sent it.
// Trace ids come from the propagation headers when present (see
// trace_context.h), else they are random.
//
// A tree is decided once nothing joined it for assembly_wait_ns of the
// spans' clock after its newest span ended (its root has completed and no
// caller showed up), or when the pending table needs room (counted as
// forced). Kept: any 5xx (error), root slower than slow_threshold_ns (slow),
// any span slower than its route's current p99 (route_p99), or a
// uniform ratio of the rest (ratio, by trace id, so every node keeping by
// ratio keeps the same propagated traces); all within max_traces_per_second.
// Kept traces go to the TraceRing and their spans become exemplars of the
// RED histograms.
//
// Threads: OnSpan/Tick/Flush on the source thread; Collect, ring() and
// exemplars() from any thread.
#ifndef REDMAP_AGGREGATORS_TRACES_TRACE_SAMPLER_H_
#define REDMAP_AGGREGATORS_TRACES_TRACE_SAMPLER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aggregators/red/route_cache.h"
#include "aggregators/span/span.h"
#include "aggregators/traces/exemplar_store.h"
#include "aggregators/traces/trace_ring.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap::traces {

// Spans per trace; beyond it, spans start traces of their own.
inline constexpr size_t kMaxSpansPerTrace = 512;
// Routes whose latency distribution is tracked for the p99 rule.
inline constexpr size_t kMaxLatencyRoutes = 4096;
// Observations a route needs in its window before its p99 is trusted.
inline constexpr uint64_t kMinRouteSamples = 100;

struct TraceOptions {
  uint64_t assembly_wait_ns = 1000ull * 1000 * 1000;
  size_t max_pending_spans = 8192;
  size_t payload_snippet_bytes = 512;  // per head; 0: heads are not kept
  double sample_ratio = 0.01;
  uint64_t slow_threshold_ns = 1000ull * 1000 * 1000;  // 0: off
  bool keep_slower_than_route_p99 = true;
  double max_traces_per_second = 100;
  // Spans assembled per second (in windows of a tenth of a second); beyond
  // it, only errors and slow spans are (0: no limit). Caps what traces cost
  // a busy node; metrics count every span regardless.
  double max_spans_per_second = 10000;
  size_t ring_max_bytes = 16u << 20;
  size_t ring_max_traces = 1000;
  std::vector<std::string> redact_headers;
  std::vector<std::string> redact_query_params;
  // Span clock + this = Unix time (ns). Pipeline sets it for live sources.
  int64_t unix_offset_ns = 0;
  std::vector<double> exemplar_buckets;  // the RED buckets
  size_t exemplar_max_series = 10000;
  uint64_t random_seed = 0;  // 0: from the system
};

// Appends the service_name of the process that observed the span to *out
// (RED's service_name label; an append into the assembly table's buffer,
// no string per span).
using TraceServiceNameResolver = std::function<void(const Span&, std::string* out)>;

class TraceSampler : public SpanSink, public prometheus::Collectable {
 public:
  // routes: http_route of each span, shared with the RED aggregator (the
  // pipeline builds one from red.route_patterns for both, so trace routes
  // and exemplar labels are the RED series' routes); null: a cache of its
  // own without patterns (NormalizeRoute()).
  TraceSampler(const TraceOptions& options, TraceServiceNameResolver resolver,
               std::shared_ptr<RouteCache> routes = nullptr);
  ~TraceSampler() override;

  void OnSpan(const Span& span) override;
  // Decides trees whose wait is over, on the spans' clock.
  void Tick(uint64_t now_ns);
  // Decides everything pending (end of a replay).
  void Flush();

  std::vector<prometheus::MetricFamily> Collect() const override;
  TraceRing& ring();
  ExemplarStore& exemplars();
  size_t pending_spans() const;
  // Times the due ring was compacted (its stale entries dropped); for tests.
  uint64_t due_compactions() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redmap::traces

#endif  // REDMAP_AGGREGATORS_TRACES_TRACE_SAMPLER_H_
