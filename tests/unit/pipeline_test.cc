// The pipeline wired as the exporter wires it, fed hand-made events, read
// back as a Prometheus exposition and linted with promtool.
#include "aggregators/pipeline.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "aggregators/metadata/target_info.h"
#include "exporter/http_server.h"
#include "tests/testlib/fixtures.h"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using ::redmap::testing::Fixture;
using ::redmap::testing::IsOk;
using ::testing::HasSubstr;

PipelineOptions Options() {
  PipelineOptions o;
  o.red.buckets = {0.001, 0.01};
  return o;
}

void Exchange(Pipeline* p, int fd, uint32_t* seq_in, uint32_t* seq_out, uint64_t* now,
              const std::string& req, const std::string& resp, uint32_t tgid = 0,
              std::string_view comm = {}) {
  DataEvent e;
  e.conn = ConnKey{tgid, fd, 1};
  e.process_name = comm;
  e.protocol = Protocol::kHttp1;
  e.role = Role::kServer;
  e.has_tcp_seq = true;
  e.local.addr = IpAddress::V4(0x0100007f);
  e.local.port = 80;
  e.remote = e.local;
  e.remote.port = 50000;
  e.direction = Direction::kIngress;
  e.enter_ns = *now;
  e.exit_ns = *now += 100'000;
  e.tcp_seq = *seq_in;
  e.byte_count = static_cast<uint32_t>(req.size());
  *seq_in += e.byte_count;
  e.payload = req;
  p->OnData(e);
  e.direction = Direction::kEgress;
  e.enter_ns = *now += 400'000;
  e.exit_ns = *now += 100'000;
  e.tcp_seq = *seq_out;
  e.byte_count = static_cast<uint32_t>(resp.size());
  *seq_out += e.byte_count;
  e.payload = resp;
  p->OnData(e);
}

TEST(PipelineTest, EventsToExposition) {
  auto p = Pipeline::Create(Options());
  ASSERT_THAT(p, IsOk());
  uint32_t in = 1, out = 1;
  uint64_t now = 1'000'000;
  for (int i = 0; i < 3; ++i) {
    Exchange(p->get(), 4, &in, &out, &now, Fixture("http1/curl_get.req"),
             Fixture("http1/nginx_200.resp"));
  }
  (*p)->OnClose(CloseEvent{ConnKey{0, 4, 1}, now});
  std::string text = RenderExposition((*p)->Collectables());
  EXPECT_THAT(
      text, HasSubstr("http_server_request_duration_seconds_count{service_name=\"unknown_service\","
                      "http_request_method=\"GET\",http_response_status_code=\"200\","
                      "http_route=\"/api/items/{id}\"} 3"));
  // 0.6 ms each: first bucket (1 ms).
  EXPECT_THAT(text, HasSubstr("le=\"0.001\"} 3"));
  EXPECT_THAT(text, HasSubstr("redmap_events_received_total{type=\"data\"} 6"));
  EXPECT_THAT(text, HasSubstr("redmap_events_received_total{type=\"close\"} 1"));
  EXPECT_THAT(text, HasSubstr("redmap_spans_total{protocol=\"http1\"} 3"));
  EXPECT_THAT(text, HasSubstr("redmap_tracked_connections 0"));
  EXPECT_THAT(text, HasSubstr("target_info{service_name=\"redmap\""));

  // promtool is part of the test dependencies: lint must run, not skip.
  ASSERT_EQ(access("/usr/bin/promtool", X_OK), 0) << "/usr/bin/promtool is required";
  char path[] = "/tmp/redmap-exposition-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  FILE* lint =
      popen((std::string("/usr/bin/promtool check metrics < ") + path + " 2>&1").c_str(), "r");
  ASSERT_NE(lint, nullptr);
  std::string lint_out;
  char buf[1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), lint)) > 0) lint_out.append(buf, n);
  int st = pclose(lint);
  unlink(path);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << lint_out;
}

TEST(PipelineTest, ZeroCountersArePresentBeforeAnyEvent) {
  auto p = Pipeline::Create(Options());
  ASSERT_THAT(p, IsOk());
  std::string text = RenderExposition((*p)->Collectables());
  for (const char* series : {"redmap_events_dropped_total{reason=\"kernel_ring_full\"} 0",
                             "redmap_events_dropped_total{reason=\"decode_error\"} 0",
                             "redmap_events_dropped_total{reason=\"conn_table_full\"} 0",
                             "redmap_events_dropped_total{reason=\"buffer_overflow\"} 0",
                             "redmap_parse_errors_total{protocol=\"http1\"} 0",
                             "redmap_series{family=\"http_server_request_duration_seconds\"} 0"}) {
    EXPECT_THAT(text, HasSubstr(series));
  }
}

TEST(PipelineTest, RejectsBadBuckets) {
  PipelineOptions o;
  o.red.buckets = {0.1, 0.1};
  EXPECT_FALSE(Pipeline::Create(o).ok());
}

