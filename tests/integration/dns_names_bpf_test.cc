// Remote endpoints named from the DNS answers seen on this node, end to end:
// the real exporter (real BPF, the real UDP/53 capture) with Kubernetes
// identities from the fake API server, a client in a fake pod (netns +
// kubepods cgroup, pod_util.h), dnsmasq answering on the pods' gateway and
// on a loopback address, and a "remote" HTTP server outside the cluster in
// its own network namespace (on the node's bridge, with an address outside
// the pods' subnet: pod_util.h's OutsideHost).
//
// The remote server runs on this node, so redmap sees its side too; to look
// remote to the client (as a server behind a load balancer does), it listens
// on :8080 and its namespace redirects :80 there: the client's :80 matches
// no listener redmap knows, so the client side counts the request
// (connection_type="virtual_node") and names the far end by its address:
// no pod, no Service, a DNS answer -> api.example.test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/integration/harness_util.h"
#include "tests/integration/pod_util.h"
#include "tests/testlib/fake_apiserver.h"

namespace redmap {
namespace {

using ::redmap::testing::ExporterProcess;
using ::redmap::testing::Exposition;
using ::redmap::testing::FakeApiServer;
using ::redmap::testing::FakePod;
using ::redmap::testing::Owner;
using ::redmap::testing::OwnerJson;
using ::redmap::testing::PodJson;
using ::redmap::testing::PodNetwork;
using ::redmap::testing::OutsideHost;
using ::redmap::testing::RunShell;
using ::redmap::testing::Subprocess;
using ::redmap::testing::TempDir;
using ::redmap::testing::WaitUntil;
using Labels = std::map<std::string, std::string>;

constexpr char kEdges[] = "traces_service_graph_request_total";
constexpr char kConnects[] = "redmap_tcp_connect_duration_seconds_count";
constexpr char kAnswers[] = "redmap_dns_answers_total";
constexpr char kFrontendUid[] = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
constexpr int kRequests = 25;

class DnsNamesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const int n = getpid() % 200 + 20;
    net_ = PodNetwork::Create(absl::StrCat("10.217.", n));
    ASSERT_NE(net_, nullptr);
    client_ = FakePod::Create(net_.get(), {.name = "dfe", .uid = kFrontendUid,
                                           .container_id = std::string(64, 'd'),
                                           .host_octet = 20});
    ASSERT_NE(client_, nullptr);
    remote_ = OutsideHost::Create(net_.get(), "dns", absl::StrCat("198.18.", n));
    ASSERT_NE(remote_, nullptr);
    auto route = client_->Run("ip route add " + remote_->OnLinkRoute());
    ASSERT_EQ(route.exit_code, 0) << route.output;
    loopback_dns_ = absl::StrCat("127.53.0.", n);

    // The remote server: python's http.server on :8080, :80 redirected.
    const std::string www = dir_.path() + "/www";
    ASSERT_EQ(RunShell("mkdir -p " + www + " && echo hello > " + www + "/index.html").exit_code, 0);
    auto redirect = remote_->Run(
        "nft add table ip rmredir && nft add chain ip rmredir pre "
        "\\{ type nat hook prerouting priority -100 \\; \\} && "
        "nft add rule ip rmredir pre tcp dport 80 redirect to :8080");
    ASSERT_EQ(redirect.exit_code, 0) << redirect.output;
    server_ = remote_->Start({"python3", "-m", "http.server", "--bind", remote_->ip(),
                              "--directory", www, "8080"});
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(WaitUntil([&] { return Curl(1) == 0; }, 10)) << server_->Output();

    // dnsmasq: no upstream, only what it is told; on the pods' gateway and
    // on a loopback address, its files in the temp dir.
    ASSERT_TRUE(dnsmasq_.Start(
        {"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
         "--bind-interfaces", "--port=53", "--user=root",
         "--listen-address=" + net_->gateway(), "--listen-address=" + loopback_dns_,
         "--pid-file=" + dir_.path() + "/dnsmasq.pid",
         "--dhcp-leasefile=" + dir_.path() + "/dnsmasq.leases", "--local=/example.test/",
         "--local-ttl=300", "--address=/api.example.test/" + remote_->ip(),
         "--log-facility=-", "--log-queries"}));
    ASSERT_TRUE(WaitUntil([&] { return Dig(loopback_dns_, "api.example.test") == remote_->ip(); },
                          10))
        << dnsmasq_.Output();

