// Label matching for tests that look up one series among a family's metrics.
#ifndef REDMAP_TESTS_TESTLIB_METRIC_LABELS_H_
#define REDMAP_TESTS_TESTLIB_METRIC_LABELS_H_

#include <map>
#include <string>

#include "prometheus/client_metric.h"

namespace redmap::testing {

using Labels = std::map<std::string, std::string>;

// Whether the metric carries every (name, value) pair of `want` (and maybe more).
inline bool HasLabels(const prometheus::ClientMetric& m, const Labels& want) {
  for (const auto& [k, v] : want) {
    bool found = false;
    for (const auto& l : m.label) found |= l.name == k && l.value == v;
    if (!found) return false;
  }
  return true;
}

}  // namespace redmap::testing

#endif  // REDMAP_TESTS_TESTLIB_METRIC_LABELS_H_
