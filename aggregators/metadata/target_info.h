// target_info (OpenTelemetry resource as Prometheus exports it) and
// redmap_build_info: constant gauges describing this redmap instance.
#ifndef REDMAP_AGGREGATORS_METADATA_TARGET_INFO_H_
#define REDMAP_AGGREGATORS_METADATA_TARGET_INFO_H_

#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap {

// The build may define REDMAP_VERSION (e.g. from git describe).
#ifdef REDMAP_VERSION
inline constexpr char kRedmapVersion[] = REDMAP_VERSION;
#else
inline constexpr char kRedmapVersion[] = "0.1.0";
#endif

class TargetInfo : public prometheus::Collectable {
 public:
  TargetInfo(std::string version, std::string host_name);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string version_;
  std::string host_name_;
};

// gethostname(), or "unknown".
std::string LocalHostName();

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_TARGET_INFO_H_
