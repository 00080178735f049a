#include "aggregators/traces/trace_sampler.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "aggregators/red/red_aggregator.h"
#include "aggregators/red/route_cache.h"
#include "aggregators/traces/packed_strings.h"
#include "aggregators/traces/slot_index.h"
#include "aggregators/traces/trace_context.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"

namespace redmap::traces {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr int32_t kNil = -1;
constexpr int kThreadList = 0;
constexpr int kCorrelationList = 1;

// Per-route latency in two rotating 60 s windows of 64 log-spaced buckets
// (10 us x 1.25^i: 10 us .. ~16 s), for "slower than the route's p99".
// Windows live in a vector found by route key once per span (Observe); the
// span keeps the window's place (Ref), so deciding its tree later reads the
// p99 without a second lookup.
class RouteLatency {
 public:
  static constexpr size_t kBuckets = 64;
  static constexpr uint64_t kWindowNs = 60ull * 1000 * 1000 * 1000;

  // A route's window: valid while the window's generation matches (an
  // expired route's slot is reused by another route).
  struct Ref {
    uint32_t slot = UINT32_MAX;
    uint32_t gen = 0;
  };

  RouteLatency() {
    double edge = 10000;  // ns
    for (size_t i = 0; i < kBuckets; ++i, edge *= 1.25) edges_[i] = static_cast<uint64_t>(edge);
    edges_[kBuckets - 1] = UINT64_MAX;
    // first_[k]: the first bucket whose upper edge reaches 2^k, where the
    // search for a duration of bit width k+1 starts (about three buckets
    // per power of two, so a few steps instead of a binary search).
    size_t i = 0;
    for (size_t k = 0; k < 64; ++k) {
      while (edges_[i] < (uint64_t{1} << k)) ++i;
      first_[k] = static_cast<uint8_t>(i);
    }
  }

  // Counts one observation. Returns whether it is slower than the route's
  // p99 with it counted (what P99() says now); *ref is where the route's
  // window is (unchanged when the table is full).
  bool Observe(uint64_t key, uint64_t duration_ns, uint64_t now_ns, Ref* ref) {
    auto it = index_.find(key);
    if (it == index_.end()) {
      if (index_.size() >= kMaxLatencyRoutes) return false;
      uint32_t slot;
      if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
      } else {
        slot = static_cast<uint32_t>(windows_.size());
        windows_.emplace_back();
      }
      Window& fresh = windows_[slot];
      const uint32_t gen = fresh.gen;
      fresh = Window{};
      fresh.gen = gen;
      fresh.start_ns = now_ns;
      it = index_.emplace(key, slot).first;
    }
    const uint32_t slot = it->second;
    Window& w = windows_[slot];
    *ref = Ref{slot, w.gen};
    if (now_ns >= w.start_ns + kWindowNs) {
      // One window old: it becomes the previous one; older: forget it.
      if (now_ns < w.start_ns + 2 * kWindowNs) {
        w.previous = w.current;
        w.previous_n = w.current_n;
      } else {
        w.previous.fill(0);
        w.previous_n = 0;
      }
      w.current.fill(0);
      w.current_n = 0;
      w.start_ns = now_ns;
      w.p99_bucket = 0;
      w.below = 0;
    }
    const size_t b = Bucket(duration_ns);
    ++w.current[b];
    ++w.current_n;
    if (b < w.p99_bucket) ++w.below;
    // Keep p99_bucket the first bucket whose cumulative count reaches
    // ceil(0.99 n): one more observation moves it a bucket or so.
    const uint64_t rank = Rank(w);
    while (w.below + Count(w, w.p99_bucket) < rank) w.below += Count(w, w.p99_bucket++);
    while (w.p99_bucket > 0 && w.below >= rank) w.below -= Count(w, --w.p99_bucket);
    const uint64_t p99 = P99(w);
    return p99 > 0 && duration_ns > p99;
  }

  // The upper edge of the bucket holding the 99th percentile of the route
  // at ref; 0 when it has too few observations to say, or is gone.
  uint64_t P99(Ref ref) const {
    if (ref.slot >= windows_.size()) return 0;
    const Window& w = windows_[ref.slot];
    return w.gen == ref.gen ? P99(w) : 0;
  }

  void Expire(uint64_t now_ns) {
    absl::erase_if(index_, [&](const auto& kv) {
      Window& w = windows_[kv.second];
      if (now_ns < w.start_ns + 2 * kWindowNs) return false;
      ++w.gen;
      free_.push_back(kv.second);
      return true;
    });
  }

  size_t size() const { return index_.size(); }

 private:
  struct Window {
    std::array<uint32_t, kBuckets> current{};
    std::array<uint32_t, kBuckets> previous{};
    uint64_t current_n = 0;
    uint64_t previous_n = 0;
    uint64_t start_ns = 0;
    // The bucket holding the 99th percentile, and the observations in the
    // buckets below it, kept up to date by Observe (no scan per lookup).
    size_t p99_bucket = 0;
    uint64_t below = 0;
    uint32_t gen = 0;
  };

  // The first bucket whose upper edge is >= duration_ns.
  size_t Bucket(uint64_t duration_ns) const {
    if (duration_ns == 0) return 0;
    size_t i = first_[63 - static_cast<size_t>(__builtin_clzll(duration_ns))];
    while (edges_[i] < duration_ns) ++i;  // ends: the last edge is UINT64_MAX
    return i;
  }

  static uint64_t Count(const Window& w, size_t i) { return w.current[i] + w.previous[i]; }
  static uint64_t Rank(const Window& w) {
    const uint64_t n = w.current_n + w.previous_n;
    return (n * 99 + 99) / 100;  // ceil(0.99 n)
  }

  uint64_t P99(const Window& w) const {
    if (w.current_n + w.previous_n < kMinRouteSamples) return 0;
    return edges_[w.p99_bucket];
  }

  std::array<uint64_t, kBuckets> edges_{};
  std::array<uint8_t, 64> first_{};
  absl::flat_hash_map<uint64_t, uint32_t> index_;  // route key -> slot in windows_
  std::vector<Window> windows_;                     // at most kMaxLatencyRoutes
  std::vector<uint32_t> free_;                      // slots of expired routes
};

