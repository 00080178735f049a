#include "aggregators/red/red_aggregator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <sstream>
#include <thread>

#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace redmap {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

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

std::vector<std::string> LabelNames(const prometheus::ClientMetric& m) {
  std::vector<std::string> out;
  for (const auto& l : m.label) out.push_back(l.name);
  return out;
}

// The server series with this http_route (fails the test when absent).
const prometheus::ClientMetric& Series(const std::vector<prometheus::MetricFamily>& fams,
                                       const std::string& family, const std::string& label,
                                       const std::string& value) {
  static const prometheus::ClientMetric kMissing;
  const auto* f = Find(fams, family);
  if (f != nullptr) {
    for (const auto& m : f->metric)
      if (Label(m, label) == value) return m;
  }
  ADD_FAILURE() << "no " << family << "{" << label << "=\"" << value << "\"}";
  return kMissing;
}

double Gauge(const std::vector<prometheus::MetricFamily>& fams, const std::string& name,
             const std::string& family) {
  const auto& m = Series(fams, name, "family", family);
  return name.ends_with("_total") ? m.counter.value : m.gauge.value;
}

constexpr char kServer[] = "http_server_request_duration_seconds";
constexpr char kClient[] = "http_client_request_duration_seconds";

class RedAggregatorTest : public ::testing::Test {
 protected:
  RedAggregatorTest() {
    options_.buckets = {0.001, 0.01, 0.1};
    options_.max_series = 3;
    options_.series_ttl_ns = 10'000'000'000;
  }
  RedOptions options_;
  std::function<std::string(const Span&)> resolver_ = [](const Span&) { return std::string("svc"); };
};

TEST_F(RedAggregatorTest, ServerHistogramWithBucketEdgesInclusive) {
  RedAggregator red(options_, resolver_);
  // 1 ms exactly (edge), 0.5 ms, 10 ms exactly (edge), 50 ms, 2 s.
  for (uint64_t d : {1'000'000ull, 500'000ull, 10'000'000ull, 50'000'000ull, 2'000'000'000ull}) {
    red.OnSpan(MakeSpan(Role::kServer, 1000, 1000 + d));
  }
  auto fams = red.Collect();
  const auto* f = Find(fams, kServer);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->type, prometheus::MetricType::Histogram);
  EXPECT_FALSE(f->help.empty());
  ASSERT_EQ(f->metric.size(), 1u);
  const auto& m = f->metric[0];
  EXPECT_THAT(LabelNames(m), ElementsAre("service_name", "http_request_method",
                                         "http_response_status_code", "http_route"));
  EXPECT_EQ(Label(m, "service_name"), "svc");
  EXPECT_EQ(Label(m, "http_request_method"), "GET");
  EXPECT_EQ(Label(m, "http_response_status_code"), "200");
  EXPECT_EQ(Label(m, "http_route"), "/users/{id}");
  EXPECT_EQ(m.histogram.sample_count, 5u);
  EXPECT_NEAR(m.histogram.sample_sum, 0.001 + 0.0005 + 0.01 + 0.05 + 2.0, 1e-12);
  ASSERT_EQ(m.histogram.bucket.size(), 4u);
  EXPECT_EQ(m.histogram.bucket[0].upper_bound, 0.001);
  EXPECT_EQ(m.histogram.bucket[0].cumulative_count, 2u);  // 0.5 ms, 1 ms (le inclusive)
  EXPECT_EQ(m.histogram.bucket[1].cumulative_count, 3u);  // + 10 ms
  EXPECT_EQ(m.histogram.bucket[2].cumulative_count, 4u);  // + 50 ms
  EXPECT_EQ(m.histogram.bucket[3].cumulative_count, 5u);  // +Inf == count
  EXPECT_TRUE(std::isinf(m.histogram.bucket[3].upper_bound));
  EXPECT_EQ(Find(fams, kClient)->metric.size(), 0u);
}

