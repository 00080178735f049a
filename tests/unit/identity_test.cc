// IdentityResolver over a Store, a fake cgroup tree, CIDR names and the DNS
// cache: the resolution order and the edge-level naming.
#include "aggregators/metadata/identity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

namespace fs = std::filesystem;
using k8s::ParseIp;
using ::redmap::testing::IsOk;

constexpr uint64_t kSec = 1'000'000'000;

// ---- CIDR names ------------------------------------------------------------------

TEST(CidrNamesTest, LongestPrefixWins) {
  auto c = CidrNames::Create({{"0.0.0.0/0", "internet"},
                              {"10.0.0.0/8", "corp"},
                              {"10.20.0.0/16", "vpn"},
                              {"10.20.30.40", "bastion"},
                              {"2001:db8::/32", "lab6"},
                              {"::ffff:192.168.0.0/112", "mapped"}});
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->size(), 6u);
  auto name = [&](const char* ip) {
    const std::string* n = c->Lookup(ParseIp(ip));
    return n == nullptr ? std::string("-") : *n;
  };
  EXPECT_EQ(name("10.20.30.40"), "bastion");
  EXPECT_EQ(name("10.20.30.41"), "vpn");
  EXPECT_EQ(name("10.21.0.1"), "corp");
  EXPECT_EQ(name("8.8.8.8"), "internet");
  EXPECT_EQ(name("::ffff:10.20.1.1"), "vpn");  // mapped IPv4 is IPv4
  EXPECT_EQ(name("192.168.3.4"), "mapped");
  EXPECT_EQ(name("2001:db8:1::5"), "lab6");
  EXPECT_EQ(name("2001:db9::5"), "-");  // 0.0.0.0/0 is IPv4 only
}

TEST(CidrNamesTest, OddPrefixLengthsAndErrors) {
  auto c = CidrNames::Create({{"172.16.0.0/12", "private"}, {"192.168.1.128/25", "upper"}});
  ASSERT_THAT(c, IsOk());
  EXPECT_NE(c->Lookup(ParseIp("172.31.255.255")), nullptr);
  EXPECT_EQ(c->Lookup(ParseIp("172.32.0.0")), nullptr);
  EXPECT_NE(c->Lookup(ParseIp("192.168.1.200")), nullptr);
  EXPECT_EQ(c->Lookup(ParseIp("192.168.1.100")), nullptr);
  // Host bits in the network are cleared, not an error.
  EXPECT_NE(CidrNames::Create({{"10.1.2.3/8", "x"}})->Lookup(ParseIp("10.9.9.9")), nullptr);
  EXPECT_FALSE(CidrNames::Create({{"10.0.0.0/33", "x"}}).ok());
  EXPECT_FALSE(CidrNames::Create({{"10.0.0.0/", "x"}}).ok());
  EXPECT_FALSE(CidrNames::Create({{"10.0.0/8", "x"}}).ok());
  EXPECT_FALSE(CidrNames::Create({{"fd00::/129", "x"}}).ok());
  EXPECT_FALSE(CidrNames::Create({{"10.0.0.0/8", ""}}).ok());
}

// ---- DNS cache -------------------------------------------------------------------

TEST(DnsCacheTest, TtlAndLatestAnswer) {
  DnsCacheOptions o;
  o.min_ttl_ns = 10 * kSec;
  o.max_ttl_ns = 100 * kSec;
  DnsCache dns(o);
  dns.Add(ParseIp("93.184.216.34"), "example.com.", 30, 0);
  EXPECT_EQ(dns.Lookup(ParseIp("93.184.216.34"), 15 * kSec), "example.com");
  EXPECT_EQ(dns.Lookup(ParseIp("93.184.216.34"), 30 * kSec), std::nullopt);
  dns.Add(ParseIp("1.1.1.1"), "a.example", 1, 0);  // raised to min_ttl
  EXPECT_EQ(dns.Lookup(ParseIp("1.1.1.1"), 9 * kSec), "a.example");
  dns.Add(ParseIp("1.1.1.1"), "b.example", 100000, kSec);  // capped at max_ttl; latest wins
  EXPECT_EQ(dns.Lookup(ParseIp("::ffff:1.1.1.1"), 80 * kSec), "b.example");
  EXPECT_EQ(dns.Lookup(ParseIp("1.1.1.1"), 101 * kSec), std::nullopt);
  // Names that are not label-safe are ignored.
  dns.Add(ParseIp("2.2.2.2"), "bad name", 60, 0);
  dns.Add(ParseIp("2.2.2.2"), "", 60, 0);
  dns.Add(ParseIp("2.2.2.2"), std::string(300, 'a'), 60, 0);
  EXPECT_EQ(dns.Lookup(ParseIp("2.2.2.2"), 0), std::nullopt);
}

