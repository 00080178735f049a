#include "aggregators/red/red_aggregator.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "aggregators/red/route_normalizer.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr char kOverflow[] = "__overflow__";
constexpr char kSep = '\x1f';  // cannot appear in a label value we produce
constexpr const char* kServerLabels[] = {"service_name", "http_request_method",
                                         "http_response_status_code", "http_route"};
constexpr const char* kClientLabels[] = {
    "service_name", "http_request_method", "http_response_status_code",
    "http_route",   "server_address",      "server_port"};
constexpr size_t kMaxLabels = std::size(kClientLabels) + kNumIdentityLabels;

void AppendUint(uint64_t v, std::string* out) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, static_cast<size_t>(end - buf));
}

using Labels = std::vector<std::string>;

struct Series {
  // Immutable once made: Collect() shares it instead of copying strings.
  std::shared_ptr<const Labels> labels;
  std::vector<uint64_t> buckets;  // per bucket, not cumulative; last is +Inf
  double sum = 0;
  uint64_t count = 0;
  uint64_t last_ns = 0;
};

struct FamilyDesc {
  const char* name;
  const char* help;
  size_t fixed_labels;  // before the identity labels
};
constexpr FamilyDesc kServerFamily = {
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests, observed in the serving process.",
    std::size(kServerLabels)};
constexpr FamilyDesc kClientFamily = {
    "http_client_request_duration_seconds",
    "Duration of HTTP client requests, observed in the calling process.",
    std::size(kClientLabels)};

// Which labels of a family are dropped (always empty).
std::vector<bool> DropMask(bool server, const std::vector<std::string>& drop) {
  const std::vector<std::string> names = RedLabelNames(server);
  std::vector<bool> mask(names.size(), false);
  for (size_t i = 1; i < names.size(); ++i) {  // never service_name
    for (const std::string& d : drop) mask[i] = mask[i] || d == names[i];
  }
  return mask;
}

struct Family {
  absl::flat_hash_map<std::string, Series> series;
  uint64_t overflowed = 0;
};

// What Collect() copies under the lock.
struct FamilySnapshot {
  struct Entry {
    std::shared_ptr<const Labels> labels;
    double sum;
    uint64_t count;
  };
  std::vector<Entry> entries;
  std::vector<uint64_t> buckets;  // entries.size() * (bounds + 1), per bucket
  uint64_t overflowed = 0;
};

}  // namespace

std::vector<std::string> RedLabelNames(bool server_side) {
  std::vector<std::string> names;
  if (server_side) {
    names.assign(std::begin(kServerLabels), std::end(kServerLabels));
  } else {
    names.assign(std::begin(kClientLabels), std::end(kClientLabels));
  }
  for (const char* n : kIdentityLabelNames) names.emplace_back(n);
  return names;
}

// OpenTelemetry: known methods as-is, anything else "_OTHER" (bounded).
std::string_view MethodLabel(std::string_view m) {
  static constexpr std::array<std::string_view, 9> kKnown = {
      "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (std::string_view k : kKnown) {
    if (m == k) return k;
  }
  return "_OTHER";
}

class RedAggregator::Impl {
 public:
  Impl(const RedOptions& options, ServiceNameResolver resolver,
       std::shared_ptr<RouteCache> routes)
      : options_(options),
        resolver_(std::move(resolver)),
        routes_(routes != nullptr ? std::move(routes)
                                  : std::make_shared<RouteCache>(options.route_patterns)),
        server_names_(RedLabelNames(true)),
        client_names_(RedLabelNames(false)),
        server_drop_(DropMask(true, options.server_drop_labels)),
        client_drop_(DropMask(false, options.client_drop_labels)) {}

