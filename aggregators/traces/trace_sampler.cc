#include "aggregators/traces/trace_sampler.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "aggregators/red/red_aggregator.h"
#include "aggregators/red/route_normalizer.h"
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
class RouteLatency {
 public:
  static constexpr size_t kBuckets = 64;
  static constexpr uint64_t kWindowNs = 60ull * 1000 * 1000 * 1000;

  RouteLatency() {
    double edge = 10000;  // ns
    for (size_t i = 0; i < kBuckets; ++i, edge *= 1.25) edges_[i] = static_cast<uint64_t>(edge);
    edges_[kBuckets - 1] = UINT64_MAX;
  }

  void Observe(uint64_t key, uint64_t duration_ns, uint64_t now_ns) {
    auto it = routes_.find(key);
    if (it == routes_.end()) {
      if (routes_.size() >= kMaxLatencyRoutes) return;
      it = routes_.emplace(key, Window{}).first;
      it->second.start_ns = now_ns;
    }
    Window& w = it->second;
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
    }
    const size_t b = static_cast<size_t>(
        std::lower_bound(edges_.begin(), edges_.end(), duration_ns) - edges_.begin());
    ++w.current[std::min(b, kBuckets - 1)];
    ++w.current_n;
  }

  // The upper edge of the bucket holding the 99th percentile; 0 when the
  // route has too few observations to say.
  uint64_t P99(uint64_t key) const {
    auto it = routes_.find(key);
    if (it == routes_.end()) return 0;
    const Window& w = it->second;
    const uint64_t n = w.current_n + w.previous_n;
    if (n < kMinRouteSamples) return 0;
    const uint64_t rank = (n * 99 + 99) / 100;  // ceil(0.99 n)
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      cumulative += w.current[i] + w.previous[i];
      if (cumulative >= rank) return edges_[i];
    }
    return edges_[kBuckets - 1];
  }

  void Expire(uint64_t now_ns) {
    absl::erase_if(routes_, [now_ns](const auto& kv) {
      return now_ns >= kv.second.start_ns + 2 * kWindowNs;
    });
  }

  size_t size() const { return routes_.size(); }

 private:
  struct Window {
    std::array<uint32_t, kBuckets> current{};
    std::array<uint32_t, kBuckets> previous{};
    uint64_t current_n = 0;
    uint64_t previous_n = 0;
    uint64_t start_ns = 0;
  };
  std::array<uint64_t, kBuckets> edges_{};
  absl::flat_hash_map<uint64_t, Window> routes_;
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

struct Node {
  TraceSpan span;
  int32_t parent = kNil;
  int32_t first_child = kNil;
  int32_t next_sibling = kNil;
  uint32_t tree_size = 1;    // at roots: spans in the tree
  uint64_t activity_ns = 0;  // at roots: the newest end in the tree
  uint32_t gen = 0;
  bool used = false;
  bool forced = false;
  bool seq_indexed = false;
  uint64_t seq_key = 0;
  uint64_t route_key = 0;
  uint64_t correlation = 0;  // hash of (tgid, propagated trace id); 0: none
  // Intrusive lists of client spans waiting for their server span.
  std::array<int32_t, 2> prev{kNil, kNil};
  std::array<int32_t, 2> next{kNil, kNil};
  std::array<uint64_t, 2> list_key{0, 0};
  std::array<bool, 2> listed{false, false};
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

}  // namespace

class TraceSampler::Impl {
 public:
  Impl(const TraceOptions& o, TraceServiceNameResolver resolver)
      : options_(o),
        resolver_(std::move(resolver)),
        redactor_(o.redact_headers, o.redact_query_params),
        ring_(o.ring_max_bytes, o.ring_max_traces),
        exemplars_(o.exemplar_buckets, o.exemplar_max_series),
        limiter_(o.max_traces_per_second),
        nodes_(std::max<size_t>(o.max_pending_spans, 1)),
        due_(nodes_.size()) {
    free_.reserve(nodes_.size());
    for (size_t i = nodes_.size(); i > 0; --i) free_.push_back(static_cast<int32_t>(i - 1));
    rng_ = o.random_seed != 0 ? o.random_seed
                              : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  }

