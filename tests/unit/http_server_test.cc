#include "exporter/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using ::redmap::testing::IsOk;
using ::redmap::testing::StatusIs;
using ::testing::HasSubstr;

std::string Get(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return "";
  std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
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