  void OnSpan(const Span& span) {
    if (span.side != Role::kServer && span.side != Role::kClient) return;
    if (span.end_ns < span.start_ns) {
      invalid_spans_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const double seconds = static_cast<double>(span.end_ns - span.start_ns) / 1e9;
    const bool server = span.side == Role::kServer;

    const IdentityPtr who = resolver_(span);
    const std::string_view method = MethodLabel(span.http.method);
    const std::string& route = routes_->Route(span.http.target);
    const int status = span.http.status;

    // The memo: most spans repeat a few (process, method, status, route,
    // server) combinations, and a hit skips building ~15 label strings and
    // hashing their join. Its series pointer is good while the generation
    // (bumped whenever a family's map may have moved) is the same.
    const Endpoint* peer = server ? nullptr : &span.server;
    MemoEntry& m = memo_[MemoSlot(who.get(), method.data(), status, route, peer)];
    const bool same = m.who == who && m.method == method.data() && m.status == status &&
                      m.server == server && m.route == route &&
                      (server || m.peer == span.server);
    if (!same) BuildKey(span, *who, method, status, route);

    absl::MutexLock l(&mu_);
    Family& f = server ? server_ : client_;
    if (same && m.generation == generation_) {
      if (m.overflow) ++f.overflowed;
      Observe(*m.series, seconds, span.end_ns);
      return;
    }
    if (same) BuildKey(span, *who, method, status, route);  // stale: the map changed
    const size_t n = LabelCount(server);
    bool overflow = false;
    auto it = f.series.find(key_);
    if (it == f.series.end()) {
      if (f.series.size() >= options_.max_series) {
        overflow = true;
        ++f.overflowed;
        it = f.series.find(absl::string_view(kOverflow));
        if (it == f.series.end()) {
          // The fixed labels say "__overflow__"; identity labels are absent.
          Labels labels(n, kOverflow);
          for (size_t i = n - kNumIdentityLabels; i < n; ++i) labels[i].clear();
          it = Insert(f, kOverflow, std::move(labels));
        }
      } else {
        it = Insert(f, key_, Labels(values_.begin(), values_.begin() + n));
      }
    }
    m.who = who;
    m.method = method.data();
    m.status = status;
    m.server = server;
    m.route.assign(route);
    if (!server) m.peer = span.server;
    m.overflow = overflow;
    m.generation = generation_;
    m.series = &it->second;
    Observe(it->second, seconds, span.end_ns);
  }

  std::vector<MetricFamily> Collect() const {
    std::array<FamilySnapshot, 2> snaps;
    {
      absl::MutexLock l(&mu_);
      Snapshot(server_, &snaps[0]);
      Snapshot(client_, &snaps[1]);
    }
    const size_t nb = options_.buckets.size() + 1;
    std::vector<MetricFamily> out;
    out.reserve(7);
    MetricFamily series{
        "redmap_series", "Live series per RED metric family.", MetricType::Gauge, {}};
    MetricFamily limit{"redmap_series_limit",
                       "Series cap per RED metric family (red.max_series).",
                       MetricType::Gauge,
                       {}};
    MetricFamily overflow{"redmap_series_overflow_total",
                          "Observations that went to the overflow series because the family "
                          "was at its series cap.",
                          MetricType::Counter,
                          {}};
    for (size_t fi = 0; fi < snaps.size(); ++fi) {
      const FamilyDesc& f = fi == 0 ? kServerFamily : kClientFamily;
      const FamilySnapshot& snap = snaps[fi];
      const std::vector<std::string>& names = fi == 0 ? server_names_ : client_names_;
      const std::vector<bool>& drop = fi == 0 ? server_drop_ : client_drop_;
      MetricFamily fam{f.name, f.help, MetricType::Histogram, {}};
      fam.metric.resize(snap.entries.size());
      for (size_t si = 0; si < snap.entries.size(); ++si) {
        const FamilySnapshot::Entry& e = snap.entries[si];
        ClientMetric& m = fam.metric[si];
        m.label.reserve(names.size());
        for (size_t i = 0; i < names.size() && i < e.labels->size(); ++i) {
          // Dropped labels are left out; identity labels are absent when
          // empty (outside Kubernetes).
          if (drop[i] || (i >= f.fixed_labels && (*e.labels)[i].empty())) continue;
          m.label.push_back({names[i], (*e.labels)[i]});
        }
        m.histogram.sample_count = e.count;
        m.histogram.sample_sum = e.sum;
        m.histogram.bucket.resize(nb);
        uint64_t cumulative = 0;
        for (size_t b = 0; b < nb; ++b) {
          cumulative += snap.buckets[si * nb + b];
          m.histogram.bucket[b].cumulative_count = cumulative;
          m.histogram.bucket[b].upper_bound =
              b + 1 < nb ? options_.buckets[b] : std::numeric_limits<double>::infinity();
        }
      }
      out.push_back(std::move(fam));

      ClientMetric s, c, o;
      s.label = c.label = o.label = {{"family", f.name}};
      s.gauge.value = static_cast<double>(snap.entries.size());
      c.gauge.value = static_cast<double>(options_.max_series);
      o.counter.value = static_cast<double>(snap.overflowed);
      series.metric.push_back(std::move(s));
      limit.metric.push_back(std::move(c));
      overflow.metric.push_back(std::move(o));
    }
    out.push_back(std::move(series));
    out.push_back(std::move(limit));
    out.push_back(std::move(overflow));
    MetricFamily invalid{"redmap_spans_invalid_total",
                         "Spans dropped because they ended before they started.",
                         MetricType::Counter,
                         {}};
    ClientMetric iv;
    iv.counter.value = static_cast<double>(invalid_spans_.load(std::memory_order_relaxed));
    invalid.metric.push_back(std::move(iv));
    out.push_back(std::move(invalid));
    return out;
  }

  void Expire(uint64_t now_ns) {
    if (now_ns < options_.series_ttl_ns) return;
    const uint64_t cutoff = now_ns - options_.series_ttl_ns;
    absl::MutexLock l(&mu_);
    for (Family* f : {&server_, &client_}) {
      if (absl::erase_if(f->series, [cutoff](const auto& kv) { return kv.second.last_ns < cutoff; }) > 0) {
        ++generation_;  // memo entries may point at erased series
      }
    }
  }

  size_t series(bool server_side) const {
    absl::MutexLock l(&mu_);
    return (server_side ? server_ : client_).series.size();
  }

 private:
  using Iter = absl::flat_hash_map<std::string, Series>::iterator;

  Iter Insert(Family& f, absl::string_view key, Labels labels) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Series s;
    s.labels = std::make_shared<const Labels>(std::move(labels));
    s.buckets.assign(options_.buckets.size() + 1, 0);
    ++generation_;  // a rehash moves every series the memo points at
    return f.series.emplace(std::string(key), std::move(s)).first;
  }

