#include "aggregators/network/tcp_aggregator.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <limits>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr char kOverflow[] = "__overflow__";

// The edge series' labels (TcpLabelNames()): the edge, both ends'
// namespaces, the observing end's Kubernetes labels, the observing node.
constexpr const char* kLabelNames[] = {
    "side",                     "client",
    "server",                   "server_port",
    "client_service_namespace", "server_service_namespace",
    "k8s_namespace_name",       "k8s_pod_name",
    "k8s_owner_kind",           "k8s_owner_name",
    "k8s_deployment_name",      "k8s_node_name"};
constexpr size_t kNumLabels = std::size(kLabelNames);
enum LabelIndex : size_t {
  kSide,
  kClient,
  kServer,
  kServerPort,
  kClientNamespace,
  kServerNamespace,
  kLocalK8sFirst,  // kIdentityLabelNames[1..5], in their order
  kNodeName = kNumLabels - 1,
};
// The observing end's labels are the RED identity labels between
// service_namespace (carried as client_/server_service_namespace) and
// k8s_node_name (the observing node's, from the options).
constexpr size_t kLocalK8sLabels = kNumIdentityLabels - 2;
static_assert(kLocalK8sFirst + kLocalK8sLabels == kNodeName);
static_assert(std::string_view(kIdentityLabelNames[0]) == "service_namespace");
static_assert(std::string_view(kIdentityLabelNames[kNumIdentityLabels - 1]) == "k8s_node_name");
static_assert(std::string_view(kLabelNames[kTcpEdgeLabels - 1]) == "server");

enum FailureReason : size_t { kRefused, kTimeout, kUnreachable, kReset, kAborted, kOther, kReasons };
constexpr std::array<std::string_view, kReasons> kReasonNames = {
    "refused", "timeout", "unreachable", "reset", "aborted", "other"};
constexpr std::array<std::string_view, 3> kRetransmitNames = {"data", "syn", "synack"};

FailureReason ReasonOf(int error) {
  switch (error) {
    case ECONNREFUSED:
      return kRefused;
    case ETIMEDOUT:
      return kTimeout;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
      return kUnreachable;
    case ECONNRESET:
    case EPIPE:
      return kReset;
    case 0:
      return kAborted;
    default:
      return kOther;
  }
}

// Ports at or above this are ephemeral (Linux default range starts here);
// used only to guess the side of a connection opened before redmap.
constexpr uint16_t kEphemeralFloor = 32768;

// An identity in a key compares and hashes by what the series show of it
// (its name and identity labels): the cache hands out a new object for the
// same identity when it refreshes one.
struct IdentityKey {
  IdentityPtr id;

  friend bool operator==(const IdentityKey& a, const IdentityKey& b) {
    if (a.id == b.id) return true;
    if (!a.id || !b.id || a.id->name != b.id->name) return false;
    for (size_t i = 0; i < kNumIdentityLabels; ++i) {
      if (IdentityLabelValue(*a.id, i) != IdentityLabelValue(*b.id, i)) return false;
    }
    return true;
  }
  template <typename H>
  friend H AbslHashValue(H h, const IdentityKey& k) {
    if (!k.id) return H::combine(std::move(h), 0);
    h = H::combine(std::move(h), k.id->name);
    for (size_t i = 0; i < kNumIdentityLabels; ++i) {
      h = H::combine(std::move(h), IdentityLabelValue(*k.id, i));
    }
    return h;
  }
};

struct EdgeKey {
  Role side = Role::kClient;
  bool overflow = false;  // the one edge beyond max_series
  IdentityKey local;      // this side
  IdentityKey peer;       // server side: the client, named when the event came
  Endpoint peer_ep;       // client side: the server's address, named at scrape
  uint16_t server_port = 0;

  friend bool operator==(const EdgeKey&, const EdgeKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const EdgeKey& k) {
    return H::combine(std::move(h), k.side, k.overflow, k.local, k.peer, k.peer_ep,
                      k.server_port);
  }
};