TEST_F(RedAggregatorTest, EveryEdgeAndBeyond) {
  options_.buckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                      0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  RedAggregator red(options_, resolver_);
  // One span exactly on each edge (in ns, as spans carry them), one of 0 ns
  // and one beyond the last edge.
  for (double b : options_.buckets) {
    red.OnSpan(MakeSpan(Role::kServer, 0, static_cast<uint64_t>(std::llround(b * 1e9))));
  }
  red.OnSpan(MakeSpan(Role::kServer, 5, 5));
  red.OnSpan(MakeSpan(Role::kServer, 0, 60'000'000'000));
  auto fams = red.Collect();
  const auto& h = Find(fams, kServer)->metric.at(0).histogram;
  ASSERT_EQ(h.bucket.size(), options_.buckets.size() + 1);
  for (size_t i = 0; i < options_.buckets.size(); ++i) {
    EXPECT_EQ(h.bucket[i].upper_bound, options_.buckets[i]);
    EXPECT_EQ(h.bucket[i].cumulative_count, i + 2) << "le=" << options_.buckets[i];
  }
  EXPECT_EQ(h.bucket.back().cumulative_count, h.sample_count);
  EXPECT_EQ(h.sample_count, options_.buckets.size() + 2);
}

TEST_F(RedAggregatorTest, ClientSeriesCarryThePeer) {
  RedAggregator red(options_, resolver_);
  red.OnSpan(MakeSpan(Role::kClient, 0, 100, "/x", 503, "BREW"));
  Span v6 = MakeSpan(Role::kClient, 0, 100, "/y");
  v6.server.addr.family = 6;
  v6.server.addr.bytes = {};
  v6.server.addr.bytes[15] = 1;
  v6.server.port = 443;
  red.OnSpan(v6);
  auto fams = red.Collect();
  const auto& m = Series(fams, kClient, "http_route", "/x");
  EXPECT_THAT(LabelNames(m),
              ElementsAre("service_name", "http_request_method", "http_response_status_code",
                          "http_route", "server_address", "server_port"));
  EXPECT_EQ(Label(m, "server_address"), "127.0.0.1");
  EXPECT_EQ(Label(m, "server_port"), "8080");
  EXPECT_EQ(Label(m, "http_response_status_code"), "503");
  EXPECT_EQ(Label(m, "http_request_method"), "_OTHER");
  const auto& m6 = Series(fams, kClient, "http_route", "/y");
  EXPECT_EQ(Label(m6, "server_address"), "::1");
  EXPECT_EQ(Label(m6, "server_port"), "443");
  EXPECT_EQ(Find(fams, kServer)->metric.size(), 0u);
}

TEST_F(RedAggregatorTest, MethodsAndStatusCodes) {
  options_.max_series = 100;
  RedAggregator red(options_, resolver_);
  const char* known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                         "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (const char* m : known) red.OnSpan(MakeSpan(Role::kServer, 0, 1, "/m", 200, m));
  for (const char* m : {"get", "PROPFIND", "", "GETX"}) {
    red.OnSpan(MakeSpan(Role::kServer, 0, 1, "/m", 200, m));
  }
  red.OnSpan(MakeSpan(Role::kServer, 0, 1, "/nostatus", 0));
  auto fams = red.Collect();
  for (const char* m : known) {
    EXPECT_EQ(Series(fams, kServer, "http_request_method", m).histogram.sample_count, 1u) << m;
  }
  EXPECT_EQ(Series(fams, kServer, "http_request_method", "_OTHER").histogram.sample_count, 4u);
  // No response status (e.g. the response was never seen whole): empty,
  // i.e. absent in PromQL, as OpenTelemetry leaves the attribute out.
  EXPECT_EQ(Label(Series(fams, kServer, "http_route", "/nostatus"), "http_response_status_code"),
            "");
}

TEST_F(RedAggregatorTest, ServiceNameComesFromTheResolverPerSpan) {
  options_.max_series = 100;
  RedAggregator red(options_, [](const Span& s) { return "tgid-" + std::to_string(s.conn.tgid); });
  for (uint32_t tgid : {10u, 20u, 10u}) {
    Span s = MakeSpan(Role::kServer, 0, 1);
    s.conn.tgid = tgid;
    red.OnSpan(s);
  }
  auto fams = red.Collect();
  EXPECT_EQ(Series(fams, kServer, "service_name", "tgid-10").histogram.sample_count, 2u);
  EXPECT_EQ(Series(fams, kServer, "service_name", "tgid-20").histogram.sample_count, 1u);
}

TEST_F(RedAggregatorTest, SpansOfUnknownSideAreIgnored) {
  RedAggregator red(options_, resolver_);
  red.OnSpan(MakeSpan(Role::kUnknown, 0, 1));
  auto fams = red.Collect();
  EXPECT_EQ(Find(fams, kServer)->metric.size(), 0u);
  EXPECT_EQ(Find(fams, kClient)->metric.size(), 0u);
}

TEST_F(RedAggregatorTest, CapSendsNewSeriesToOneOverflowSeries) {
  RedAggregator red(options_, resolver_);
  for (int i = 0; i < 10; ++i) {
    red.OnSpan(MakeSpan(Role::kServer, 0, 100, "/r" + std::string(1, 'a' + i)));
  }
  red.OnSpan(MakeSpan(Role::kServer, 0, 100, "/ra"));  // existing series: still its own
  auto fams = red.Collect();
  const auto* f = Find(fams, kServer);
  EXPECT_EQ(f->metric.size(), 4u);  // 3 real + overflow
  EXPECT_EQ(Series(fams, kServer, "http_route", "/ra").histogram.sample_count, 2u);
  const auto& overflow = Series(fams, kServer, "http_route", "__overflow__");
  EXPECT_EQ(overflow.histogram.sample_count, 7u);
  for (const auto& l : overflow.label) EXPECT_EQ(l.value, "__overflow__") << l.name;
  EXPECT_EQ(Gauge(fams, "redmap_series_overflow_total", kServer), 7);
  EXPECT_EQ(Gauge(fams, "redmap_series_overflow_total", kClient), 0);
  EXPECT_EQ(Gauge(fams, "redmap_series_limit", kServer), 3);
  EXPECT_EQ(Gauge(fams, "redmap_series", kServer), 4);
  EXPECT_EQ(Gauge(fams, "redmap_series", kClient), 0);
  EXPECT_EQ(Find(fams, "redmap_series_overflow_total")->type, prometheus::MetricType::Counter);
  EXPECT_EQ(Find(fams, "redmap_series")->type, prometheus::MetricType::Gauge);
}

TEST_F(RedAggregatorTest, CapsArePerFamily) {
  RedAggregator red(options_, resolver_);
  for (int i = 0; i < 5; ++i) {
    red.OnSpan(MakeSpan(Role::kClient, 0, 100, "/c" + std::string(1, 'a' + i)));
  }
  red.OnSpan(MakeSpan(Role::kServer, 0, 100, "/s"));
  auto fams = red.Collect();
  const auto& overflow = Series(fams, kClient, "http_route", "__overflow__");
  EXPECT_EQ(overflow.label.size(), 6u);
  for (const auto& l : overflow.label) EXPECT_EQ(l.value, "__overflow__") << l.name;
  EXPECT_EQ(Gauge(fams, "redmap_series_overflow_total", kClient), 2);
  EXPECT_EQ(Series(fams, kServer, "http_route", "/s").histogram.sample_count, 1u);
  EXPECT_EQ(Gauge(fams, "redmap_series_overflow_total", kServer), 0);
}

TEST_F(RedAggregatorTest, SeriesExpireAfterTtlNotWhenRead) {
  RedAggregator red(options_, resolver_);
  red.OnSpan(MakeSpan(Role::kServer, 0, 1'000'000'000, "/old"));
  red.OnSpan(MakeSpan(Role::kServer, 0, 9'000'000'000, "/new"));
  red.OnSpan(MakeSpan(Role::kClient, 0, 2'000'000'000, "/edge"));
  red.Collect();
  red.Collect();
  EXPECT_EQ(red.series(true), 2u);
  red.Expire(5'000'000'000);  // before any ttl: nothing goes (and no underflow)
  EXPECT_EQ(red.series(true), 2u);
  red.Expire(12'000'000'000);  // /old idle 11 s > 10 s ttl; /new 3 s; /edge exactly 10 s
  EXPECT_EQ(red.series(true), 1u);
  EXPECT_EQ(red.series(false), 1u);
  red.Expire(12'000'000'001);
  EXPECT_EQ(red.series(false), 0u);
  auto fams = red.Collect();
  EXPECT_EQ(Series(fams, kServer, "http_route", "/new").histogram.sample_count, 1u);
  EXPECT_EQ(Gauge(fams, "redmap_series", kServer), 1);
}

TEST_F(RedAggregatorTest, ExpiryFreesRoomUnderTheCap) {
  RedAggregator red(options_, resolver_);
  for (int i = 0; i < 4; ++i) {
    red.OnSpan(MakeSpan(Role::kServer, 0, 1'000'000'000, "/r" + std::string(1, 'a' + i)));
  }
  EXPECT_EQ(red.series(true), 4u);  // 3 + overflow
  red.Expire(20'000'000'000);
  EXPECT_EQ(red.series(true), 0u);
  red.OnSpan(MakeSpan(Role::kServer, 0, 21'000'000'000, "/fresh"));
  auto fams = red.Collect();
  EXPECT_EQ(Series(fams, kServer, "http_route", "/fresh").histogram.sample_count, 1u);
  // The overflow counter is a counter: expiry does not take it back.
  EXPECT_EQ(Gauge(fams, "redmap_series_overflow_total", kServer), 1);
}

// A resolver that hands out one identity object, as the identity cache does
// for a process: repeated label inputs hit the aggregator's series memo.
TEST_F(RedAggregatorTest, MemoizedSeriesStayExactAcrossExpiryCapAndLabelChanges) {
  const IdentityPtr who = NamedIdentity("svc");
  RedAggregator red(options_, ServiceNameResolver([who](const Span&) { return who; }));
  red.OnSpan(MakeSpan(Role::kServer, 0, 1'000'000'000, "/a", 503));
  // The last insert: the /a 200 memo entry is current when expiry comes.
  for (int i = 0; i < 3; ++i) red.OnSpan(MakeSpan(Role::kServer, 0, 1'000'000'000, "/a"));
  auto fams = red.Collect();
  EXPECT_EQ(Series(fams, kServer, "http_response_status_code", "200").histogram.sample_count, 3u);
  EXPECT_EQ(Series(fams, kServer, "http_response_status_code", "503").histogram.sample_count, 1u);

  // Expiry erases the series the memo points at: the next span makes a new one.
  red.Expire(20'000'000'000);
  EXPECT_EQ(red.series(true), 0u);
  red.OnSpan(MakeSpan(Role::kServer, 0, 21'000'000'000, "/a"));
  red.OnSpan(MakeSpan(Role::kServer, 0, 21'000'000'000, "/a"));
  fams = red.Collect();
  EXPECT_EQ(Series(fams, kServer, "http_route", "/a").histogram.sample_count, 2u);

  // At the cap, every span of a key that overflowed counts as overflowed.
  red.OnSpan(MakeSpan(Role::kServer, 0, 21'000'000'000, "/b"));
  red.OnSpan(MakeSpan(Role::kServer, 0, 21'000'000'000, "/c"));
  for (int i = 0; i < 4; ++i) red.OnSpan(MakeSpan(Role::kServer, 0, 21'000'000'000, "/d"));
  fams = red.Collect();
  EXPECT_EQ(Series(fams, kServer, "http_route", "__overflow__").histogram.sample_count, 4u);
  EXPECT_EQ(Gauge(fams, "redmap_series_overflow_total", kServer), 4);
  EXPECT_EQ(Series(fams, kServer, "http_route", "/a").histogram.sample_count, 2u);

  // Client spans: the server's address and port are part of the key.
  Span c = MakeSpan(Role::kClient, 0, 100, "/x");
  red.OnSpan(c);
  c.server.port = 9090;
  red.OnSpan(c);
  red.OnSpan(c);
  fams = red.Collect();
  EXPECT_EQ(Series(fams, kClient, "server_port", "8080").histogram.sample_count, 1u);
  EXPECT_EQ(Series(fams, kClient, "server_port", "9090").histogram.sample_count, 2u);
}

TEST_F(RedAggregatorTest, SpanEndingBeforeItStartsIsCountedNotObserved) {
  RedAggregator red(options_, resolver_);
  red.OnSpan(MakeSpan(Role::kServer, 200, 100));
  auto fams = red.Collect();
  EXPECT_EQ(Find(fams, kServer)->metric.size(), 0u);
  EXPECT_EQ(Find(fams, "redmap_spans_invalid_total")->metric[0].counter.value, 1);
}

TEST_F(RedAggregatorTest, CollectWhileObserving) {
  options_.max_series = 1000;
  RedAggregator red(options_, resolver_);
  constexpr int kSpans = 20000;
  std::thread writer([&red] {
    for (int i = 0; i < kSpans; ++i) {
      red.OnSpan(MakeSpan(Role::kServer, 0, 1000, "/r" + std::to_string(i % 50) + "x"));
    }
  });
  uint64_t last = 0;
  while (last < kSpans) {
    uint64_t total = 0;
    const auto fams = red.Collect();
    for (const auto& m : Find(fams, kServer)->metric) {
      EXPECT_EQ(m.histogram.bucket.back().cumulative_count, m.histogram.sample_count);
      total += m.histogram.sample_count;
    }
    EXPECT_GE(total, last);
    last = total;
    if (last < kSpans) std::this_thread::yield();
  }
  writer.join();
}

TEST_F(RedAggregatorTest, ExpositionPassesPromtoolLint) {
  constexpr char kPromtool[] = "/usr/bin/promtool";
  ASSERT_EQ(access(kPromtool, X_OK), 0) << kPromtool << " is required for this test";
  options_.max_series = 2;
  RedAggregator red(options_, resolver_);
  red.OnSpan(MakeSpan(Role::kServer, 0, 1'000'000, "/a/1", 0));
  red.OnSpan(MakeSpan(Role::kServer, 0, 1'000'000, "/b", 404, "PROPFIND"));
  red.OnSpan(MakeSpan(Role::kServer, 0, 1'000'000, "/c"));  // overflow
  red.OnSpan(MakeSpan(Role::kClient, 0, 1'000'000, "/d"));
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, red.Collect());
  EXPECT_THAT(text.str(), HasSubstr("http_server_request_duration_seconds_bucket{service_name="
                                    "\"svc\",http_request_method=\"GET\",http_response_status_code="
                                    "\"\",http_route=\"/a/{id}\",le=\"+Inf\"} 1"));

  char path[] = "/tmp/redmap-red-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string s = text.str();
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  close(fd);
  FILE* lint = popen((std::string(kPromtool) + " check metrics < " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(lint, nullptr);
  std::string out;
  char buf[1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), lint)) > 0) out.append(buf, n);
  int status = pclose(lint);
  unlink(path);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out << "\n" << s;
  EXPECT_EQ(out, "") << s;
}

}  // namespace
}  // namespace redmap
