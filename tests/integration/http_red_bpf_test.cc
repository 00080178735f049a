// End to end, as a user runs it: the real redmap_exporter binary, real nginx
// and python3 http.server on loopback, real clients (curl, h2load), and
// assertions on a real scrape of /metrics with exact request counts.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/harness_util.h"

namespace redmap {
namespace {

using ::redmap::testing::ExporterProcess;
using ::redmap::testing::Exposition;
using ::redmap::testing::FreePort;
using ::redmap::testing::HttpGet;
using ::redmap::testing::NginxConfig;
using ::redmap::testing::RunShell;
using ::redmap::testing::Subprocess;
using ::redmap::testing::TempDir;
using ::redmap::testing::WaitForPort;
using Labels = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;

constexpr char kServer[] = "http_server_request_duration_seconds";
constexpr char kClient[] = "http_client_request_duration_seconds";

std::string NginxServerConfig(const std::string& dir, int port) {
  return NginxConfig(dir, absl::StrCat(R"(
  keepalive_requests 100000;
  sendfile on;
  server {
    listen 127.0.0.1:)", port, R"(;
    location = /ok { return 200 "ok\n"; }
    location = /missing { return 404; }
    location = /boom { return 500; }
    location /api/users/ { return 200 "user\n"; }
    location = /pipelined { return 200 "p\n"; }
    location = /bench { return 200 "b\n"; }
    location /files/ { alias )", dir, R"(/files/; }
  })"));
}

class HttpRedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    RunShell(absl::StrCat("mkdir -p ", dir_->path(), "/files"));
    // 4 MiB + 3 bytes: a body much larger than any capture, served by sendfile.
    RunShell(absl::StrCat("head -c 4194307 /dev/urandom > ", dir_->path(), "/files/big.bin"));
    nginx_port_ = FreePort();
    dir_->Write("nginx.conf", NginxServerConfig(dir_->path(), nginx_port_));
    nginx_ = new Subprocess();
    ASSERT_TRUE(nginx_->Start({"nginx", "-c", dir_->path() + "/nginx.conf", "-e",
                               dir_->path() + "/error.log"}));
    ASSERT_TRUE(WaitForPort("127.0.0.1", nginx_port_, std::chrono::seconds(10)))
        << nginx_->Output();

    exporter_ = new ExporterProcess();
    std::string why;
    ASSERT_TRUE(exporter_->Start({}, &why)) << why;
    exporter_port_ = exporter_->port();
    auto r = HttpGet("127.0.0.1", exporter_port_, "/metrics");
    ASSERT_TRUE(r.has_value()) << exporter_->Output();
    Exposition e = Exposition::Parse(r->body);
    // The preferred probe must be attached: on our machines BPF and BTF work.
    ASSERT_EQ(e.Sum("redmap_probe_up", {{"probe", "sys_exit_btf"}}), 1) << r->body;
    ASSERT_EQ(e.Sum("redmap_probe_up"), e.Count("redmap_probe_up")) << r->body;
  }

  static void TearDownTestSuite() {
    if (exporter_ != nullptr) {
      std::string why;
      EXPECT_TRUE(exporter_->Stop(&why)) << why;
    }
    delete exporter_;
    delete nginx_;
    delete dir_;
  }

  static Exposition Scrape() {
    auto r = HttpGet("127.0.0.1", exporter_port_, "/metrics");
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    return Exposition::Parse(r ? r->body : "");
  }

  // Polls until `name_count{labels}` reaches want (or 10 s), then waits a
  // little more so an overcount would show, and returns the final scrape.
  static Exposition ScrapeWhen(const std::string& name, const Labels& labels, double want) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      if (Scrape().Sum(name + "_count", labels) >= want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    return Scrape();
  }

  static std::string Url(const std::string& path) {
    return absl::StrCat("http://127.0.0.1:", nginx_port_, path);
  }

