#include "aggregators/metadata/process_info.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace redmap {
namespace {

// A /proc look-alike in a temp dir: <pid>/{comm,environ,stat,exe}.
class FakeProc {
 public:
  FakeProc() {
    root_ = std::filesystem::temp_directory_path() /
            ("redmap-proc-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  ~FakeProc() { std::filesystem::remove_all(root_); }
  void Add(int pid, const std::string& comm, const std::string& environ, uint64_t start = 777,
           const std::string& exe = "") {
    auto dir = root_ / std::to_string(pid);
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "comm") << comm << "\n";
    std::ofstream(dir / "environ", std::ios::binary) << environ;
    // comm with a space and parentheses, as prctl allows: field counting
    // must start after the last ')'.
    std::ofstream(dir / "stat") << pid << " (" << comm
                                << " (x)) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 " << start
                                << " 0 0\n";
    if (!exe.empty()) std::filesystem::create_symlink(exe, dir / "exe");
  }
  void SetComm(int pid, const std::string& comm) {
    std::ofstream(root_ / std::to_string(pid) / "comm") << comm << "\n";
  }
  void Remove(int pid) { std::filesystem::remove_all(root_ / std::to_string(pid)); }
  std::string root() const { return root_.string(); }

 private:
  std::filesystem::path root_;
};

std::string Env(std::initializer_list<std::string> vars) {
  std::string out;
  for (const auto& v : vars) {
    out += v;
    out += '\0';
  }
  return out;
}

TEST(ProcessResolverTest, OtelServiceNameWins) {
  FakeProc proc;
  proc.Add(10, "python3",
           Env({"PATH=/bin", "OTEL_RESOURCE_ATTRIBUTES=service.name=other",
                "OTEL_SERVICE_NAME=catalog"}));
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(10, 1), "catalog");
}

TEST(ProcessResolverTest, ResourceAttributesThenComm) {
  FakeProc proc;
  proc.Add(11, "java", Env({"OTEL_RESOURCE_ATTRIBUTES=team=a, service.name = orders ,x=y"}));
  proc.Add(12, "nginx", Env({"HOME=/"}));
  proc.Add(13, "node", Env({"OTEL_SERVICE_NAME=", "OTEL_RESOURCE_ATTRIBUTES=service.name="}));
  proc.Add(14, "ruby", "OTEL_SERVICE_NAME=unterminated");
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(11, 1), "orders");
  EXPECT_EQ(r.ServiceName(12, 1), "nginx");
  EXPECT_EQ(r.ServiceName(13, 1), "node");  // empty values do not count
  EXPECT_EQ(r.ServiceName(14, 1), "unterminated");
}

TEST(ProcessResolverTest, NamesAreLabelSafeAndBounded) {
  FakeProc proc;
  proc.Add(15, "x", Env({"OTEL_SERVICE_NAME=caf\xc3\xa9\x01" + std::string(200, 'n')}));
  ProcessResolver r(proc.root());
  std::string name = r.ServiceName(15, 1);
  EXPECT_EQ(name.size(), 128u);
  EXPECT_EQ(name.substr(0, 8), "caf___nn");
  EXPECT_EQ(ServiceNameFromComm("curl"), "curl");
  EXPECT_EQ(ServiceNameFromComm(""), kUnknownService);
  EXPECT_EQ(ServiceNameFromComm("a\tb\x7f"), "a_b_");
}

TEST(ProcessResolverTest, TruncatedCommIsCompletedFromTheExeLink) {
  FakeProc proc;
  proc.Add(16, "kube-controller", "", 1, "/usr/local/bin/kube-controller-manager");
  proc.Add(17, "containerd-shim", "", 1, "/usr/bin/containerd-shim-runc-v2 (deleted)");
  proc.Add(18, "python3", "", 1, "/usr/bin/python3.11");      // not cut: comm stays
  proc.Add(19, "my-worker-threa", "", 1, "/usr/bin/server");  // renamed: not a prefix
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(16, 1), "kube-controller-manager");
  EXPECT_EQ(r.ServiceName(17, 1), "containerd-shim-runc-v2");
  EXPECT_EQ(r.ServiceName(18, 1), "python3");
  EXPECT_EQ(r.ServiceName(19, 1), "my-worker-threa");
}

TEST(ProcessResolverTest, GoneProcessUsesKernelCommAndZeroIsUnknown) {
  FakeProc proc;
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(13, 1, "curl"), "curl");
  EXPECT_EQ(r.ServiceName(14, 1), kUnknownService);
  EXPECT_EQ(r.ServiceName(0, 1, "x"), kUnknownService);
}

TEST(ProcessResolverTest, ProcIsReadOncePerProcess) {
  FakeProc proc;
  proc.Add(21, "nginx", "", 100);
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(21, 1'000), "nginx");
  proc.SetComm(21, "renamed");
  EXPECT_EQ(r.ServiceName(21, 2'000), "nginx");
  EXPECT_EQ(r.ServiceName(21, 500), "nginx");  // an older timestamp is no reason to re-read
  // Revalidation finds the same start time: still the same process.
  EXPECT_EQ(r.ServiceName(21, 2'000 + ProcessResolver::kRevalidateNs), "nginx");
}

TEST(ProcessResolverTest, PidReuseIsNoticedAfterRevalidation) {
  FakeProc proc;
  proc.Add(20, "redis-server", "", 100);
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(20, 1), "redis-server");
  proc.Remove(20);
  proc.Add(20, "memcached", "", 200);               // same pid, new process
  EXPECT_EQ(r.ServiceName(20, 2), "redis-server");  // cached within the window
  EXPECT_EQ(r.ServiceName(20, 2 + ProcessResolver::kRevalidateNs), "memcached");
}

TEST(ProcessResolverTest, CacheIsBounded) {
  FakeProc proc;
  for (int pid = 30; pid < 40; ++pid) proc.Add(pid, "p" + std::to_string(pid), "");
  ProcessResolver r(proc.root(), 4);
  for (int pid = 30; pid < 40; ++pid) {
    EXPECT_EQ(r.ServiceName(pid, 1), "p" + std::to_string(pid));
    EXPECT_LE(r.cached(), 4u);
  }
}

TEST(ProcessResolverTest, RealProcOfThisProcess) {
  ProcessResolver r;
  std::string name = r.ServiceName(static_cast<uint32_t>(getpid()), 1);
  EXPECT_FALSE(name.empty());
  EXPECT_NE(name, kUnknownService);
}

}  // namespace
}  // namespace redmap