TEST(PipelineTest, TickExpiresIdleConnectionsAndSeries) {
  PipelineOptions o = Options();
  o.conntrack.idle_timeout_ns = 10'000'000'000;
  o.red.series_ttl_ns = 20'000'000'000;
  auto p = Pipeline::Create(o);
  ASSERT_THAT(p, IsOk());
  uint32_t in = 1, out = 1;
  uint64_t now = 1'000'000;
  Exchange(p->get(), 4, &in, &out, &now, Fixture("http1/curl_get.req"),
           Fixture("http1/nginx_200.resp"));
  std::string text = RenderExposition((*p)->Collectables());
  EXPECT_THAT(text, HasSubstr("redmap_tracked_connections 1"));
  (*p)->Tick(15'000'000'000);
  text = RenderExposition((*p)->Collectables());
  EXPECT_THAT(text, HasSubstr("redmap_tracked_connections 0"));
  EXPECT_THAT(text, HasSubstr("redmap_series{family=\"http_server_request_duration_seconds\"} 1"));
  (*p)->Tick(25'000'000'000);
  text = RenderExposition((*p)->Collectables());
  EXPECT_THAT(text, HasSubstr("redmap_series{family=\"http_server_request_duration_seconds\"} 0"));
}

// Every span the tracker makes, as the extra sinks see it.
class Recorder : public SpanSink {
 public:
  void OnSpan(const Span& span) override {
    routes.push_back(span.http.target);
    tgids.push_back(span.conn.tgid);
    head_bytes += span.request_head.size() + span.response_head.size();
  }
  std::vector<std::string> routes;
  std::vector<uint32_t> tgids;
  size_t head_bytes = 0;
};

TEST(PipelineTest, ExtraSinksSeeEverySpan) {
  auto p = Pipeline::Create(Options());
  ASSERT_THAT(p, IsOk());
  Recorder a, b;
  (*p)->AddSpanSink(&a);
  (*p)->AddSpanSink(&b);
  uint32_t in = 1, out = 1;
  uint64_t now = 1'000'000;
  for (int i = 0; i < 2; ++i) {
    Exchange(p->get(), 4, &in, &out, &now, Fixture("http1/curl_get.req"),
             Fixture("http1/nginx_200.resp"));
  }
  EXPECT_EQ(a.routes, (std::vector<std::string>{"/api/items/42?page=2", "/api/items/42?page=2"}));
  EXPECT_EQ(b.routes, a.routes);
  EXPECT_EQ((*p)->self_metrics().spans(Protocol::kHttp1), 2u);
}

// Heads are copied onto spans for trace assembly alone.
TEST(PipelineTest, HeadsOnlyWithTraces) {
  for (bool traces : {true, false}) {
    PipelineOptions o = Options();
    o.traces_enabled = traces;
    auto p = Pipeline::Create(o);
    ASSERT_THAT(p, IsOk());
    Recorder r;
    (*p)->AddSpanSink(&r);
    uint32_t in = 1, out = 1;
    uint64_t now = 1'000'000;
    Exchange(p->get(), 4, &in, &out, &now, Fixture("http1/curl_get.req"),
             Fixture("http1/nginx_200.resp"));
    ASSERT_EQ(r.routes.size(), 1u) << "traces " << traces;
    if (traces) {
      EXPECT_GT(r.head_bytes, 100u);
    } else {
      EXPECT_EQ(r.head_bytes, 0u);
    }
  }
}

TEST(PipelineTest, ServiceNameWithoutProcResolution) {
  PipelineOptions o = Options();
  o.resolve_processes = false;
  auto p = Pipeline::Create(o);
  ASSERT_THAT(p, IsOk());
  uint32_t in = 1, out = 1, in2 = 1, out2 = 1;
  uint64_t now = 1'000'000;
  // A live process: named by the comm the kernel reported, /proc untouched
  // (pid 999999 does not exist here).
  Exchange(p->get(), 4, &in, &out, &now, Fixture("http1/curl_get.req"),
           Fixture("http1/nginx_200.resp"), 999999, "nginx");
  // No process (a capture): unknown_service.
  Exchange(p->get(), 5, &in2, &out2, &now, Fixture("http1/curl_get.req"),
           Fixture("http1/nginx_200.resp"));
  std::string text = RenderExposition((*p)->Collectables());
  EXPECT_THAT(text, HasSubstr("http_server_request_duration_seconds_count{service_name=\"nginx\""));
  EXPECT_THAT(
      text,
      HasSubstr("http_server_request_duration_seconds_count{service_name=\"unknown_service\""));
}

TEST(PipelineTest, ServiceNameFromProc) {
  auto p = Pipeline::Create(Options());
  ASSERT_THAT(p, IsOk());
  uint32_t in = 1, out = 1;
  uint64_t now = 1'000'000;
  // This test process, as the kernel names it: "redmap_unit_tests" is longer
  // than comm's 15 bytes, so the exe link completes it.
  Exchange(p->get(), 4, &in, &out, &now, Fixture("http1/curl_get.req"),
           Fixture("http1/nginx_200.resp"), static_cast<uint32_t>(getpid()), "ignored");
  std::string text = RenderExposition((*p)->Collectables());
  EXPECT_THAT(
      text,
      HasSubstr("http_server_request_duration_seconds_count{service_name=\"redmap_unit_tests\""))
      << text;
}

TEST(PipelineTest, HousekeepingAtMostOncePerSecond) {
  PipelineOptions o = Options();
  o.red.series_ttl_ns = 20'000'000'000;
  auto p = Pipeline::Create(o);
  ASSERT_THAT(p, IsOk());
  uint32_t in = 1, out = 1;
  uint64_t now = 1'000'000;
  Exchange(p->get(), 4, &in, &out, &now, Fixture("http1/curl_get.req"),
           Fixture("http1/nginx_200.resp"));
  auto series = [&p] {
    return RenderExposition((*p)->Collectables())
               .find("redmap_series{family=\"http_server_request_duration_seconds\"} 1") !=
           std::string::npos;
  };
  (*p)->Tick(20'000'000'000);  // runs; the series (ended at ~1.6 ms) is 19.998 s idle
  EXPECT_TRUE(series());
  (*p)->Tick(20'900'000'000);  // within a second of the last run: skipped
  EXPECT_TRUE(series());
  (*p)->Tick(21'000'000'000);  // runs: idle > 20 s
  EXPECT_FALSE(series());
}

TEST(PipelineTest, TargetInfo) {
  auto p = Pipeline::Create(Options());
  ASSERT_THAT(p, IsOk());
  std::string text = RenderExposition((*p)->Collectables());
  EXPECT_THAT(text,
              HasSubstr(std::string("target_info{service_name=\"redmap\",service_version=\"") +
                        kRedmapVersion + "\",host_name=\"" + LocalHostName() + "\"} 1"));
  EXPECT_THAT(text,
              HasSubstr(std::string("redmap_build_info{version=\"") + kRedmapVersion + "\"} 1"));
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(LocalHostName(), host);
}

// RED and traces share one route per span: with red.route_patterns, a kept
// trace's route and its exemplar's labels are the RED series' route, not
// the heuristics' (NormalizeRoute would say /static/css/site.css).
TEST(PipelineTest, TracesUseTheRedRoute) {
  PipelineOptions o = Options();
  auto patterns = RoutePatterns::Create({"/static/**"});
  ASSERT_THAT(patterns, IsOk());
  o.red.route_patterns = *patterns;
  o.traces.sample_ratio = 1;
  auto p = Pipeline::Create(o);
  ASSERT_THAT(p, IsOk());
  uint32_t in = 1, out = 1;
  uint64_t now = 1'000'000;
  Exchange(p->get(), 4, &in, &out, &now,
           "GET /static/css/site.css?v=3 HTTP/1.1\r\nHost: h\r\n\r\n",
           Fixture("http1/nginx_200.resp"));
  (*p)->Flush();
  std::string text = RenderExposition((*p)->Collectables());
  EXPECT_THAT(text, HasSubstr("http_route=\"/static/**\"} 1"));
  traces::TraceSampler* sampler = (*p)->trace_sampler();
  ASSERT_NE(sampler, nullptr);
  auto kept = sampler->ring().Snapshot();
  ASSERT_EQ(kept.size(), 1u);
  ASSERT_EQ(kept[0]->spans.size(), 1u);
  EXPECT_EQ(kept[0]->spans[0].route, "/static/**");
  EXPECT_EQ(kept[0]->spans[0].target, "/static/css/site.css?v=3");
  auto ex = sampler->exemplars().Lookup("http_server_request_duration_seconds",
                                        {"unknown_service", "GET", "200", "/static/**"});
  ASSERT_EQ(ex.size(), o.red.buckets.size() + 1);
  EXPECT_EQ(ex[0].trace_id, kept[0]->id.Hex());  // 0.6 ms: the first bucket
}

TEST(PipelineTest, RejectsUnusableOptions) {
  PipelineOptions o = Options();
  o.red.buckets = {};
  EXPECT_FALSE(Pipeline::Create(o).ok());
  o.red.buckets = {0.1, std::numeric_limits<double>::infinity()};
  EXPECT_FALSE(Pipeline::Create(o).ok());
  o.red.buckets = {0.2, 0.1};
  EXPECT_FALSE(Pipeline::Create(o).ok());
  o = Options();
  o.red.max_series = 0;
  EXPECT_FALSE(Pipeline::Create(o).ok());
}

}  // namespace
}  // namespace redmap