    // The API knows the client pod (Deployment "frontend" in "shop"), not
    // the remote server.
    api_ = std::make_unique<FakeApiServer>();
    api_->Put("replicasets", OwnerJson("shop", "frontend-6b8d", Owner("Deployment", "frontend")));
    api_->Put("pods", PodJson("shop", "frontend-6b8d-q9w7e", kFrontendUid, "node-a",
                              client_->ip(), {{"app", "frontend"}},
                              Owner("ReplicaSet", "frontend-6b8d")));
    const std::string kubeconfig = dir_.Write("kubeconfig", testing::KubeconfigFor(api_->port()));
    config_ = dir_.Write(
        "redmap.yaml",
        absl::StrCat("kubernetes:\n  enabled: true\n  kubeconfig: ", kubeconfig,
                     "\n  node_name: node-a\n  backoff_initial_ms: 100\n  backoff_max_ms: 500\n"
                     "identity:\n  dns_capture: true\n"));
    std::string why;
    ASSERT_TRUE(exporter_.Start({"--config.file=" + config_}, &why)) << why;
    ASSERT_TRUE(WaitUntil([&] {
      const Exposition e = exporter_.Scrape();
      return e.Sum("redmap_kubernetes_synced") == 5 && e.Sum("redmap_dns_capture_up") == 1;
    }, 30)) << exporter_.Scrape().text() << exporter_.Output();
  }

  void TearDown() override {
    std::string why;
    // SIGTERM stops the capture thread too: a clean exit within 10 s.
    if (exporter_.Running()) EXPECT_TRUE(exporter_.Stop(&why)) << why;
  }

  // `count` GETs of http://<remote>/ from the client pod; curl's exit code.
  int Curl(int count) {
    return client_
        ->Run(absl::StrCat("curl -sS -o /dev/null http://", remote_->ip(), "/?n=[1-", count, "]"))
        .exit_code;
  }
  // dig's short answer from the host's network namespace.
  std::string Dig(const std::string& server, const std::string& name) {
    auto r = RunShell(absl::StrCat("dig +short +tries=1 +time=2 @", server, " ", name));
    return std::string(absl::StripAsciiWhitespace(r.output));
  }
  double Answers(const Exposition& e, const std::string& result) {
    return e.Sum(kAnswers, {{"result", result}});
  }

  TempDir dir_;
  std::unique_ptr<PodNetwork> net_;
  std::unique_ptr<FakePod> client_;
  std::unique_ptr<OutsideHost> remote_;
  std::unique_ptr<Subprocess> server_;
  Subprocess dnsmasq_;
  std::string loopback_dns_;
  std::unique_ptr<FakeApiServer> api_;
  std::string config_;
  ExporterProcess exporter_;
};

TEST_F(DnsNamesTest, RemoteEndpointIsNamedByTheAnswerThePodGot) {
  const Exposition before = exporter_.Scrape();
  ASSERT_EQ(before.Count(kEdges, {{"server", "api.example.test"}}), 0) << before.text();

  // The pod resolves through the node: the answer crosses the bridge and
  // the pod's host-side veth, one capture per device.
  auto dig = client_->Run("dig +short +tries=1 +time=2 @" + net_->gateway() + " api.example.test");
  ASSERT_EQ(dig.exit_code, 0) << dig.output;
  ASSERT_EQ(absl::StripAsciiWhitespace(dig.output), remote_->ip()) << dnsmasq_.Output();
  Exposition e = exporter_.Scrape();
  ASSERT_TRUE(WaitUntil([&] {
    e = exporter_.Scrape();
    return Answers(e, "parsed") - Answers(before, "parsed") >= 2;
  }, 10)) << e.text();
  EXPECT_EQ(Answers(e, "parsed") - Answers(before, "parsed"), 2) << "bridge + veth";
  EXPECT_EQ(e.Sum("redmap_dns_addresses_total") - before.Sum("redmap_dns_addresses_total"), 2);
  EXPECT_GE(e.Sum("redmap_identity_cache_entries", {{"table", "dns"}}), 1);
  // Its bound is exported beside it (identity.dns_cache_entries, default).
  EXPECT_EQ(e.Sum("redmap_identity_cache_entries_limit", {{"table", "dns"}}), 10000);
  EXPECT_EQ(e.Sum("redmap_identity_cache_entries_limit", {{"table", "local"}}), 65536);

  // Then the pod talks to the address: every request and connection is
  // named by the name it asked for.
  ASSERT_EQ(Curl(kRequests), 0);
  const Labels edge = {{"client", "frontend"},
                       {"client_service_namespace", "shop"},
                       {"server", "api.example.test"},
                       {"server_service_namespace", ""},
                       {"connection_type", "virtual_node"},
                       {"k8s_node_name", "node-a"}};
  const Labels tcp = {{"side", "client"},
                      {"client", "frontend"},
                      {"server", "api.example.test"},
                      {"server_port", "80"}};
  ASSERT_TRUE(WaitUntil([&] {
    e = exporter_.Scrape();
    return e.Sum(kEdges, edge) >= kRequests && e.Sum(kConnects, tcp) >= kRequests;
  }, 20)) << e.text();
  // http.server speaks HTTP/1.0: one connection per request.
  EXPECT_EQ(e.Sum(kEdges, edge), kRequests) << e.text();
  EXPECT_EQ(e.Sum("traces_service_graph_request_failed_total", edge), 0);
  EXPECT_EQ(e.Sum(kConnects, tcp), kRequests) << e.text();
  // Never by its address, never as "external".
  EXPECT_EQ(e.Count(kEdges, {{"server", remote_->ip()}}), 0);
  EXPECT_EQ(e.Count(kEdges, {{"client", "frontend"}, {"server", "external"}}), 0);
  EXPECT_EQ(e.Count(kConnects, {{"server", remote_->ip()}}), 0);
  EXPECT_GE(e.Sum("redmap_identity_lookups_total", {{"source", "dns"}}), 1);

  auto lint = RunShell("promtool check metrics < " + dir_.Write("metrics.txt", e.text()));
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
}