  void OnSpan(const Span& span) {
    if (span.side != Role::kServer && span.side != Role::kClient) return;
    if (span.end_ns < span.start_ns) return;
    now_ns_ = std::max(now_ns_, span.end_ns);
    DecideDue();
    while (free_.empty()) ForceOne();
    const int32_t idx = free_.back();
    free_.pop_back();
    Node& n = nodes_[static_cast<size_t>(idx)];
    Fill(span, &n);
    n.used = true;
    n.forced = false;
    n.parent = n.first_child = n.next_sibling = kNil;
    n.tree_size = 1;
    n.activity_ns = span.end_ns;
    pending_.store(nodes_.size() - free_.size(), std::memory_order_relaxed);
    if (options_.keep_slower_than_route_p99) {
      latency_.Observe(n.route_key, n.span.duration_ns(), span.end_ns);
    }
    LinkByTcpSeq(idx);
    if (n.span.side == Role::kClient) {
      // Waits for the server request it was made for, if any.
      ListPush(idx, kThreadList, ThreadKey(n.span.tgid, n.span.tid));
      if (n.correlation != 0) ListPush(idx, kCorrelationList, n.correlation);
    } else {
      Adopt(idx, kThreadList, ThreadKey(n.span.tgid, n.span.tid), Link::kThread);
      if (n.correlation != 0) Adopt(idx, kCorrelationList, n.correlation, Link::kHeader);
    }
    PushDue(idx, span.end_ns + options_.assembly_wait_ns);
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

  void Fill(const Span& span, Node* n) {
    TraceSpan& s = n->span;
    s.span_id = NextId();
    s.parent_id = 0;
    s.link = Link::kNone;
    s.protocol = span.protocol;
    s.side = span.side;
    s.start_ns = span.start_ns;
    s.end_ns = span.end_ns;
    s.tgid = span.conn.tgid;
    s.tid = span.tid;
    s.cgroup_id = span.cgroup_id;
    s.service = resolver_(span);
    s.process.assign(span.process_name);
    s.method.assign(span.http.method);
    // Redacted before it is kept anywhere: the only copies are these.
    s.target.clear();
    redactor_.RedactTarget(span.http.target, &s.target);
    NormalizeRoute(span.http.target, &s.route);
    s.status = span.http.status;
    s.request_bytes = span.http.request_bytes;
    s.response_bytes = span.http.response_bytes;
    s.client = span.client;
    s.server = span.server;
    s.tcp_seq = span.request_tcp_seq;
    s.has_tcp_seq = span.has_tcp_seq;
    s.request_head.clear();
    s.response_head.clear();
    if (options_.payload_snippet_bytes > 0) {
      redactor_.RedactHead(span.request_head, options_.payload_snippet_bytes, &s.request_head);
      redactor_.RedactHead(span.response_head, options_.payload_snippet_bytes, &s.response_head);
    }
    const PropagatedContext ctx = ExtractContext(span.request_head);
    s.propagation = ctx.format;
    s.header_trace_id = ctx.trace_id;
    s.header_parent_id = ctx.parent_span_id;
    s.request_id.assign(ctx.request_id);
    n->correlation =
        ctx.format == Propagation::kNone
            ? 0
            : absl::Hash<std::tuple<uint32_t, uint64_t, uint64_t>>()(
                  std::make_tuple(s.tgid, s.header_trace_id.hi, s.header_trace_id.lo)) | 1;
    n->route_key = absl::Hash<std::tuple<std::string_view, uint8_t, std::string_view,
                                         std::string_view>>()(std::make_tuple(
        std::string_view(s.service), static_cast<uint8_t>(s.side), std::string_view(s.method),
        std::string_view(s.route)));
  }

  static uint64_t SeqKey(const TraceSpan& s, Role side) {
    return absl::Hash<std::tuple<Endpoint, Endpoint, uint32_t, uint8_t>>()(
        std::make_tuple(s.client, s.server, s.tcp_seq, static_cast<uint8_t>(side)));
  }

  void LinkByTcpSeq(int32_t idx) {
    Node& n = nodes_[static_cast<size_t>(idx)];
    if (!n.span.has_tcp_seq) return;
    const Role other = n.span.side == Role::kServer ? Role::kClient : Role::kServer;
    auto it = seq_index_.find(SeqKey(n.span, other));
    if (it != seq_index_.end()) {
      const int32_t peer = it->second;
      Node& p = nodes_[static_cast<size_t>(peer)];
      if (p.span.client == n.span.client && p.span.server == n.span.server &&
          p.span.tcp_seq == n.span.tcp_seq) {
        seq_index_.erase(it);
        p.seq_indexed = false;
        if (n.span.side == Role::kServer) {
          TryLink(idx, peer, Link::kTcpSeq);
        } else {
          TryLink(peer, idx, Link::kTcpSeq);
        }
        return;
      }
    }
    n.seq_key = SeqKey(n.span, n.span.side);
    seq_index_[n.seq_key] = idx;
    n.seq_indexed = true;
  }

  // The client spans waiting in list `which` under `key` that ran inside
  // server span idx become its children.
  void Adopt(int32_t idx, int which, uint64_t key, Link how) {
    auto it = list_heads_[which].find(key);
    if (it == list_heads_[which].end()) return;
    const TraceSpan& server = nodes_[static_cast<size_t>(idx)].span;
    const uint64_t correlation = nodes_[static_cast<size_t>(idx)].correlation;
    int32_t c = it->second;
    while (c != kNil) {
      Node& cn = nodes_[static_cast<size_t>(c)];
      const int32_t next = cn.next[which];
      // Headers win: a different propagated trace is another request, even
      // on the same thread (event loops serve many at once).
      const bool other_trace = how == Link::kThread && cn.correlation != 0 && correlation != 0 &&
                               cn.correlation != correlation;
      if (!other_trace && cn.span.start_ns >= server.start_ns && cn.span.end_ns <= server.end_ns) {
        if (cn.parent == kNil) TryLink(c, idx, how);
        ListRemove(c, kThreadList);
        ListRemove(c, kCorrelationList);
      } else if (which == kThreadList && cn.span.end_ns < server.start_ns) {
        // Before this request began: later requests of the thread begin
        // later still, so nothing will adopt it by thread.
        ListRemove(c, kThreadList);
      }
      c = next;
    }
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
    c.span.link = how;
    r.tree_size += c.tree_size;
    r.activity_ns = std::max(r.activity_ns, c.activity_ns);
    Add(linked_[static_cast<size_t>(how)]);
  }

  void ListPush(int32_t idx, int which, uint64_t key) {
    Node& n = nodes_[static_cast<size_t>(idx)];
    auto [it, inserted] = list_heads_[which].try_emplace(key, kNil);
    n.prev[which] = kNil;
    n.next[which] = it->second;
    if (it->second != kNil) nodes_[static_cast<size_t>(it->second)].prev[which] = idx;
    it->second = idx;
    n.list_key[which] = key;
    n.listed[which] = true;
  }

  void ListRemove(int32_t idx, int which) {
    Node& n = nodes_[static_cast<size_t>(idx)];
    if (!n.listed[which]) return;
    if (n.prev[which] != kNil) {
      nodes_[static_cast<size_t>(n.prev[which])].next[which] = n.next[which];
    } else {
      auto it = list_heads_[which].find(n.list_key[which]);
      if (n.next[which] == kNil) {
        list_heads_[which].erase(it);
      } else {
        it->second = n.next[which];
      }
    }
    if (n.next[which] != kNil) nodes_[static_cast<size_t>(n.next[which])].prev[which] = n.prev[which];
    n.prev[which] = n.next[which] = kNil;
    n.listed[which] = false;
  }

  void PushDue(int32_t idx, uint64_t due_ns) {
    // Every live root has exactly one entry, so nodes_.size() slots suffice.
    due_[(due_head_ + due_size_) % due_.size()] =
        Due{idx, nodes_[static_cast<size_t>(idx)].gen, due_ns};
    ++due_size_;
  }

  bool PopDue(Due* d) {
    if (due_size_ == 0) return false;
    *d = due_[due_head_];
    due_head_ = (due_head_ + 1) % due_.size();
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
                  return nodes_[static_cast<size_t>(a)].span.start_ns <
                         nodes_[static_cast<size_t>(b)].span.start_ns;
                });
    }
    Add(assembled_);
    const Node& r = nodes_[static_cast<size_t>(root)];
    TraceId id = PickTraceId();
    int reason = Decide(r, id);
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

  TraceId PickTraceId() {
    // A trace header anywhere in the tree (nearest the root first), else a
    // request id, else a new id.
    for (Propagation want : {Propagation::kW3c, Propagation::kRequestId}) {
      for (int32_t i : tree_) {
        const TraceSpan& s = nodes_[static_cast<size_t>(i)].span;
        if (s.propagation == Propagation::kNone) continue;
        if ((want == Propagation::kRequestId) == (s.propagation == Propagation::kRequestId)) {
          return s.header_trace_id;
        }
      }
    }
    return TraceId{NextId(), NextId()};
  }

  int Decide(const Node& root, const TraceId& id) {
    for (int32_t i : tree_) {
      if (nodes_[static_cast<size_t>(i)].span.error()) return kError;
    }
    if (options_.slow_threshold_ns > 0 && root.span.duration_ns() >= options_.slow_threshold_ns) {
      return kSlow;
    }
    if (options_.keep_slower_than_route_p99) {
      for (int32_t i : tree_) {
        const Node& n = nodes_[static_cast<size_t>(i)];
        const uint64_t p99 = latency_.P99(n.route_key);
        if (p99 > 0 && n.span.duration_ns() > p99) return kRouteP99;
      }
    }
    // Uniform in [0, 1) from the trace id: nodes that see the same
    // propagated trace id make the same choice.
    const double u = static_cast<double>(Mix(id.hi ^ Mix(id.lo)) >> 11) * 0x1.0p-53;
    if (u < options_.sample_ratio) return kRatio;
    return kReasons;
  }

  void Keep(int32_t root, const TraceId& id, int reason) {
    Trace t;
    t.id = id;
    t.unix_offset_ns = options_.unix_offset_ns;
    t.keep_reason = kReasonNames[reason];
    Warnings(root, &t.warnings);
    t.spans.reserve(tree_.size());
    for (int32_t i : tree_) {
      Node& n = nodes_[static_cast<size_t>(i)];
      TraceSpan s = std::move(n.span);
      s.parent_id =
          n.parent == kNil ? 0 : nodes_[static_cast<size_t>(n.parent)].span.span_id;
      // The parent's span_id is read after its move: ids are not strings,
      // a moved-from TraceSpan keeps them.
      t.spans.push_back(std::move(s));
    }
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

  void Warnings(int32_t root, std::vector<std::string>* out) const {
    const Node& r = nodes_[static_cast<size_t>(root)];
    const TraceSpan& s = r.span;
    if (s.side == Role::kClient) {
      out->push_back(absl::StrCat(
          "root is a client span: no server request of ", s.service, " thread ", s.tid,
          " was observed around it. Either the caller is a client program, or the request "
          "it serves is handled on another thread (thread pool, async runtime, queue), "
          "which thread linking cannot follow; then the server side is a separate trace."));
    } else if (s.header_parent_id != 0) {
      out->push_back(absl::StrCat("parent span ", SpanIdHex(s.header_parent_id), " (from the ",
                                  std::string(PropagationName(s.propagation)),
                                  " header) was not observed on this node"));
    } else {
      out->push_back(absl::StrCat("the caller ", Trace::EndpointString(s.client),
                                  " was not observed on this node (another node, an untraced "
                                  "process, or a request sent before redmap started)"));
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
  }

  void Free(int32_t idx) {
    Node& n = nodes_[static_cast<size_t>(idx)];
    if (n.seq_indexed) {
      auto it = seq_index_.find(n.seq_key);
      if (it != seq_index_.end() && it->second == idx) seq_index_.erase(it);
      n.seq_indexed = false;
    }
    ListRemove(idx, kThreadList);
    ListRemove(idx, kCorrelationList);
    n.used = false;
    ++n.gen;
    free_.push_back(idx);
  }

  const TraceOptions options_;
  TraceServiceNameResolver resolver_;
  const Redactor redactor_;
  TraceRing ring_;
  ExemplarStore exemplars_;
  RateLimiter limiter_;
  RouteLatency latency_;

  // Source thread only.
  std::vector<Node> nodes_;
  std::vector<int32_t> free_;
  absl::flat_hash_map<uint64_t, int32_t> seq_index_;
  std::array<absl::flat_hash_map<uint64_t, int32_t>, 2> list_heads_;
  std::vector<Due> due_;
  size_t due_head_ = 0;
  size_t due_size_ = 0;
  uint64_t now_ns_ = 0;
  uint64_t last_expire_ns_ = 0;
  uint64_t rng_ = 0;
  std::vector<int32_t> tree_;
  std::vector<std::string> labels_;

  // Read by Collect.
  std::atomic<uint64_t> assembled_{0};
  std::array<std::atomic<uint64_t>, kReasons> sampled_{};
  std::array<std::atomic<uint64_t>, 4> linked_{};
  std::atomic<uint64_t> rate_limited_{0};
  std::atomic<uint64_t> forced_{0};
  std::atomic<size_t> pending_{0};
  std::atomic<size_t> routes_{0};
};

TraceSampler::TraceSampler(const TraceOptions& options, TraceServiceNameResolver resolver)
    : impl_(std::make_unique<Impl>(options, std::move(resolver))) {}
TraceSampler::~TraceSampler() = default;
void TraceSampler::OnSpan(const Span& span) { impl_->OnSpan(span); }
void TraceSampler::Tick(uint64_t now_ns) { impl_->Tick(now_ns); }
void TraceSampler::Flush() { impl_->Flush(); }
std::vector<prometheus::MetricFamily> TraceSampler::Collect() const { return impl_->Collect(); }
TraceRing& TraceSampler::ring() { return impl_->ring(); }
ExemplarStore& TraceSampler::exemplars() { return impl_->exemplars(); }
size_t TraceSampler::pending_spans() const { return impl_->pending(); }

}  // namespace redmap::traces
