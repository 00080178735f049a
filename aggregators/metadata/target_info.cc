#include "aggregators/metadata/target_info.h"

#include <unistd.h>

#include "prometheus/client_metric.h"

namespace redmap {

TargetInfo::TargetInfo(std::string version, std::string host_name)
    : version_(std::move(version)), host_name_(std::move(host_name)) {}

std::vector<prometheus::MetricFamily> TargetInfo::Collect() const {
  prometheus::MetricFamily info{"target_info",
                                "Resource attributes of this redmap instance.",
                                prometheus::MetricType::Gauge,
                                {}};
  prometheus::ClientMetric m;
  m.label = {{"service_name", "redmap"}, {"service_version", version_}, {"host_name", host_name_}};
  m.gauge.value = 1;
  info.metric.push_back(m);
  prometheus::MetricFamily build{
      "redmap_build_info", "redmap version.", prometheus::MetricType::Gauge, {}};
  prometheus::ClientMetric b;
  b.label = {{"version", version_}};
  b.gauge.value = 1;
  build.metric.push_back(b);
  return {info, build};
}

std::string LocalHostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

}  // namespace redmap