TEST(DnsCacheTest, AnAddressInUseKeepsItsName) {
  DnsCacheOptions o;
  o.min_ttl_ns = 10 * kSec;
  DnsCache dns(o);
  dns.Add(ParseIp("93.184.216.34"), "example.com", 10, 0);
  // Looked up before it expires: named for min_ttl past each lookup, as a
  // long-lived connection's identity is re-resolved while it is used.
  for (uint64_t t = 8; t <= 80; t += 8) {
    EXPECT_EQ(dns.Lookup(ParseIp("93.184.216.34"), t * kSec), "example.com") << t;
  }
  EXPECT_EQ(dns.Lookup(ParseIp("93.184.216.34"), 91 * kSec), std::nullopt);
}

TEST(DnsCacheTest, GenerationMovesWhenANameIsNewOrChanges) {
  DnsCache dns;
  const uint64_t g0 = dns.generation();
  dns.Add(ParseIp("1.1.1.1"), "a.example", 300, 0);
  const uint64_t g1 = dns.generation();
  EXPECT_GT(g1, g0);
  dns.Add(ParseIp("1.1.1.1"), "a.example", 300, kSec);  // a refresh
  EXPECT_EQ(dns.generation(), g1);
  dns.Add(ParseIp("1.1.1.1"), "b.example", 300, 2 * kSec);  // renamed
  EXPECT_GT(dns.generation(), g1);
  dns.Add(ParseIp("1.1.1.1"), "bad name", 300, 3 * kSec);  // ignored
  EXPECT_EQ(dns.Lookup(ParseIp("1.1.1.1"), 3 * kSec), "b.example");
}

TEST(DnsCacheTest, Bounded) {
  DnsCacheOptions o;
  o.max_entries = 16;
  DnsCache dns(o);
  for (uint32_t i = 0; i < 100; ++i) {
    dns.Add(IpAddress::V4(htonl(0x0a000000 + i)), "h" + std::to_string(i) + ".example", 60 + i, 0);
    EXPECT_LE(dns.size(), 16u);
  }
  EXPECT_GE(dns.evicted(), 84u);
  // The newest answers (longest to live) survived.
  EXPECT_EQ(dns.Lookup(IpAddress::V4(htonl(0x0a000000 + 99)), 0), "h99.example");
}

// ---- resolver --------------------------------------------------------------------