  static void Curl(const std::string& path, int times) {
    for (int i = 0; i < times; ++i) {
      auto r = RunShell("curl -sS -o /dev/null " + Url(path));
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }

  static TempDir* dir_;
  static Subprocess* nginx_;
  static ExporterProcess* exporter_;
  static int nginx_port_;
  static int exporter_port_;
};

TempDir* HttpRedTest::dir_ = nullptr;
Subprocess* HttpRedTest::nginx_ = nullptr;
ExporterProcess* HttpRedTest::exporter_ = nullptr;
int HttpRedTest::nginx_port_ = 0;
int HttpRedTest::exporter_port_ = 0;

TEST_F(HttpRedTest, CurlCountsPerRouteMethodStatusOnBothSides) {
  auto start = Clock::now();
  Curl("/ok", 5);
  Curl("/missing", 3);
  Curl("/boom", 2);
  for (int id : {1, 22, 333, 4444}) Curl(absl::StrCat("/api/users/", id, "?verbose=1"), 1);
  double wall = std::chrono::duration<double>(Clock::now() - start).count();

  Labels boom = {{"service_name", "nginx"}, {"http_response_status_code", "500"},
                 {"http_route", "/boom"}};
  Exposition e = ScrapeWhen(kServer, boom, 2);
  auto server = [&](const std::string& route, const std::string& status) {
    return e.Sum(absl::StrCat(kServer, "_count"), {{"service_name", "nginx"},
                                                    {"http_request_method", "GET"},
                                                    {"http_route", route},
                                                    {"http_response_status_code", status}});
  };
  EXPECT_EQ(server("/ok", "200"), 5) << e.text();
  EXPECT_EQ(server("/missing", "404"), 3);
  EXPECT_EQ(server("/boom", "500"), 2);
  EXPECT_EQ(server("/api/users/{id}", "200"), 4);

  auto client = [&](const std::string& route, const std::string& status) {
    return e.Sum(absl::StrCat(kClient, "_count"),
                 {{"service_name", "curl"},
                  {"http_request_method", "GET"},
                  {"http_route", route},
                  {"http_response_status_code", status},
                  {"server_address", "127.0.0.1"},
                  {"server_port", std::to_string(nginx_port_)}});
  };
  EXPECT_EQ(client("/ok", "200"), 5);
  EXPECT_EQ(client("/missing", "404"), 3);
  EXPECT_EQ(client("/boom", "500"), 2);
  EXPECT_EQ(client("/api/users/{id}", "200"), 4);
  // Both ends are on this node: the client's spans came from nginx's parse
  // (capture.parse_once), with nothing left unmatched.
  EXPECT_GE(e.Sum("redmap_peer_spans_total"), 14);
  EXPECT_EQ(e.Sum("redmap_events_dropped_total", {{"reason", "peer_unmatched"}}), 0);
  EXPECT_EQ(e.Sum("redmap_peer_stash_entries"), 0);  // every span was claimed
  EXPECT_EQ(e.Sum("redmap_peer_stash_entries_limit"), 1024);

  // Latency sums: positive, and below the wall time the requests took.
  double server_sum = e.Sum(absl::StrCat(kServer, "_sum"),
                            {{"service_name", "nginx"}, {"http_route", "/ok"}});
  double client_sum = e.Sum(absl::StrCat(kClient, "_sum"),
                            {{"service_name", "curl"}, {"http_route", "/ok"}});
  EXPECT_GT(server_sum, 0);
  EXPECT_LT(server_sum, wall);
  EXPECT_GT(client_sum, 0);
  EXPECT_LT(client_sum, wall);
  // The client waits for the server: its view of the same requests is longer.
  EXPECT_GE(client_sum, server_sum);
  // Histogram consistency: the +Inf bucket equals the count.
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_bucket"),
                  {{"service_name", "nginx"}, {"http_route", "/ok"}, {"le", "+Inf"}}),
            5);
}

TEST_F(HttpRedTest, ServiceGraphCountsEachRequestOnce) {
  // Both ends on this node: the request is counted once (server side), and
  // both durations are recorded on the same edge.
  const Labels edge = {{"client", "curl"}, {"server", "nginx"}, {"connection_type", ""}};
  const std::string total = "traces_service_graph_request_total";
  Exposition before = Scrape();
  double total0 = before.Sum(total, edge);
  double failed0 = before.Sum("traces_service_graph_request_failed_total", edge);
  double client0 = before.Sum("traces_service_graph_request_client_seconds_count", edge);
  Curl("/ok", 4);
  Curl("/boom", 3);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline && Scrape().Sum(total, edge) < total0 + 7) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  Exposition e = Scrape();
  EXPECT_EQ(e.Sum(total, edge) - total0, 7) << e.text();
  EXPECT_EQ(e.Sum("traces_service_graph_request_failed_total", edge) - failed0, 3);
  EXPECT_EQ(e.Sum("traces_service_graph_request_client_seconds_count", edge) - client0, 7);
  // Nothing counted a second time under another label set, and no self-edges.
  EXPECT_EQ(e.Sum(total, {{"client", "curl"}}), e.Sum(total, edge));
  EXPECT_EQ(e.Count(total, {{"client", "nginx"}, {"server", "nginx"}}), 0);
}

