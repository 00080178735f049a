// Sampled traces end to end, as a user runs them: the real redmap_exporter,
// curl -> nginx (reverse proxy) -> a Python app -> a Python backend, each
// tier in its own fake pod (network namespace + kubelet-style cgroup, see
// pod_util.h) on a node bridge, and the debug listener's JSON, Jaeger API
// and HTML page read back on the node's loopback; the page is rendered by
// headless Chromium (screenshot kept in the build tree), exemplars are
// checked in a real Prometheus.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness_util.h"
#include "tests/integration/pod_util.h"

namespace redmap {
namespace {

using ::redmap::testing::ExporterProcess;
using ::redmap::testing::Exposition;
using ::redmap::testing::FakePod;
using ::redmap::testing::PodNetwork;
using ::redmap::testing::FreePort;
using ::redmap::testing::HttpGet;
using ::redmap::testing::NginxConfig;
using ::redmap::testing::RunShell;
using ::redmap::testing::Subprocess;
using ::redmap::testing::TempDir;
using ::redmap::testing::WaitForPort;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kParentId[] = "00f067aa0ba902b7";
constexpr char kSecretHeader[] = "topsecret-a1b2c3";
constexpr char kSecretParam[] = "qsecret-9z8y";
constexpr int kDefaultDebugPort = 9436;

// The app forwards each request to the backend from the thread serving it
// (ThreadingHTTPServer: one thread per request) and answers with the
// backend's status. The backend answers 500 on /fail, 200 elsewhere.
constexpr char kPythonServer[] = R"PY(
import http.server, os, sys, urllib.request, urllib.error
mode, port = sys.argv[1], int(sys.argv[2])
backend = sys.argv[3] if len(sys.argv) > 3 else ""
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if mode == "app":
            try:
                with urllib.request.urlopen("http://" + backend + self.path, timeout=5) as r:
                    status, body = r.status, r.read()
            except urllib.error.HTTPError as e:
                status, body = e.code, e.read()
        else:
            status = 500 if self.path.startswith("/fail") else 200
            body = b"backend\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()
)PY";

std::string NginxProxyConfig(const std::string& dir, int port, const std::string& app) {
  return NginxConfig(dir, absl::StrCat(R"(
  server {
    listen )", port, R"(;
    location = /fast { return 200 "fast\n"; }
    location / { proxy_pass http://)", app, R"(; }
  })"));
}

class TracesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    dir_->Write("server.py", kPythonServer);
    const int n = getpid() % 200 + 20;
    net_ = PodNetwork::Create(absl::StrCat("10.216.", n)).release();
    ASSERT_NE(net_, nullptr);
    auto pod = [](const char* name, const char* uid, char id, int octet) {
      FakePod* p = FakePod::Create(net_, {.name = name, .uid = uid,
                                          .container_id = std::string(64, id),
                                          .host_octet = octet})
                       .release();
      EXPECT_NE(p, nullptr) << name;
      return p;
    };
    client_pod_ = pod("cl", "7c1d6a52-0f3e-4b8a-9d21-5e6f7a8b9c01", 'c', 2);
    nginx_pod_ = pod("ng", "7c1d6a52-0f3e-4b8a-9d21-5e6f7a8b9c02", 'd', 3);
    app_pod_ = pod("ap", "7c1d6a52-0f3e-4b8a-9d21-5e6f7a8b9c03", 'e', 4);
    backend_pod_ = pod("be", "7c1d6a52-0f3e-4b8a-9d21-5e6f7a8b9c04", 'f', 5);
    ASSERT_TRUE(client_pod_ && nginx_pod_ && app_pod_ && backend_pod_);
    nginx_url_ = absl::StrCat("http://", nginx_pod_->ip(), ":", kNginxPort);
    backend_ = backend_pod_->Start({"python3", dir_->path() + "/server.py", "backend",
                                    std::to_string(kAppPort)},
                                   {"OTEL_SERVICE_NAME=backend"})
                   .release();
    app_ = app_pod_->Start({"python3", dir_->path() + "/server.py", "app",
                            std::to_string(kAppPort),
                            absl::StrCat(backend_pod_->ip(), ":", kAppPort)},
                           {"OTEL_SERVICE_NAME=app"})
               .release();
    dir_->Write("nginx.conf", NginxProxyConfig(dir_->path(), kNginxPort,
                                          absl::StrCat(app_pod_->ip(), ":", kAppPort)));
    nginx_ = nginx_pod_->Start({"nginx", "-c", dir_->path() + "/nginx.conf", "-e",
                                dir_->path() + "/error.log"})
                 .release();
    ASSERT_TRUE(backend_ && app_ && nginx_);
    for (auto [ip, port] : {std::pair{backend_pod_->ip(), kAppPort},
                            std::pair{app_pod_->ip(), kAppPort},
                            std::pair{nginx_pod_->ip(), kNginxPort}}) {
      ASSERT_TRUE(WaitForPort(ip, port, std::chrono::seconds(10)))
          << ip << ":" << port << backend_->Output() << app_->Output() << nginx_->Output();
    }

    // Everything kept (ratio 1), a short assembly wait, and a ring small
    // enough for a flood to evict from.
    dir_->Write("redmap.yaml", R"(
traces:
  sample_ratio: 1
  assembly_wait_ms: 300
  max_traces_per_second: 100000
  ring_max_bytes: 262144
  redact_headers: [X-Api-Key]
)");
    // No --debug.listen-address: the default must be loopback.
    exporter_ = new ExporterProcess();
    std::string why;
    ASSERT_TRUE(exporter_->Start({"--config.file=" + dir_->path() + "/redmap.yaml"}, &why)) << why;
    exporter_port_ = exporter_->port();
    auto r = HttpGet("127.0.0.1", exporter_port_, "/metrics");
    ASSERT_TRUE(r.has_value()) << exporter_->Output();
    ASSERT_EQ(Exposition::Parse(r->body).Sum("redmap_probe_up", {{"probe", "sys_exit_btf"}}), 1)
        << r->body;

    // One request through all three tiers, with a W3C parent and secrets,
    // from a client pod.
    auto c = Curl({"-H", absl::StrCat("traceparent: 00-", kTraceId, "-", kParentId, "-01"),
                   "-H", absl::StrCat("Authorization: Bearer ", kSecretHeader), "-H",
                   absl::StrCat("X-Api-Key: ", kSecretHeader),
                   absl::StrCat(nginx_url_, "/chain/7?token=", kSecretParam, "&page=2")});
    ASSERT_EQ(c, "200");
    trace_ = new json(WaitForTrace(kTraceId, 6));
  }

  static void TearDownTestSuite() {
    if (exporter_ != nullptr) {
      std::string why;
      EXPECT_TRUE(exporter_->Stop(&why)) << why;
    }
    delete exporter_;
    delete nginx_;
    delete app_;
    delete backend_;
    delete client_pod_;
    delete nginx_pod_;
    delete app_pod_;
    delete backend_pod_;
    delete net_;
    delete trace_;
    delete dir_;
  }

  // curl in the client pod; returns the status code it printed.
  static std::string Curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = client_pod_->Start(argv);
    if (p == nullptr) return "start failed";
    const int st = p->Wait();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << p->Output();
    return p->Output();
  }

