#include "aggregators/pipeline.h"

#include <array>
#include <cmath>
#include <ctime>
#include <cstdlib>
#include <vector>

#include "absl/hash/hash.h"
#include "aggregators/metadata/process_info.h"
#include "aggregators/metadata/target_info.h"

namespace redmap {
namespace {

// Housekeeping (idle connections, idle series) at most this often.
constexpr uint64_t kHousekeepingEveryNs = 1000ull * 1000 * 1000;

uint64_t MonotonicNowNs() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

// Hands every span to each registered sink, in registration order.
class FanOut : public SpanSink {
 public:
  void Add(SpanSink* s) { sinks_.push_back(s); }
  void OnSpan(const Span& span) override {
    for (SpanSink* s : sinks_) s->OnSpan(span);
  }

 private:
  std::vector<SpanSink*> sinks_;
};

}  // namespace

class Pipeline::Impl {
 public:
  explicit Impl(const PipelineOptions& options)
      : options_(options),
        identities_(IdentityCacheOptionsFrom(options), options.identity, options.k8s_store,
                    [this](uint32_t tgid, std::string_view comm, uint64_t ts_ns) {
                      return ProcessName(tgid, comm, ts_ns);
                    }),
        self_(std::make_shared<SelfMetrics>()),
        routes_(std::make_shared<RouteCache>(options.red.route_patterns)),
        red_(std::make_shared<RedAggregator>(
            options.red, ServiceNameResolver([this](const Span& s) { return Local(s); }),
            routes_)),
        tcp_(std::make_shared<TcpAggregator>(
            NetworkOptionsFrom(options),
            ProcessIdentityResolver(
                [this](uint32_t tgid, uint64_t cgroup_id, std::string_view comm, uint64_t ts_ns) {
                  return identities_.Local(tgid, cgroup_id, comm, ts_ns);
                }),
            RemoteIdentityResolver([this](const IpAddress& ip, uint64_t ts_ns) {
              if (ts_ns == 0) ts_ns = MonotonicNowNs();  // at scrape time
              return identities_.Remote(ip, ts_ns);
            }))),
        service_graph_(std::make_shared<ServiceGraphAggregator>(
            ServiceGraphOptionsFrom(options),
            ServiceGraphAggregator::LocalIdentityFn([this](const Span& s) { return Local(s); }),
            ServiceGraphAggregator::RemoteIdentityFn(
                [this](const IpAddress& ip, uint64_t now_ns) {
                  return identities_.Remote(ip, now_ns);
                }),
            tcp_.get())),
        target_info_(std::make_shared<TargetInfo>(kRedmapVersion, LocalHostName())),
        tracker_(ConnTrackerOptionsFrom(options), &fanout_, self_.get()) {
    fanout_.Add(red_.get());
    fanout_.Add(service_graph_.get());
    if (options.traces_enabled) {
      traces::TraceOptions t = options.traces;
      if (t.exemplar_buckets.empty()) t.exemplar_buckets = options.red.buckets;
      traces_ = std::make_shared<traces::TraceSampler>(
          t, [this](const Span& s, std::string* out) { out->append(LocalRef(s).service_name); },
          routes_);
      fanout_.Add(traces_.get());
    }
  }

  static ServiceGraphOptions ServiceGraphOptionsFrom(const PipelineOptions& o) {
    ServiceGraphOptions g = o.service_graph;
    if (g.buckets.empty()) g.buckets = o.red.buckets;
    if (g.node_name.empty()) {
      const char* node = std::getenv("NODE_NAME");
      g.node_name = node != nullptr && *node != '\0' ? node : LocalHostName();
    }
    return g;
  }

  // Heads are copied for trace assembly alone (its contexts and snippets).
  static ConnTrackerOptions ConnTrackerOptionsFrom(const PipelineOptions& o) {
    ConnTrackerOptions t = o.conntrack;
    t.keep_heads = o.traces_enabled;
    return t;
  }

