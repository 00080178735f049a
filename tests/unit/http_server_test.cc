#include "exporter/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aggregators/metadata/target_info.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using ::redmap::testing::IsOk;
using ::redmap::testing::StatusIs;
using ::testing::HasSubstr;

std::string Request(int port, const std::string& method, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return "";
  std::string req = method + " " + path + " HTTP/1.0\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

std::string Get(int port, const std::string& path) { return Request(port, "GET", path); }

std::string Body(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

TEST(HttpServerTest, ServesMetricsHealthAndIndexOnAnEphemeralPort) {
  SelfMetrics self;
  auto server = HttpServer::Start("127.0.0.1:0", &self);
  ASSERT_THAT(server, IsOk());
  int port = (*server)->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string(port));

  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter().Name("test_things_total").Help("x").Register(*registry).Add({}).Increment(3);
  (*server)->SetCollectables({registry});

  std::string metrics = Get(port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(metrics, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(metrics, HasSubstr("test_things_total 3"));
  EXPECT_THAT(Get(port, "/healthz"), HasSubstr("ok"));
  EXPECT_THAT(Get(port, "/"), HasSubstr("href=\"/metrics\""));
  EXPECT_THAT(Get(port, "/nope"), HasSubstr("404"));
  EXPECT_THAT(Get(port, "/metrics/x"), HasSubstr("404"));
}

TEST(HttpServerTest, ExactBodiesAndScrapeDurationIsObserved) {
  SelfMetrics self;
  auto server = HttpServer::Start("127.0.0.1:0", &self);
  ASSERT_THAT(server, IsOk());
  int port = (*server)->port();
  EXPECT_EQ(Body(Get(port, "/healthz")), "ok\n");
  EXPECT_THAT(Body(Get(port, "/")), HasSubstr(kRedmapVersion));
  EXPECT_THAT(Body(Get(port, "/")), HasSubstr("href=\"/healthz\""));

  (*server)->SetCollectables({std::shared_ptr<prometheus::Collectable>(&self, [](auto*) {})});
  Get(port, "/metrics");
  std::string second = Body(Get(port, "/metrics"));
  // The second scrape reports the first.
  EXPECT_THAT(second, HasSubstr("redmap_scrape_duration_seconds_count 1\n"));
}

TEST(HttpServerTest, OnlyGetAndHead) {
  SelfMetrics self;
  auto server = HttpServer::Start("127.0.0.1:0", &self);
  ASSERT_THAT(server, IsOk());
  int port = (*server)->port();
  std::string head = Request(port, "HEAD", "/healthz");
  EXPECT_THAT(head, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(head, HasSubstr("Content-Length: 3"));
  EXPECT_EQ(Body(head), "");
  for (const char* path : {"/metrics", "/healthz", "/"}) {
    std::string post = Request(port, "POST", path);
    EXPECT_THAT(post, HasSubstr("HTTP/1.1 405")) << path;
    EXPECT_THAT(post, HasSubstr("Allow: GET, HEAD")) << path;
  }
}

TEST(HttpServerTest, BadAddressesAreStatuses) {
  SelfMetrics self;
  EXPECT_THAT(HttpServer::Start("nowhere", &self),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("web.listen_address")));
  // Not an address of this machine.
  EXPECT_THAT(HttpServer::Start("192.0.2.1:9435", &self),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("cannot listen on 192.0.2.1:9435: cannot assign requested")));
}

TEST(HttpServerTest, Ipv6ServesOrSaysWhyNot) {
  SelfMetrics self;
  auto server = HttpServer::Start("[::1]:0", &self);
  if (server.ok()) {
    EXPECT_EQ((*server)->address(), "[::1]:" + std::to_string((*server)->port()));
  } else {
    EXPECT_THAT(server, StatusIs(absl::StatusCode::kUnimplemented,
                                 HasSubstr("cannot listen on [::1]:0: this civetweb library was "
                                           "built without IPv6")));
  }
}

TEST(HttpServerTest, TwoServersSideBySide) {
  SelfMetrics a_self, b_self;
  auto a = HttpServer::Start("127.0.0.1:0", &a_self);
  auto b = HttpServer::Start("127.0.0.1:0", &b_self);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE((*a)->port(), (*b)->port());
  EXPECT_EQ(Body(Get((*a)->port(), "/healthz")), "ok\n");
  EXPECT_EQ(Body(Get((*b)->port(), "/healthz")), "ok\n");
}

TEST(HttpServerTest, BusyPortIsAStatusNamingTheAddress) {
  SelfMetrics self;
  auto first = HttpServer::Start("127.0.0.1:0", &self);
  ASSERT_THAT(first, IsOk());
  std::string addr = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = HttpServer::Start(addr, &self);
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable,
                               HasSubstr("cannot listen on " + addr + ": address already in use")));
}

}  // namespace
}  // namespace redmap