  static std::string Debug(const std::string& path, int want = 200) {
    auto r = HttpGet("127.0.0.1", kDefaultDebugPort, path);
    EXPECT_TRUE(r.has_value()) << path;
    if (!r) return "";
    EXPECT_EQ(r->status, want) << path << ": " << r->body;
    return r->body;
  }

  // Polls the debug endpoint until the trace has `spans` spans (or 15 s).
  static json WaitForTrace(const std::string& id, size_t spans) {
    json last;
    auto deadline = Clock::now() + std::chrono::seconds(15);
    while (Clock::now() < deadline) {
      auto r = HttpGet("127.0.0.1", kDefaultDebugPort, "/debug/traces/" + id);
      if (r && r->status == 200) {
        last = json::parse(r->body);
        if (last["spans"].size() >= spans) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "trace " << id << " incomplete: " << last.dump(2) << "\n"
                  << Debug("/debug/traces?limit=50");
    return last;
  }

  static const json* FindSpan(const json& t, const std::string& service,
                              const std::string& side) {
    for (const json& s : t["spans"]) {
      if (s["service"] == service && s["side"] == side) return &s;
    }
    return nullptr;
  }

  static constexpr int kNginxPort = 80;
  static constexpr int kAppPort = 8080;  // the app and the backend, each in its pod
  static TempDir* dir_;
  static PodNetwork* net_;
  static FakePod* client_pod_;
  static FakePod* nginx_pod_;
  static FakePod* app_pod_;
  static FakePod* backend_pod_;
  static std::string nginx_url_;
  static Subprocess* backend_;
  static Subprocess* app_;
  static Subprocess* nginx_;
  static ExporterProcess* exporter_;
  static json* trace_;
  static int exporter_port_;
};

TempDir* TracesTest::dir_ = nullptr;
PodNetwork* TracesTest::net_ = nullptr;
FakePod* TracesTest::client_pod_ = nullptr;
FakePod* TracesTest::nginx_pod_ = nullptr;
FakePod* TracesTest::app_pod_ = nullptr;
FakePod* TracesTest::backend_pod_ = nullptr;
std::string TracesTest::nginx_url_;
Subprocess* TracesTest::backend_ = nullptr;
Subprocess* TracesTest::app_ = nullptr;
Subprocess* TracesTest::nginx_ = nullptr;
ExporterProcess* TracesTest::exporter_ = nullptr;
json* TracesTest::trace_ = nullptr;
int TracesTest::exporter_port_ = 0;

TEST_F(TracesTest, DebugListenerIsOnLoopbackByDefault) {
  EXPECT_THAT(exporter_->Output(),
              ::testing::HasSubstr("sampled traces on http://127.0.0.1:9436/"));
  auto ss = RunShell(absl::StrCat("ss -Hltnp 'sport = :", kDefaultDebugPort, "'"));
  ASSERT_EQ(ss.exit_code, 0) << ss.output;
  EXPECT_TRUE(absl::StrContains(ss.output, "127.0.0.1:9436")) << ss.output;
  EXPECT_TRUE(absl::StrContains(ss.output, absl::StrCat("pid=", exporter_->pid()))) << ss.output;
  EXPECT_FALSE(absl::StrContains(ss.output, "0.0.0.0:9436")) << ss.output;
  EXPECT_FALSE(absl::StrContains(ss.output, "*:9436")) << ss.output;
}

TEST_F(TracesTest, ThreeTiersAssembleIntoOneTraceWithTheSentTraceId) {
  const json& t = *trace_;
  ASSERT_EQ(t["trace_id"], kTraceId);
  ASSERT_EQ(t["spans"].size(), 6u) << t.dump(2);
  const json* curl = FindSpan(t, "curl", "client");
  const json* ngs = FindSpan(t, "nginx", "server");
  const json* ngc = FindSpan(t, "nginx", "client");
  const json* apps = FindSpan(t, "app", "server");
  const json* appc = FindSpan(t, "app", "client");
  const json* back = FindSpan(t, "backend", "server");
  ASSERT_TRUE(curl && ngs && ngc && apps && appc && back) << t.dump(2);
  // curl's request is the root; each tier's server span is linked to its
  // caller by TCP sequence, each outbound call to its request by thread.
  EXPECT_EQ((*curl)["parent_span_id"], "");
  EXPECT_EQ((*ngs)["parent_span_id"], (*curl)["span_id"]);
  EXPECT_EQ((*ngs)["link"], "tcp_seq");
  EXPECT_EQ((*ngc)["parent_span_id"], (*ngs)["span_id"]);
  EXPECT_EQ((*ngc)["link"], "thread");
  EXPECT_EQ((*apps)["parent_span_id"], (*ngc)["span_id"]);
  EXPECT_EQ((*apps)["link"], "tcp_seq");
  EXPECT_EQ((*appc)["parent_span_id"], (*apps)["span_id"]);
  EXPECT_EQ((*appc)["link"], "thread");
  EXPECT_EQ((*back)["parent_span_id"], (*appc)["span_id"]);
  EXPECT_EQ((*back)["link"], "tcp_seq");
  EXPECT_EQ((*ngc)["connection"]["server"], absl::StrCat(app_pod_->ip(), ":", kAppPort));
  EXPECT_EQ((*back)["connection"]["server"], absl::StrCat(backend_pod_->ip(), ":", kAppPort));
  EXPECT_EQ((*ngs)["connection"]["client"].get<std::string>().rfind(client_pod_->ip() + ":", 0),
            0u)
      << (*ngs)["connection"];
  // Each span's process runs in its tier's pod.
  EXPECT_EQ((*curl)["process"]["cgroup_id"], client_pod_->cgroup_id());
  EXPECT_EQ((*ngs)["process"]["cgroup_id"], nginx_pod_->cgroup_id());
  EXPECT_EQ((*apps)["process"]["cgroup_id"], app_pod_->cgroup_id());
  EXPECT_EQ((*back)["process"]["cgroup_id"], backend_pod_->cgroup_id());
  EXPECT_EQ((*ngs)["propagation"]["format"], "traceparent");
  EXPECT_EQ((*ngs)["propagation"]["parent_span_id"], kParentId);
  // Durations nest: a child runs inside its parent. Each side timestamps
  // at its own syscall returns, so a server's last write may return a few
  // microseconds after its client's read: allow 1 ms.
  std::map<std::string, const json*> by_id;
  for (const json& s : t["spans"]) by_id[s["span_id"]] = &s;
  for (const json& s : t["spans"]) {
    if (s["parent_span_id"] == "") continue;
    const json& p = *by_id.at(s["parent_span_id"]);
    const double ps = p["offset_us"], pe = ps + p["duration_us"].get<double>();
    const double cs = s["offset_us"], ce = cs + s["duration_us"].get<double>();
    EXPECT_GE(cs, ps - 1000) << s.dump();
    EXPECT_LE(ce, pe + 1000) << s.dump();
    EXPECT_LE(s["duration_us"].get<double>(), p["duration_us"].get<double>() + 1000);
  }

  // The same trace through the Jaeger API.
  json j = json::parse(Debug(absl::StrCat("/api/traces/", kTraceId)));
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["spans"].size(), 6u);
  json services = json::parse(Debug("/api/services"))["data"];
  for (const char* s : {"nginx", "app", "backend", "curl"}) {
    EXPECT_NE(std::find(services.begin(), services.end(), s), services.end()) << s;
  }
  json found = json::parse(Debug("/api/traces?service=backend&limit=50"))["data"];
  bool listed = false;
  for (const json& tr : found) listed = listed || tr["traceID"] == kTraceId;
  EXPECT_TRUE(listed);
}

TEST_F(TracesTest, SecretsAppearInNoEndpoint) {
  std::string all = Debug("/debug/traces?limit=1000") +
                    Debug(absl::StrCat("/debug/traces/", kTraceId)) +
                    Debug(absl::StrCat("/api/traces/", kTraceId)) + Debug("/") +
                    Debug("/api/services/nginx/operations");
  for (const char* s : {"nginx", "app", "backend", "curl"}) {
    all += Debug(absl::StrCat("/api/traces?service=", s, "&limit=1000"));
  }
  auto metrics = HttpGet("127.0.0.1", exporter_port_, "/metrics");
  ASSERT_TRUE(metrics.has_value());
  all += metrics->body;
  auto om = RunShell(absl::StrCat("curl -sS -H 'Accept: application/openmetrics-text' "
                                  "http://127.0.0.1:", exporter_port_, "/metrics"));
  all += om.output;
  EXPECT_EQ(all.find(kSecretHeader), std::string::npos);
  EXPECT_EQ(all.find(kSecretParam), std::string::npos);
  // The heads are there, masked.
  json t = *trace_;
  const std::string head = (*FindSpan(t, "nginx", "server"))["http"]["request_head"];
  EXPECT_TRUE(absl::StrContains(head, "Authorization: [redacted]")) << head;
  EXPECT_TRUE(absl::StrContains(head, "X-Api-Key: [redacted]")) << head;
  EXPECT_TRUE(absl::StrContains(head, "token=[redacted]&page=2")) << head;
}

TEST_F(TracesTest, ErrorsAreKept) {
  ASSERT_EQ(Curl({nginx_url_ + "/fail/1"}), "500");
  json list;
  auto deadline = Clock::now() + std::chrono::seconds(15);
  while (Clock::now() < deadline) {
    list = json::parse(Debug("/debug/traces?error=true&route=%2Ffail%2F%7Bid%7D&service=backend"));
    if (list["count"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(list["count"], 1) << list.dump(2);
  EXPECT_EQ(list["traces"][0]["keep_reason"], "error");
  EXPECT_EQ(list["traces"][0]["span_count"], 6);
}

TEST_F(TracesTest, ExemplarsReachPrometheus) {
  const int prom_port = FreePort();
  dir_->Write("prometheus.yml", absl::StrCat(R"(
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: redmap
    static_configs:
      - targets: ['127.0.0.1:)", exporter_port_, R"(']
)"));
  Subprocess prom;
  ASSERT_TRUE(prom.Start({"prometheus", "--config.file=" + dir_->path() + "/prometheus.yml",
                          "--storage.tsdb.path=" + dir_->path() + "/tsdb",
                          absl::StrCat("--web.listen-address=127.0.0.1:", prom_port),
                          "--enable-feature=exemplar-storage"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", prom_port, std::chrono::seconds(30))) << prom.Output();
  json data;
  bool found = false, up = false;
  auto deadline = Clock::now() + std::chrono::seconds(40);
  while (Clock::now() < deadline && !(found && up)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const long now = static_cast<long>(time(nullptr));
    auto r = HttpGet("127.0.0.1", prom_port,
                     absl::StrCat("/api/v1/query_exemplars?query=http_server_request_duration_"
                                  "seconds_bucket&start=",
                                  now - 3600, "&end=", now + 60));
    if (r && r->status == 200) {
      data = json::parse(r->body);
      for (const json& series : data["data"]) {
        for (const json& e : series["exemplars"]) {
          found = found || e["labels"]["trace_id"] == kTraceId;
        }
      }
    }
    auto q = HttpGet("127.0.0.1", prom_port, "/api/v1/query?query=up%7Bjob%3D%22redmap%22%7D");
    if (q && q->status == 200) {
      json u = json::parse(q->body);
      up = !u["data"]["result"].empty() && u["data"]["result"][0]["value"][1] == "1";
    }
  }
  EXPECT_TRUE(up) << "Prometheus could not scrape redmap's OpenMetrics:\n"
                  << HttpGet("127.0.0.1", prom_port, "/api/v1/targets")->body;
  EXPECT_TRUE(found) << data.dump(2);
}

TEST_F(TracesTest, PageRendersInHeadlessChromium) {
  // Kept in the build tree for people to look at.
  const std::string shot = std::string(get_current_dir_name()) + "/traces_waterfall.png";
  unlink(shot.c_str());
  const std::string url =
      absl::StrCat("http://127.0.0.1:", kDefaultDebugPort, "/#trace=", kTraceId);
  const std::string flags = absl::StrCat(
      "--headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run "
      "--disable-component-update --disable-sync --hide-scrollbars --window-size=1400,1000 "
      "--virtual-time-budget=5000 --user-data-dir=",
      dir_->path(), "/chromium-profile");
  auto dom = RunShell(absl::StrCat("chromium ", flags, " --dump-dom '", url, "' 2>/dev/null"));
  ASSERT_EQ(dom.exit_code, 0) << dom.output;
  EXPECT_TRUE(absl::StrContains(dom.output, absl::StrCat("trace ", kTraceId))) << dom.output;
  // The list and the six waterfall rows.
  int rows = 0;
  for (size_t p = dom.output.find("class=\"row\""); p != std::string::npos;
       p = dom.output.find("class=\"row\"", p + 1)) {
    ++rows;
  }
  EXPECT_EQ(rows, 6) << dom.output;
  EXPECT_TRUE(absl::StrContains(dom.output, "nginx server: GET /chain/{id}")) << dom.output;
  EXPECT_FALSE(absl::StrContains(dom.output, kSecretHeader));

  auto png = RunShell(absl::StrCat("chromium ", flags, " --screenshot=", shot, " '", url,
                                   "' 2>&1"));
  ASSERT_EQ(png.exit_code, 0) << png.output;
  std::ifstream in(shot, std::ios::binary);
  ASSERT_TRUE(in.good()) << "no screenshot at " << shot << ": " << png.output;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 10000u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::cout << "screenshot: " << shot << "\n";
}

// Last: a flood of fast requests churns the ring.
TEST_F(TracesTest, FloodStaysWithinTheRingBounds) {
  auto before = Exposition::Parse(HttpGet("127.0.0.1", exporter_port_, "/metrics")->body);
  Subprocess wrk;
  ASSERT_TRUE(wrk.Start({"wrk", "-t1", "-c2", "-d3s", nginx_url_ + "/fast"}));
  double max_bytes = 0, limit = 0;
  while (wrk.Running()) {
    auto e = Exposition::Parse(HttpGet("127.0.0.1", exporter_port_, "/metrics")->body);
    max_bytes = std::max(max_bytes, e.Sum("redmap_trace_ring_bytes"));
    limit = e.Sum("redmap_trace_ring_bytes_limit");
    EXPECT_LE(e.Sum("redmap_trace_pending_spans"), e.Sum("redmap_trace_pending_spans_limit"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(wrk.Wait(), 0) << wrk.Output();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto after = Exposition::Parse(HttpGet("127.0.0.1", exporter_port_, "/metrics")->body);
  max_bytes = std::max(max_bytes, after.Sum("redmap_trace_ring_bytes"));
  EXPECT_EQ(limit, 262144);
  EXPECT_GT(max_bytes, 0);
  EXPECT_LE(max_bytes, limit);
  EXPECT_GT(after.Sum("redmap_trace_ring_evictions_total"),
            before.Sum("redmap_trace_ring_evictions_total"))
      << after.text();
  EXPECT_GT(after.Sum("redmap_trace_ring_insertions_total"),
            before.Sum("redmap_trace_ring_insertions_total") + 100);
  EXPECT_LE(after.Sum("redmap_trace_ring_traces"), after.Sum("redmap_trace_ring_traces_limit"));
}

}  // namespace
}  // namespace redmap
