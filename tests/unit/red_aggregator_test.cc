#include "aggregators/red/red_aggregator.h"

#include <gtest/gtest.h>

#include <cmath>

#include "prometheus/metric_family.h"

namespace redmap {
namespace {

Span MakeSpan(Role side, uint64_t start, uint64_t end, const std::string& target = "/users/7",
              int status = 200, const std::string& method = "GET") {
  Span s;
  s.protocol = Protocol::kHttp1;
  s.side = side;
  s.start_ns = start;
  s.end_ns = end;
  s.http.method = method;
  s.http.target = target;
  s.http.status = status;
  s.server.addr = IpAddress::V4(0x0100007f);
  s.server.port = 8080;
  return s;
}

const prometheus::MetricFamily* Find(const std::vector<prometheus::MetricFamily>& fams,
                                     const std::string& name) {
  for (const auto& f : fams)
    if (f.name == name) return &f;
  return nullptr;
}

std::string Label(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label)
    if (l.name == name) return l.value;
  return "<missing>";
}

class RedAggregatorTest : public ::testing::Test {
 protected:
  RedAggregatorTest() {
    options_.buckets = {0.001, 0.01, 0.1};
    options_.max_series = 3;
    options_.series_ttl_ns = 10'000'000'000;
  }
  RedOptions options_;
  ServiceNameResolver resolver_ = [](const Span&) { return std::string("svc"); };
};

TEST_F(RedAggregatorTest, ServerHistogramWithBucketEdgesInclusive) {
  RedAggregator red(options_, resolver_);
  // 1 ms exactly (edge), 0.5 ms, 10 ms exactly (edge), 50 ms, 2 s.
  for (uint64_t d : {1'000'000ull, 500'000ull, 10'000'000ull, 50'000'000ull, 2'000'000'000ull}) {
    red.OnSpan(MakeSpan(Role::kServer, 1000, 1000 + d));
  }
  auto fams = red.Collect();
  const auto* f = Find(fams, "http_server_request_duration_seconds");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->type, prometheus::MetricType::Histogram);
  ASSERT_EQ(f->metric.size(), 1u);
  const auto& m = f->metric[0];
  EXPECT_EQ(Label(m, "service_name"), "svc");
  EXPECT_EQ(Label(m, "http_request_method"), "GET");
  EXPECT_EQ(Label(m, "http_response_status_code"), "200");
  EXPECT_EQ(Label(m, "http_route"), "/users/{id}");
  EXPECT_EQ(m.histogram.sample_count, 5u);
  EXPECT_NEAR(m.histogram.sample_sum, 0.001 + 0.0005 + 0.01 + 0.05 + 2.0, 1e-12);
  ASSERT_EQ(m.histogram.bucket.size(), 4u);
  EXPECT_EQ(m.histogram.bucket[0].cumulative_count, 2u);  // 0.5 ms, 1 ms (le inclusive)
  EXPECT_EQ(m.histogram.bucket[1].cumulative_count, 3u);  // + 10 ms
  EXPECT_EQ(m.histogram.bucket[2].cumulative_count, 4u);  // + 50 ms
  EXPECT_EQ(m.histogram.bucket[3].cumulative_count, 5u);  // +Inf == count
  EXPECT_TRUE(std::isinf(m.histogram.bucket[3].upper_bound));
  EXPECT_EQ(Find(fams, "http_client_request_duration_seconds")->metric.size(), 0u);
}

TEST_F(RedAggregatorTest, ClientSeriesCarryThePeer) {
  RedAggregator red(options_, resolver_);
  red.OnSpan(MakeSpan(Role::kClient, 0, 100, "/x", 503, "BREW"));
  auto fams = red.Collect();
  const auto& m = Find(fams, "http_client_request_duration_seconds")->metric.at(0);
  EXPECT_EQ(Label(m, "server_address"), "127.0.0.1");
  EXPECT_EQ(Label(m, "server_port"), "8080");
  EXPECT_EQ(Label(m, "http_response_status_code"), "503");
  EXPECT_EQ(Label(m, "http_request_method"), "_OTHER");
}

TEST_F(RedAggregatorTest, CapSendsNewSeriesToOneOverflowSeries) {
  RedAggregator red(options_, resolver_);
  for (int i = 0; i < 10; ++i) {
    red.OnSpan(MakeSpan(Role::kServer, 0, 100, "/r" + std::string(1, 'a' + i)));
  }
  auto fams = red.Collect();
  const auto* f = Find(fams, "http_server_request_duration_seconds");
  EXPECT_EQ(f->metric.size(), 4u);  // 3 real + overflow
  uint64_t overflow_count = 0;
  for (const auto& m : f->metric)
    if (Label(m, "http_route") == "__overflow__") overflow_count = m.histogram.sample_count;
  EXPECT_EQ(overflow_count, 7u);
  const auto* of = Find(fams, "redmap_series_overflow_total");
  ASSERT_NE(of, nullptr);
  EXPECT_EQ(of->metric[0].counter.value, 7);
  EXPECT_EQ(Find(fams, "redmap_series_limit")->metric[0].gauge.value, 3);
}

TEST_F(RedAggregatorTest, SeriesExpireAfterTtlNotWhenRead) {
  RedAggregator red(options_, resolver_);
  red.OnSpan(MakeSpan(Role::kServer, 0, 1'000'000'000, "/old"));
  red.OnSpan(MakeSpan(Role::kServer, 0, 9'000'000'000, "/new"));
  red.Collect();
  red.Collect();
  EXPECT_EQ(red.series(true), 2u);
  red.Expire(12'000'000'000);  // /old idle 11 s > 10 s ttl; /new 3 s
  EXPECT_EQ(red.series(true), 1u);
}

TEST_F(RedAggregatorTest, SpanEndingBeforeItStartsIsCountedNotObserved) {
  RedAggregator red(options_, resolver_);
  red.OnSpan(MakeSpan(Role::kServer, 200, 100));
  auto fams = red.Collect();
  EXPECT_EQ(Find(fams, "http_server_request_duration_seconds")->metric.size(), 0u);
  EXPECT_EQ(Find(fams, "redmap_spans_invalid_total")->metric[0].counter.value, 1);
}

}  // namespace
}  // namespace redmap
