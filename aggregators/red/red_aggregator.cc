#include "aggregators/red/red_aggregator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
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

const char* const kServerLabels[] = {"service_name", "http_request_method",
                                     "http_response_status_code", "http_route"};
const char* const kClientLabels[] = {"service_name",      "http_request_method",
                                     "http_response_status_code", "http_route",
                                     "server_address",    "server_port"};

// OpenTelemetry: known methods as-is, anything else "_OTHER" (bounded).
absl::string_view NormalizeMethod(const std::string& m) {
  static constexpr std::array<absl::string_view, 9> kKnown = {
      "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (absl::string_view k : kKnown)
    if (m == k) return k;
  return "_OTHER";
}

struct Series {
  std::vector<std::string> labels;
  std::vector<uint64_t> buckets;  // per bucket (not cumulative); last is +Inf
  double sum = 0;
  uint64_t count = 0;
  uint64_t last_ns = 0;
};

struct Family {
  const char* name;
  const char* help;
  const char* const* label_names;
  size_t label_count;
  absl::flat_hash_map<std::string, Series> series;
  uint64_t overflowed = 0;
};

}  // namespace

class RedAggregator::Impl {
 public:
  Impl(const RedOptions& options, ServiceNameResolver resolver)
      : options_(options), resolver_(std::move(resolver)) {
    server_.name = "http_server_request_duration_seconds";
    server_.help = "Duration of HTTP server requests, observed in the serving process.";
    server_.label_names = kServerLabels;
    server_.label_count = std::size(kServerLabels);
    client_.name = "http_client_request_duration_seconds";
    client_.help = "Duration of HTTP client requests, observed in the calling process.";
    client_.label_names = kClientLabels;
    client_.label_count = std::size(kClientLabels);
  }

  void OnSpan(const Span& span) {
    if (span.side != Role::kServer && span.side != Role::kClient) return;
    if (span.end_ns < span.start_ns) {
      absl::MutexLock l(&mu_);
      ++invalid_spans_;
      return;
    }
    const double seconds = static_cast<double>(span.end_ns - span.start_ns) / 1e9;
    const bool server = span.side == Role::kServer;

    // Label values; the resolver may read /proc, so do it outside the lock.
    values_[0] = resolver_(span);
    const absl::string_view method = NormalizeMethod(span.http.method);
    values_[1].assign(method.data(), method.size());
    values_[2] = span.http.status > 0 ? std::to_string(span.http.status) : std::string();
    values_[3] = NormalizeRoute(span.http.target);
    size_t n = 4;
    if (!server) {
      values_[4] = span.server.addr.ToString();
      values_[5] = std::to_string(span.server.port);
      n = 6;
    }
    key_.clear();
    for (size_t i = 0; i < n; ++i) {
      key_ += values_[i];
      key_ += kSep;
    }

    absl::MutexLock l(&mu_);
    Family& f = server ? server_ : client_;
    auto it = f.series.find(key_);
    if (it == f.series.end()) {
      if (f.series.size() >= options_.max_series) {
        ++f.overflowed;
        it = f.series.find(absl::string_view(kOverflow));
        if (it == f.series.end()) {
          it = Insert(f, kOverflow, std::vector<std::string>(n, kOverflow));
        }
      } else {
        it = Insert(f, key_, std::vector<std::string>(values_.begin(), values_.begin() + n));
      }
    }
    Observe(it->second, seconds, span.end_ns);
  }