TEST_F(DnsNamesTest, BadAnswersAreCountedAndSkipped) {
  const Exposition before = exporter_.Scrape();
  // From port 53 on loopback to a port nobody listens on: two garbage
  // datagrams, one answer longer than the capture keeps (1500 bytes), and
  // a real answer's header with its records cut off.
  const std::string sender = dir_.Write("send.py", absl::StrCat(R"(
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.2.53", 53))
to = ("127.0.0.1", )", testing::FreePort(), R"()
s.sendto(b"\x00" * 3, to)
s.sendto(b"\x12\x34\x81\x80\x00\x01\x00\x05" + b"\xc0" * 40, to)
s.sendto(b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + b"\x01a" * 1500, to)
)"));
  auto sent = RunShell("python3 " + sender);
  ASSERT_EQ(sent.exit_code, 0) << sent.output;
  // And real answers on loopback: one name, one NXDOMAIN.
  ASSERT_EQ(Dig(loopback_dns_, "api.example.test"), remote_->ip());
  ASSERT_EQ(Dig(loopback_dns_, "missing.example.test"), "");

  Exposition e = exporter_.Scrape();
  ASSERT_TRUE(WaitUntil([&] {
    e = exporter_.Scrape();
    return Answers(e, "malformed") - Answers(before, "malformed") >= 2 &&
           Answers(e, "truncated") - Answers(before, "truncated") >= 1 &&
           Answers(e, "no_records") - Answers(before, "no_records") >= 1 &&
           Answers(e, "parsed") - Answers(before, "parsed") >= 1;
  }, 10)) << e.text();
  // Loopback packets are captured once.
  EXPECT_EQ(Answers(e, "malformed") - Answers(before, "malformed"), 2) << e.text();
  EXPECT_EQ(Answers(e, "truncated") - Answers(before, "truncated"), 1);
  EXPECT_EQ(Answers(e, "no_records") - Answers(before, "no_records"), 1);
  EXPECT_EQ(Answers(e, "parsed") - Answers(before, "parsed"), 1);
  EXPECT_EQ(e.Sum("redmap_dns_capture_drops_total"), 0);
  // Still up and capturing.
  EXPECT_TRUE(exporter_.Running());
  EXPECT_EQ(e.Sum("redmap_dns_capture_up"), 1);
}

TEST_F(DnsNamesTest, ExplicitCaptureThatCannotOpenIsAnError) {
  // Without CAP_NET_RAW no packet socket opens: with dns_capture: true the
  // exporter refuses to start and says why (auto would run without).
  Subprocess denied;
  ASSERT_TRUE(denied.Start({"capsh", "--drop=cap_net_raw", "--", "-c",
                            absl::StrCat(REDMAP_EXPORTER_BINARY,
                                         " --web.listen-address=127.0.0.1:",
                                         testing::FreePort(), " --config.file=", config_)}));
  ASSERT_TRUE(WaitUntil([&] { return !denied.Running(); }, 30)) << denied.Output();
  const int st = denied.Wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << st << denied.Output();
  EXPECT_NE(denied.Output().find("identity.dns_capture: cannot capture DNS answers on any"),
            std::string::npos)
      << denied.Output();
  EXPECT_NE(denied.Output().find("CAP_NET_RAW"), std::string::npos) << denied.Output();
}

}  // namespace
}  // namespace redmap