// Token bucket on the spans' clock; burst = one second's worth (at least 1).
class RateLimiter {
 public:
  explicit RateLimiter(double per_second)
      : rate_(per_second), burst_(std::max(1.0, per_second)), tokens_(burst_) {}
  bool Allow(uint64_t now_ns) {
    if (started_ && now_ns > last_ns_) {
      tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ns - last_ns_) / 1e9);
    }
    started_ = true;
    last_ns_ = std::max(last_ns_, now_ns);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  uint64_t last_ns_ = 0;
  bool started_ = false;
};

// A span waiting in the assembly table, in two parts so that the table's
// hot path stays small: Node holds what linking, waiting and deciding read
// (80 bytes), NodeDetail what only a kept span needs (its strings packed in
// one reused buffer) and what a tcp_seq match checks. Every span pays for
// writing both; only the spans of kept trees are read back from NodeDetail.
// The indexes that find a span by TCP stream position, thread or
// propagated trace live in SlotIndexes beside the table.
struct Node {
  int32_t parent = kNil;
  int32_t first_child = kNil;
  int32_t next_sibling = kNil;
  uint32_t tree_size = 1;  // at roots: spans in the tree
  uint32_t gen = 0;
  uint32_t tgid = 0;
  uint32_t tid = 0;
  int32_t status = 0;
  Role side = Role::kUnknown;
  Link link = Link::kNone;
  Propagation propagation = Propagation::kNone;
  bool used = false;
  bool forced = false;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint64_t activity_ns = 0;  // at roots: the newest end in the tree
  RouteLatency::Ref route;  // its route's latency window (p99 rule)
  uint64_t correlation = 0;  // hash of (tgid, propagated trace id); 0: none

  uint64_t duration_ns() const { return end_ns > start_ns ? end_ns - start_ns : 0; }
};
static_assert(sizeof(Node) <= 80, "the hot part of a pending span grew");

enum Text { kService, kProcess, kMethod, kTarget, kRoute, kRequestId, kRequestHead, kResponseHead,
            kTexts };

struct NodeDetail {
  uint64_t span_id = 0;
  uint64_t cgroup_id = 0;
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  TraceId header_trace_id;
  uint64_t header_parent_id = 0;
  Endpoint client;
  Endpoint server;
  uint32_t tcp_seq = 0;
  bool has_tcp_seq = false;
  Protocol protocol = Protocol::kUnknown;
  // The target and heads still hold the bytes as captured: Keep() redacts
  // them on the way out (see Fill).
  bool raw_target = false;
  bool raw_request_head = false;
  bool raw_response_head = false;
  bool heads = false;  // request_head and response_head were copied
  PackedStrings<kTexts> text;
};

struct Due {
  int32_t node;
  uint32_t gen;
  uint64_t due_ns;
};

enum Reason { kError, kSlow, kRouteP99, kRatio, kReasons };
constexpr const char* kReasonNames[kReasons] = {"error", "slow", "route_p99", "ratio"};

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Keys of the in-process indexes (never exported, never compared across
// processes): one multiply per 8-byte word (chain calls over several
// strings, then Mix once), instead of absl::Hash's generic combine or a Mix
// per word, which were a visible part of a span's cost.
uint64_t Load64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

uint64_t Load32(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

uint64_t HashBytes(uint64_t h, std::string_view s) {
  constexpr uint64_t kMul = 0x9fb21c651e98df25ull;
  const char* p = s.data();
  const size_t n = s.size();
  h = ((h << 5 | h >> 59) ^ n) * kMul;
  // The last (partial) word is read as overlapping fixed-size loads: no
  // byte loop, no variable-length copy.
  uint64_t tail;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) h = ((h << 5 | h >> 59) ^ Load64(p + i)) * kMul;
    tail = Load64(p + n - 8);
  } else if (n >= 4) {
    tail = Load32(p) << 32 | Load32(p + n - 4);
  } else if (n > 0) {
    tail = uint64_t{static_cast<unsigned char>(p[0])} << 16 |
           uint64_t{static_cast<unsigned char>(p[n / 2])} << 8 | static_cast<unsigned char>(p[n - 1]);
  } else {
    tail = 0;
  }
  return ((h << 5 | h >> 59) ^ tail) * kMul;  // chain calls, then Mix once
}

uint64_t HashEndpoint(uint64_t h, const Endpoint& e) {
  uint64_t lo, hi;
  std::memcpy(&lo, e.addr.bytes.data(), 8);
  std::memcpy(&hi, e.addr.bytes.data() + 8, 8);
  return Mix(Mix(h ^ lo) ^ hi ^ (uint64_t{e.addr.family} << 16 | e.port));
}

}  // namespace

class TraceSampler::Impl {
 public:
  Impl(const TraceOptions& o, TraceServiceNameResolver resolver,
       std::shared_ptr<RouteCache> routes)
      : options_(o),
        resolver_(std::move(resolver)),
        routes_cache_(routes != nullptr ? std::move(routes) : std::make_shared<RouteCache>()),
        redactor_(o.redact_headers, o.redact_query_params),
        ring_(o.ring_max_bytes, o.ring_max_traces),
        exemplars_(o.exemplar_buckets, o.exemplar_max_series),
        limiter_(o.max_traces_per_second),
        nodes_(std::max<size_t>(o.max_pending_spans, 1)),
        details_(nodes_.size()),
        seq_index_(nodes_.size()),
        lists_{SlotIndex(nodes_.size()), SlotIndex(nodes_.size())},
        // Twice the table: a compaction (DropStaleDue) then frees at least
        // a table's worth of slots, so it runs at most once per
        // nodes_.size() pushes (with one slot to spare it ran on every push
        // of a saturated table: O(table) per span).
        due_(2 * nodes_.size()) {
    free_.reserve(nodes_.size());
    for (size_t i = nodes_.size(); i > 0; --i) free_.push_back(static_cast<int32_t>(i - 1));
    if (o.max_spans_per_second > 0) {
      budget_per_window_ = std::max<uint64_t>(
          1, static_cast<uint64_t>(std::llround(o.max_spans_per_second * kBudgetWindowNs / 1e9)));
    }
    rng_ = o.random_seed != 0 ? o.random_seed
                              : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  }

