// The debug listener's JSON: redmap's list/detail, and the Jaeger query API
// shapes Grafana's Jaeger data source reads (checked against Jaeger's
// documented HTTP JSON: {"data", "total", "limit", "offset", "errors"}
// envelopes; traces with traceID, spans[{traceID, spanID, operationName,
// references[{refType, traceID, spanID}], startTime and duration in
// microseconds, tags[{key, type, value}], logs, processID, warnings}],
// processes{id: {serviceName, tags}}). Also over real HTTP with a token.
#include "exporter/debug_api.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "aggregators/traces/trace_json.h"
#include "nlohmann/json.hpp"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using nlohmann::json;
using traces::Trace;
using traces::TraceId;
using traces::TraceRing;
using traces::TraceSpan;
using ::redmap::testing::IsOk;

TraceSpan MakeSpan(uint64_t id, uint64_t parent, Role side, const std::string& service,
                   uint64_t start_us, uint64_t dur_us, int status) {
  TraceSpan s;
  s.span_id = id;
  s.parent_id = parent;
  s.link = parent == 0 ? traces::Link::kNone : traces::Link::kTcpSeq;
  s.protocol = Protocol::kHttp1;
  s.side = side;
  s.start_ns = start_us * 1000;
  s.end_ns = (start_us + dur_us) * 1000;
  s.tgid = static_cast<uint32_t>(id);
  s.tid = 7;
  s.service = service;
  s.process = service;
  s.method = "GET";
  s.target = "/api/users/42?token=[redacted]";
  s.route = "/api/users/{id}";
  s.status = status;
  s.client.addr = IpAddress::V4(0x0100007f);
  s.client.port = 40000;
  s.server.addr = IpAddress::V4(0x0100007f);
  s.server.port = 8080;
  s.has_tcp_seq = true;
  s.tcp_seq = 12345;
  s.request_head = "GET /api/users/42 HTTP/1.1\r\nAuthorization: [redacted]\r\n\r\n";
  return s;
}

class DebugApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Trace a;
    a.id = *TraceId::FromHex("0af7651916cd43dd8448eb211c80319c");
    a.unix_offset_ns = 1'700'000'000'000'000'000;
    a.keep_reason = "error";
    a.spans.push_back(MakeSpan(0x11, 0, Role::kServer, "nginx", 1000, 500, 500));
    a.spans.push_back(MakeSpan(0x22, 0x11, Role::kClient, "nginx", 1100, 300, 500));
    a.spans.push_back(MakeSpan(0x33, 0x22, Role::kServer, "app", 1150, 200, 500));
    a.warnings.push_back("the caller 127.0.0.1:40000 was not observed on this node");
    a.partial = true;
    ring_.Insert(std::move(a));
    Trace b;
    b.id = TraceId{0, 0xbeef};
    b.unix_offset_ns = 1'700'000'000'000'000'000;
    b.keep_reason = "ratio";
    b.spans.push_back(MakeSpan(0x44, 0, Role::kServer, "app", 5000, 20, 200));
    // Missing heads are worth a warning, but the tree is whole: not partial.
    b.warnings.push_back("no request/response heads for 1 of its 1 spans");
    ring_.Insert(std::move(b));
  }

  json Get(const std::string& path, const std::string& query = "", int want = 200) {
    HttpResponse r = api_.Handle(HttpRequest{"GET", path, query});
    EXPECT_EQ(r.status, want) << path << "?" << query << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    return json::parse(r.body);
  }

  TraceRing ring_{1 << 20, 100};
  DebugApi api_{&ring_};
};