  std::vector<MetricFamily> Collect() const {
    std::vector<MetricFamily> out;
    absl::MutexLock l(&mu_);
    for (const Family* f : {&server_, &client_}) {
      MetricFamily fam;
      fam.name = f->name;
      fam.help = f->help;
      fam.type = MetricType::Histogram;
      fam.metric.reserve(f->series.size());
      for (const auto& [key, s] : f->series) {
        ClientMetric m;
        for (size_t i = 0; i < f->label_count; ++i) {
          m.label.push_back({f->label_names[i], s.labels[i]});
        }
        m.histogram.sample_count = s.count;
        m.histogram.sample_sum = s.sum;
        uint64_t cumulative = 0;
        for (size_t b = 0; b < s.buckets.size(); ++b) {
          cumulative += s.buckets[b];
          double le = b < options_.buckets.size() ? options_.buckets[b]
                                                  : std::numeric_limits<double>::infinity();
          m.histogram.bucket.push_back({cumulative, le});
        }
        fam.metric.push_back(std::move(m));
      }
      out.push_back(std::move(fam));
    }

    MetricFamily series{"redmap_series", "Live series per metric family.", MetricType::Gauge, {}};
    MetricFamily limit{"redmap_series_limit", "Series cap per metric family (red.max_series).",
                       MetricType::Gauge, {}};
    MetricFamily overflow{"redmap_series_overflow_total",
                          "Observations that went to the overflow series because the family "
                          "was at its cap.",
                          MetricType::Counter, {}};
    for (const Family* f : {&server_, &client_}) {
      ClientMetric s, c, o;
      s.label = c.label = o.label = {{"family", f->name}};
      s.gauge.value = static_cast<double>(f->series.size());
      c.gauge.value = static_cast<double>(options_.max_series);
      o.counter.value = static_cast<double>(f->overflowed);
      series.metric.push_back(std::move(s));
      limit.metric.push_back(std::move(c));
      overflow.metric.push_back(std::move(o));
    }
    out.push_back(std::move(series));
    out.push_back(std::move(limit));
    out.push_back(std::move(overflow));
    MetricFamily invalid{"redmap_spans_invalid_total",
                         "Spans dropped because they ended before they started.",
                         MetricType::Counter, {}};
    ClientMetric iv;
    iv.counter.value = static_cast<double>(invalid_spans_);
    invalid.metric.push_back(std::move(iv));
    out.push_back(std::move(invalid));
    return out;
  }

  void Expire(uint64_t now_ns) {
    if (now_ns < options_.series_ttl_ns) return;
    const uint64_t cutoff = now_ns - options_.series_ttl_ns;
    absl::MutexLock l(&mu_);
    for (Family* f : {&server_, &client_}) {
      absl::erase_if(f->series, [cutoff](const auto& kv) { return kv.second.last_ns < cutoff; });
    }
  }

  size_t series(bool server_side) const {
    absl::MutexLock l(&mu_);
    return (server_side ? server_ : client_).series.size();
  }

 private:
  using Iter = absl::flat_hash_map<std::string, Series>::iterator;

  Iter Insert(Family& f, absl::string_view key, std::vector<std::string> labels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Series s;
    s.labels = std::move(labels);
    s.buckets.assign(options_.buckets.size() + 1, 0);
    return f.series.emplace(std::string(key), std::move(s)).first;
  }

  void Observe(Series& s, double v, uint64_t now_ns) const {
    // le is inclusive: a value equal to a bound lands in that bucket.
    auto it = std::lower_bound(options_.buckets.begin(), options_.buckets.end(), v);
    s.buckets[static_cast<size_t>(it - options_.buckets.begin())]++;
    s.sum += v;
    s.count++;
    s.last_ns = std::max(s.last_ns, now_ns);
  }

  const RedOptions options_;
  ServiceNameResolver resolver_;
  // Scratch for the span being aggregated (source thread only): no
  // allocation per span once warmed up.
  std::array<std::string, 6> values_;
  std::string key_;

  mutable absl::Mutex mu_;
  Family server_ ABSL_GUARDED_BY(mu_);
  Family client_ ABSL_GUARDED_BY(mu_);
  uint64_t invalid_spans_ ABSL_GUARDED_BY(mu_) = 0;
};

RedAggregator::RedAggregator(const RedOptions& options, ServiceNameResolver resolver)
    : impl_(std::make_unique<Impl>(options, std::move(resolver))) {}
RedAggregator::~RedAggregator() = default;
void RedAggregator::OnSpan(const Span& span) { impl_->OnSpan(span); }
std::vector<prometheus::MetricFamily> RedAggregator::Collect() const { return impl_->Collect(); }
void RedAggregator::Expire(uint64_t now_ns) { impl_->Expire(now_ns); }
size_t RedAggregator::series(bool server_side) const { return impl_->series(server_side); }

}  // namespace redmap