TEST_F(HttpRedTest, H2loadHttp1ExactCounts) {
  constexpr int kRequests = 2000;
  auto r = RunShell(absl::StrCat("h2load --h1 -n ", kRequests, " -c 4 ", Url("/bench")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(absl::StrContains(r.output, absl::StrCat(kRequests, " succeeded"))) << r.output;
  Labels labels = {{"service_name", "nginx"}, {"http_route", "/bench"}};
  Exposition e = ScrapeWhen(kServer, labels, kRequests);
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"),
                  {{"service_name", "nginx"}, {"http_route", "/bench"},
                   {"http_response_status_code", "200"}}),
            kRequests);
  EXPECT_EQ(e.Sum(absl::StrCat(kClient, "_count"),
                  {{"service_name", "h2load"}, {"http_route", "/bench"},
                   {"http_response_status_code", "200"}}),
            kRequests);
}

TEST_F(HttpRedTest, PipelinedKeepAliveRequests) {
  // Three requests in a single write on one connection, read until close.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(nginx_port_);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  std::string reqs =
      "GET /pipelined HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /pipelined?second HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(fd, reqs.data(), reqs.size()), static_cast<ssize_t>(reqs.size()));
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) resp.append(buf, n);
  close(fd);
  ASSERT_EQ(std::count(resp.begin(), resp.end(), 'H'), 3) << resp;  // three status lines

  Labels labels = {{"service_name", "nginx"}, {"http_route", "/pipelined"}};
  Exposition e = ScrapeWhen(kServer, labels, 2);
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"), labels), 2) << e.text();
}

TEST_F(HttpRedTest, LargeResponseServedBySendfile) {
  Curl("/files/big.bin", 2);
  Labels labels = {{"service_name", "nginx"}, {"http_route", "/files/big.bin"},
                   {"http_response_status_code", "200"}};
  Exposition e = ScrapeWhen(kServer, labels, 2);
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"), labels), 2) << e.text();
  EXPECT_EQ(e.Sum(absl::StrCat(kClient, "_count"),
                  {{"service_name", "curl"}, {"http_route", "/files/big.bin"},
                   {"http_response_status_code", "200"}}),
            2);
}

TEST_F(HttpRedTest, PythonServerNamedByOtelServiceName) {
  TempDir dir;
  dir.Write("page.html", "<html>hi</html>");
  int port = FreePort();
  Subprocess py;
  ASSERT_TRUE(py.Start({"python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                        dir.path(), std::to_string(port)},
                       {"OTEL_SERVICE_NAME=catalog"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10)));
  for (int i = 0; i < 4; ++i) {
    auto r = RunShell(absl::StrCat("curl -sS -o /dev/null http://127.0.0.1:", port, "/page.html"));
    ASSERT_EQ(r.exit_code, 0);
  }
  auto r = RunShell(absl::StrCat("curl -sS -o /dev/null http://127.0.0.1:", port, "/nope"));
  Labels ok = {{"service_name", "catalog"}, {"http_route", "/page.html"},
               {"http_response_status_code", "200"}};
  Exposition e = ScrapeWhen(kServer, ok, 4);
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"), ok), 4) << e.text();
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"),
                  {{"service_name", "catalog"}, {"http_route", "/nope"},
                   {"http_response_status_code", "404"}}),
            1);
}