  // Labels of a server or client series: the fixed ones, then identity's.
  static constexpr size_t LabelCount(bool server) {
    return (server ? std::size(kServerLabels) : std::size(kClientLabels)) + kNumIdentityLabels;
  }

  // Label values into the reused scratch strings, joined into key_.
  void BuildKey(const Span& span, const IdentityLabels& who, std::string_view method,
                int status, const std::string& route) {
    const bool server = span.side == Role::kServer;
    values_[0] = who.service_name;
    values_[1].assign(method.data(), method.size());
    values_[2].clear();
    if (status > 0) AppendUint(static_cast<uint64_t>(status), &values_[2]);
    values_[3] = route;
    size_t fixed = std::size(kServerLabels);
    if (!server) {
      values_[4] = span.server.addr.ToString();
      values_[5].clear();
      AppendUint(span.server.port, &values_[5]);
      fixed = std::size(kClientLabels);
    }
    for (size_t i = 0; i < kNumIdentityLabels; ++i) {
      values_[fixed + i] = IdentityLabelValue(who, i);
    }
    const size_t n = LabelCount(server);
    const std::vector<bool>& drop = server ? server_drop_ : client_drop_;
    key_.clear();
    for (size_t i = 0; i < n; ++i) {
      if (drop[i]) values_[i].clear();
      key_ += values_[i];
      key_ += kSep;
    }
  }

