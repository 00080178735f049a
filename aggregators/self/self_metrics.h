// redmap's own health, exported with the redmap_ prefix: what came in, what
// was lost and why, how big the tables are, which probes are attached, how
// long scrapes take. Hot-path updates are relaxed atomic increments; no
// locks, no allocation. Everything is initialised to zero so that "nothing
// lost" is a visible 0, not a missing series.
#ifndef REDMAP_AGGREGATORS_SELF_SELF_METRICS_H_
#define REDMAP_AGGREGATORS_SELF_SELF_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "aggregators/sources/event.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap {

// Why an event (or part of one) was lost. Label value of
// redmap_events_dropped_total{reason=...}.
enum class DropReason : uint8_t {
  kKernelRingFull,  // BPF could not reserve ring space (read from the kernel)
  kDecodeError,     // ring record too short / inconsistent
  kConnTableFull,   // userspace connection table at its bound, LRU evicted
  kBufferOverflow,  // unparsed bytes beyond conntrack.max_buffer_bytes
  kKernelTcpRingFull,  // TCP health events lost: the tcp_events ring was full
  // capture.parse_once: a server end's span its local client end never
  // claimed, a client end's request left unmatched at a bound, or a
  // compact record of a connection the tracker does not hold.
  kPeerUnmatched,
  kCount,
};
std::string_view DropReasonName(DropReason r);

// Counters the BPF side keeps in its per-CPU stats map, summed over CPUs.
struct KernelStats {
  uint64_t ringbuf_drops = 0;
  uint64_t events = 0;
  uint64_t conn_unclassified = 0;
  uint64_t conn_classified = 0;
  uint64_t read_failed = 0;
  uint64_t tcp_ringbuf_drops = 0;
  uint64_t tcp_events = 0;
};

class SelfMetrics : public prometheus::Collectable {
 public:
  static constexpr size_t kProtocols = 2;  // indexed by static_cast<size_t>(Protocol)

  // ---- hot path (any thread) ----
  void AddDataEvent() { data_events_.fetch_add(1, std::memory_order_relaxed); }
  void AddCloseEvent() { close_events_.fetch_add(1, std::memory_order_relaxed); }
  void AddTcpEvent() { tcp_events_.fetch_add(1, std::memory_order_relaxed); }
  void AddDropped(DropReason r, uint64_t n = 1) {
    dropped_[static_cast<size_t>(r)].fetch_add(n, std::memory_order_relaxed);
  }
  void AddParseError(Protocol p) {
    parse_errors_[static_cast<size_t>(p)].fetch_add(1, std::memory_order_relaxed);
  }
  void AddSpan(Protocol p) {
    spans_[static_cast<size_t>(p)].fetch_add(1, std::memory_order_relaxed);
  }
  // A client span built from the server end's parse (also in AddSpan).
  void AddPeerSpan() { peer_spans_.fetch_add(1, std::memory_order_relaxed); }
  void SetTrackedConnections(int64_t n) {
    tracked_connections_.store(n, std::memory_order_relaxed);
  }
  void SetTrackedConnectionsLimit(int64_t n) {
    tracked_connections_limit_.store(n, std::memory_order_relaxed);
  }
  // capture.parse_once: server spans waiting for their client end's first
  // event (PeerStash), and the stash's bound.
  void SetPeerStashEntries(int64_t n) { peer_stash_entries_.store(n, std::memory_order_relaxed); }
  void SetPeerStashLimit(int64_t n) { peer_stash_limit_.store(n, std::memory_order_relaxed); }

  // ---- control path ----
  void SetProbeStatus(const std::string& probe, bool up);
  void ObserveScrapeDuration(double seconds);
  // Called at collection time to read the kernel's counters (BPF map).
  // Exported kernel counters stay monotonic across reader changes: values
  // of a replaced or removed reader are carried forward, and a reader whose
  // counters go backwards (a reloaded map) is never exported below its best.
  void SetKernelStatsReader(std::function<KernelStats()> reader);
  // Called at collection time for fill gauges of bounded kernel/user tables,
  // e.g. {"bpf_conn_info", entries, capacity}.
  struct TableFill {
    std::string table;
    int64_t entries;
    int64_t capacity;
  };
  void SetTableFillReader(std::function<std::vector<TableFill>()> reader);

  std::vector<prometheus::MetricFamily> Collect() const override;

  // For tests.
  uint64_t data_events() const { return data_events_.load(); }
  uint64_t dropped(DropReason r) const { return dropped_[static_cast<size_t>(r)].load(); }
  uint64_t parse_errors(Protocol p) const { return parse_errors_[static_cast<size_t>(p)].load(); }
  uint64_t spans(Protocol p) const { return spans_[static_cast<size_t>(p)].load(); }
  uint64_t peer_spans() const { return peer_spans_.load(); }

 private:
  std::atomic<uint64_t> data_events_{0};
  std::atomic<uint64_t> close_events_{0};
  std::atomic<uint64_t> tcp_events_{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(DropReason::kCount)> dropped_{};
  std::array<std::atomic<uint64_t>, kProtocols> parse_errors_{};
  std::array<std::atomic<uint64_t>, kProtocols> spans_{};
  std::atomic<uint64_t> peer_spans_{0};
  std::atomic<int64_t> tracked_connections_{0};
  std::atomic<int64_t> tracked_connections_limit_{0};
  std::atomic<int64_t> peer_stash_entries_{0};
  std::atomic<int64_t> peer_stash_limit_{0};

  mutable absl::Mutex mu_;
  std::map<std::string, bool> probes_ ABSL_GUARDED_BY(mu_);
  double last_scrape_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t scrapes_ ABSL_GUARDED_BY(mu_) = 0;
  double scrape_seconds_sum_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<KernelStats()> kernel_reader_ ABSL_GUARDED_BY(mu_);
  bool kernel_seen_ ABSL_GUARDED_BY(mu_) = false;         // any reader ever set
  uint64_t kernel_generation_ ABSL_GUARDED_BY(mu_) = 0;   // bumped per reader change
  KernelStats kernel_base_ ABSL_GUARDED_BY(mu_);          // from readers since replaced
  mutable KernelStats kernel_last_ ABSL_GUARDED_BY(mu_);  // current reader's best
  std::function<std::vector<TableFill>()> fill_reader_ ABSL_GUARDED_BY(mu_);
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SELF_SELF_METRICS_H_
