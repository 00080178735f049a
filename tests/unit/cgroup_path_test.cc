// Cgroup path shapes as kubelet, containerd, CRI-O, Docker and Podman lay
// them out. The ids and UIDs are from real nodes (kubeadm 1.29 + containerd
// 1.7 on cgroup v2 with the systemd driver; OpenShift 4.14 with CRI-O; k3s
// and minikube with the cgroupfs driver; kind 0.20; Docker 24 and Podman 4
// on Debian 12).
#include "aggregators/metadata/cgroup/cgroup_path.h"

#include <gtest/gtest.h>

namespace redmap {
namespace {

constexpr char kId[] = "4f3b1c2a9e8d7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
constexpr char kId2[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr char kUid[] = "6a1d3b8e-2f4c-4e9a-b7d5-0c8e1f2a3b4c";

struct Case {
  const char* name;
  std::string path;
  ContainerRuntime runtime;
  std::string container_id;
  std::string pod_uid;
  std::string qos;
  bool conmon = false;
};

std::string S(const char* a) { return a; }

class CgroupPathTest : public ::testing::TestWithParam<Case> {};

TEST_P(CgroupPathTest, Parses) {
  const Case& c = GetParam();
  CgroupIdentity id = ParseCgroupPath(c.path);
  EXPECT_EQ(id.runtime, c.runtime) << ContainerRuntimeName(id.runtime);
  EXPECT_EQ(id.container_id, c.container_id);
  EXPECT_EQ(id.pod_uid, c.pod_uid);
  EXPECT_EQ(id.qos, c.qos);
  EXPECT_EQ(id.conmon, c.conmon);
  EXPECT_EQ(id.path, c.path);
}

const std::string kUidU = "6a1d3b8e_2f4c_4e9a_b7d5_0c8e1f2a3b4c";

INSTANTIATE_TEST_SUITE_P(
    Layouts, CgroupPathTest,
    ::testing::Values(
        Case{"containerd_systemd_burstable",
             "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidU +
                 ".slice/cri-containerd-" + S(kId) + ".scope",
             ContainerRuntime::kContainerd, kId, kUid, "burstable"},
        Case{"containerd_systemd_besteffort",
             "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + kUidU +
                 ".slice/cri-containerd-" + S(kId) + ".scope",
             ContainerRuntime::kContainerd, kId, kUid, "besteffort"},
        Case{"containerd_systemd_guaranteed",
             "/kubepods.slice/kubepods-pod" + kUidU + ".slice/cri-containerd-" + S(kId) + ".scope",
             ContainerRuntime::kContainerd, kId, kUid, "guaranteed"},
        Case{"crio_systemd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                                 kUidU + ".slice/crio-" + S(kId) + ".scope",
             ContainerRuntime::kCrio, kId, kUid, "burstable"},
        Case{"crio_conmon", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                                kUidU + ".slice/crio-conmon-" + S(kId) + ".scope",
             ContainerRuntime::kCrio, kId, kUid, "burstable", true},
        Case{"cri_dockerd_systemd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                                        kUidU + ".slice/docker-" + S(kId) + ".scope",
             ContainerRuntime::kDocker, kId, kUid, "besteffort"},
        Case{"cgroupfs_burstable", "/kubepods/burstable/pod" + S(kUid) + "/" + kId,
             ContainerRuntime::kUnknown, kId, kUid, "burstable"},
        Case{"cgroupfs_guaranteed", "/kubepods/pod" + S(kUid) + "/" + kId,
             ContainerRuntime::kUnknown, kId, kUid, "guaranteed"},
        Case{"cgroupfs_crio", "/kubepods/besteffort/pod" + S(kUid) + "/crio-" + kId,
             ContainerRuntime::kCrio, kId, kUid, "besteffort"},
        Case{"kind_nested",
             "/system.slice/docker-" + S(kId2) +
                 ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/"
                 "kubelet-kubepods-burstable-pod" +
                 kUidU + ".slice/cri-containerd-" + kId + ".scope",
             ContainerRuntime::kContainerd, kId, kUid, "burstable"},
        Case{"docker_in_docker_cgroupfs",
             "/docker/" + S(kId2) + "/kubepods/besteffort/pod" + kUid + "/" + kId,
             ContainerRuntime::kUnknown, kId, kUid, "besteffort"},
        Case{"runc_systemd_colon_form",
             "/kubepods-burstable-pod" + kUidU + ".slice:cri-containerd:" + S(kId),
             ContainerRuntime::kContainerd, kId, kUid, "burstable"},
        Case{"pod_slice_without_container",
             "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidU + ".slice",
             ContainerRuntime::kNone, "", kUid, "burstable"},
        Case{"docker_cgroupfs", "/docker/" + S(kId), ContainerRuntime::kDocker, kId, "", ""},
        Case{"docker_systemd", "/system.slice/docker-" + S(kId) + ".scope",
             ContainerRuntime::kDocker, kId, "", ""},
        Case{"podman", "/machine.slice/libpod-" + S(kId) + ".scope", ContainerRuntime::kPodman,
             kId, "", ""},
        Case{"podman_user", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" +
                                S(kId) + ".scope/container",
             ContainerRuntime::kPodman, kId, "", ""},
        Case{"systemd_service", "/system.slice/nginx.service", ContainerRuntime::kNone, "", "", ""},
        Case{"root", "/", ContainerRuntime::kNone, "", "", ""},
        Case{"empty", "", ContainerRuntime::kNone, "", "", ""},
        // Not ids: too short without a runtime prefix, upper case, not hex.
        Case{"short_bare_hex", "/kubepods/burstable/pod" + S(kUid) + "/4f3b1c2a9e8d",
             ContainerRuntime::kNone, "", kUid, "burstable"},
        Case{"upper_case_id", "/docker/" + std::string(64, 'A'), ContainerRuntime::kNone, "", "", ""},
        Case{"bad_uid", "/kubepods/burstable/pod6a1d3b8e-2f4c-4e9a-b7d5/" + S(kId),
             ContainerRuntime::kUnknown, kId, "", ""},
        Case{"session_scope", "/user.slice/user-1000.slice/session-3.scope",
             ContainerRuntime::kNone, "", "", ""}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(CgroupPathTest, SystemdUnit) {
  EXPECT_EQ(ParseCgroupPath("/system.slice/nginx.service").systemd_unit, "nginx.service");
  EXPECT_EQ(ParseCgroupPath("/system.slice/containerd.service/kubepods-x").systemd_unit,
            "containerd.service");
  EXPECT_EQ(ParseCgroupPath("/user.slice").systemd_unit, "");
}

TEST(ProcCgroupTest, UnifiedHierarchy) {
  // /proc/<pid>/cgroup of nginx in a pod on a cgroup v2 node.
  std::string proc = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidU +
                     ".slice/cri-containerd-" + kId + ".scope\n";
  CgroupIdentity id = ParseProcCgroup(proc);
  EXPECT_EQ(id.pod_uid, kUid);
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.runtime, ContainerRuntime::kContainerd);
  EXPECT_EQ(UnifiedCgroupPath(proc), id.path);
}

TEST(ProcCgroupTest, LegacyHierarchies) {
  // cgroup v1 node (cgroupfs driver): every controller line carries the path.
  std::string p = "/kubepods/burstable/pod" + S(kUid) + "/" + kId;
  std::string proc = "12:pids:" + p + "\n11:memory:" + p + "\n10:cpu,cpuacct:" + p +
                     "\n1:name=systemd:" + p + "\n";
  CgroupIdentity id = ParseProcCgroup(proc);
  EXPECT_EQ(id.pod_uid, kUid);
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(UnifiedCgroupPath(proc), "");
}

TEST(ProcCgroupTest, HybridPrefersTheLineThatNamesTheContainer) {
  // Hybrid host (like our CI machines): v2 mounted at /sys/fs/cgroup/unified
  // with everything in its root, Docker on the v1 controllers.
  std::string proc = "9:name=systemd:/docker/" + S(kId) + "\n4:memory:/docker/" + kId +
                     "\n1:cpu:/docker/" + kId + "\n0::/\n";
  CgroupIdentity id = ParseProcCgroup(proc);
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.runtime, ContainerRuntime::kDocker);
  EXPECT_EQ(id.path, "/docker/" + S(kId));
}

TEST(ProcCgroupTest, V2WinsOverV1) {
  std::string proc = "4:memory:/docker/" + S(kId2) + "\n0::/system.slice/docker-" + kId + ".scope\n";
  EXPECT_EQ(ParseProcCgroup(proc).container_id, kId);
}

TEST(ProcCgroupTest, NoContainer) {
  CgroupIdentity id = ParseProcCgroup("4:memory:/process_api/x\n0::/user.slice/session-1.scope\n");
  EXPECT_FALSE(id.in_container());
  EXPECT_FALSE(id.in_pod());
  EXPECT_EQ(id.path, "/user.slice/session-1.scope");
  EXPECT_FALSE(ParseProcCgroup("").in_pod());
  EXPECT_FALSE(ParseProcCgroup("garbage\n::\n").in_pod());
}

}  // namespace
}  // namespace redmap
