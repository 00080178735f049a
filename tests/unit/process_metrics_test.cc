// ProcessMetrics: /proc/<pid>/stat parsing (names with spaces and
// parentheses, short lines) and the families read from this very process.
#include "aggregators/self/process_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace redmap {
namespace {

// A real line from `cat /proc/self/stat` on the dev VM (kernel 6.18), with the
// command name replaced by one holding spaces and a ')'.
constexpr char kStatLine[] =
    "4242 (my (weird) app) S 1 4242 4242 0 -1 4194560 1020 0 0 0 37 12 0 0 20 0 7 0 "
    "2795812 23486464 1342 18446744073709551615 94386 94387 140727 0 0 0 0 0 0 0 0 0 17 1 "
    "0 0 0 0 0";

TEST(ParseProcStatTest, ReadsFieldsAfterTheLastParenthesis) {
  absl::StatusOr<ProcStat> s = ParseProcStat(kStatLine);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->utime_ticks, 37u);
  EXPECT_EQ(s->stime_ticks, 12u);
  EXPECT_EQ(s->num_threads, 7u);
  EXPECT_EQ(s->start_time_ticks, 2795812u);
  EXPECT_EQ(s->vsize_bytes, 23486464u);
  EXPECT_EQ(s->rss_pages, 1342u);
}

TEST(ParseProcStatTest, RejectsTruncatedAndGarbage) {
  EXPECT_FALSE(ParseProcStat("4242 (app) S 1 4242").ok());
  EXPECT_FALSE(ParseProcStat("no parenthesis here").ok());
  EXPECT_FALSE(ParseProcStat("1 (a) S 1 1 1 0 -1 0 0 0 0 0 x y 0 0 20 0 7 0 5 6 7").ok());
}

TEST(ProcessMetricsTest, ReportsThisProcess) {
  std::map<std::string, double> v;
  for (const prometheus::MetricFamily& f : ProcessMetrics().Collect()) {
    ASSERT_EQ(f.metric.size(), 1u) << f.name;
    v[f.name] = f.type == prometheus::MetricType::Counter ? f.metric[0].counter.value
                                                          : f.metric[0].gauge.value;
  }
  EXPECT_GE(v.at("process_cpu_seconds_total"), 0);
  EXPECT_GT(v.at("process_resident_memory_bytes"), 1 << 20);  // a gtest binary is > 1 MiB
  EXPECT_GT(v.at("process_virtual_memory_bytes"), v.at("process_resident_memory_bytes"));
  EXPECT_GE(v.at("process_threads"), 1);
  EXPECT_GT(v.at("process_start_time_seconds"), 1.6e9);  // after 2020
  EXPECT_GE(v.at("process_open_fds"), 3);                // stdin, stdout, stderr
  EXPECT_GE(v.at("process_max_fds"), v.at("process_open_fds"));
}

TEST(ProcessMetricsTest, MissingProcessLeavesFamiliesOut) {
  EXPECT_TRUE(ProcessMetrics("/nonexistent-proc", "self").Collect().empty());
}

}  // namespace
}  // namespace redmap
