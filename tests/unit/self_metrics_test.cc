// SelfMetrics::Collect(): every family, label set and zero is there from the
// start, kernel counters never go backwards, and the exposition passes
// promtool's lint.
#include "aggregators/self/self_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <sstream>
#include <thread>

#include "prometheus/text_serializer.h"

namespace redmap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

const MetricFamily* Find(const std::vector<MetricFamily>& fams, const std::string& name) {
  for (const auto& f : fams) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// The one metric of `name` whose label `key` is `value` (or the only metric
// when key is empty); fails the test when absent.
const ClientMetric& Metric(const std::vector<MetricFamily>& fams, const std::string& name,
                           const std::string& key = "", const std::string& value = "") {
  static const ClientMetric kMissing;
  const MetricFamily* f = Find(fams, name);
  if (f == nullptr) {
    ADD_FAILURE() << "no family " << name;
    return kMissing;
  }
  for (const auto& m : f->metric) {
    if (key.empty() && m.label.empty()) return m;
    for (const auto& l : m.label) {
      if (l.name == key && l.value == value) return m;
    }
  }
  ADD_FAILURE() << "no " << name << "{" << key << "=\"" << value << "\"}";
  return kMissing;
}

std::vector<std::string> LabelValues(const MetricFamily& f, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& m : f.metric) {
    for (const auto& l : m.label) {
      if (l.name == key) out.push_back(l.value);
    }
  }
  return out;
}

std::string Serialize(const std::vector<MetricFamily>& fams) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, fams);
  return out.str();
}

TEST(SelfMetricsTest, EverySeriesIsThereAndZeroBeforeAnyEvent) {
  SelfMetrics self;
  const auto fams = self.Collect();

  const MetricFamily* received = Find(fams, "redmap_events_received_total");
  ASSERT_NE(received, nullptr);
  EXPECT_EQ(received->type, MetricType::Counter);
  EXPECT_THAT(LabelValues(*received, "type"), ElementsAre("data", "close", "tcp"));

  const MetricFamily* dropped = Find(fams, "redmap_events_dropped_total");
  ASSERT_NE(dropped, nullptr);
  EXPECT_EQ(dropped->type, MetricType::Counter);
  EXPECT_THAT(LabelValues(*dropped, "reason"), ElementsAre("kernel_ring_full", "decode_error",
                                                           "conn_table_full", "buffer_overflow",
                                                           "kernel_tcp_ring_full",
                                                           "peer_unmatched"));

  // Real protocols only: "unknown" is not a protocol anyone parses.
  for (const char* name : {"redmap_parse_errors_total", "redmap_spans_total"}) {
    const MetricFamily* f = Find(fams, name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f->type, MetricType::Counter);
    EXPECT_THAT(LabelValues(*f, "protocol"), ElementsAre("http1")) << name;
  }

  for (const char* name : {"redmap_tracked_connections", "redmap_tracked_connections_limit",
                           "redmap_last_scrape_duration_seconds"}) {
    const MetricFamily* f = Find(fams, name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f->type, MetricType::Gauge) << name;
    ASSERT_EQ(f->metric.size(), 1u) << name;
    EXPECT_EQ(f->metric[0].gauge.value, 0) << name;
  }

  const MetricFamily* scrape = Find(fams, "redmap_scrape_duration_seconds");
  ASSERT_NE(scrape, nullptr);
  EXPECT_EQ(scrape->type, MetricType::Summary);
  ASSERT_EQ(scrape->metric.size(), 1u);
  EXPECT_EQ(scrape->metric[0].summary.sample_count, 0u);
  EXPECT_THAT(scrape->metric[0].summary.quantile, IsEmpty());

  for (const MetricFamily& f : fams) {
    EXPECT_FALSE(f.help.empty()) << f.name;
    if (f.type == MetricType::Counter) {
      EXPECT_THAT(f.name, ::testing::EndsWith("_total"));
      for (const auto& m : f.metric) EXPECT_EQ(m.counter.value, 0) << f.name;
    }
  }
  // Without a kernel source (replay, tests) there is nothing kernel-side to
  // report; without probes or tables, no empty families either.
  for (const char* name : {"redmap_kernel_events_total", "redmap_probe_up", "redmap_table_entries",
                           "redmap_table_capacity"}) {
    EXPECT_EQ(Find(fams, name), nullptr) << name;
  }
  std::set<std::string> names;
  for (const MetricFamily& f : fams) EXPECT_TRUE(names.insert(f.name).second) << f.name;
}

