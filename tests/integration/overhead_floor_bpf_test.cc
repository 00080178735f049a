// The floor tool behind tests/bench/overhead.sh: its modes must measure what
// they claim, or the floors in the results file mean nothing. `capture` must
// see the real traffic (every data syscall of a known workload, no drops);
// `hook` and `sock-hook` must have their empty programs, and only those, on
// their hooks while they run.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/harness_util.h"

namespace redmap {
namespace {

using ::redmap::testing::FreePort;
using ::redmap::testing::NginxConfig;
using ::redmap::testing::RunShell;
using ::redmap::testing::Subprocess;
using ::redmap::testing::TempDir;
using ::redmap::testing::WaitForPort;
using ::redmap::testing::WaitUntil;

bool Attached(Subprocess& p) {
  return WaitUntil([&] { return absl::StrContains(p.Output(), "attached") || !p.Running(); }, 30) &&
         absl::StrContains(p.Output(), "attached");
}

// "data_events N kernel_ring_drops M" -> value of `key`, -1 if absent.
int64_t Field(const std::string& output, const std::string& key) {
  std::vector<std::string> words =
      absl::StrSplit(output, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    int64_t v = 0;
    if (words[i] == key && absl::SimpleAtoi(words[i + 1], &v)) return v;
  }
  return -1;
}

TEST(OverheadFloorTest, CaptureModeReceivesEveryDataSyscallOfAKnownWorkload) {
  TempDir dir;
  const int port = FreePort();
  dir.Write("nginx.conf", NginxConfig(dir.path(), absl::StrCat(R"(
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:)",
                                                               port, R"(;
    location / { return 200 "ok\n"; }
  })")));
  Subprocess nginx;
  ASSERT_TRUE(
      nginx.Start({"nginx", "-c", dir.path() + "/nginx.conf", "-e", dir.path() + "/error.log"}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << nginx.Output();

  Subprocess floor;
  ASSERT_TRUE(floor.Start({REDMAP_OVERHEAD_FLOOR_BINARY, "capture"}));
  ASSERT_TRUE(Attached(floor)) << floor.Output();
  // One keep-alive connection, 500 requests: each is one write and one read
  // on the client's socket and one read and one write on nginx's.
  constexpr int kRequests = 500;
  auto r =
      RunShell(absl::StrCat("h2load --h1 -n ", kRequests, " -c 1 http://127.0.0.1:", port, "/"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(absl::StrContains(r.output, absl::StrCat(kRequests, " succeeded"))) << r.output;
  ASSERT_EQ(floor.Stop(), 0) << floor.Output();

  const std::string out = floor.Output();
  EXPECT_GE(Field(out, "data_events"), 4 * kRequests) << out;
  EXPECT_EQ(Field(out, "kernel_ring_drops"), 0) << out;
}

TEST(OverheadFloorTest, HookModeHasItsEmptyProgramOnSysExitWhileItRuns) {
  Subprocess floor;
  ASSERT_TRUE(floor.Start({REDMAP_OVERHEAD_FLOOR_BINARY, "hook"}));
  ASSERT_TRUE(Attached(floor)) << floor.Output();
  auto shown = RunShell("bpftool prog show name empty_sys_exit");
  EXPECT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_TRUE(absl::StrContains(shown.output, "tracing")) << shown.output;
  EXPECT_TRUE(RunShell("bpftool prog show name empty_sock_send").output.empty());
  EXPECT_EQ(floor.Stop(), 0) << floor.Output();
  // The kernel frees a detached program after a grace period, not at once.
  EXPECT_TRUE(WaitUntil(
      [] { return RunShell("bpftool prog show name empty_sys_exit").output.empty(); }, 10))
      << "the program outlived its process";
}

TEST(OverheadFloorTest, SockHookModeHasItsEmptyProgramsOnTheSocketTracepointsOnly) {
  Subprocess floor;
  ASSERT_TRUE(floor.Start({REDMAP_OVERHEAD_FLOOR_BINARY, "sock-hook"}));
  ASSERT_TRUE(Attached(floor)) << floor.Output();
  for (const char* name : {"empty_sock_send", "empty_sock_recv"}) {
    auto shown = RunShell(absl::StrCat("bpftool prog show name ", name));
    EXPECT_EQ(shown.exit_code, 0) << name << ": " << shown.output;
    EXPECT_TRUE(absl::StrContains(shown.output, "tracing")) << shown.output;
  }
  EXPECT_TRUE(RunShell("bpftool prog show name empty_sys_exit").output.empty());
  EXPECT_EQ(floor.Stop(), 0) << floor.Output();
}

TEST(OverheadFloorTest, AnUnknownModeIsAUsageErrorNotARun) {
  auto r = RunShell(absl::StrCat(REDMAP_OVERHEAD_FLOOR_BINARY, " capturee 2>&1"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "usage: overhead_floor hook|sock-hook|capture"))
      << r.output;
}

}  // namespace
}  // namespace redmap
