#include "aggregators/servicemap/service_graph.h"

#include <algorithm>
#include <array>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/synchronization/mutex.h"

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr char kOverflow[] = "__overflow__";
constexpr char kVirtualNode[] = "virtual_node";
constexpr const char* kLabelNames[] = {"client",
                                       "server",
                                       "client_service_namespace",
                                       "server_service_namespace",
                                       "connection_type",
                                       "k8s_node_name"};
constexpr size_t kNumLabels = std::size(kLabelNames);
enum LabelIndex : size_t { kClient, kServer, kClientNamespace, kServerNamespace, kConnectionType };

struct EdgeKey {
  std::string client;
  std::string server;
  std::string connection_type;
  std::string client_ns;
  std::string server_ns;
  friend bool operator==(const EdgeKey&, const EdgeKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const EdgeKey& k) {
    return H::combine(std::move(h), k.client, k.server, k.connection_type, k.client_ns,
                      k.server_ns);
  }
};

struct Histogram {
  std::vector<uint64_t> buckets;  // per bucket; last is +Inf
  double sum = 0;
  uint64_t count = 0;
};

struct EdgeStats {
  uint64_t updated_ns = 0;
  uint64_t requests = 0;
  uint64_t failed = 0;
  Histogram server;
  Histogram client;
};

}  // namespace

std::vector<std::string> ServiceGraphLabelNames() {
  return std::vector<std::string>(std::begin(kLabelNames), std::end(kLabelNames));
}

class ServiceGraphAggregator::Impl {
 public:
  using Names = absl::flat_hash_map<Endpoint, IdentityPtr>;

  Impl(const ServiceGraphOptions& options, LocalIdentityFn local, RemoteIdentityFn remote,
       const PeerNames* peers)
      : options_(options), local_(std::move(local)), remote_(std::move(remote)), peers_(peers) {
    for (size_t i = kServiceGraphEdgeLabels; i < kNumLabels; ++i) {
      drop_[i] = std::find(options.drop_labels.begin(), options.drop_labels.end(),
                           kLabelNames[i]) != options.drop_labels.end();
    }
  }

  // The far end of a span that no span of this node has named (see the
  // header for the order). Called without mu_: it asks the identity cache
  // and the TCP aggregator.
  IdentityPtr Unseen(const Endpoint& ep, bool client_end, uint64_t now_ns, bool* observed) const {
    *observed = true;
    IdentityPtr remote = remote_ ? remote_(ep.addr, now_ns) : nullptr;
    if (remote && remote->in_cluster()) return remote;
    if (peers_ != nullptr) {
      if (IdentityPtr p = client_end ? peers_->ClientAt(ep) : peers_->ServerAt(ep)) return p;
    }
    *observed = false;
    return remote ? remote : NamedIdentity(ep.addr.ToString());
  }

  void OnSpan(const Span& span) {
    if (span.end_ns < span.start_ns) return;
    if (span.side != Role::kServer && span.side != Role::kClient) return;
    const bool server_side = span.side == Role::kServer;
    IdentityPtr local = local_(span);
    // The far end: usually named by an earlier span of this node, looked up
    // under the lock the edge is updated under (one lock per span). A server
    // this node answered requests for is observed, whether or not redmap saw
    // it listen (it may predate redmap): the server's span is emitted before
    // the client's (the response is written before it is read).
    const Endpoint& far_ep = server_side ? span.client : span.server;
    {
      absl::MutexLock l(&mu_);
      const Names& seen = server_side ? clients_ : servers_;
      if (auto it = seen.find(far_ep); it != seen.end()) {
        Record(span, std::move(local), it->second, /*observed=*/true);
        return;
      }
    }
    bool observed;
    IdentityPtr far = Unseen(far_ep, /*client_end=*/server_side, span.end_ns, &observed);
    absl::MutexLock l(&mu_);
    Record(span, std::move(local), std::move(far), observed);
  }