TEST(SelfMetricsTest, HotPathCountersAndGauges) {
  SelfMetrics self;
  for (int i = 0; i < 3; ++i) self.AddDataEvent();
  self.AddCloseEvent();
  self.AddDropped(DropReason::kDecodeError);
  self.AddDropped(DropReason::kConnTableFull, 5);
  self.AddDropped(DropReason::kBufferOverflow, 2);
  self.AddDropped(DropReason::kKernelRingFull);
  self.AddParseError(Protocol::kHttp1);
  self.AddSpan(Protocol::kHttp1);
  self.AddSpan(Protocol::kHttp1);
  self.SetTrackedConnections(17);
  self.SetTrackedConnectionsLimit(65536);

  const auto fams = self.Collect();
  EXPECT_EQ(Metric(fams, "redmap_events_received_total", "type", "data").counter.value, 3);
  EXPECT_EQ(Metric(fams, "redmap_events_received_total", "type", "close").counter.value, 1);
  EXPECT_EQ(Metric(fams, "redmap_events_dropped_total", "reason", "decode_error").counter.value, 1);
  EXPECT_EQ(Metric(fams, "redmap_events_dropped_total", "reason", "conn_table_full").counter.value,
            5);
  EXPECT_EQ(Metric(fams, "redmap_events_dropped_total", "reason", "buffer_overflow").counter.value,
            2);
  EXPECT_EQ(Metric(fams, "redmap_events_dropped_total", "reason", "kernel_ring_full").counter.value,
            1);
  EXPECT_EQ(Metric(fams, "redmap_parse_errors_total", "protocol", "http1").counter.value, 1);
  EXPECT_EQ(Metric(fams, "redmap_spans_total", "protocol", "http1").counter.value, 2);
  EXPECT_EQ(Metric(fams, "redmap_tracked_connections").gauge.value, 17);
  EXPECT_EQ(Metric(fams, "redmap_tracked_connections_limit").gauge.value, 65536);
  EXPECT_EQ(self.data_events(), 3u);
  EXPECT_EQ(self.dropped(DropReason::kConnTableFull), 5u);
  EXPECT_EQ(self.parse_errors(Protocol::kHttp1), 1u);
  EXPECT_EQ(self.spans(Protocol::kHttp1), 2u);
}

TEST(SelfMetricsTest, KernelCountersComeFromTheReader) {
  SelfMetrics self;
  self.AddDropped(DropReason::kKernelRingFull, 2);  // e.g. counted by the source itself
  self.SetKernelStatsReader([] {
    KernelStats k;
    k.ringbuf_drops = 40;
    k.events = 1000;
    k.conn_classified = 7;
    k.conn_unclassified = 3;
    k.read_failed = 1;
    return k;
  });
  const auto fams = self.Collect();
  EXPECT_EQ(Metric(fams, "redmap_events_dropped_total", "reason", "kernel_ring_full").counter.value,
            42);
  EXPECT_EQ(Metric(fams, "redmap_kernel_events_total").counter.value, 1000);
  EXPECT_EQ(Metric(fams, "redmap_kernel_connections_classified_total").counter.value, 7);
  EXPECT_EQ(Metric(fams, "redmap_kernel_connections_unclassified_total").counter.value, 3);
  EXPECT_EQ(Metric(fams, "redmap_kernel_payload_read_failures_total").counter.value, 1);
  for (const char* name :
       {"redmap_kernel_events_total", "redmap_kernel_connections_classified_total",
        "redmap_kernel_connections_unclassified_total",
        "redmap_kernel_payload_read_failures_total"}) {
    EXPECT_EQ(Find(fams, name)->type, MetricType::Counter) << name;
  }
}

TEST(SelfMetricsTest, KernelCountersNeverGoBackwards) {
  SelfMetrics self;
  uint64_t events = 100;
  self.SetKernelStatsReader([&events] {
    KernelStats k;
    k.events = events;
    k.ringbuf_drops = events / 10;
    return k;
  });
  auto value = [&self](const char* name, const char* key = "", const char* v = "") {
    return Metric(self.Collect(), name, key, v).counter.value;
  };
  EXPECT_EQ(value("redmap_kernel_events_total"), 100);
  events = 50;  // e.g. a map reloaded behind our back
  EXPECT_EQ(value("redmap_kernel_events_total"), 100);
  events = 130;
  EXPECT_EQ(value("redmap_kernel_events_total"), 130);

  // A new source starts from zero: its counts add to what came before.
  self.SetKernelStatsReader([] {
    KernelStats k;
    k.events = 5;
    k.ringbuf_drops = 1;
    return k;
  });
  EXPECT_EQ(value("redmap_kernel_events_total"), 135);
  EXPECT_EQ(value("redmap_events_dropped_total", "reason", "kernel_ring_full"), 14);

  // Source gone (shutdown): the families stay with their last values.
  self.SetKernelStatsReader(nullptr);
  EXPECT_EQ(value("redmap_kernel_events_total"), 135);
  EXPECT_EQ(value("redmap_events_dropped_total", "reason", "kernel_ring_full"), 14);
}