  void OnSpan(const Span& span) {
    if (span.side != Role::kServer && span.side != Role::kClient) return;
    if (span.end_ns < span.start_ns) return;
    now_ns_ = std::max(now_ns_, span.end_ns);
    if (!WithinBudget(span)) {
      Add(skipped_);
      last_skip_ns_ = now_ns_;
      return;
    }
    Add(spans_assembled_);
    PrefetchAhead();
    // The index buckets this span will look up, fetched while the table
    // makes room and the span is copied.
    const uint64_t seq_base =
        span.has_tcp_seq ? SeqBase(span.client, span.server, span.request_tcp_seq) : 0;
    if (span.has_tcp_seq) {
      seq_index_.PrefetchKey(SeqKey(seq_base, Role::kServer));
      seq_index_.PrefetchKey(SeqKey(seq_base, Role::kClient));
    }
    lists_[kThreadList].PrefetchKey(ThreadKey(span.conn.tgid, span.tid));
    DecideDue();
    while (free_.empty()) ForceOne();
    const int32_t idx = free_.back();
    free_.pop_back();
    Node& n = nodes_[static_cast<size_t>(idx)];
    Fill(span, &n, &details_[static_cast<size_t>(idx)]);
    pending_.store(nodes_.size() - free_.size(), std::memory_order_relaxed);
    if (span.has_tcp_seq) LinkByTcpSeq(idx, seq_base);
    if (n.side == Role::kClient) {
      // Waits for the server request it was made for, if any.
      lists_[kThreadList].Insert(idx, ThreadKey(n.tgid, n.tid));
      if (n.correlation != 0) lists_[kCorrelationList].Insert(idx, n.correlation);
    } else {
      Adopt(idx, kThreadList, Link::kThread);
      if (n.correlation != 0) Adopt(idx, kCorrelationList, Link::kHeader);
    }
    PushDue(idx, span.end_ns + options_.assembly_wait_ns);
  }

  // traces.max_spans_per_second, counted per tenth of a second on the
  // spans' clock. Over it, a span is assembled only if it would keep its
  // tree by a rule that needs nothing from the table: a 5xx or at least
  // slow_threshold. The rest would cost as much to assemble and are almost
  // all dropped undecided-on; their trees may then lack them.
  bool WithinBudget(const Span& span) {
    if (budget_per_window_ == 0) return true;
    const uint64_t window = now_ns_ / kBudgetWindowNs;
    if (window != budget_window_) {
      budget_window_ = window;
      budget_used_ = 0;
    }
    if (budget_used_ < budget_per_window_) {
      ++budget_used_;
      return true;
    }
    return span.http.status >= 500 || Slow(span.end_ns - span.start_ns);
  }

  // At least traces.slow_threshold_ms (when that rule is on).
  bool Slow(uint64_t duration_ns) const {
    return options_.slow_threshold_ns > 0 && duration_ns >= options_.slow_threshold_ns;
  }

  // Entries are decided roughly in the order of the due queue (by time,
  // or the oldest first when the table is full), and the entry freed last
  // is the next one filled: touching the entries a few places down the
  // queue now means deciding and refilling them does not wait on memory
  // once the table is larger than the CPU caches. The index buckets their
  // removal writes are found through their links, fetched a few spans
  // earlier.
  // Both lines a Node may straddle, for writing.
  void PrefetchNode(size_t i) const {
    __builtin_prefetch(&nodes_[i], 1);
    __builtin_prefetch(reinterpret_cast<const char*>(&nodes_[i]) + sizeof(Node) - 1, 1);
  }

  void PrefetchDetail(size_t i) const {
    __builtin_prefetch(&details_[i], 1);
    __builtin_prefetch(reinterpret_cast<const char*>(&details_[i]) + 64, 1);
    __builtin_prefetch(reinterpret_cast<const char*>(&details_[i]) + 128, 1);
    __builtin_prefetch(reinterpret_cast<const char*>(&details_[i]) + 192, 1);
  }

  void PrefetchAhead() {
    constexpr size_t kNodeDistance = 8;
    constexpr size_t kBucketDistance = 4;
    constexpr size_t kParentTextDistance = 2;
    constexpr size_t kDueDistance = 32;  // the due ring itself, two lines past what is read
    if (due_size_ > kDueDistance) __builtin_prefetch(&due_[DueIndex(kDueDistance)]);
    if (due_size_ > kNodeDistance) {
      const size_t i =
          static_cast<size_t>(due_[DueIndex(kNodeDistance)].node);
      PrefetchNode(i);
      PrefetchDetail(i);
      seq_index_.PrefetchSlot(static_cast<int32_t>(i));
      for (const SlotIndex& l : lists_) l.PrefetchSlot(static_cast<int32_t>(i));
    }
    if (due_size_ > kBucketDistance) {
      const int32_t idx = due_[DueIndex(kBucketDistance)].node;
      // Its strings' block, found through the entry fetched above.
      const char* text = details_[static_cast<size_t>(idx)].text.data();
      __builtin_prefetch(text, 1);
      __builtin_prefetch(text + 64, 1);
      seq_index_.PrefetchSlotBucket(idx);
      for (const SlotIndex& l : lists_) l.PrefetchSlotBucket(idx);
      // A child's entry decides its root's tree (a server span under the
      // client span of the same request): the parent's entry and links are
      // read and freed with it.
      const int32_t parent = nodes_[static_cast<size_t>(idx)].parent;
      if (parent != kNil) {
        PrefetchNode(static_cast<size_t>(parent));
        PrefetchDetail(static_cast<size_t>(parent));
        seq_index_.PrefetchSlot(parent);
        for (const SlotIndex& l : lists_) l.PrefetchSlot(parent);
      }
    }
    if (due_size_ > kParentTextDistance) {
      // The parent is freed with its child and refilled a span later: its
      // strings' block too, through its entry fetched above.
      const int32_t parent =
          nodes_[static_cast<size_t>(due_[DueIndex(kParentTextDistance)].node)].parent;
      if (parent != kNil) {
        const char* text = details_[static_cast<size_t>(parent)].text.data();
        __builtin_prefetch(text, 1);
        __builtin_prefetch(text + 64, 1);
      }
    }
  }