  // Records the span on its edge; `far` is the end the span's side did not
  // observe itself.
  void Record(const Span& span, IdentityPtr local, IdentityPtr far, bool observed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool server_side = span.side == Role::kServer;
    IdentityPtr client = server_side ? std::move(far) : std::move(local);
    IdentityPtr server = server_side ? std::move(local) : std::move(far);
    const double seconds = static_cast<double>(span.end_ns - span.start_ns) / 1e9;
    const bool failed = span.http.status >= 500;
    // Server spans always count; a client span counts only when its server
    // is not observed (the server's own node counts it otherwise).
    const bool count = server_side || !observed;
    if (server_side) {
      Remember(servers_, span.server, server);
    } else {
      Remember(clients_, span.client, client);
    }

    // The edge follows from (client, server, side, observed) alone: a memo
    // of the last edge per combination skips building and hashing its key.
    // Its pointer is good while the generation (bumped whenever edges_ may
    // have moved) is the same.
    MemoEntry& m = memo_[MemoSlot(client.get(), server.get(), server_side, observed)];
    EdgeStats* s;
    if (m.client == client && m.server == server && m.server_side == server_side &&
        m.observed == observed && m.generation == generation_) {
      if (m.self_edge) return;  // no self-edges
      if (m.overflow) ++overflowed_;
      s = m.stats;
      s->updated_ns = std::max(s->updated_ns, span.end_ns);
    } else {
      EdgeKey key;
      const bool self_edge = BuildKey(*client, *server, observed, &key);
      bool overflow = false;
      s = self_edge ? nullptr : &Edge(std::move(key), span.end_ns, &overflow);
      m = MemoEntry{.client = std::move(client),
                    .server = std::move(server),
                    .server_side = server_side,
                    .observed = observed,
                    .self_edge = self_edge,
                    .overflow = overflow,
                    .generation = generation_,
                    .stats = s};
      if (self_edge) return;  // no self-edges
    }
    if (count) {
      ++s->requests;
      if (failed) ++s->failed;
    }
    Observe(server_side ? s->server : s->client, seconds);
  }

  void Expire(uint64_t now_ns) {
    absl::MutexLock l(&mu_);
    for (auto it = edges_.begin(); it != edges_.end();) {
      if (now_ns > it->second.updated_ns && now_ns - it->second.updated_ns > options_.series_ttl_ns) {
        edges_.erase(it++);
        ++generation_;  // memo entries may point at it
      } else {
        ++it;
      }
    }
  }

  size_t edges() const {
    absl::MutexLock l(&mu_);
    return edges_.size();
  }

