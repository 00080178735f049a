// OpenMetrics 1.0 text exposition of prometheus-cpp metric families, with
// exemplars on histogram buckets (prometheus-cpp 1.0 serializes only the
// 0.0.4 text format, which has no exemplars). Served on /metrics when the
// scraper's Accept header asks for application/openmetrics-text.
//
// Mapping: counters are families without their "_total" suffix whose
// samples carry it (a counter whose name lacks "_total" is exported as
// "unknown" under its own name, so no sample is renamed); gauges, summaries
// and histograms as they are; untyped -> unknown; "# EOF" ends it.
#ifndef REDMAP_EXPORTER_OPENMETRICS_H_
#define REDMAP_EXPORTER_OPENMETRICS_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aggregators/traces/exemplar_store.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap {

// Exemplars of one histogram series (family name, label values in the
// family's order), one slot per bucket; empty for none.
using ExemplarLookup = std::function<std::vector<traces::Exemplar>(
    std::string_view family, const std::vector<std::string>& label_values)>;

std::string SerializeOpenMetrics(const std::vector<prometheus::MetricFamily>& families,
                                 const ExemplarLookup& exemplars);
std::string RenderOpenMetrics(const std::vector<std::shared_ptr<prometheus::Collectable>>& c,
                              const ExemplarLookup& exemplars);

}  // namespace redmap

#endif  // REDMAP_EXPORTER_OPENMETRICS_H_