struct Histogram {
  std::vector<uint64_t> buckets;  // per bucket (not cumulative); last is +Inf
  double sum = 0;
  uint64_t count = 0;

  void Observe(const std::vector<double>& bounds, double v) {
    if (buckets.empty()) buckets.assign(bounds.size() + 1, 0);
    // le is inclusive: a value equal to a bound lands in that bucket.
    auto it = std::lower_bound(bounds.begin(), bounds.end(), v);
    buckets[static_cast<size_t>(it - bounds.begin())]++;
    sum += v;
    ++count;
  }
  void Merge(const Histogram& o) {
    if (o.count == 0) return;
    if (buckets.empty()) buckets.assign(o.buckets.size(), 0);
    for (size_t i = 0; i < buckets.size() && i < o.buckets.size(); ++i) buckets[i] += o.buckets[i];
    sum += o.sum;
    count += o.count;
  }
};

struct EdgeStats {
  uint64_t updated_ns = 0;
  int64_t established = 0;
  Histogram connect;
  Histogram rtt;
  std::array<uint64_t, kReasons> failures{};
  std::array<uint64_t, 3> retransmits{};
  uint64_t resets_sent = 0;
  uint64_t resets_received = 0;
  uint64_t zero_window_local = 0;
  uint64_t zero_window_peer = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;

  void Merge(const EdgeStats& o) {
    established += o.established;
    connect.Merge(o.connect);
    rtt.Merge(o.rtt);
    for (size_t i = 0; i < failures.size(); ++i) failures[i] += o.failures[i];
    for (size_t i = 0; i < retransmits.size(); ++i) retransmits[i] += o.retransmits[i];
    resets_sent += o.resets_sent;
    resets_received += o.resets_received;
    zero_window_local += o.zero_window_local;
    zero_window_peer += o.zero_window_peer;
    bytes_sent += o.bytes_sent;
    bytes_received += o.bytes_received;
  }
};

struct Conn {
  EdgeKey key;
  Endpoint local;
  Endpoint remote;
};

// Output identity of an edge: a value per kLabelNames ("" is absent).
using SeriesLabels = std::vector<std::string>;

}  // namespace

std::vector<std::string> TcpLabelNames() {
  return std::vector<std::string>(std::begin(kLabelNames), std::end(kLabelNames));
}

std::string_view ConnectFailureReason(int error) { return kReasonNames[ReasonOf(error)]; }

class TcpAggregator::Impl {
 public:
  Impl(const NetworkOptions& options, ProcessIdentityResolver resolver,
       RemoteIdentityResolver remote)
      : options_(options), resolver_(std::move(resolver)), remote_(std::move(remote)) {
    for (size_t i = kTcpEdgeLabels; i < kNumLabels; ++i) {
      drop_[i] = std::find(options.drop_labels.begin(), options.drop_labels.end(),
                           kLabelNames[i]) != options.drop_labels.end();
    }
  }

  void OnTcp(const TcpEvent& e) {
    absl::MutexLock l(&mu_);
    now_ns_ = std::max(now_ns_, e.ts_ns);
    NoteLocalAddress(e.local.addr);
    switch (e.kind) {
      case TcpEventKind::kListen:
        RememberListener(e.local, LocalIdentity(e, Role::kServer));
        return;
      case TcpEventKind::kEstablished:
        OnEstablished(e);
        return;
      case TcpEventKind::kClosed:
        OnClosed(e);
        return;
      default:
        break;
    }
    EdgeStats& s = EdgeFor(e);
    switch (e.kind) {
      case TcpEventKind::kConnectFailed:
        s.failures[ReasonOf(e.error)]++;
        break;
      case TcpEventKind::kRetransmit:
        s.retransmits[static_cast<size_t>(e.retransmit)] += e.value;
        break;
      case TcpEventKind::kResetSent:
        s.resets_sent++;
        break;
      case TcpEventKind::kResetReceived:
        s.resets_received++;
        break;
      case TcpEventKind::kZeroWindowLocal:
        s.zero_window_local++;
        break;
      case TcpEventKind::kZeroWindowPeer:
        s.zero_window_peer++;
        break;
      default:
        break;
    }
  }

