// --replay end to end: capture a known curl workload against a real server
// with tcpdump, replay the capture through redmap_exporter, and get the same
// counts the live pipeline reports for that workload.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/harness_util.h"

namespace redmap {
namespace {

using ::redmap::testing::Exposition;
using ::redmap::testing::FreePort;
using ::redmap::testing::RunShell;
using ::redmap::testing::Subprocess;
using ::redmap::testing::TempDir;
using ::redmap::testing::WaitForPort;

TEST(ReplayTest, CaptureOfCurlWorkloadReplaysToExactCounts) {
  TempDir dir;
  dir.Write("a.txt", "alpha\n");
  int port = FreePort();
  Subprocess server;
  ASSERT_TRUE(server.Start({"python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                            dir.path(), std::to_string(port)}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10)));

  std::string pcap = dir.path() + "/capture.pcap";
  Subprocess tcpdump;
  ASSERT_TRUE(tcpdump.Start({"tcpdump", "-Z", "root", "--immediate-mode", "-i", "lo", "-U", "-w", pcap, "tcp", "port",
                             std::to_string(port)}));
  for (int i = 0; i < 100 && !absl::StrContains(tcpdump.Output(), "listening on"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(absl::StrContains(tcpdump.Output(), "listening on")) << tcpdump.Output();

  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(RunShell(absl::StrCat("curl -sS -o /dev/null http://127.0.0.1:", port, "/a.txt"))
                  .exit_code,
              0);
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(RunShell(absl::StrCat("curl -sS -o /dev/null http://127.0.0.1:", port,
                                    "/orders/12345/items"))
                  .exit_code,
              0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  tcpdump.Stop(SIGINT);
  ASSERT_FALSE(absl::StrContains(tcpdump.Output(), " 0 packets captured")) << tcpdump.Output();

  auto r = RunShell(absl::StrCat(REDMAP_EXPORTER_BINARY, " --replay=", pcap, " 2>/dev/null"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Exposition e = Exposition::Parse(r.output);
  const std::string server_count = "http_server_request_duration_seconds_count";
  const std::string client_count = "http_client_request_duration_seconds_count";
  EXPECT_EQ(e.Sum(server_count, {{"http_route", "/a.txt"}, {"http_response_status_code", "200"},
                           {"http_request_method", "GET"}}),
            6)
      << r.output;
  EXPECT_EQ(e.Sum(client_count, {{"http_route", "/a.txt"}, {"http_response_status_code", "200"},
                           {"server_port", std::to_string(port)}}),
            6);
  EXPECT_EQ(e.Sum(server_count, {{"http_route", "/orders/{id}/items"},
                           {"http_response_status_code", "404"}}),
            2);

  // --replay.spans: one JSON line per span (client and server view of each
  // of the 8 requests), before the exposition.
  auto spans = RunShell(absl::StrCat(REDMAP_EXPORTER_BINARY, " --replay=", pcap,
                                     " --replay.spans 2>/dev/null"));
  ASSERT_EQ(spans.exit_code, 0);
  int json_lines = 0;
  for (absl::string_view line : absl::StrSplit(spans.output, '\n')) {
    if (absl::StartsWith(line, "{")) ++json_lines;
  }
  EXPECT_EQ(json_lines, 16) << spans.output;
}

TEST(ReplayTest, MissingCaptureIsAClearError) {
  auto r = RunShell(absl::StrCat(REDMAP_EXPORTER_BINARY, " --replay=/nonexistent/x.pcap"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.output, "/nonexistent/x.pcap")) << r.output;
}

}  // namespace
}  // namespace redmap
