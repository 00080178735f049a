// The standard Prometheus process metrics for redmap's own process
// (process_cpu_seconds_total, process_resident_memory_bytes, ...; the names
// every client library's process collector exports), read from /proc at
// scrape time. The redmap health dashboard and capacity planning read them.
#ifndef REDMAP_AGGREGATORS_SELF_PROCESS_METRICS_H_
#define REDMAP_AGGREGATORS_SELF_PROCESS_METRICS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace redmap {

// Fields of /proc/<pid>/stat that the collector uses, in the kernel's units.
struct ProcStat {
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t num_threads = 0;
  uint64_t start_time_ticks = 0;  // since boot
  uint64_t vsize_bytes = 0;
  uint64_t rss_pages = 0;
};

// Parses one /proc/<pid>/stat line. The command name (field 2) may hold
// spaces and parentheses: fields are counted after its last ')'.
absl::StatusOr<ProcStat> ParseProcStat(absl::string_view line);

class ProcessMetrics : public prometheus::Collectable {
 public:
  // proc_root: "/proc" (tests may point elsewhere); pid_dir: "self".
  explicit ProcessMetrics(std::string proc_root = "/proc", std::string pid_dir = "self");
  // Families whose source file cannot be read are left out (never an error
  // on the scrape path).
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string proc_root_;
  std::string pid_dir_;
  double boot_time_seconds_ = 0;  // btime from /proc/stat, read once
  long ticks_per_second_;
  long page_size_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SELF_PROCESS_METRICS_H_
