#include "exporter/openmetrics.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"
#include "prometheus/metric_type.h"

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

void AppendDouble(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
  } else {
    // As prometheus-cpp's text serializer writes it (%g with 16 digits): an
    // `le` must be the same string in both formats, or Prometheus would see
    // other series (the unit test compares the two).
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%.*g", std::numeric_limits<double>::max_digits10 - 1, v);
    out->append(buf);
  }
}

void AppendEscaped(std::string_view s, bool quote, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && quote) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// name{labels[,extra]} — extra is e.g. le="0.1".
void AppendSeries(std::string_view name, const ClientMetric& m, std::string_view extra_name,
                  const std::string& extra_value, std::string* out) {
  out->append(name);
  if (m.label.empty() && extra_name.empty()) return;
  out->push_back('{');
  bool first = true;
  for (const auto& l : m.label) {
    if (!first) out->push_back(',');
    first = false;
    absl::StrAppend(out, l.name, "=\"");
    AppendEscaped(l.value, true, out);
    out->push_back('"');
  }
  if (!extra_name.empty()) {
    if (!first) out->push_back(',');
    out->append(extra_name);
    absl::StrAppend(out, "=\"", extra_value, "\"");
  }
  out->push_back('}');
}

void AppendSample(std::string_view name, const ClientMetric& m, double value, std::string* out) {
  AppendSeries(name, m, "", "", out);
  out->push_back(' ');
  AppendDouble(value, out);
  out->push_back('\n');
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string SerializeOpenMetrics(const std::vector<MetricFamily>& families,
                                 const ExemplarLookup& exemplars) {
  std::string out;
  out.reserve(64 * 1024);
  std::vector<std::string> values;
  for (const MetricFamily& f : families) {
    std::string name = f.name;
    const char* type = "unknown";
    switch (f.type) {
      case MetricType::Counter:
        if (EndsWith(name, "_total")) {
          type = "counter";
          name.resize(name.size() - 6);
        }
        break;
      case MetricType::Gauge:
        type = "gauge";
        break;
      case MetricType::Summary:
        type = "summary";
        break;
      case MetricType::Histogram:
        type = "histogram";
        break;
      default:
        break;
    }
    absl::StrAppend(&out, "# TYPE ", name, " ", type, "\n# HELP ", name, " ");
    AppendEscaped(f.help, true, &out);
    out.push_back('\n');
    for (const ClientMetric& m : f.metric) {
      switch (f.type) {
        case MetricType::Counter:
          AppendSample(f.name, m, m.counter.value, &out);
          break;
        case MetricType::Gauge:
          AppendSample(name, m, m.gauge.value, &out);
          break;
        case MetricType::Summary: {
          for (const auto& q : m.summary.quantile) {
            std::string qs;
            AppendDouble(q.quantile, &qs);
            AppendSeries(name, m, "quantile", qs, &out);
            out.push_back(' ');
            AppendDouble(q.value, &out);
            out.push_back('\n');
          }
          AppendSample(absl::StrCat(name, "_sum"), m, m.summary.sample_sum, &out);
          AppendSample(absl::StrCat(name, "_count"), m,
                       static_cast<double>(m.summary.sample_count), &out);
          break;
        }
        case MetricType::Histogram: {
          std::vector<traces::Exemplar> ex;
          if (exemplars) {
            values.clear();
            for (const auto& l : m.label) values.push_back(l.value);
            ex = exemplars(name, values);
          }
          const std::string bucket_name = absl::StrCat(name, "_bucket");
          bool has_inf = false;
          for (size_t b = 0; b < m.histogram.bucket.size(); ++b) {
            const auto& bucket = m.histogram.bucket[b];
            std::string le;
            AppendDouble(bucket.upper_bound, &le);
            has_inf = has_inf || std::isinf(bucket.upper_bound);
            AppendSeries(bucket_name, m, "le", le, &out);
            out.push_back(' ');
            AppendDouble(static_cast<double>(bucket.cumulative_count), &out);
            if (b < ex.size() && !ex[b].trace_id.empty()) {
              absl::StrAppend(&out, " # {trace_id=\"", ex[b].trace_id, "\"} ");
              AppendDouble(ex[b].value, &out);
              char ts[32];
              std::snprintf(ts, sizeof(ts), " %.3f", ex[b].unix_seconds);
              out.append(ts);
            }
            out.push_back('\n');
          }
          if (!has_inf) {
            AppendSeries(bucket_name, m, "le", "+Inf", &out);
            out.push_back(' ');
            AppendDouble(static_cast<double>(m.histogram.sample_count), &out);
            out.push_back('\n');
          }
          AppendSample(absl::StrCat(name, "_count"), m,
                       static_cast<double>(m.histogram.sample_count), &out);
          AppendSample(absl::StrCat(name, "_sum"), m, m.histogram.sample_sum, &out);
          break;
        }
        default:
          AppendSample(name, m, m.untyped.value, &out);
          break;
      }
    }
  }
  out.append("# EOF\n");
  return out;
}

std::string RenderOpenMetrics(const std::vector<std::shared_ptr<prometheus::Collectable>>& c,
                              const ExemplarLookup& exemplars) {
  std::vector<MetricFamily> families;
  for (const auto& collectable : c) {
    auto f = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(f.begin()),
                    std::make_move_iterator(f.end()));
  }
  return SerializeOpenMetrics(families, exemplars);
}

}  // namespace redmap