  static size_t MemoSlot(const void* who, const char* method, int status,
                         const std::string& route, const Endpoint* peer) {
    uint64_t h = absl::HashOf(reinterpret_cast<uintptr_t>(who), reinterpret_cast<uintptr_t>(method),
                              status, absl::string_view(route));
    if (peer != nullptr) h = absl::HashOf(h, *peer);
    return static_cast<size_t>(h) & (kMemoSlots - 1);
  }

  void Observe(Series& s, double v, uint64_t now_ns) const {
    // le is inclusive: a value equal to a bound lands in that bucket.
    auto it = std::lower_bound(options_.buckets.begin(), options_.buckets.end(), v);
    s.buckets[static_cast<size_t>(it - options_.buckets.begin())]++;
    s.sum += v;
    s.count++;
    s.last_ns = std::max(s.last_ns, now_ns);
  }

  void Snapshot(const Family& f, FamilySnapshot* out) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    out->overflowed = f.overflowed;
    out->entries.reserve(f.series.size());
    out->buckets.reserve(f.series.size() * (options_.buckets.size() + 1));
    for (const auto& [key, s] : f.series) {
      out->entries.push_back({s.labels, s.sum, s.count});
      out->buckets.insert(out->buckets.end(), s.buckets.begin(), s.buckets.end());
    }
  }

  const RedOptions options_;
  ServiceNameResolver resolver_;
  const std::shared_ptr<RouteCache> routes_;  // source thread only
  const std::vector<std::string> server_names_;
  const std::vector<std::string> client_names_;
  const std::vector<bool> server_drop_;
  const std::vector<bool> client_drop_;
  // Scratch for the span being aggregated (source thread only): no
  // allocation per span once warmed up.
  std::array<std::string, kMaxLabels> values_;
  std::string key_;
  std::atomic<uint64_t> invalid_spans_{0};

  // Label inputs -> series, direct-mapped (source thread only; the series
  // pointer is used under mu_ and only while generation_ is unchanged).
  // Bounded: kMemoSlots entries, each holding its identity (so a pointer
  // compare never matches a freed and reused one) and a route string.
  static constexpr size_t kMemoSlots = 512;
  struct MemoEntry {
    IdentityPtr who;
    const char* method = nullptr;  // MethodLabel()'s static storage
    int status = 0;
    bool server = false;
    bool overflow = false;  // the key went to the overflow series
    std::string route;
    Endpoint peer;  // client spans: the server
    uint64_t generation = 0;
    Series* series = nullptr;
  };
  std::array<MemoEntry, kMemoSlots> memo_;

  mutable absl::Mutex mu_;
  Family server_ ABSL_GUARDED_BY(mu_);
  Family client_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;  // memo entries start at 0: never current
};

RedAggregator::RedAggregator(const RedOptions& options, ServiceNameResolver resolver,
                             std::shared_ptr<RouteCache> routes)
    : impl_(std::make_unique<Impl>(options, std::move(resolver), std::move(routes))) {}
RedAggregator::RedAggregator(const RedOptions& options,
                             std::function<std::string(const Span&)> name)
    : RedAggregator(options, [name = std::move(name)](const Span& s) {
        return NamedIdentity(name(s));
      }) {}
RedAggregator::~RedAggregator() = default;
void RedAggregator::OnSpan(const Span& span) { impl_->OnSpan(span); }
std::vector<prometheus::MetricFamily> RedAggregator::Collect() const { return impl_->Collect(); }
void RedAggregator::Expire(uint64_t now_ns) { impl_->Expire(now_ns); }
size_t RedAggregator::series(bool server_side) const { return impl_->series(server_side); }

}  // namespace redmap