  std::vector<MetricFamily> Collect() const {
    std::vector<std::pair<EdgeKey, EdgeStats>> snap;
    uint64_t overflowed;
    {
      absl::MutexLock l(&mu_);
      snap.assign(edges_.begin(), edges_.end());
      overflowed = overflowed_;
    }
    std::sort(snap.begin(), snap.end(), [](const auto& a, const auto& b) {
      return std::tie(a.first.client, a.first.server, a.first.connection_type, a.first.client_ns,
                      a.first.server_ns) < std::tie(b.first.client, b.first.server,
                                                    b.first.connection_type, b.first.client_ns,
                                                    b.first.server_ns);
    });
    auto family = [](const char* name, const char* help, MetricType type) {
      MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = type;
      return f;
    };
    MetricFamily total = family("traces_service_graph_request_total",
                                "Requests between two services, counted once, where the server is "
                                "observed (client side for an unobserved server).",
                                MetricType::Counter);
    MetricFamily failed = family("traces_service_graph_request_failed_total",
                                 "Requests of traces_service_graph_request_total that failed (5xx).",
                                 MetricType::Counter);
    MetricFamily server = family("traces_service_graph_request_server_seconds",
                                 "Request duration as the server measured it.",
                                 MetricType::Histogram);
    MetricFamily client = family("traces_service_graph_request_client_seconds",
                                 "Request duration as the client measured it.",
                                 MetricType::Histogram);
    for (const auto& [k, s] : snap) {
      auto labels = [&, &k = k] {
        const std::string* values[kNumLabels] = {&k.client,          &k.server,
                                                 &k.client_ns,       &k.server_ns,
                                                 &k.connection_type, &options_.node_name};
        std::vector<ClientMetric::Label> out;
        out.reserve(kNumLabels);
        for (size_t i = 0; i < kNumLabels; ++i) {
          if (!drop_[i]) out.push_back({kLabelNames[i], *values[i]});
        }
        return out;
      };
      if (s.requests > 0 || s.server.count > 0) {
        ClientMetric t;
        t.label = labels();
        t.counter.value = static_cast<double>(s.requests);
        total.metric.push_back(t);
        t.counter.value = static_cast<double>(s.failed);
        failed.metric.push_back(std::move(t));
      }
      if (s.server.count > 0) server.metric.push_back(HistogramMetric(labels(), s.server));
      if (s.client.count > 0) client.metric.push_back(HistogramMetric(labels(), s.client));
    }
    MetricFamily edges = family("redmap_service_graph_edges",
                                "Service-graph edges tracked now.", MetricType::Gauge);
    edges.metric.emplace_back().gauge.value = static_cast<double>(snap.size());
    MetricFamily limit = family("redmap_service_graph_edges_limit",
                                "Service-graph edge cap (service_graph.max_series).",
                                MetricType::Gauge);
    limit.metric.emplace_back().gauge.value = static_cast<double>(options_.max_series);
    MetricFamily overflow =
        family("redmap_service_graph_edges_overflow_total",
               "Spans that went to the __overflow__ edge because the edge cap was reached.",
               MetricType::Counter);
    overflow.metric.emplace_back().counter.value = static_cast<double>(overflowed);
    std::vector<MetricFamily> out;
    for (MetricFamily* f : {&total, &failed, &server, &client, &edges, &limit, &overflow}) {
      out.push_back(std::move(*f));
    }
    return out;
  }

 private:
  void Remember(Names& names, const Endpoint& ep, const IdentityPtr& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (names.size() >= kMaxEndpoints && !names.contains(ep)) names.clear();  // bounded
    auto [it, inserted] = names.try_emplace(ep, name);
    if (!inserted && it->second != name) it->second = name;
  }

