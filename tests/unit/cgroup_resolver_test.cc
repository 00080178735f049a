#include "aggregators/metadata/cgroup/cgroup_resolver.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace redmap {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSec = 1'000'000'000;
constexpr char kId[] = "4f3b1c2a9e8d7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

// A cgroup2 look-alike: plain directories, whose inode numbers stand in for
// cgroup ids exactly as kernfs inode numbers do.
class FakeCgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("redmap-cg-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  uint64_t Mkdir(const std::string& rel) {
    fs::create_directories(root_ / rel.substr(1));
    return Ino(rel);
  }
  uint64_t Ino(const std::string& rel) const {
    struct stat st;
    EXPECT_EQ(stat((root_.string() + rel).c_str(), &st), 0) << rel;
    return st.st_ino;
  }
  CgroupResolverOptions Options() const {
    CgroupResolverOptions o;
    o.cgroup_root = root_.string() + "/";  // a trailing slash is tolerated
    o.proc_root = (root_ / "proc").string();
    return o;
  }
  fs::path root_;
};

const std::string kPodPath =
    "/kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod6a1d3b8e_2f4c_4e9a_b7d5_0c8e1f2a3b4c.slice/cri-containerd-" +
    std::string(kId) + ".scope";

TEST_F(FakeCgroupTree, ResolvesIdsToPathsWithOneWalk) {
  uint64_t pod = Mkdir(kPodPath);
  uint64_t svc = Mkdir("/system.slice/nginx.service");
  CgroupResolver r(Options());
  EXPECT_EQ(r.PathOf(pod, 10 * kSec), kPodPath);
  EXPECT_EQ(r.walks(), 1u);
  // The walk remembered every directory: no second walk.
  EXPECT_EQ(r.PathOf(svc, 10 * kSec), "/system.slice/nginx.service");
  EXPECT_EQ(r.PathOf(Ino("/"), 10 * kSec), "/");
  EXPECT_EQ(r.walks(), 1u);
  auto id = r.IdentityOf(pod, 10 * kSec);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->pod_uid, "6a1d3b8e-2f4c-4e9a-b7d5-0c8e1f2a3b4c");
  EXPECT_EQ(id->container_id, kId);
  EXPECT_EQ(r.PathOf(0, 10 * kSec), std::nullopt);
}

TEST_F(FakeCgroupTree, MissesAreRateLimitedAndRetried) {
  Mkdir("/system.slice");
  CgroupResolverOptions o = Options();
  o.min_walk_interval_ns = 1 * kSec;
  o.miss_ttl_ns = 5 * kSec;
  CgroupResolver r(o);
  EXPECT_EQ(r.PathOf(999'999'999, 10 * kSec), std::nullopt);
  EXPECT_EQ(r.walks(), 1u);
  // A container started after the walk: within the interval nothing walks.
  uint64_t late = Mkdir(kPodPath);
  EXPECT_EQ(r.PathOf(late, 10 * kSec + kSec / 2), std::nullopt);
  EXPECT_EQ(r.walks(), 1u);
  // The remembered miss holds for miss_ttl ...
  EXPECT_EQ(r.PathOf(late, 12 * kSec), std::nullopt);
  EXPECT_EQ(r.walks(), 1u);
  // ... then the id is looked for again.
  EXPECT_EQ(r.PathOf(late, 16 * kSec), kPodPath);
  EXPECT_EQ(r.walks(), 2u);
}

TEST_F(FakeCgroupTree, CacheIsBounded) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(Mkdir("/a/c" + std::to_string(i)));
  CgroupResolverOptions o = Options();
  o.max_entries = 8;
  CgroupResolver r(o);
  uint64_t now = 100 * kSec;
  for (int i = 0; i < 20; ++i) {
    now += 2 * kSec;  // past the walk interval: a miss may walk again
    EXPECT_EQ(r.PathOf(ids[i], now), "/a/c" + std::to_string(i));
    EXPECT_LE(r.cached(), 8u);
  }
  // Whatever was evicted is found again by a later walk.
  EXPECT_EQ(r.PathOf(ids[3], 1000 * kSec), "/a/c3");
}

TEST_F(FakeCgroupTree, WalkIsBoundedInDepth) {
  uint64_t deep = Mkdir("/a/b/c/d/e");
  CgroupResolverOptions o = Options();
  o.max_walk_depth = 3;
  CgroupResolver r(o);
  EXPECT_EQ(r.PathOf(deep, kSec), std::nullopt);
  EXPECT_EQ(r.PathOf(Ino("/a/b/c"), kSec), "/a/b/c");
}

TEST_F(FakeCgroupTree, ProcessIdentityFromProc) {
  fs::create_directories(root_ / "proc/42");
  std::ofstream(root_ / "proc/42/cgroup") << "0::" << kPodPath << "\n";
  CgroupResolver r(Options());
  auto id = r.IdentityOfProcess(42);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->container_id, kId);
  EXPECT_EQ(r.IdentityOfProcess(43), std::nullopt);
  EXPECT_EQ(r.IdentityOfProcess(0), std::nullopt);
}

TEST_F(FakeCgroupTree, FindsTheCgroup2MountInMountinfo) {
  // Hybrid host (this CI machine's layout), then a unified one, then none.
  std::ofstream(root_ / "hybrid") << "25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
                                     "26 25 0:24 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
                                     "27 25 0:25 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
  std::ofstream(root_ / "unified") << "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime "
                                      "shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
  std::ofstream(root_ / "escaped") << "35 24 0:30 / /mnt/my\\040cgroup rw - cgroup2 none rw\n";
  std::ofstream(root_ / "none") << "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
  EXPECT_EQ(FindCgroup2Mount((root_ / "hybrid").string()), "/sys/fs/cgroup/unified");
  EXPECT_EQ(FindCgroup2Mount((root_ / "unified").string()), "/sys/fs/cgroup");
  EXPECT_EQ(FindCgroup2Mount((root_ / "escaped").string()), "/mnt/my cgroup");
  EXPECT_EQ(FindCgroup2Mount((root_ / "none").string()), "");
  EXPECT_EQ(FindCgroup2Mount((root_ / "missing").string()), "");
}

TEST(CgroupResolverLiveTest, RootOfTheRealHierarchy) {
  // The cgroup2 root's id is its inode; whatever this machine mounts.
  std::string mount = FindCgroup2Mount();
  // Every machine redmap supports mounts cgroup2 (identities need it).
  ASSERT_FALSE(mount.empty()) << "no cgroup2 mount on this machine";
  struct stat st;
  ASSERT_EQ(stat(mount.c_str(), &st), 0);
  CgroupResolver r;
  EXPECT_EQ(r.cgroup_root(), mount);
  EXPECT_EQ(r.PathOf(st.st_ino, kSec), "/");
}

}  // namespace
}  // namespace redmap
