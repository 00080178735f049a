#include "aggregators/self/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily One(const std::string& name, const std::string& help, MetricType type, double value) {
  MetricFamily f{name, help, type, {}};
  ClientMetric m;
  if (type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace

absl::StatusOr<ProcStat> ParseProcStat(absl::string_view line) {
  size_t close = line.rfind(')');
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError("/proc stat line without a command name");
  }
  // Field 3 (state) is the first after the name; man 5 proc numbers fields from 1.
  std::vector<absl::string_view> f =
      absl::StrSplit(line.substr(close + 1), ' ', absl::SkipWhitespace());
  auto field = [&f](int n, uint64_t* v) {
    size_t i = static_cast<size_t>(n - 3);
    return i < f.size() && absl::SimpleAtoi(f[i], v);
  };
  ProcStat s;
  if (!field(14, &s.utime_ticks) || !field(15, &s.stime_ticks) || !field(20, &s.num_threads) ||
      !field(22, &s.start_time_ticks) || !field(23, &s.vsize_bytes) || !field(24, &s.rss_pages)) {
    return absl::InvalidArgumentError("/proc stat line with missing or non-numeric fields");
  }
  return s;
}

ProcessMetrics::ProcessMetrics(std::string proc_root, std::string pid_dir)
    : proc_root_(std::move(proc_root)),
      pid_dir_(std::move(pid_dir)),
      ticks_per_second_(sysconf(_SC_CLK_TCK)),
      page_size_(sysconf(_SC_PAGESIZE)) {
  std::string stat;
  if (ReadFile(proc_root_ + "/stat", &stat)) {
    for (absl::string_view l : absl::StrSplit(stat, '\n')) {
      uint64_t btime = 0;
      if (absl::ConsumePrefix(&l, "btime ") && absl::SimpleAtoi(l, &btime)) {
        boot_time_seconds_ = static_cast<double>(btime);
      }
    }
  }
}

std::vector<MetricFamily> ProcessMetrics::Collect() const {
  std::vector<MetricFamily> out;
  const std::string dir = proc_root_ + "/" + pid_dir_;
  std::string line;
  if (ReadFile(dir + "/stat", &line)) {
    if (absl::StatusOr<ProcStat> s = ParseProcStat(line); s.ok()) {
      const double hz = static_cast<double>(ticks_per_second_);
      out.push_back(One("process_cpu_seconds_total",
                        "Total user and system CPU time spent in seconds.", MetricType::Counter,
                        static_cast<double>(s->utime_ticks + s->stime_ticks) / hz));
      out.push_back(One("process_resident_memory_bytes", "Resident memory size in bytes.",
                        MetricType::Gauge,
                        static_cast<double>(s->rss_pages) * static_cast<double>(page_size_)));
      out.push_back(One("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                        MetricType::Gauge, static_cast<double>(s->vsize_bytes)));
      out.push_back(One("process_threads", "Number of OS threads in the process.",
                        MetricType::Gauge, static_cast<double>(s->num_threads)));
      if (boot_time_seconds_ > 0) {
        out.push_back(One(
            "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            MetricType::Gauge, boot_time_seconds_ + static_cast<double>(s->start_time_ticks) / hz));
      }
    }
  }
  if (DIR* d = opendir((dir + "/fd").c_str())) {
    double fds = 0;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++fds;
    }
    closedir(d);
    out.push_back(
        One("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, fds));
  }
  if (pid_dir_ == "self" && !out.empty()) {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      out.push_back(One("process_max_fds", "Maximum number of open file descriptors.",
                        MetricType::Gauge, static_cast<double>(lim.rlim_cur)));
    }
  }
  return out;
}

}  // namespace redmap
