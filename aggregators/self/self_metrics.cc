#include "aggregators/self/self_metrics.h"

#include <algorithm>
#include <utility>

#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric Value(MetricType type, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  return m;
}

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

// Field by field, so that a new KernelStats member cannot be forgotten here
// silently: both functions list every member.
template <typename Op>
KernelStats Combine(const KernelStats& a, const KernelStats& b, Op op) {
  KernelStats r;
  r.ringbuf_drops = op(a.ringbuf_drops, b.ringbuf_drops);
  r.events = op(a.events, b.events);
  r.conn_unclassified = op(a.conn_unclassified, b.conn_unclassified);
  r.conn_classified = op(a.conn_classified, b.conn_classified);
  r.read_failed = op(a.read_failed, b.read_failed);
  r.tcp_ringbuf_drops = op(a.tcp_ringbuf_drops, b.tcp_ringbuf_drops);
  r.tcp_events = op(a.tcp_events, b.tcp_events);
  return r;
}
static_assert(sizeof(KernelStats) == 7 * sizeof(uint64_t), "update Combine()");

KernelStats Add(const KernelStats& a, const KernelStats& b) {
  return Combine(a, b, [](uint64_t x, uint64_t y) { return x + y; });
}

KernelStats Max(const KernelStats& a, const KernelStats& b) {
  return Combine(a, b, [](uint64_t x, uint64_t y) { return std::max(x, y); });
}

}  // namespace

std::string_view DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kKernelRingFull:
      return "kernel_ring_full";
    case DropReason::kDecodeError:
      return "decode_error";
    case DropReason::kConnTableFull:
      return "conn_table_full";
    case DropReason::kBufferOverflow:
      return "buffer_overflow";
    case DropReason::kKernelTcpRingFull:
      return "kernel_tcp_ring_full";
    case DropReason::kPeerUnmatched:
      return "peer_unmatched";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

void SelfMetrics::SetProbeStatus(const std::string& probe, bool up) {
  absl::MutexLock l(&mu_);
  probes_[probe] = up;
}

void SelfMetrics::ObserveScrapeDuration(double seconds) {
  absl::MutexLock l(&mu_);
  last_scrape_seconds_ = seconds;
  scrape_seconds_sum_ += seconds;
  ++scrapes_;
}

void SelfMetrics::SetKernelStatsReader(std::function<KernelStats()> reader) {
  absl::MutexLock l(&mu_);
  kernel_base_ = Add(kernel_base_, kernel_last_);
  kernel_last_ = KernelStats{};
  kernel_seen_ = kernel_seen_ || reader != nullptr;
  ++kernel_generation_;
  kernel_reader_ = std::move(reader);
}

void SelfMetrics::SetTableFillReader(std::function<std::vector<TableFill>()> reader) {
  absl::MutexLock l(&mu_);
  fill_reader_ = std::move(reader);
}