TEST_F(DebugApiTest, ListAndFilters) {
  json all = Get("/debug/traces");
  ASSERT_EQ(all["count"], 2);
  EXPECT_EQ(all["traces"][0]["trace_id"], "0000000000000000000000000000beef");  // newest first
  EXPECT_EQ(all["traces"][0]["partial"], false);
  EXPECT_EQ(all["traces"][0]["warnings"].size(), 1u);
  json t = all["traces"][1];
  EXPECT_EQ(t["trace_id"], "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(t["span_count"], 3);
  EXPECT_EQ(t["error"], true);
  EXPECT_EQ(t["partial"], true);
  EXPECT_EQ(t["root"]["service"], "nginx");
  EXPECT_EQ(t["services"], json::array({"nginx", "app"}));
  EXPECT_EQ(t["duration_us"], 500.0);
  EXPECT_EQ(t["start_unix_us"], 1'700'000'000'000'000 + 1000);
  EXPECT_EQ(Get("/debug/traces", "error=true")["count"], 1);
  EXPECT_EQ(Get("/debug/traces", "service=nginx")["count"], 1);
  EXPECT_EQ(Get("/debug/traces", "service=app")["count"], 2);
  EXPECT_EQ(Get("/debug/traces", "route=%2Fapi%2Fusers%2F%7Bid%7D&min_duration_ms=0")["count"], 2);
  EXPECT_EQ(Get("/debug/traces", "min_duration_ms=1")["count"], 0);
  EXPECT_EQ(Get("/debug/traces", "limit=1")["count"], 1);
  Get("/debug/traces", "limit=x", 400);
  Get("/debug/traces", "min_duration_ms=-1", 400);
}

TEST_F(DebugApiTest, DetailHasEverySpanWithParentsTimingsProcessConnection) {
  json t = Get("/debug/traces/0af7651916cd43dd8448eb211c80319c");
  ASSERT_EQ(t["spans"].size(), 3u);
  json s = t["spans"][2];
  EXPECT_EQ(s["span_id"], "0000000000000033");
  EXPECT_EQ(s["parent_span_id"], "0000000000000022");
  EXPECT_EQ(s["link"], "tcp_seq");
  EXPECT_EQ(s["side"], "server");
  EXPECT_EQ(s["protocol"], "http1");
  EXPECT_EQ(s["offset_us"], 150.0);
  EXPECT_EQ(s["duration_us"], 200.0);
  EXPECT_EQ(s["process"]["pid"], 0x33);
  EXPECT_EQ(s["process"]["tid"], 7);
  EXPECT_EQ(s["connection"]["client"], "127.0.0.1:40000");
  EXPECT_EQ(s["connection"]["server"], "127.0.0.1:8080");
  EXPECT_EQ(s["connection"]["request_tcp_seq"], 12345);
  EXPECT_EQ(s["http"]["status"], 500);
  EXPECT_EQ(s["http"]["route"], "/api/users/{id}");
  Get("/debug/traces/ffff", "", 404);
  Get("/debug/traces/not-hex", "", 404);
}

TEST_F(DebugApiTest, JaegerServicesAndOperations) {
  json svc = Get("/api/services");
  EXPECT_EQ(svc["data"], json::array({"app", "nginx"}));
  EXPECT_EQ(svc["total"], 2);
  EXPECT_TRUE(svc["errors"].is_null());
  json ops = Get("/api/services/nginx/operations");
  EXPECT_EQ(ops["data"], json::array({"GET /api/users/{id}"}));
  json kinds = Get("/api/operations", "service=nginx");
  EXPECT_EQ(kinds["data"], json::parse(R"([{"name":"GET /api/users/{id}","spanKind":"client"},
                                            {"name":"GET /api/users/{id}","spanKind":"server"}])"));
  Get("/api/operations", "", 400);
}

TEST_F(DebugApiTest, JaegerTraceShape) {
  json r = Get("/api/traces/0af7651916cd43dd8448eb211c80319c");
  ASSERT_TRUE(r["data"].is_array());
  ASSERT_EQ(r["data"].size(), 1u);
  json t = r["data"][0];
  EXPECT_EQ(t["traceID"], "0af7651916cd43dd8448eb211c80319c");
  ASSERT_EQ(t["spans"].size(), 3u);
  json root = t["spans"][0];
  EXPECT_EQ(root["spanID"], "0000000000000011");
  EXPECT_EQ(root["traceID"], "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(root["operationName"], "GET /api/users/{id}");
  EXPECT_EQ(root["references"], json::array());
  EXPECT_EQ(root["startTime"], 1'700'000'000'000'000 + 1000);  // microseconds
  EXPECT_EQ(root["duration"], 500);
  EXPECT_EQ(root["flags"], 1);
  EXPECT_TRUE(root["logs"].is_array());
  EXPECT_EQ(root["warnings"][0], "the caller 127.0.0.1:40000 was not observed on this node");
  json child = t["spans"][2];
  EXPECT_EQ(child["references"],
            json::parse(R"([{"refType":"CHILD_OF","traceID":"0af7651916cd43dd8448eb211c80319c",
                             "spanID":"0000000000000022"}])"));
  bool kind = false, status = false, error = false;
  for (const json& tag : child["tags"]) {
    ASSERT_TRUE(tag.contains("key") && tag.contains("type") && tag.contains("value"));
    if (tag["key"] == "span.kind") kind = tag["value"] == "server" && tag["type"] == "string";
    if (tag["key"] == "http.status_code") status = tag["value"] == 500 && tag["type"] == "int64";
    if (tag["key"] == "error") error = tag["value"] == true && tag["type"] == "bool";
  }
  EXPECT_TRUE(kind && status && error);
  // Processes: one per (service, pid), referenced by processID.
  ASSERT_TRUE(t["processes"].is_object());
  EXPECT_EQ(t["processes"].size(), 3u);
  const std::string pid = child["processID"];
  EXPECT_EQ(t["processes"][pid]["serviceName"], "app");
  EXPECT_TRUE(t["processes"][pid]["tags"].is_array());

  json missing = Get("/api/traces/ffffffffffffffff", "", 404);
  EXPECT_TRUE(missing["data"].is_null());
  EXPECT_EQ(missing["errors"][0]["code"], 404);
}

TEST_F(DebugApiTest, JaegerSearch) {
  EXPECT_EQ(Get("/api/traces", "service=app")["data"].size(), 2u);
  EXPECT_EQ(Get("/api/traces", "service=nginx&limit=20&lookback=1h")["data"].size(), 1u);
  EXPECT_EQ(Get("/api/traces", "service=app&minDuration=100us")["data"].size(), 1u);
  EXPECT_EQ(Get("/api/traces", "service=app&maxDuration=0.1ms")["data"].size(), 1u);
  EXPECT_EQ(Get("/api/traces", "service=app&operation=GET%20%2Fapi%2Fusers%2F%7Bid%7D")["data"].size(),
            2u);
  EXPECT_EQ(Get("/api/traces", "service=app&operation=POST%20%2F")["data"].size(), 0u);
  EXPECT_EQ(Get("/api/traces", "service=app&tags=%7B%22error%22%3A%22true%22%7D")["data"].size(),
            1u);
  EXPECT_EQ(Get("/api/traces", "service=app&tag=http.status_code:200")["data"].size(), 1u);
  const int64_t t0 = 1'700'000'000'000'000;
  EXPECT_EQ(Get("/api/traces", "service=app&start=" + std::to_string(t0 + 2000) + "&end=" +
                                   std::to_string(t0 + 9000))["data"]
                .size(),
            1u);
  EXPECT_EQ(Get("/api/traces", "traceID=beef")["data"].size(), 1u);
  Get("/api/traces", "", 400);
  Get("/api/traces", "service=app&minDuration=fast", 400);
  Get("/api/traces", "service=app&tags=nope", 400);
}

TEST(GoDurationTest, Forms) {
  uint64_t ns = 0;
  EXPECT_TRUE(traces::ParseGoDuration("1.5s", &ns));
  EXPECT_EQ(ns, 1'500'000'000u);
  EXPECT_TRUE(traces::ParseGoDuration("1m30s", &ns));
  EXPECT_EQ(ns, 90'000'000'000u);
  EXPECT_TRUE(traces::ParseGoDuration("250us", &ns));
  EXPECT_EQ(ns, 250'000u);
  EXPECT_FALSE(traces::ParseGoDuration("5", &ns));
  EXPECT_FALSE(traces::ParseGoDuration("ms", &ns));
  EXPECT_FALSE(traces::ParseGoDuration("", &ns));
}

TEST(ParseQueryTest, Decodes) {
  auto q = ParseQuery("a=1&b=x%20y+z&c&=d&e=%zz");
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(q[1].second, "x y z");
  EXPECT_EQ(q[2].first, "c");
  EXPECT_EQ(q[4].second, "%zz");
}

std::string RawGet(int port, const std::string& path, const std::string& headers = "") {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return "";
  std::string req = "GET " + path + " HTTP/1.0\r\n" + headers + "\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

TEST_F(DebugApiTest, ServedOverHttpBehindABearerToken) {
  HttpServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.config_key = "debug.listen_address";
  o.serve_metrics = false;
  o.bearer_token = "t0ken";
  auto server = HttpServer::Start(o, nullptr);
  ASSERT_THAT(server, IsOk());
  api_.Register(server->get());
  const int port = (*server)->port();
  EXPECT_NE(RawGet(port, "/api/services").find("HTTP/1.1 401"), std::string::npos);
  EXPECT_NE(RawGet(port, "/api/services", "Authorization: Bearer wrong\r\n").find("401"),
            std::string::npos);
  std::string ok = RawGet(port, "/api/services", "Authorization: Bearer t0ken\r\n");
  EXPECT_NE(ok.find("HTTP/1.1 200"), std::string::npos) << ok;
  EXPECT_NE(ok.find("\"nginx\""), std::string::npos);
  std::string page = RawGet(port, "/", "Authorization: Bearer t0ken\r\n");
  EXPECT_NE(page.find("text/html"), std::string::npos);
  EXPECT_NE(page.find("sampled traces"), std::string::npos);
  // No /metrics on the debug listener; the page loads nothing from elsewhere.
  EXPECT_NE(RawGet(port, "/metrics", "Authorization: Bearer t0ken\r\n").find("404"),
            std::string::npos);
  const std::string html(TracePageHtml());
  for (const char* external : {"http://", "https://", "src=", "href=", "innerHTML"}) {
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  }

  auto busy = HttpServer::Start(
      HttpServerOptions{"127.0.0.1:" + std::to_string(port), "debug.listen_address", false, ""},
      nullptr);
  EXPECT_FALSE(busy.ok());
  EXPECT_NE(std::string(busy.status().message()).find("127.0.0.1:" + std::to_string(port)),
            std::string::npos);
}

}  // namespace
}  // namespace redmap