  // The TCP edges carry the node that observed them, as the service graph's.
  static NetworkOptions NetworkOptionsFrom(const PipelineOptions& o) {
    NetworkOptions n = o.network;
    if (n.node_name.empty()) n.node_name = ServiceGraphOptionsFrom(o).node_name;
    return n;
  }

  static IdentityCacheOptions IdentityCacheOptionsFrom(const PipelineOptions& o) {
    IdentityCacheOptions c = o.identity_cache;
    if (c.node_name.empty()) c.node_name = ServiceGraphOptionsFrom(o).node_name;
    return c;
  }

  // The observing process's identity: cached per (tgid, cgroup id) by the
  // identity cache, and in front of it per span's process in a small
  // direct-mapped memo that needs no lock (RED, service graph and traces
  // call this in turn for every span, on the source thread). A memo slot is
  // good while the Kubernetes store has not changed and for kRefreshNs of
  // span time, after which it asks the cache again: it adds at most that to
  // the cache's own refresh rules. Measured on nginx + wrk: the cache's
  // mutex and hash lookup per span were ~8 % of the exporter's profile.
  IdentityPtr Local(const Span& s) { return LocalMemo(s); }

  // The same, without a reference count: valid until the next span.
  const IdentityLabels& LocalRef(const Span& s) { return *LocalMemo(s); }

  const IdentityPtr& LocalMemo(const Span& s) {
    const uint32_t tgid = s.conn.tgid;
    const uint64_t cgroup_id = s.cgroup_id;
    LocalSlot& m = local_memo_[absl::HashOf(tgid, cgroup_id) & (kLocalMemoSlots - 1)];
    const uint64_t generation = identities_.store_generation();
    const uint64_t age = s.end_ns > m.filled_ns ? s.end_ns - m.filled_ns : m.filled_ns - s.end_ns;
    if (m.labels == nullptr || m.tgid != tgid || m.cgroup_id != cgroup_id ||
        m.generation != generation || age >= IdentityCache::kRefreshNs) {
      m.labels = identities_.Local(tgid, cgroup_id, s.process_name, s.end_ns);
      m.tgid = tgid;
      m.cgroup_id = cgroup_id;
      m.generation = generation;
      m.filled_ns = s.end_ns;
    }
    return m.labels;
  }

  std::string ProcessName(uint32_t tgid, std::string_view comm, uint64_t ts_ns) {
    if (tgid == 0) return kUnknownService;  // replay: no process
    if (!options_.resolve_processes) return ServiceNameFromComm(comm);
    return processes_.ServiceName(tgid, ts_ns, comm);
  }

