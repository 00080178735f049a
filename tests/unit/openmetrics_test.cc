// The OpenMetrics exposition served to scrapers that ask for it: the same
// series as the text format (same names, same `le` strings), counters as
// families without _total, exemplars on RED buckets, "# EOF".
#include "exporter/openmetrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "aggregators/red/red_aggregator.h"
#include "exporter/http_server.h"
#include "prometheus/text_serializer.h"

namespace redmap {
namespace {

using ::testing::HasSubstr;

std::vector<prometheus::MetricFamily> RedFamilies() {
  RedOptions o;
  o.buckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
               0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  auto red = std::make_shared<RedAggregator>(o, [](const Span&) { return std::string("api"); });
  Span s;
  s.side = Role::kServer;
  s.start_ns = 1000;
  s.end_ns = 1000 + 3'000'000;  // 3 ms
  s.http.method = "GET";
  s.http.target = "/users/7";
  s.http.status = 200;
  red->OnSpan(s);
  return red->Collect();
}

TEST(OpenMetricsTest, SameSeriesAsTextWithExemplars) {
  auto families = RedFamilies();
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, families);
  std::string om = SerializeOpenMetrics(
      families, [](std::string_view family, const std::vector<std::string>& values) {
        std::vector<traces::Exemplar> ex(18);
        if (family == "http_server_request_duration_seconds" &&
            values == std::vector<std::string>{"api", "GET", "200", "/users/{id}"}) {
          ex[6] = {"0af7651916cd43dd8448eb211c80319c", 0.003, 1700000000.25};
        }
        return ex;
      });
  // Every bucket/count/sum line of the text format is in the OpenMetrics
  // one, character for character (exemplars follow after a space).
  std::istringstream lines(text.str());
  std::string line;
  int checked = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("http_server_request_duration_seconds", 0) != 0) continue;
    EXPECT_THAT(om, HasSubstr(line)) << line;
    ++checked;
  }
  EXPECT_EQ(checked, 18 + 2);
  EXPECT_THAT(om, HasSubstr(
                      "http_server_request_duration_seconds_bucket{service_name=\"api\","
                      "http_request_method=\"GET\",http_response_status_code=\"200\","
                      "http_route=\"/users/{id}\",le=\"0.005\"} 1 # "
                      "{trace_id=\"0af7651916cd43dd8448eb211c80319c\"} 0.003 1700000000.250\n"));
  EXPECT_THAT(om, HasSubstr("# TYPE http_server_request_duration_seconds histogram\n"));
  // Counters: family without _total, samples with it.
  EXPECT_THAT(om, HasSubstr("# TYPE redmap_series_overflow counter\n"));
  EXPECT_THAT(om, HasSubstr("redmap_series_overflow_total{family=\"http_server_request_duration_seconds\"} 0\n"));
  EXPECT_EQ(om.substr(om.size() - 6), "# EOF\n");
}

TEST(OpenMetricsTest, ServedOnlyWhenAsked) {
  auto server = HttpServer::Start("127.0.0.1:0", nullptr);
  ASSERT_TRUE(server.ok());
  auto registry = std::make_shared<RedAggregator>(
      RedOptions{{0.001, 0.01}, 10, 1000}, [](const Span&) { return std::string("x"); });
  (*server)->SetCollectables({registry});
  EXPECT_EQ((*server)->RenderMetrics(false).find("# EOF"), std::string::npos);
  EXPECT_NE((*server)->RenderMetrics(true).find("# EOF"), std::string::npos);
}

}  // namespace
}  // namespace redmap