  void Tick(uint64_t now_ns) {
    now_ns_ = std::max(now_ns_, now_ns);
    DecideDue();
    routes_.store(latency_.size(), std::memory_order_relaxed);
    if (now_ns_ >= last_expire_ns_ + RouteLatency::kWindowNs) {
      last_expire_ns_ = now_ns_;
      latency_.Expire(now_ns_);
      // Exemplars older than the latency windows describe another time.
      const double now_unix = static_cast<double>(static_cast<int64_t>(now_ns_) +
                                                  options_.unix_offset_ns) / 1e9;
      exemplars_.Expire(now_unix - 2 * RouteLatency::kWindowNs / 1e9);
    }
  }

  void Flush() {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].used && nodes_[i].parent == kNil) Finalize(static_cast<int32_t>(i));
    }
    due_head_ = due_size_ = 0;
  }

  std::vector<MetricFamily> Collect() const {
    std::vector<MetricFamily> out;
    auto counter = [&](const char* name, const char* help, double v) {
      MetricFamily f{name, help, MetricType::Counter, {}};
      ClientMetric m;
      m.counter.value = v;
      f.metric.push_back(std::move(m));
      out.push_back(std::move(f));
    };
    auto gauge = [&](const char* name, const char* help, double v) {
      MetricFamily f{name, help, MetricType::Gauge, {}};
      ClientMetric m;
      m.gauge.value = v;
      f.metric.push_back(std::move(m));
      out.push_back(std::move(f));
    };
    const TraceRing::Stats rs = ring_.stats();
    counter("redmap_traces_assembled_total",
            "Traces assembled and decided by the tail sampler (kept or not).",
            Load(assembled_));
    {
      MetricFamily f{"redmap_traces_sampled_total",
                     "Traces the tail sampler chose to keep, by the first rule that matched "
                     "(before the rate limit).",
                     MetricType::Counter,
                     {}};
      for (int r = 0; r < kReasons; ++r) {
        ClientMetric m;
        m.label = {{"reason", kReasonNames[r]}};
        m.counter.value = Load(sampled_[r]);
        f.metric.push_back(std::move(m));
      }
      out.push_back(std::move(f));
    }
    {
      MetricFamily f{"redmap_trace_spans_linked_total",
                     "Spans linked to a parent span, by how the link was found.",
                     MetricType::Counter,
                     {}};
      for (Link l : {Link::kTcpSeq, Link::kThread, Link::kHeader}) {
        ClientMetric m;
        m.label = {{"link", std::string(LinkName(l))}};
        m.counter.value = Load(linked_[static_cast<size_t>(l)]);
        f.metric.push_back(std::move(m));
      }
      out.push_back(std::move(f));
    }
    counter("redmap_trace_ring_insertions_total", "Traces stored in the trace ring.",
            static_cast<double>(rs.insertions));
    counter("redmap_trace_ring_evictions_total",
            "Traces evicted from the trace ring (oldest first) to make room.",
            static_cast<double>(rs.evictions));
    {
      MetricFamily f{"redmap_trace_ring_rejections_total",
                     "Kept traces not stored: over traces.max_traces_per_second "
                     "(rate_limited) or larger than the whole ring (too_large).",
                     MetricType::Counter,
                     {}};
      ClientMetric a, b;
      a.label = {{"reason", "rate_limited"}};
      a.counter.value = Load(rate_limited_);
      b.label = {{"reason", "too_large"}};
      b.counter.value = static_cast<double>(rs.too_large);
      f.metric.push_back(std::move(a));
      f.metric.push_back(std::move(b));
      out.push_back(std::move(f));
    }
    gauge("redmap_trace_ring_traces", "Traces in the trace ring.", static_cast<double>(rs.traces));
    gauge("redmap_trace_ring_traces_limit", "Trace ring bound in traces (traces.ring_max_traces).",
          static_cast<double>(ring_.max_traces()));
    gauge("redmap_trace_ring_bytes", "Bytes held by the traces in the trace ring.",
          static_cast<double>(rs.bytes));
    gauge("redmap_trace_ring_bytes_limit", "Trace ring bound in bytes (traces.ring_max_bytes).",
          static_cast<double>(ring_.max_bytes()));
    gauge("redmap_trace_pending_spans", "Spans waiting in the trace assembly table.",
          static_cast<double>(pending_.load(std::memory_order_relaxed)));
    gauge("redmap_trace_pending_spans_limit",
          "Trace assembly table bound (traces.max_pending_spans).",
          static_cast<double>(nodes_.size()));
    counter("redmap_trace_spans_skipped_total",
            "Spans not assembled into traces because traces.max_spans_per_second was "
            "reached (errors and slow spans always are; metrics count every span).",
            Load(skipped_));
    counter("redmap_trace_spans_assembled_total",
            "Spans taken into trace assembly (the rest: redmap_trace_spans_skipped_total).",
            Load(spans_assembled_));
    gauge("redmap_trace_spans_per_second_limit",
          "Spans assembled per second at most, beyond 5xx and slow ones "
          "(traces.max_spans_per_second; 0: no limit).",
          static_cast<double>(budget_per_window_) * 1e9 / kBudgetWindowNs);
    counter("redmap_trace_pending_forced_total",
            "Traces decided before their assembly wait ended because the assembly table "
            "was full.",
            Load(forced_));
    gauge("redmap_trace_latency_routes",
          "Routes whose latency distribution the sampler tracks for the p99 rule.",
          static_cast<double>(routes_.load(std::memory_order_relaxed)));
    gauge("redmap_trace_latency_routes_limit", "Bound of that table.",
          static_cast<double>(kMaxLatencyRoutes));
    gauge("redmap_exemplar_series", "RED histogram series holding exemplars.",
          static_cast<double>(exemplars_.series()));
    gauge("redmap_exemplar_series_limit", "Bound of that table.",
          static_cast<double>(exemplars_.max_series()));
    return out;
  }

  TraceRing& ring() { return ring_; }
  ExemplarStore& exemplars() { return exemplars_; }
  size_t pending() const { return pending_.load(std::memory_order_relaxed); }
  uint64_t due_compactions() const { return due_compactions_; }

 private:
  static double Load(const std::atomic<uint64_t>& a) {
    return static_cast<double>(a.load(std::memory_order_relaxed));
  }
  static void Add(std::atomic<uint64_t>& a) {
    // Single writer (the source thread): a relaxed load+store is enough.
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  static uint64_t ThreadKey(uint32_t tgid, uint32_t tid) {
    return (uint64_t{tgid} << 32) | tid;
  }

  uint64_t NextId() {
    uint64_t id;
    do {
      rng_ += 0x9e3779b97f4a7c15ull;
      id = Mix(rng_);
    } while (id == 0);
    return id;
  }

  void Fill(const Span& span, Node* n, NodeDetail* d) {
    n->parent = n->first_child = n->next_sibling = kNil;
    n->tree_size = 1;
    n->tgid = span.conn.tgid;
    n->tid = span.tid;
    n->status = span.http.status;
    n->side = span.side;
    n->link = Link::kNone;
    n->used = true;
    n->forced = false;
    n->start_ns = span.start_ns;
    n->end_ns = span.end_ns;
    n->activity_ns = span.end_ns;

    d->span_id = NextId();
    d->cgroup_id = span.cgroup_id;
    d->request_bytes = span.http.request_bytes;
    d->response_bytes = span.http.response_bytes;
    d->client = span.client;
    d->server = span.server;
    d->tcp_seq = span.request_tcp_seq;
    d->has_tcp_seq = span.has_tcp_seq;
    d->protocol = span.protocol;
    PackedStrings<kTexts>& t = d->text;
    t.Clear();
    t.SetWith(kService, [&](std::string* out) { resolver_(span, out); });
    const std::string& route = routes_cache_->Route(span.http.target);
    t.Set(kProcess, span.process_name);
    t.Set(kMethod, span.http.method);
    t.Set(kRoute, route);
    // Redaction is deferred to Keep(), the only way out of this table: most
    // spans are dropped undecided-on, and redacting two heads and a target
    // was the largest part of a span's cost. A head is kept raw only when
    // it fits the snippet whole, so that redacting it later gives exactly
    // what redacting it now would (masking may lengthen or shorten it, and
    // the snippet is cut after masking); a longer one is redacted now.
    t.Set(kTarget, span.http.target);
    d->raw_target = true;
    const PropagatedContext ctx = ExtractContext(span.request_head);
    n->propagation = ctx.format;
    d->header_trace_id = ctx.trace_id;
    d->header_parent_id = ctx.parent_span_id;
    t.Set(kRequestId, ctx.request_id);
    n->correlation = ctx.format == Propagation::kNone
                         ? 0
                         : Mix(Mix(ctx.trace_id.hi ^ n->tgid) ^ ctx.trace_id.lo) | 1;
    const uint64_t route_key = Mix(HashBytes(HashBytes(HashBytes(static_cast<uint8_t>(span.side),
                                                     t.Get(kService)),
                                           span.http.method),
                                 route));
    bool over_p99 = false;
    n->route = RouteLatency::Ref{};
    if (options_.keep_slower_than_route_p99) {
      over_p99 = latency_.Observe(route_key, n->duration_ns(), span.end_ns, &n->route);
    }
    // Heads are most of a span's bytes and most spans' trees are dropped:
    // they are copied only for a span that, as it arrives, would keep its
    // tree on its own: an error, slow, slower than its route's p99 (as
    // last worked out), or drawn by the ratio (from its propagated trace
    // id, else from its own id, which is the draw its tree gets if it
    // stays the root). A kept trace says how many spans came without.
    d->heads = options_.payload_snippet_bytes > 0 &&
               (n->status >= 500 || Slow(n->duration_ns()) || over_p99 ||
                Draw(ctx.format != Propagation::kNone ? ctx.trace_id : SpanDraw(d->span_id)) <
                    options_.sample_ratio);
    if (d->heads) {
      d->raw_request_head = CopyHead(span.request_head, kRequestHead, &t);
      d->raw_response_head = CopyHead(span.response_head, kResponseHead, &t);
    } else {
      d->raw_request_head = d->raw_response_head = false;
    }
  }

  // Uniform in [0, 1) from a trace id: nodes that see the same propagated
  // trace id make the same choice.
  static double Draw(const TraceId& id) {
    return static_cast<double>(Mix(id.hi ^ Mix(id.lo)) >> 11) * 0x1.0p-53;
  }
  // What a tree without a propagated id draws: its root's (random) span id.
  static TraceId SpanDraw(uint64_t span_id) { return TraceId{span_id, ~span_id}; }

  // A head into the table: raw (returns true) when it fits the snippet
  // whole, else redacted and cut now.
  bool CopyHead(std::string_view head, Text field, PackedStrings<kTexts>* t) const {
    if (options_.payload_snippet_bytes == 0) {
      t->Set(field, {});
      return false;
    }
    if (head.size() <= options_.payload_snippet_bytes) {
      t->Set(field, head);
      return true;
    }
    t->SetWith(field, [&](std::string* out) {
      redactor_.RedactHead(head, options_.payload_snippet_bytes, out);
    });
    return false;
  }

  // A kept span as the ring holds it: its strings out of the table, what
  // Fill left raw redacted on the way.
  TraceSpan Export(int32_t idx) const {
    const Node& n = nodes_[static_cast<size_t>(idx)];
    const NodeDetail& d = details_[static_cast<size_t>(idx)];
    const PackedStrings<kTexts>& t = d.text;
    TraceSpan s;
    s.span_id = d.span_id;
    s.parent_id = n.parent == kNil ? 0 : details_[static_cast<size_t>(n.parent)].span_id;
    s.link = n.link;
    s.protocol = d.protocol;
    s.side = n.side;
    s.start_ns = n.start_ns;
    s.end_ns = n.end_ns;
    s.tgid = n.tgid;
    s.tid = n.tid;
    s.cgroup_id = d.cgroup_id;
    s.service.assign(t.Get(kService));
    s.process.assign(t.Get(kProcess));
    s.method.assign(t.Get(kMethod));
    if (d.raw_target) {
      redactor_.RedactTarget(t.Get(kTarget), &s.target);
    } else {
      s.target.assign(t.Get(kTarget));
    }
    s.route.assign(t.Get(kRoute));
    s.status = n.status;
    s.request_bytes = d.request_bytes;
    s.response_bytes = d.response_bytes;
    s.client = d.client;
    s.server = d.server;
    s.tcp_seq = d.tcp_seq;
    s.has_tcp_seq = d.has_tcp_seq;
    s.propagation = n.propagation;
    s.header_trace_id = d.header_trace_id;
    s.header_parent_id = d.header_parent_id;
    s.request_id.assign(t.Get(kRequestId));
    ExportHead(t.Get(kRequestHead), d.raw_request_head, &s.request_head);
    ExportHead(t.Get(kResponseHead), d.raw_response_head, &s.response_head);
    return s;
  }

  void ExportHead(std::string_view head, bool raw, std::string* out) const {
    if (raw) {
      redactor_.RedactHead(head, options_.payload_snippet_bytes, out);
    } else {
      out->assign(head);
    }
  }

  // Both halves of one request have the same base; the side tells them
  // apart.
  static uint64_t SeqBase(const Endpoint& client, const Endpoint& server, uint32_t seq) {
    return HashEndpoint(HashEndpoint(seq, client), server);
  }
  static uint64_t SeqKey(uint64_t base, Role side) {
    return Mix(base ^ (uint64_t{static_cast<uint8_t>(side)} << 56));
  }

  void LinkByTcpSeq(int32_t idx, uint64_t base) {
    const Node& n = nodes_[static_cast<size_t>(idx)];
    const NodeDetail& d = details_[static_cast<size_t>(idx)];
    const Role other = n.side == Role::kServer ? Role::kClient : Role::kServer;
    const int32_t peer = seq_index_.Find(SeqKey(base, other));
    if (peer != SlotIndex::kNone) {
      const NodeDetail& pd = details_[static_cast<size_t>(peer)];
      if (pd.client == d.client && pd.server == d.server && pd.tcp_seq == d.tcp_seq) {
        seq_index_.Remove(peer);
        if (n.side == Role::kServer) {
          TryLink(idx, peer, Link::kTcpSeq);
        } else {
          TryLink(peer, idx, Link::kTcpSeq);
        }
        return;
      }
    }
    // The newest span of a key is its entry: an older one with the same key
    // (a repeated request start) is not matched any more.
    const uint64_t key = SeqKey(base, n.side);
    const int32_t older = seq_index_.Find(key);
    if (older != SlotIndex::kNone) seq_index_.Remove(older);
    seq_index_.Insert(idx, key);
  }

  // The client spans waiting in list `which` under server span idx's key
  // (its thread, or its propagated trace) that ran inside it become its
  // children.
  void Adopt(int32_t idx, int which, Link how) {
    const Node& server = nodes_[static_cast<size_t>(idx)];
    const uint64_t key =
        which == kThreadList ? ThreadKey(server.tgid, server.tid) : server.correlation;
    lists_[which].ForEach(key, [&](int32_t c) {
      Node& cn = nodes_[static_cast<size_t>(c)];
      // Headers win: a different propagated trace is another request, even
      // on the same thread (event loops serve many at once).
      const bool other_trace = how == Link::kThread && cn.correlation != 0 &&
                               server.correlation != 0 && cn.correlation != server.correlation;
      if (!other_trace && cn.start_ns >= server.start_ns && cn.end_ns <= server.end_ns) {
        if (cn.parent == kNil) TryLink(c, idx, how);
        lists_[kThreadList].Remove(c);
        lists_[kCorrelationList].Remove(c);
      } else if (which == kThreadList && cn.end_ns < server.start_ns) {
        // Before this request began: later requests of the thread begin
        // later still, so nothing will adopt it by thread.
        lists_[kThreadList].Remove(c);
      }
    });
  }

  int32_t RootOf(int32_t idx) const {
    while (nodes_[static_cast<size_t>(idx)].parent != kNil) {
      idx = nodes_[static_cast<size_t>(idx)].parent;
    }
    return idx;
  }

  void TryLink(int32_t child, int32_t parent, Link how) {
    Node& c = nodes_[static_cast<size_t>(child)];
    if (c.parent != kNil) return;
    const int32_t root = RootOf(parent);
    if (root == child) return;  // would close a cycle
    Node& r = nodes_[static_cast<size_t>(root)];
    if (r.tree_size + c.tree_size > kMaxSpansPerTrace) return;
    Node& p = nodes_[static_cast<size_t>(parent)];
    c.parent = parent;
    c.next_sibling = p.first_child;
    p.first_child = child;
    c.link = how;
    r.tree_size += c.tree_size;
    r.activity_ns = std::max(r.activity_ns, c.activity_ns);
    Add(linked_[static_cast<size_t>(how)]);
  }

  // The slot `ahead` places after the head of the due ring (ahead is at
  // most its size): no division per span.
  size_t DueIndex(size_t ahead) const {
    const size_t i = due_head_ + ahead;
    return i >= due_.size() ? i - due_.size() : i;
  }

  void PushDue(int32_t idx, uint64_t due_ns) {
    // A table entry has at most one live due entry, so nodes_.size() slots
    // hold the live ones; but the spans of a tree decided early (ForceOne)
    // leave their entries behind until they reach the head, and those can
    // fill the ring. Then they go: they are skipped when popped anyway.
    if (due_size_ == due_.size()) {
      DropStaleDue();
      ++due_compactions_;
    }
    due_[DueIndex(due_size_)] = Due{idx, nodes_[static_cast<size_t>(idx)].gen, due_ns};
    ++due_size_;
  }

  // Keeps the live entries of the due ring, in order, from slot 0.
  void DropStaleDue() {
    size_t kept = 0;
    for (size_t i = 0; i < due_size_; ++i) {
      const Due d = due_[DueIndex(i)];
      if (Live(d)) due_scratch_.push_back(d);
    }
    for (const Due& d : due_scratch_) due_[kept++] = d;
    due_scratch_.clear();
    due_head_ = 0;
    due_size_ = kept;
  }

  bool PopDue(Due* d) {
    if (due_size_ == 0) return false;
    *d = due_[due_head_];
    due_head_ = DueIndex(1);
    --due_size_;
    return true;
  }

  bool Live(const Due& d) const {
    const Node& n = nodes_[static_cast<size_t>(d.node)];
    return n.used && n.gen == d.gen;
  }

  void DecideDue() {
    while (due_size_ > 0 && due_[due_head_].due_ns <= now_ns_) {
      Due d;
      PopDue(&d);
      if (!Live(d)) continue;
      Node& n = nodes_[static_cast<size_t>(d.node)];
      if (n.parent != kNil) continue;  // its root's entry decides it
      if (n.activity_ns + options_.assembly_wait_ns > now_ns_) {
        PushDue(d.node, n.activity_ns + options_.assembly_wait_ns);
        continue;
      }
      Finalize(d.node);
    }
  }

  // The table is full: decide the tree of the oldest entry now.
  void ForceOne() {
    Due d;
    while (PopDue(&d)) {
      if (!Live(d)) continue;
      const int32_t root = RootOf(d.node);
      nodes_[static_cast<size_t>(root)].forced = true;
      Add(forced_);
      Finalize(root);
      return;
    }
    // Unreachable while every live root has an entry; never loop forever.
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].used && nodes_[i].parent == kNil) {
        Finalize(static_cast<int32_t>(i));
        return;
      }
    }
  }

  void Finalize(int32_t root) {
    // Breadth first, children by start time: parents precede children.
    tree_.clear();
    tree_.push_back(root);
    for (size_t i = 0; i < tree_.size(); ++i) {
      const size_t first = tree_.size();
      for (int32_t c = nodes_[static_cast<size_t>(tree_[i])].first_child; c != kNil;
           c = nodes_[static_cast<size_t>(c)].next_sibling) {
        tree_.push_back(c);
      }
      std::sort(tree_.begin() + static_cast<ptrdiff_t>(first), tree_.end(),
                [this](int32_t a, int32_t b) {
                  return nodes_[static_cast<size_t>(a)].start_ns <
                         nodes_[static_cast<size_t>(b)].start_ns;
                });
    }
    Add(assembled_);
    bool propagated = false;
    const TraceId id = PickTraceId(&propagated);
    const int reason = Decide(root, id, propagated);
    if (reason < kReasons) {
      Add(sampled_[reason]);
      if (limiter_.Allow(now_ns_)) {
        Keep(root, id, reason);
      } else {
        Add(rate_limited_);
      }
    }
    for (int32_t i : tree_) Free(i);
    pending_.store(nodes_.size() - free_.size(), std::memory_order_relaxed);
  }

  // A trace header anywhere in the tree (nearest the root first), else a
  // request id, else a new id (*propagated false).
  TraceId PickTraceId(bool* propagated) {
    *propagated = true;
    for (Propagation want : {Propagation::kW3c, Propagation::kRequestId}) {
      for (int32_t i : tree_) {
        const Propagation p = nodes_[static_cast<size_t>(i)].propagation;
        if (p == Propagation::kNone) continue;
        if ((want == Propagation::kRequestId) == (p == Propagation::kRequestId)) {
          return details_[static_cast<size_t>(i)].header_trace_id;
        }
      }
    }
    *propagated = false;
    return TraceId{NextId(), NextId()};
  }

  int Decide(int32_t root, const TraceId& id, bool propagated) {
    for (int32_t i : tree_) {
      if (nodes_[static_cast<size_t>(i)].status >= 500) return kError;
    }
    const Node& r = nodes_[static_cast<size_t>(root)];
    if (Slow(r.duration_ns())) return kSlow;
    if (options_.keep_slower_than_route_p99) {
      for (int32_t i : tree_) {
        const Node& n = nodes_[static_cast<size_t>(i)];
        const uint64_t p99 = latency_.P99(n.route);
        if (p99 > 0 && n.duration_ns() > p99) return kRouteP99;
      }
    }
    // Nodes that see the same propagated trace id make the same choice; a
    // tree without one draws from its root's span id (a random number).
    const double u =
        Draw(propagated ? id : SpanDraw(details_[static_cast<size_t>(root)].span_id));
    if (u < options_.sample_ratio) return kRatio;
    return kReasons;
  }

  void Keep(int32_t root, const TraceId& id, int reason) {
    Trace t;
    t.id = id;
    t.unix_offset_ns = options_.unix_offset_ns;
    t.keep_reason = kReasonNames[reason];
    Warnings(root, &t.warnings, t.partial);
    t.spans.reserve(tree_.size());
    for (int32_t i : tree_) t.spans.push_back(Export(i));
    const std::string hex = id.Hex();
    for (const TraceSpan& s : t.spans) RecordExemplar(s, hex);
    ring_.Insert(std::move(t));
  }

  void RecordExemplar(const TraceSpan& s, const std::string& trace_hex) {
    if (options_.exemplar_buckets.empty()) return;
    const bool server = s.side == Role::kServer;
    labels_.clear();
    labels_.push_back(s.service);
    labels_.emplace_back(MethodLabel(s.method));
    labels_.push_back(s.status > 0 ? std::to_string(s.status) : std::string());
    labels_.push_back(s.route);
    if (!server) {
      labels_.push_back(s.server.addr.ToString());
      labels_.push_back(std::to_string(s.server.port));
    }
    const double unix_seconds =
        static_cast<double>(static_cast<int64_t>(s.end_ns) + options_.unix_offset_ns) / 1e9;
    exemplars_.Record(server ? "http_server_request_duration_seconds"
                             : "http_client_request_duration_seconds",
                      labels_, static_cast<double>(s.duration_ns()) / 1e9, trace_hex,
                      unix_seconds);
  }

  // Sets `partial` when spans may be missing; missing heads alone are only
  // a warning: the tree itself is complete.
  void Warnings(int32_t root, std::vector<std::string>* out, bool& partial) const {
    const Node& r = nodes_[static_cast<size_t>(root)];
    const NodeDetail& d = details_[static_cast<size_t>(root)];
    if (r.side == Role::kClient) {
      out->push_back(absl::StrCat(
          "root is a client span: no server request of ", std::string(d.text.Get(kService)),
          " thread ", r.tid,
          " was observed around it. Either the caller is a client program, or the request "
          "it serves is handled on another thread (thread pool, async runtime, queue), "
          "which thread linking cannot follow; then the server side is a separate trace."));
    } else if (d.header_parent_id != 0) {
      out->push_back(absl::StrCat("parent span ", SpanIdHex(d.header_parent_id), " (from the ",
                                  std::string(PropagationName(r.propagation)),
                                  " header) was not observed on this node"));
    } else {
      out->push_back(absl::StrCat("the caller ", Trace::EndpointString(d.client),
                                  " was not observed on this node (another node, an untraced "
                                  "process, or a request sent before redmap started)"));
    }
    if (last_skip_ns_ != 0 && last_skip_ns_ >= r.start_ns) {
      out->push_back(
          "assembled while traces.max_spans_per_second was reached: spans of this request "
          "may have been skipped (redmap_trace_spans_skipped_total)");
      partial = true;
    }
    if (r.forced) {
      out->push_back(
          "decided before its assembly wait ended (traces.max_pending_spans was full): "
          "spans that completed later are in another trace");
    }
    if (r.tree_size >= kMaxSpansPerTrace) {
      out->push_back(absl::StrCat("more than ", kMaxSpansPerTrace,
                                  " spans: later ones were left to other traces"));
    }
    partial = !out->empty();
    if (options_.payload_snippet_bytes > 0) {
      size_t without = 0;
      for (int32_t i : tree_) without += details_[static_cast<size_t>(i)].heads ? 0 : 1;
      if (without > 0) {
        out->push_back(absl::StrCat(
            "no request/response heads for ", without, " of its ", tree_.size(),
            " spans: heads are copied only for spans that would keep their tree on their "
            "own as they arrive (error, slow, over their route's p99, or drawn by "
            "traces.sample_ratio)"));
      }
    }
  }

  void Free(int32_t idx) {
    Node& n = nodes_[static_cast<size_t>(idx)];
    seq_index_.Remove(idx);
    lists_[kThreadList].Remove(idx);
    lists_[kCorrelationList].Remove(idx);
    n.used = false;
    ++n.gen;
    free_.push_back(idx);
  }

  const TraceOptions options_;
  TraceServiceNameResolver resolver_;
  const std::shared_ptr<RouteCache> routes_cache_;  // source thread only
  const Redactor redactor_;
  TraceRing ring_;
  ExemplarStore exemplars_;
  RateLimiter limiter_;
  RouteLatency latency_;

  // Source thread only.
  std::vector<Node> nodes_;
  std::vector<NodeDetail> details_;  // by node index
  std::vector<int32_t> free_;
  // Spans by (endpoints, stream position, side), waiting for their other
  // half; client spans by thread and by propagated trace, waiting for the
  // server span they were made for.
  SlotIndex seq_index_;
  std::array<SlotIndex, 2> lists_;
  std::vector<Due> due_;
  std::vector<Due> due_scratch_;  // DropStaleDue only
  uint64_t due_compactions_ = 0;
  size_t due_head_ = 0;
  size_t due_size_ = 0;
  uint64_t now_ns_ = 0;
  uint64_t last_expire_ns_ = 0;
  static constexpr uint64_t kBudgetWindowNs = 100ull * 1000 * 1000;
  uint64_t budget_per_window_ = 0;  // traces.max_spans_per_second / 10; 0: no limit
  uint64_t budget_window_ = ~uint64_t{0};
  uint64_t budget_used_ = 0;
  uint64_t last_skip_ns_ = 0;  // span clock of the latest skip (0: none)
  uint64_t rng_ = 0;
  std::vector<int32_t> tree_;
  std::vector<std::string> labels_;

  // Read by Collect.
  std::atomic<uint64_t> assembled_{0};
  std::array<std::atomic<uint64_t>, kReasons> sampled_{};
  std::array<std::atomic<uint64_t>, 4> linked_{};
  std::atomic<uint64_t> rate_limited_{0};
  std::atomic<uint64_t> forced_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> spans_assembled_{0};
  std::atomic<size_t> pending_{0};
  std::atomic<size_t> routes_{0};
};

TraceSampler::TraceSampler(const TraceOptions& options, TraceServiceNameResolver resolver,
                           std::shared_ptr<RouteCache> routes)
    : impl_(std::make_unique<Impl>(options, std::move(resolver), std::move(routes))) {}
TraceSampler::~TraceSampler() = default;
void TraceSampler::OnSpan(const Span& span) { impl_->OnSpan(span); }
void TraceSampler::Tick(uint64_t now_ns) { impl_->Tick(now_ns); }
void TraceSampler::Flush() { impl_->Flush(); }
std::vector<prometheus::MetricFamily> TraceSampler::Collect() const { return impl_->Collect(); }
TraceRing& TraceSampler::ring() { return impl_->ring(); }
ExemplarStore& TraceSampler::exemplars() { return impl_->exemplars(); }
size_t TraceSampler::pending_spans() const { return impl_->pending(); }
uint64_t TraceSampler::due_compactions() const { return impl_->due_compactions(); }

}  // namespace redmap::traces