TEST(SelfMetricsTest, ProbesAndTables) {
  SelfMetrics self;
  self.SetProbeStatus("sys_exit", true);
  self.SetProbeStatus("ssl_write", false);
  self.SetProbeStatus("ssl_write", true);  // re-attached: last status wins
  self.SetProbeStatus("sockops", false);
  self.SetTableFillReader([] {
    return std::vector<SelfMetrics::TableFill>{{"bpf_connections", 12, 65536},
                                               {"ring_buffer_bytes", 4096, 8388608}};
  });
  const auto fams = self.Collect();
  const MetricFamily* up = Find(fams, "redmap_probe_up");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->type, MetricType::Gauge);
  EXPECT_THAT(LabelValues(*up, "probe"), UnorderedElementsAre("sys_exit", "ssl_write", "sockops"));
  EXPECT_EQ(Metric(fams, "redmap_probe_up", "probe", "sys_exit").gauge.value, 1);
  EXPECT_EQ(Metric(fams, "redmap_probe_up", "probe", "ssl_write").gauge.value, 1);
  EXPECT_EQ(Metric(fams, "redmap_probe_up", "probe", "sockops").gauge.value, 0);
  EXPECT_EQ(Metric(fams, "redmap_table_entries", "table", "bpf_connections").gauge.value, 12);
  EXPECT_EQ(Metric(fams, "redmap_table_capacity", "table", "bpf_connections").gauge.value, 65536);
  EXPECT_EQ(Metric(fams, "redmap_table_entries", "table", "ring_buffer_bytes").gauge.value, 4096);
  EXPECT_EQ(Metric(fams, "redmap_table_capacity", "table", "ring_buffer_bytes").gauge.value,
            8388608);
  EXPECT_EQ(Find(fams, "redmap_table_entries")->type, MetricType::Gauge);
}

TEST(SelfMetricsTest, ScrapeDurationIsASummaryWithoutQuantiles) {
  SelfMetrics self;
  self.ObserveScrapeDuration(0.25);
  self.ObserveScrapeDuration(0.5);
  const auto fams = self.Collect();
  EXPECT_EQ(Metric(fams, "redmap_last_scrape_duration_seconds").gauge.value, 0.5);
  const ClientMetric& s = Metric(fams, "redmap_scrape_duration_seconds");
  EXPECT_EQ(s.summary.sample_count, 2u);
  EXPECT_EQ(s.summary.sample_sum, 0.75);
  const std::string text = Serialize(fams);
  EXPECT_THAT(text, HasSubstr("# TYPE redmap_scrape_duration_seconds summary\n"));
  EXPECT_THAT(text, HasSubstr("redmap_scrape_duration_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("redmap_scrape_duration_seconds_sum 0.75\n"));
}

TEST(SelfMetricsTest, ConcurrentIncrementsAreAllCounted) {
  SelfMetrics self;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&self] {
      for (int i = 0; i < kPerThread; ++i) self.AddDataEvent();
    });
  }
  double last = 0;
  for (int i = 0; i < 20; ++i) {  // scrapes while counting: never backwards
    double v = Metric(self.Collect(), "redmap_events_received_total", "type", "data").counter.value;
    EXPECT_GE(v, last);
    last = v;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(self.data_events(), 2u * kPerThread);
}

// promtool is a test dependency (CI installs it): a missing promtool fails.
TEST(SelfMetricsTest, ExpositionPassesPromtoolLint) {
  constexpr char kPromtool[] = "/usr/bin/promtool";
  ASSERT_EQ(access(kPromtool, X_OK), 0) << kPromtool << " is required for this test";
  SelfMetrics self;
  self.AddDataEvent();
  self.SetProbeStatus("sys_exit", true);
  self.ObserveScrapeDuration(0.001);
  self.SetKernelStatsReader([] { return KernelStats{1, 2, 3, 4, 5}; });
  self.SetTableFillReader([] {
    return std::vector<SelfMetrics::TableFill>{{"bpf_connections", 1, 2}};
  });
  const std::string text = Serialize(self.Collect());

  char path[] = "/tmp/redmap-self-metrics-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  FILE* lint = popen((std::string(kPromtool) + " check metrics < " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(lint, nullptr);
  std::string out;
  char buf[1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), lint)) > 0) out.append(buf, n);
  int status = pclose(lint);
  unlink(path);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out << "\n" << text;
  EXPECT_EQ(out, "") << text;  // lint warnings too
}

}  // namespace
}  // namespace redmap