  // The key's edge, made if new (the overflow edge at the cap: *overflow).
  EdgeStats& Edge(EdgeKey key, uint64_t ts_ns, bool* overflow) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = edges_.find(key);
    if (it == edges_.end()) {
      if (edges_.size() >= options_.max_series) {
        ++overflowed_;
        *overflow = true;
        key = EdgeKey{kOverflow, kOverflow, "", "", ""};
      }
      bool inserted;
      std::tie(it, inserted) = edges_.try_emplace(std::move(key));
      if (inserted) ++generation_;  // a rehash moves every edge
    }
    it->second.updated_ns = std::max(it->second.updated_ns, ts_ns);
    return it->second;
  }

  // The edge's labels; returns whether it is a self-edge (not recorded).
  bool BuildKey(const IdentityLabels& client, const IdentityLabels& server, bool observed,
                EdgeKey* key) const {
    key->client = client.name;
    key->client_ns = client.service_namespace;
    key->server = server.name;
    key->server_ns = server.service_namespace;
    if (key->client == key->server && key->client_ns == key->server_ns) return true;
    // Unobserved far ends are virtual nodes. A client span of an observed
    // server has only the client histogram, on the edge the server side
    // counts, which has no connection_type when both ends are known.
    if (!observed) key->connection_type = kVirtualNode;
    // Dropped labels: edges that differ only in them are one.
    if (drop_[kClientNamespace]) key->client_ns.clear();
    if (drop_[kServerNamespace]) key->server_ns.clear();
    if (drop_[kConnectionType]) key->connection_type.clear();
    return false;
  }

  static size_t MemoSlot(const void* client, const void* server, bool server_side, bool observed) {
    const uint64_t h = absl::HashOf(reinterpret_cast<uintptr_t>(client),
                                    reinterpret_cast<uintptr_t>(server), server_side, observed);
    return static_cast<size_t>(h) & (kMemoSlots - 1);
  }

  void Observe(Histogram& h, double v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const auto& bounds = options_.buckets;
    if (h.buckets.empty()) h.buckets.assign(bounds.size() + 1, 0);
    auto it = std::lower_bound(bounds.begin(), bounds.end(), v);  // le is inclusive
    h.buckets[static_cast<size_t>(it - bounds.begin())]++;
    h.sum += v;
    ++h.count;
  }

  ClientMetric HistogramMetric(std::vector<ClientMetric::Label> labels, const Histogram& h) const {
    ClientMetric m;
    m.label = std::move(labels);
    m.histogram.sample_count = h.count;
    m.histogram.sample_sum = h.sum;
    uint64_t cumulative = 0;
    const auto& bounds = options_.buckets;
    for (size_t b = 0; b <= bounds.size(); ++b) {
      cumulative += b < h.buckets.size() ? h.buckets[b] : 0;
      ClientMetric::Bucket bucket;
      bucket.cumulative_count = cumulative;
      bucket.upper_bound = b < bounds.size() ? bounds[b] : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(bucket);
    }
    return m;
  }

  static constexpr size_t kMaxEndpoints = 65536;

  const ServiceGraphOptions options_;
  const LocalIdentityFn local_;
  const RemoteIdentityFn remote_;
  const PeerNames* const peers_;
  std::array<bool, kNumLabels> drop_{};  // never client and server
  mutable absl::Mutex mu_;
  absl::flat_hash_map<EdgeKey, EdgeStats> edges_ ABSL_GUARDED_BY(mu_);
  // Endpoints seen in spans: the local server behind a listening address,
  // the local client behind a connection's client end.
  Names servers_ ABSL_GUARDED_BY(mu_);
  Names clients_ ABSL_GUARDED_BY(mu_);
  uint64_t overflowed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;  // memo entries start at 0: never current

  // (client, server, side, observed) -> edge, direct-mapped (source thread
  // only; the pointer is used under mu_ and only while generation_ is
  // unchanged). Bounded: kMemoSlots entries, each holding both identities so
  // that a pointer compare never matches a freed and reused one.
  static constexpr size_t kMemoSlots = 512;
  struct MemoEntry {
    IdentityPtr client;
    IdentityPtr server;
    bool server_side = false;
    bool observed = false;
    bool self_edge = false;
    bool overflow = false;  // the key went to the overflow edge
    uint64_t generation = 0;
    EdgeStats* stats = nullptr;
  };
  std::array<MemoEntry, kMemoSlots> memo_;
};

ServiceGraphAggregator::ServiceGraphAggregator(const ServiceGraphOptions& options,
                                               std::function<std::string(const Span&)> local_name,
                                               const PeerNames* peers)
    : impl_(std::make_unique<Impl>(
          options,
          [local_name = std::move(local_name)](const Span& s) {
            return NamedIdentity(local_name(s));
          },
          nullptr, peers)) {}
ServiceGraphAggregator::ServiceGraphAggregator(const ServiceGraphOptions& options,
                                               LocalIdentityFn local, RemoteIdentityFn remote,
                                               const PeerNames* peers)
    : impl_(std::make_unique<Impl>(options, std::move(local), std::move(remote), peers)) {}
ServiceGraphAggregator::~ServiceGraphAggregator() = default;

void ServiceGraphAggregator::OnSpan(const Span& span) { impl_->OnSpan(span); }
std::vector<prometheus::MetricFamily> ServiceGraphAggregator::Collect() const {
  return impl_->Collect();
}
void ServiceGraphAggregator::Expire(uint64_t now_ns) { impl_->Expire(now_ns); }
size_t ServiceGraphAggregator::edges() const { return impl_->edges(); }

}  // namespace redmap