  void Expire(uint64_t now_ns) {
    absl::MutexLock l(&mu_);
    for (auto it = client_endpoints_.begin(); it != client_endpoints_.end();) {
      const uint64_t closed = it->second.closed_ns;
      if (closed != 0 && now_ns > closed && now_ns - closed > kClosedEndpointGraceNs) {
        client_endpoints_.erase(it++);
      } else {
        ++it;
      }
    }
    for (auto it = edges_.begin(); it != edges_.end();) {
      const EdgeStats& s = it->second;
      if (s.established <= 0 && now_ns > s.updated_ns &&
          now_ns - s.updated_ns > options_.series_ttl_ns) {
        edges_.erase(it++);
      } else {
        ++it;
      }
    }
  }

  std::vector<MetricFamily> Collect() const {
    std::map<SeriesLabels, EdgeStats> series;
    uint64_t overflowed, untracked;
    size_t edges, conns;
    {
      absl::MutexLock l(&mu_);
      for (const auto& [key, stats] : edges_) series[Labels(key)].Merge(stats);
      overflowed = overflowed_;
      untracked = untracked_;
      edges = edges_.size();
      conns = conns_.size();
    }
    return Build(series, overflowed, untracked, edges, conns);
  }

  size_t edges() const {
    absl::MutexLock l(&mu_);
    return edges_.size();
  }
  IdentityPtr ClientAt(const Endpoint& ep) const {
    absl::MutexLock l(&mu_);
    auto it = client_endpoints_.find(ep);
    if (it == client_endpoints_.end()) return nullptr;
    return it->second.id;
  }
  IdentityPtr ServerAt(const Endpoint& ep) const {
    absl::MutexLock l(&mu_);
    return Listener(ep, /*wildcard=*/true);
  }
  size_t connections() const {
    absl::MutexLock l(&mu_);
    return conns_.size();
  }

 private:
  void OnEstablished(const TcpEvent& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const Role side = e.role == Role::kUnknown ? GuessSide(e) : e.role;
    IdentityPtr local = LocalIdentity(e, side);
    if (side == Role::kServer) RememberListener(e.local, local);
    EdgeKey key = MakeKey(e, side, std::move(local));
    EdgeStats& s = Edge(key, e.ts_ns);
    if (side == Role::kClient && e.value > 0) {
      s.connect.Observe(options_.connect_buckets, static_cast<double>(e.value) / 1e9);
    }
    // A reused socket address whose close we never saw: the old connection
    // is gone.
    if (auto old = conns_.find(e.sk); old != conns_.end()) Untrack(old);
    if (conns_.size() >= options_.max_connections) {
      ++untracked_;
      return;
    }
    s.established++;
    if (side == Role::kClient) client_endpoints_[e.local] = ClientEndpoint{key.local.id, 0};
    conns_.emplace(e.sk, Conn{std::move(key), e.local, e.remote});
  }

  void OnClosed(const TcpEvent& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = FindConn(e);
    EdgeStats* s;
    if (it != conns_.end()) {
      s = &Edge(it->second.key, e.ts_ns);
    } else {
      s = &EdgeFor(e);
    }
    if (e.has_close_stats) {
      s->bytes_sent += e.value;
      s->bytes_received += e.value2;
      if (e.srtt_us > 0) {
        s->rtt.Observe(options_.rtt_buckets, static_cast<double>(e.srtt_us) / 1e6);
      }
    }
    if (it != conns_.end()) Untrack(it);
  }

  using ConnMap = absl::flat_hash_map<uint64_t, Conn>;

  // The tracked connection this event belongs to: same socket address and
  // same endpoints (socket memory is reused).
  ConnMap::iterator FindConn(const TcpEvent& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = conns_.find(e.sk);
    if (it == conns_.end()) return it;
    if (it->second.local == e.local && it->second.remote == e.remote) return it;
    return conns_.end();
  }

