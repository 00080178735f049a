#include "aggregators/metadata/process_info.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace redmap {
namespace {

class FakeProc {
 public:
  FakeProc() {
    root_ = std::filesystem::temp_directory_path() / ("redmap-proc-" + std::to_string(getpid()));
    std::filesystem::create_directories(root_);
  }
  ~FakeProc() { std::filesystem::remove_all(root_); }
  void Add(int pid, const std::string& comm, const std::string& environ, uint64_t start = 777) {
    auto dir = root_ / std::to_string(pid);
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "comm") << comm << "\n";
    std::ofstream(dir / "environ", std::ios::binary) << environ;
    std::ofstream(dir / "stat") << pid << " (" << comm
                                << " (x)) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " << start
                                << " 0 0\n";
  }
  void Remove(int pid) { std::filesystem::remove_all(root_ / std::to_string(pid)); }
  std::string root() const { return root_.string(); }

 private:
  std::filesystem::path root_;
};

TEST(ProcessResolverTest, OtelServiceNameWins) {
  FakeProc proc;
  proc.Add(10, "python3", std::string("PATH=/bin\0OTEL_SERVICE_NAME=catalog\0", 35));
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(10, 1), "catalog");
}

TEST(ProcessResolverTest, ResourceAttributesThenComm) {
  FakeProc proc;
  proc.Add(11, "java", std::string("OTEL_RESOURCE_ATTRIBUTES=team=a,service.name=orders\0", 52));
  proc.Add(12, "nginx", std::string("HOME=/\0", 7));
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(11, 1), "orders");
  EXPECT_EQ(r.ServiceName(12, 1), "nginx");
}

TEST(ProcessResolverTest, GoneProcessUsesKernelCommAndZeroIsUnknown) {
  FakeProc proc;
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(13, 1, "curl"), "curl");
  EXPECT_EQ(r.ServiceName(14, 1), kUnknownService);
  EXPECT_EQ(r.ServiceName(0, 1, "x"), kUnknownService);
}

TEST(ProcessResolverTest, PidReuseIsNoticedAfterRevalidation) {
  FakeProc proc;
  proc.Add(20, "redis-server", "", 100);
  ProcessResolver r(proc.root());
  EXPECT_EQ(r.ServiceName(20, 1), "redis-server");
  proc.Remove(20);
  proc.Add(20, "memcached", "", 200);  // same pid, new process
  EXPECT_EQ(r.ServiceName(20, 2), "redis-server");  // cached within the window
  EXPECT_EQ(r.ServiceName(20, 2 + ProcessResolver::kRevalidateNs), "memcached");
}

TEST(ProcessResolverTest, CacheIsBounded) {
  FakeProc proc;
  for (int pid = 30; pid < 40; ++pid) proc.Add(pid, "p" + std::to_string(pid), "");
  ProcessResolver r(proc.root(), 4);
  for (int pid = 30; pid < 40; ++pid) r.ServiceName(pid, 1);
  EXPECT_LE(r.cached(), 4u);
}

}  // namespace
}  // namespace redmap