TEST_F(HttpRedTest, ExpositionIsLintCleanAndHasSelfMetrics) {
  Curl("/ok", 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Exposition e = Scrape();
  TempDir dir;
  std::string path = dir.Write("metrics.txt", e.text());
  auto lint = RunShell("promtool check metrics < " + path);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  for (const char* family :
       {"redmap_events_received_total", "redmap_events_dropped_total", "redmap_parse_errors_total",
        "redmap_spans_total", "redmap_tracked_connections", "redmap_probe_up", "target_info"}) {
    EXPECT_GT(e.Count(family), 0) << family;
  }
  EXPECT_GT(e.Sum("redmap_spans_total", {{"protocol", "http1"}}), 0);
  EXPECT_EQ(e.Sum("redmap_events_dropped_total", {{"reason", "kernel_ring_full"}}), 0);
}

TEST_F(HttpRedTest, IPv4ClientOfADualStackListenerIsPaired) {
  // Python's http.server on "::" accepts IPv4 too; its end of a connection
  // from 127.0.0.1 names the client ::ffff:127.0.0.1, curl's end names the
  // server 127.0.0.1. The two ends still pair, and count exactly.
  TempDir dir;
  dir.Write("dual.html", "<html>both</html>");
  int port = FreePort();
  Subprocess py;
  ASSERT_TRUE(py.Start({"python3", "-m", "http.server", "--bind", "::", "--directory", dir.path(),
                        std::to_string(port)},
                       {"OTEL_SERVICE_NAME=dualstack"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10)));
  const double peer0 = Scrape().Sum("redmap_peer_spans_total");
  for (int i = 0; i < 3; ++i) {
    auto r = RunShell(absl::StrCat("curl -sS -o /dev/null http://127.0.0.1:", port, "/dual.html"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const Labels client = {{"service_name", "curl"}, {"http_route", "/dual.html"},
                         {"http_response_status_code", "200"}};
  Exposition e = ScrapeWhen(kClient, client, 3);
  EXPECT_EQ(e.Sum(absl::StrCat(kClient, "_count"), client), 3) << e.text();
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"),
                  {{"service_name", "dualstack"}, {"http_route", "/dual.html"}}),
            3);
  EXPECT_EQ(e.Sum("redmap_peer_spans_total") - peer0, 3);
}

TEST_F(HttpRedTest, WithoutParseOnceBothEndsAreParsedAndCountTheSame) {
  // A second exporter, copying and parsing both ends (capture.parse_once
  // off), next to the suite's: the same exact counts, none built from the
  // server end's parse.
  const std::string config = dir_->Write(
      "parse_twice.yaml", absl::StrCat("capture:\n  parse_once: false\n"
                                       "debug:\n  listen_address: \"127.0.0.1:",
                                       FreePort(), "\"\n"));
  ExporterProcess twice;
  std::string why;
  ASSERT_TRUE(twice.Start({"--config.file=" + config}, &why)) << why;
  Curl("/ok", 3);
  auto r = RunShell(absl::StrCat("h2load --h1 -n 500 -c 2 ", Url("/bench")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Labels bench = {{"service_name", "h2load"}, {"http_route", "/bench"}};
  Exposition e;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    e = twice.Scrape();
    if (e.Sum(absl::StrCat(kClient, "_count"), bench) >= 500) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  e = twice.Scrape();
  EXPECT_EQ(e.Sum(absl::StrCat(kClient, "_count"), bench), 500) << e.text();
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"),
                  {{"service_name", "nginx"}, {"http_route", "/bench"}}),
            500);
  EXPECT_EQ(e.Sum(absl::StrCat(kClient, "_count"),
                  {{"service_name", "curl"}, {"http_route", "/ok"}}),
            3);
  EXPECT_EQ(e.Sum(absl::StrCat(kServer, "_count"),
                  {{"service_name", "nginx"}, {"http_route", "/ok"}}),
            3);
  EXPECT_EQ(e.Sum("redmap_peer_spans_total"), 0);
  EXPECT_EQ(e.Sum("redmap_table_entries", {{"table", "bpf_local_clients"}}), 0);
  EXPECT_TRUE(twice.Stop(&why)) << why;
}

TEST_F(HttpRedTest, DoesNotCountItsOwnScrapes) {
  // Compared with a scrape before: another exporter an earlier test ran
  // (WithoutParseOnce...) is not this one, and its scrapes do count.
  const Exposition before = Scrape();
  for (int i = 0; i < 5; ++i) Scrape();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Exposition e = Scrape();
  for (const char* family : {kServer, kClient}) {
    const std::string count = absl::StrCat(family, "_count");
    EXPECT_EQ(e.Count(count, {{"http_route", "/metrics"}}),
              before.Count(count, {{"http_route", "/metrics"}}))
        << family << "\n"
        << e.text();
  }
}

TEST_F(HttpRedTest, BusyPortIsAClearErrorAndNonZeroExit) {
  // exporter_port_ is taken by the running exporter.
  auto r = RunShell(absl::StrCat(REDMAP_EXPORTER_BINARY, " --web.listen-address=127.0.0.1:",
                                 exporter_port_));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.output, absl::StrCat("127.0.0.1:", exporter_port_)))
      << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "in use")) << r.output;
}

}  // namespace
}  // namespace redmap