  void Untrack(ConnMap::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (auto edge = edges_.find(it->second.key); edge != edges_.end()) {
      edge->second.established--;
    }
    if (it->second.key.side == Role::kClient) {
      // Kept a while: the server's last events (a reset answering data
      // that arrives after the client closed) still name their client.
      auto ep = client_endpoints_.find(it->second.local);
      if (ep != client_endpoints_.end()) {
        if (client_endpoints_.size() > options_.max_connections) {
          client_endpoints_.erase(ep);
        } else {
          ep->second.closed_ns = std::max<uint64_t>(now_ns_, 1);
        }
      }
    }
    conns_.erase(it);
  }

  // Edge of an event on a connection: the tracked one's, else derived.
  EdgeStats& EdgeFor(const TcpEvent& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (auto it = FindConn(e); it != conns_.end()) return Edge(it->second.key, e.ts_ns);
    const Role side = e.role == Role::kUnknown ? GuessSide(e) : e.role;
    EdgeKey key = MakeKey(e, side, LocalIdentity(e, side));
    return Edge(key, e.ts_ns);
  }

  // The edge's stats, created on first use. At the cap, `key` becomes the
  // overflow edge's (callers that remember keys keep the rewritten one).
  EdgeStats& Edge(EdgeKey& key, uint64_t ts_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = edges_.find(key);
    if (it == edges_.end()) {
      if (edges_.size() >= options_.max_series) {
        ++overflowed_;
        EdgeKey overflow;
        overflow.side = key.side;
        overflow.overflow = true;
        key = std::move(overflow);
        it = edges_.try_emplace(key).first;
      } else {
        it = edges_.try_emplace(key).first;
      }
    }
    it->second.updated_ns = std::max(it->second.updated_ns, ts_ns);
    return it->second;
  }