constexpr char kUid[] = "6a1d3b8e-2f4c-4e9a-b7d5-0c8e1f2a3b4c";
constexpr char kCid[] = "4f3b1c2a9e8d7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("redmap-id-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    pod_cgroup_ = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                  Underscored(kUid) + ".slice/cri-containerd-" + kCid + ".scope";
    fs::create_directories(root_ / "cg" / pod_cgroup_.substr(1));
    fs::create_directories(root_ / "cg/system.slice/sshd.service");
    struct stat st;
    stat((root_.string() + "/cg" + pod_cgroup_).c_str(), &st);
    pod_cgroup_id_ = st.st_ino;
    stat((root_ / "cg/system.slice/sshd.service").c_str(), &st);
    host_cgroup_id_ = st.st_ino;
    // /proc of a host process (nginx) and one inside the pod.
    MakeProc(100, "nginx", "0::/system.slice/nginx.service\n");
    MakeProc(200, "python3", "0::" + pod_cgroup_ + "\n");

    CgroupResolverOptions co;
    co.cgroup_root = (root_ / "cg").string();
    co.proc_root = (root_ / "proc").string();
    cgroups_ = std::make_unique<CgroupResolver>(co);
    processes_ = std::make_unique<ProcessResolver>((root_ / "proc").string());
    cidrs_ = *CidrNames::Create({{"203.0.113.0/24", "partner-api"}});

    k8s::Pod pod;
    pod.meta.namespace_ = "shop";
    pod.meta.name = "frontend-7d4b9c6f8-x2x9q";
    pod.meta.uid = kUid;
    pod.meta.labels = {{"app", "frontend"}, {"pod-template-hash", "7d4b9c6f8"}};
    pod.meta.owners = {{"ReplicaSet", "frontend-7d4b9c6f8", "rs", true}};
    pod.node_name = "node-a";
    pod.phase = "Running";
    pod.ips = {ParseIp("10.244.1.17")};
    pod.host_ip = ParseIp("192.168.10.11");
    k8s::Pod backend = pod;
    backend.meta.name = "backend-0";
    backend.meta.uid = "b0";
    backend.meta.labels = {{"app", "backend"}};
    backend.meta.owners = {{"StatefulSet", "backend", "ss", true}};
    backend.node_name = "node-b";
    backend.ips = {ParseIp("10.244.2.9")};
    backend.host_ip = ParseIp("192.168.10.12");
    store_.ReplacePods({pod, backend});
    k8s::Service svc;
    svc.meta.namespace_ = "shop";
    svc.meta.name = "web";
    svc.selector = {{"app", "frontend"}};
    svc.cluster_ips = {ParseIp("10.96.120.5")};
    store_.ReplaceServices({svc});
  }
  void TearDown() override { fs::remove_all(root_); }

  static std::string Underscored(std::string s) {
    for (char& c : s) c = c == '-' ? '_' : c;
    return s;
  }
  void MakeProc(int pid, const std::string& comm, const std::string& cgroup) {
    fs::path d = root_ / "proc" / std::to_string(pid);
    fs::create_directories(d);
    std::ofstream(d / "comm") << comm << "\n";
    std::ofstream(d / "cgroup") << cgroup;
    std::ofstream(d / "environ") << "";
    std::ofstream(d / "stat") << pid << " (" << comm << ") S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0\n";
  }
  IdentityResolver Resolver(EdgeLevel level, bool with_store = true) {
    IdentityOptions o;
    o.edge_level = level;
    o.node_name = "node-a";
    return IdentityResolver(o, with_store ? &store_ : nullptr, cgroups_.get(), processes_.get(),
                            &cidrs_, &dns_);
  }

  fs::path root_;
  std::string pod_cgroup_;
  uint64_t pod_cgroup_id_ = 0;
  uint64_t host_cgroup_id_ = 0;
  std::unique_ptr<CgroupResolver> cgroups_;
  std::unique_ptr<ProcessResolver> processes_;
  CidrNames cidrs_;
  DnsCache dns_;
  k8s::Store store_;
};

TEST_F(IdentityTest, LocalPodByCgroupId) {
  IdentityResolver r = Resolver(EdgeLevel::kWorkload);
  Identity id = r.ResolveLocal(200, pod_cgroup_id_, kSec, "python3");
  EXPECT_EQ(id.source, IdentitySource::kPod);
  EXPECT_EQ(id.name, "frontend");  // Deployment, from the pod-template-hash
  EXPECT_EQ(id.k8s_namespace, "shop");
  EXPECT_EQ(id.pod, "frontend-7d4b9c6f8-x2x9q");
  EXPECT_EQ(id.pod_uid, kUid);
  EXPECT_EQ(id.container_id, kCid);
  EXPECT_EQ(id.workload_kind, "Deployment");
  EXPECT_EQ(id.workload_name, "frontend");
  EXPECT_EQ(id.service_name, "web");
  EXPECT_EQ(id.service_namespace, "shop");
  EXPECT_EQ(id.node, "node-a");
  // Same answer from /proc alone (no cgroup id: pcap replay).
  Identity by_proc = r.ResolveLocal(200, 0, kSec);
  EXPECT_EQ(by_proc.source, IdentitySource::kPod);
  EXPECT_EQ(by_proc.pod, id.pod);
  // And from the single entry point.
  EXPECT_EQ(r.Resolve(IdentityQuery::Local(200, pod_cgroup_id_), kSec).name, "frontend");
}

TEST_F(IdentityTest, EdgeLevels) {
  EXPECT_EQ(Resolver(EdgeLevel::kPod).ResolveLocal(200, pod_cgroup_id_, kSec).name,
            "frontend-7d4b9c6f8-x2x9q");
  EXPECT_EQ(Resolver(EdgeLevel::kService).ResolveLocal(200, pod_cgroup_id_, kSec).name, "web");
  // No Service selects backend-0: the service level falls back to the workload.
  EXPECT_EQ(Resolver(EdgeLevel::kService).ResolveRemote(ParseIp("10.244.2.9"), kSec).name, "backend");
  EXPECT_THAT(ParseEdgeLevel("workload"), IsOk());
  EXPECT_EQ(*ParseEdgeLevel("service"), EdgeLevel::kService);
  EXPECT_FALSE(ParseEdgeLevel("namespace").ok());
}