  const PipelineOptions options_;
  ProcessResolver processes_;
  IdentityCache identities_;
  // Local()'s memo (source thread only).
  struct LocalSlot {
    uint32_t tgid = 0;
    uint64_t cgroup_id = 0;
    uint64_t generation = 0;
    uint64_t filled_ns = 0;
    IdentityPtr labels;
  };
  static constexpr size_t kLocalMemoSlots = 64;
  std::array<LocalSlot, kLocalMemoSlots> local_memo_;
  std::shared_ptr<SelfMetrics> self_;
  // http_route of the span being fanned out, worked out once for RED and
  // traces (source thread only).
  std::shared_ptr<RouteCache> routes_;
  std::shared_ptr<RedAggregator> red_;
  std::shared_ptr<TcpAggregator> tcp_;
  std::shared_ptr<ServiceGraphAggregator> service_graph_;
  std::shared_ptr<TargetInfo> target_info_;
  std::shared_ptr<traces::TraceSampler> traces_;
  FanOut fanout_;
  ConnTracker tracker_;  // declared last: destroyed first, while its sinks live
  bool housekept_ = false;
  uint64_t last_housekeeping_ns_ = 0;
};

Pipeline::Pipeline() = default;
Pipeline::~Pipeline() = default;

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(const PipelineOptions& options) {
  // Config validation owns the user-facing messages; this guards the
  // invariants the aggregator relies on when a Pipeline is built directly.
  if (options.red.buckets.empty()) return absl::InvalidArgumentError("red.buckets is empty");
  for (size_t i = 0; i < options.red.buckets.size(); ++i) {
    if (!std::isfinite(options.red.buckets[i])) {
      return absl::InvalidArgumentError("red.buckets must be finite");
    }
    if (i > 0 && !(options.red.buckets[i] > options.red.buckets[i - 1])) {
      return absl::InvalidArgumentError("red.buckets must be strictly increasing");
    }
  }
  if (options.red.max_series == 0) return absl::InvalidArgumentError("red.max_series is 0");
  for (const auto* b : {&options.network.connect_buckets, &options.network.rtt_buckets}) {
    if (b->empty()) return absl::InvalidArgumentError("network buckets are empty");
    for (size_t i = 0; i < b->size(); ++i) {
      if (!std::isfinite((*b)[i]) || (i > 0 && !((*b)[i] > (*b)[i - 1]))) {
        return absl::InvalidArgumentError("network buckets must be finite, strictly increasing");
      }
    }
  }
  if (options.network.max_series == 0) return absl::InvalidArgumentError("network.max_series is 0");
  if (options.service_graph.max_series == 0) {
    return absl::InvalidArgumentError("service_graph.max_series is 0");
  }
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->impl_ = std::make_unique<Impl>(options);
  return p;
}

void Pipeline::OnData(const DataEvent& event) {
  impl_->self_->AddDataEvent();
  impl_->tracker_.OnData(event);
}

void Pipeline::OnClose(const CloseEvent& event) {
  impl_->self_->AddCloseEvent();
  impl_->tracker_.OnClose(event);
}

void Pipeline::OnTcp(const TcpEvent& event) {
  impl_->self_->AddTcpEvent();
  impl_->tcp_->OnTcp(event);
}

void Pipeline::Tick(uint64_t now_ns) {
  Impl& s = *impl_;
  // Traces are decided as their wait ends, not once a second.
  if (s.traces_) s.traces_->Tick(now_ns);
  // Cheap when called per poll: one compare. A clock that went backwards
  // (a new capture) restarts the interval instead of stalling it.
  if (s.housekept_ && now_ns >= s.last_housekeeping_ns_ &&
      now_ns - s.last_housekeeping_ns_ < kHousekeepingEveryNs) {
    return;
  }
  s.housekept_ = true;
  s.last_housekeeping_ns_ = now_ns;
  s.tracker_.ExpireIdle(now_ns);
  s.red_->Expire(now_ns);
  s.tcp_->Expire(now_ns);
  s.service_graph_->Expire(now_ns);
}

void Pipeline::Flush() {
  impl_->tracker_.Flush();
  if (impl_->traces_) impl_->traces_->Flush();
}

traces::TraceSampler* Pipeline::trace_sampler() { return impl_->traces_.get(); }

int64_t Pipeline::MonotonicToUnixOffsetNs() {
  timespec mono{}, real{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  return (static_cast<int64_t>(real.tv_sec) - mono.tv_sec) * 1000000000ll +
         (static_cast<int64_t>(real.tv_nsec) - mono.tv_nsec);
}

void Pipeline::AddSpanSink(SpanSink* sink) { impl_->fanout_.Add(sink); }

IdentityCache& Pipeline::identities() { return impl_->identities_; }

SelfMetrics& Pipeline::self_metrics() { return *impl_->self_; }

std::vector<std::shared_ptr<prometheus::Collectable>> Pipeline::Collectables() {
  std::vector<std::shared_ptr<prometheus::Collectable>> c = {
      impl_->red_, impl_->tcp_, impl_->service_graph_, impl_->self_, impl_->target_info_};
  if (impl_->traces_) c.push_back(impl_->traces_);
  return c;
}

}  // namespace redmap