  EdgeKey MakeKey(const TcpEvent& e, Role side, IdentityPtr local)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    EdgeKey k;
    k.side = side;
    k.local.id = std::move(local);
    if (side == Role::kServer) {
      auto it = client_endpoints_.find(e.remote);
      k.peer.id = it != client_endpoints_.end() ? it->second.id
                                                : RemoteIdentity(e.remote.addr, e.ts_ns);
      k.server_port = e.local.port;
    } else {
      k.peer_ep = e.remote;
      k.server_port = e.remote.port;
    }
    return k;
  }

  IdentityPtr LocalIdentity(const TcpEvent& e, Role side) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (e.tgid != 0) {
      if (IdentityPtr id = resolver_(e.tgid, e.cgroup_id, e.process_name, e.ts_ns)) return id;
    }
    if (side == Role::kServer) {
      if (IdentityPtr id = Listener(e.local, /*wildcard=*/true)) return id;
    }
    return NamedIdentity(e.local.addr.ToString());
  }

  // For connections opened before redmap (no connect/accept seen).
  Role GuessSide(const TcpEvent& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (Listener(e.local, /*wildcard=*/true) != nullptr) return Role::kServer;
    if (e.local.port < kEphemeralFloor && e.remote.port >= kEphemeralFloor) return Role::kServer;
    return Role::kClient;
  }

  void RememberListener(const Endpoint& local, const IdentityPtr& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool wildcard = local.addr.bytes == std::array<uint8_t, 16>{};
    if (wildcard) {
      if (wildcard_ports_.size() < options_.max_series || wildcard_ports_.contains(local.port)) {
        wildcard_ports_[local.port] = id;
      }
      return;
    }
    if (listeners_.size() < options_.max_series || listeners_.contains(local)) {
      listeners_[local] = id;
    }
  }

  // The local process listening on ep; nullptr if none is known.
  IdentityPtr Listener(const Endpoint& ep, bool wildcard) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    if (auto it = listeners_.find(ep); it != listeners_.end()) return it->second;
    if (!wildcard) return nullptr;
    if (!ep.addr.IsLoopback() && !local_addrs_.contains(ep.addr)) return nullptr;
    if (auto it = wildcard_ports_.find(ep.port); it != wildcard_ports_.end()) return it->second;
    return nullptr;
  }

  void NoteLocalAddress(const IpAddress& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (a.bytes == std::array<uint8_t, 16>{} || local_addrs_.size() >= kMaxLocalAddrs) return;
    local_addrs_.insert(a);
  }

  SeriesLabels Labels(const EdgeKey& k) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    SeriesLabels v(kNumLabels);
    v[kSide] = k.side == Role::kServer ? "server" : "client";
    v[kNodeName] = options_.node_name;
    if (k.overflow) {
      v[kClient] = v[kServer] = v[kServerPort] = kOverflow;
    } else {
      const IdentityLabels& local = *k.local.id;
      IdentityPtr server_side;  // the far end, when it is the server
      if (k.side == Role::kClient) {
        server_side = Listener(k.peer_ep, /*wildcard=*/true);
        if (!server_side) server_side = RemoteIdentity(k.peer_ep.addr, 0);
      }
      const IdentityLabels& client = k.side == Role::kServer ? *k.peer.id : local;
      const IdentityLabels& server = k.side == Role::kServer ? local : *server_side;
      v[kClient] = client.name;
      v[kServer] = server.name;
      v[kServerPort] = std::to_string(k.server_port);
      v[kClientNamespace] = client.service_namespace;
      v[kServerNamespace] = server.service_namespace;
      for (size_t i = 0; i < kLocalK8sLabels; ++i) {
        v[kLocalK8sFirst + i] = IdentityLabelValue(local, 1 + i);
      }
    }
    for (size_t i = 0; i < kNumLabels; ++i) {
      if (drop_[i]) v[i].clear();
    }
    return v;
  }

  // ts_ns 0: at scrape time (the cache's own clock decides freshness).
  IdentityPtr RemoteIdentity(const IpAddress& ip, uint64_t ts_ns) const {
    if (remote_) {
      if (IdentityPtr id = remote_(ip, ts_ns)) return id;
    }
    return NamedIdentity(ip.ToString());
  }

  std::vector<MetricFamily> Build(const std::map<SeriesLabels, EdgeStats>& series,
                                  uint64_t overflowed, uint64_t untracked, size_t edges,
                                  size_t conns) const {
    // Empty values (unknown, or dropped) are absent labels.
    auto labels = [](const SeriesLabels& l) {
      std::vector<prometheus::ClientMetric::Label> out;
      out.reserve(kNumLabels + 1);
      for (size_t i = 0; i < kNumLabels; ++i) {
        if (!l[i].empty()) out.push_back({kLabelNames[i], l[i]});
      }
      return out;
    };
    auto family = [](const char* name, const char* help, MetricType type) {
      MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = type;
      return f;
    };
    auto counter = [&](MetricFamily& f, const SeriesLabels& l, uint64_t v,
                       std::pair<const char*, std::string_view> extra = {nullptr, {}}) {
      ClientMetric m;
      m.label = labels(l);
      if (extra.first != nullptr) m.label.push_back({extra.first, std::string(extra.second)});
      m.counter.value = static_cast<double>(v);
      f.metric.push_back(std::move(m));
    };
    auto histogram = [&](MetricFamily& f, const SeriesLabels& l, const Histogram& h,
                         const std::vector<double>& bounds) {
      ClientMetric m;
      m.label = labels(l);
      m.histogram.sample_count = h.count;
      m.histogram.sample_sum = h.sum;
      uint64_t cumulative = 0;
      for (size_t b = 0; b <= bounds.size(); ++b) {
        cumulative += b < h.buckets.size() ? h.buckets[b] : 0;
        prometheus::ClientMetric::Bucket bucket;
        bucket.cumulative_count = cumulative;
        bucket.upper_bound =
            b < bounds.size() ? bounds[b] : std::numeric_limits<double>::infinity();
        m.histogram.bucket.push_back(bucket);
      }
      f.metric.push_back(std::move(m));
    };

    MetricFamily connect = family("redmap_tcp_connect_duration_seconds",
                                  "TCP handshake time seen by the client: SYN sent to established.",
                                  MetricType::Histogram);
    MetricFamily rtt = family("redmap_tcp_rtt_seconds",
                              "Smoothed round-trip time of a TCP connection, sampled when it closes.",
                              MetricType::Histogram);
    MetricFamily failures =
        family("redmap_tcp_connect_failures_total",
               "Connection attempts that never got established, by reason.", MetricType::Counter);
    MetricFamily retransmits =
        family("redmap_tcp_retransmits_total",
               "Retransmitted TCP segments, by kind (data, syn, synack).", MetricType::Counter);
    MetricFamily resets_sent =
        family("redmap_tcp_resets_sent_total", "TCP resets (RST) sent.", MetricType::Counter);
    MetricFamily resets_received = family("redmap_tcp_resets_received_total",
                                          "TCP resets (RST) received.", MetricType::Counter);
    MetricFamily zero_window =
        family("redmap_tcp_zero_window_segments_total",
               "Segments received while a receive window was zero. window=\"local\": this side "
               "had advertised zero (its application is not reading); window=\"peer\": the peer "
               "had.",
               MetricType::Counter);
    MetricFamily sent = family("redmap_tcp_sent_bytes_total",
                               "Payload bytes sent and acknowledged, counted when the connection "
                               "closes.",
                               MetricType::Counter);
    MetricFamily received = family("redmap_tcp_received_bytes_total",
                                   "Payload bytes received, counted when the connection closes.",
                                   MetricType::Counter);
    MetricFamily established = family("redmap_tcp_connections",
                                      "TCP connections established now (opened since redmap "
                                      "started).",
                                      MetricType::Gauge);

    for (const auto& [l, s] : series) {
      if (s.connect.count > 0) histogram(connect, l, s.connect, options_.connect_buckets);
      if (s.rtt.count > 0) histogram(rtt, l, s.rtt, options_.rtt_buckets);
      for (size_t r = 0; r < kReasons; ++r) {
        if (s.failures[r] > 0) counter(failures, l, s.failures[r], {"reason", kReasonNames[r]});
      }
      for (size_t k = 0; k < kRetransmitNames.size(); ++k) {
        if (k == 0 || s.retransmits[k] > 0) {
          counter(retransmits, l, s.retransmits[k], {"kind", kRetransmitNames[k]});
        }
      }
      counter(resets_sent, l, s.resets_sent);
      counter(resets_received, l, s.resets_received);
      counter(zero_window, l, s.zero_window_local, {"window", "local"});
      counter(zero_window, l, s.zero_window_peer, {"window", "peer"});
      counter(sent, l, s.bytes_sent);
      counter(received, l, s.bytes_received);
      ClientMetric g;
      g.label = labels(l);
      g.gauge.value = static_cast<double>(std::max<int64_t>(s.established, 0));
      established.metric.push_back(std::move(g));
    }

    MetricFamily edge_count =
        family("redmap_tcp_edges",
               "Edges tracked now (side, local identity, peer, port; the cap counts these).",
               MetricType::Gauge);
    edge_count.metric.emplace_back().gauge.value = static_cast<double>(edges);
    MetricFamily series_count =
        family("redmap_tcp_edge_series",
               "Edge series exported now, after naming far ends and network.drop_labels: each "
               "redmap_tcp_* family has at most this many per value of its own label.",
               MetricType::Gauge);
    series_count.metric.emplace_back().gauge.value = static_cast<double>(series.size());
    MetricFamily edge_limit = family("redmap_tcp_edges_limit",
                                     "Edge cap (network.max_series).", MetricType::Gauge);
    edge_limit.metric.emplace_back().gauge.value = static_cast<double>(options_.max_series);
    MetricFamily overflow =
        family("redmap_tcp_edges_overflow_total",
               "Events that went to the __overflow__ edge because the edge cap was reached.",
               MetricType::Counter);
    overflow.metric.emplace_back().counter.value = static_cast<double>(overflowed);
    MetricFamily tracked = family("redmap_tcp_connections_tracked",
                                  "Connections tracked for redmap_tcp_connections.",
                                  MetricType::Gauge);
    tracked.metric.emplace_back().gauge.value = static_cast<double>(conns);
    MetricFamily tracked_limit =
        family("redmap_tcp_connections_tracked_limit",
               "Bound on tracked connections (network.max_connections).", MetricType::Gauge);
    tracked_limit.metric.emplace_back().gauge.value =
        static_cast<double>(options_.max_connections);
    MetricFamily untracked_total =
        family("redmap_tcp_connections_untracked_total",
               "Connections not tracked because the table was full.", MetricType::Counter);
    untracked_total.metric.emplace_back().counter.value = static_cast<double>(untracked);

    std::vector<MetricFamily> out;
    for (MetricFamily* f : {&connect, &rtt, &failures, &retransmits, &resets_sent,
                            &resets_received, &zero_window, &sent, &received, &established,
                            &edge_count, &series_count, &edge_limit, &overflow, &tracked, &tracked_limit,
                            &untracked_total}) {
      out.push_back(std::move(*f));
    }
    return out;
  }

  static constexpr size_t kMaxLocalAddrs = 1024;
  static constexpr uint64_t kClosedEndpointGraceNs = 10ull * 1000 * 1000 * 1000;

  struct ClientEndpoint {
    IdentityPtr id;
    uint64_t closed_ns = 0;  // 0 while the connection is open
  };

  const NetworkOptions options_;
  const ProcessIdentityResolver resolver_;
  const RemoteIdentityResolver remote_;
  std::array<bool, kNumLabels> drop_{};  // never the edge's own labels
  mutable absl::Mutex mu_;
  absl::flat_hash_map<EdgeKey, EdgeStats> edges_ ABSL_GUARDED_BY(mu_);
  ConnMap conns_ ABSL_GUARDED_BY(mu_);
  // Local end of client connections -> the client (for its server).
  absl::flat_hash_map<Endpoint, ClientEndpoint> client_endpoints_ ABSL_GUARDED_BY(mu_);
  uint64_t now_ns_ ABSL_GUARDED_BY(mu_) = 0;  // latest event time
  absl::flat_hash_map<Endpoint, IdentityPtr> listeners_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint16_t, IdentityPtr> wildcard_ports_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<IpAddress> local_addrs_ ABSL_GUARDED_BY(mu_);
  uint64_t overflowed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t untracked_ ABSL_GUARDED_BY(mu_) = 0;
};