TEST_F(IdentityTest, LocalProcessOutsidePods) {
  IdentityResolver r = Resolver(EdgeLevel::kWorkload);
  Identity id = r.ResolveLocal(100, host_cgroup_id_, kSec, "nginx");
  EXPECT_EQ(id.source, IdentitySource::kProcess);
  EXPECT_EQ(id.name, "nginx");
  EXPECT_EQ(id.node, "node-a");
  EXPECT_EQ(id.k8s_namespace, "");
  // Gone from /proc: the kernel's comm names it.
  EXPECT_EQ(r.ResolveLocal(999, 0, kSec, "curl").name, "curl");
}

TEST_F(IdentityTest, PodNotKnownYetFallsBackToTheProcess) {
  IdentityResolver r = Resolver(EdgeLevel::kWorkload, /*with_store=*/false);
  Identity id = r.ResolveLocal(200, pod_cgroup_id_, kSec);
  EXPECT_EQ(id.source, IdentitySource::kProcess);
  EXPECT_EQ(id.name, "python3");
  EXPECT_EQ(id.pod_uid, kUid);  // what the cgroup said is kept
  EXPECT_EQ(id.container_id, kCid);
}

TEST_F(IdentityTest, RemoteResolutionOrder) {
  IdentityResolver r = Resolver(EdgeLevel::kWorkload);
  Identity pod = r.ResolveRemote(ParseIp("10.244.2.9"), kSec);
  EXPECT_EQ(pod.source, IdentitySource::kPod);
  EXPECT_EQ(pod.name, "backend");
  EXPECT_EQ(pod.workload_kind, "StatefulSet");
  EXPECT_EQ(pod.node, "node-b");
  Identity svc = r.ResolveRemote(ParseIp("10.96.120.5"), kSec);
  EXPECT_EQ(svc.source, IdentitySource::kService);
  EXPECT_EQ(svc.name, "web");
  EXPECT_EQ(svc.service_name, "web");
  EXPECT_EQ(svc.k8s_namespace, "shop");
  EXPECT_EQ(svc.workload_name, "");
  Identity node = r.ResolveRemote(ParseIp("192.168.10.12"), kSec);
  EXPECT_EQ(node.source, IdentitySource::kNode);
  EXPECT_EQ(node.name, "node-b");
  Identity lo = r.ResolveRemote(ParseIp("127.0.0.1"), kSec);
  EXPECT_EQ(lo.source, IdentitySource::kLoopback);
  EXPECT_EQ(lo.name, "localhost");
  // DNS before CIDR, CIDR before external.
  Identity cidr = r.ResolveRemote(ParseIp("203.0.113.7"), kSec);
  EXPECT_EQ(cidr.source, IdentitySource::kCidr);
  EXPECT_EQ(cidr.name, "partner-api");
  dns_.Add(ParseIp("203.0.113.7"), "api.partner.example", 300, kSec);
  Identity dns = r.ResolveRemote(ParseIp("203.0.113.7"), 2 * kSec);
  EXPECT_EQ(dns.source, IdentitySource::kDns);
  EXPECT_EQ(dns.name, "api.partner.example");
  Identity ext = r.ResolveRemote(ParseIp("198.51.100.1"), kSec);
  EXPECT_EQ(ext.source, IdentitySource::kExternal);
  EXPECT_EQ(ext.name, "external");
  EXPECT_EQ(r.Resolve(IdentityQuery::Remote(ParseIp("198.51.100.1")), kSec).name, "external");

  auto counts = r.resolved();
  EXPECT_EQ(counts[static_cast<size_t>(IdentitySource::kPod)], 1u);
  EXPECT_EQ(counts[static_cast<size_t>(IdentitySource::kExternal)], 2u);
  EXPECT_EQ(IdentitySourceName(IdentitySource::kCidr), "cidr");
}

TEST_F(IdentityTest, NoKubernetesAtAll) {
  IdentityResolver r(IdentityOptions{}, nullptr, nullptr, nullptr, nullptr, nullptr);
  EXPECT_EQ(r.ResolveLocal(1, 0, kSec, "sshd").name, "sshd");
  EXPECT_EQ(r.ResolveRemote(ParseIp("10.244.2.9"), kSec).name, "external");
}

}  // namespace
}  // namespace redmap