std::vector<MetricFamily> SelfMetrics::Collect() const {
  // Readers talk to the kernel: copy them out and call them unlocked.
  std::function<KernelStats()> kernel_reader;
  std::function<std::vector<TableFill>()> fill_reader;
  std::map<std::string, bool> probes;
  double last_scrape, scrape_sum;
  uint64_t scrapes;
  uint64_t generation;
  {
    absl::MutexLock l(&mu_);
    kernel_reader = kernel_reader_;
    generation = kernel_generation_;
    fill_reader = fill_reader_;
    probes = probes_;
    last_scrape = last_scrape_seconds_;
    scrape_sum = scrape_seconds_sum_;
    scrapes = scrapes_;
  }
  KernelStats now;
  if (kernel_reader) now = kernel_reader();
  KernelStats kernel;
  bool kernel_seen;
  {
    absl::MutexLock l(&mu_);
    // Only fold in what the reader that is still installed returned: a
    // reader replaced while we called it must not count twice.
    if (kernel_reader && generation == kernel_generation_) {
      kernel_last_ = Max(kernel_last_, now);
    }
    kernel = Add(kernel_base_, kernel_last_);
    kernel_seen = kernel_seen_;
  }

  std::vector<MetricFamily> out;
  auto relaxed = [](const auto& a) {
    return static_cast<double>(a.load(std::memory_order_relaxed));
  };

  MetricFamily events =
      Family("redmap_events_received_total", "Socket events received from the source, by type.",
             MetricType::Counter);
  events.metric.push_back(Value(MetricType::Counter, relaxed(data_events_), {{"type", "data"}}));
  events.metric.push_back(Value(MetricType::Counter, relaxed(close_events_), {{"type", "close"}}));
  events.metric.push_back(Value(MetricType::Counter, relaxed(tcp_events_), {{"type", "tcp"}}));
  out.push_back(std::move(events));

  MetricFamily dropped =
      Family("redmap_events_dropped_total",
             "Events (or their bytes) lost before aggregation, by reason.", MetricType::Counter);
  for (size_t i = 0; i < static_cast<size_t>(DropReason::kCount); ++i) {
    auto reason = static_cast<DropReason>(i);
    double v = relaxed(dropped_[i]);
    if (reason == DropReason::kKernelRingFull) v += static_cast<double>(kernel.ringbuf_drops);
    if (reason == DropReason::kKernelTcpRingFull) {
      v += static_cast<double>(kernel.tcp_ringbuf_drops);
    }
    dropped.metric.push_back(
        Value(MetricType::Counter, v, {{"reason", std::string(DropReasonName(reason))}}));
  }
  out.push_back(std::move(dropped));

  MetricFamily parse_errors =
      Family("redmap_parse_errors_total",
             "Protocol messages that could not be parsed and were skipped.", MetricType::Counter);
  MetricFamily spans = Family("redmap_spans_total", "Request/response spans produced, by protocol.",
                              MetricType::Counter);
  for (size_t i = 1; i < kProtocols; ++i) {  // 0 is kUnknown
    std::string proto(ProtocolName(static_cast<Protocol>(i)));
    parse_errors.metric.push_back(
        Value(MetricType::Counter, relaxed(parse_errors_[i]), {{"protocol", proto}}));
    spans.metric.push_back(Value(MetricType::Counter, relaxed(spans_[i]), {{"protocol", proto}}));
  }
  out.push_back(std::move(parse_errors));
  out.push_back(std::move(spans));
  MetricFamily peer_spans =
      Family("redmap_peer_spans_total",
             "Client spans built from the server end's parse when both ends are on this node "
             "(capture.parse_once); also counted in redmap_spans_total.",
             MetricType::Counter);
  peer_spans.metric.push_back(Value(MetricType::Counter, relaxed(peer_spans_)));
  out.push_back(std::move(peer_spans));

  MetricFamily tracked =
      Family("redmap_tracked_connections", "Connections in the userspace connection table.",
             MetricType::Gauge);
  tracked.metric.push_back(Value(MetricType::Gauge, relaxed(tracked_connections_)));
  out.push_back(std::move(tracked));
  MetricFamily tracked_limit = Family(
      "redmap_tracked_connections_limit",
      "Bound of the userspace connection table (conntrack.max_connections).", MetricType::Gauge);
  tracked_limit.metric.push_back(Value(MetricType::Gauge, relaxed(tracked_connections_limit_)));
  out.push_back(std::move(tracked_limit));
  MetricFamily stash = Family("redmap_peer_stash_entries",
                              "Server spans waiting for their local client end's first event "
                              "(capture.parse_once).",
                              MetricType::Gauge);
  stash.metric.push_back(Value(MetricType::Gauge, relaxed(peer_stash_entries_)));
  out.push_back(std::move(stash));
  MetricFamily stash_limit = Family("redmap_peer_stash_entries_limit",
                                    "Bound of the parse-once span stash.", MetricType::Gauge);
  stash_limit.metric.push_back(Value(MetricType::Gauge, relaxed(peer_stash_limit_)));
  out.push_back(std::move(stash_limit));

  if (kernel_seen) {
    struct {
      const char* name;
      const char* help;
      uint64_t value;
    } kernel_counters[] = {
        {"redmap_kernel_events_total", "Records the BPF programs wrote to the ring buffer.",
         kernel.events},
        {"redmap_kernel_tcp_events_total",
         "Records the TCP health programs wrote to the tcp_events ring buffer.", kernel.tcp_events},
        {"redmap_kernel_connections_classified_total",
         "Connections the kernel side recognised a protocol on.", kernel.conn_classified},
        {"redmap_kernel_connections_unclassified_total",
         "Connections with no recognised protocol; no longer traced.", kernel.conn_unclassified},
        {"redmap_kernel_payload_read_failures_total",
         "Failed copies of syscall payload from user memory.", kernel.read_failed},
    };
    for (const auto& c : kernel_counters) {
      MetricFamily f = Family(c.name, c.help, MetricType::Counter);
      f.metric.push_back(Value(MetricType::Counter, static_cast<double>(c.value)));
      out.push_back(std::move(f));
    }
  }

  MetricFamily probe_up = Family(
      "redmap_probe_up", "1 if the BPF program is attached, 0 if it failed or is unsupported.",
      MetricType::Gauge);
  for (const auto& [name, up] : probes) {
    probe_up.metric.push_back(Value(MetricType::Gauge, up ? 1 : 0, {{"probe", name}}));
  }
  if (!probe_up.metric.empty()) out.push_back(std::move(probe_up));

  if (fill_reader) {
    MetricFamily entries =
        Family("redmap_table_entries", "Entries in a bounded kernel table.", MetricType::Gauge);
    MetricFamily capacity =
        Family("redmap_table_capacity", "Capacity of a bounded kernel table (from the config).",
               MetricType::Gauge);
    for (const TableFill& t : fill_reader()) {
      entries.metric.push_back(
          Value(MetricType::Gauge, static_cast<double>(t.entries), {{"table", t.table}}));
      capacity.metric.push_back(
          Value(MetricType::Gauge, static_cast<double>(t.capacity), {{"table", t.table}}));
    }
    out.push_back(std::move(entries));
    out.push_back(std::move(capacity));
  }

  MetricFamily last = Family("redmap_last_scrape_duration_seconds",
                             "Time the previous /metrics request took to collect and serialize.",
                             MetricType::Gauge);
  last.metric.push_back(Value(MetricType::Gauge, last_scrape));
  out.push_back(std::move(last));
  MetricFamily scrape =
      Family("redmap_scrape_duration_seconds",
             "Time /metrics requests took to collect and serialize.", MetricType::Summary);
  ClientMetric s;
  s.summary.sample_count = scrapes;
  s.summary.sample_sum = scrape_sum;
  scrape.metric.push_back(std::move(s));
  out.push_back(std::move(scrape));
  return out;
}

}  // namespace redmap