TcpAggregator::TcpAggregator(const NetworkOptions& options, ProcessNameResolver resolver)
    : TcpAggregator(options,
                    [resolver = std::move(resolver)](uint32_t tgid, uint64_t,
                                                     std::string_view comm, uint64_t ts_ns) {
                      return NamedIdentity(resolver(tgid, comm, ts_ns));
                    },
                    RemoteIdentityResolver()) {}
TcpAggregator::TcpAggregator(const NetworkOptions& options, ProcessIdentityResolver resolver,
                             RemoteIdentityResolver remote)
    : impl_(std::make_unique<Impl>(options, std::move(resolver), std::move(remote))) {}
TcpAggregator::~TcpAggregator() = default;

void TcpAggregator::OnTcp(const TcpEvent& event) { impl_->OnTcp(event); }
std::vector<prometheus::MetricFamily> TcpAggregator::Collect() const { return impl_->Collect(); }
void TcpAggregator::Expire(uint64_t now_ns) { impl_->Expire(now_ns); }
size_t TcpAggregator::edges() const { return impl_->edges(); }
size_t TcpAggregator::connections() const { return impl_->connections(); }
IdentityPtr TcpAggregator::ClientAt(const Endpoint& ep) const { return impl_->ClientAt(ep); }
IdentityPtr TcpAggregator::ServerAt(const Endpoint& ep) const { return impl_->ServerAt(ep); }

}  // namespace redmap
