// The real Kubernetes client (libcurl, list + watch) against a fake API
// server on loopback (tests/fixtures/k8s/fake_apiserver.py, which speaks the
// API's list/watch JSON with chunked watch streams). Each test asserts the
// identities resolved after what the server did: adds, modifications and
// deletes through the watch stream, bookmarks, a dropped watch (resume from
// the last resourceVersion, no relist), 410 Gone (relist, and objects removed
// while the history was compacted disappear), injected HTTP errors (degraded,
// then recovered), TLS with a CA from the kubeconfig, and a bad token.
#include "aggregators/metadata/k8s/k8s_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "aggregators/common/string_view.h"
#include "aggregators/metadata/identity.h"
#include "nlohmann/json.hpp"
#include "tests/testlib/fake_apiserver.h"

namespace redmap::k8s {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

using ::redmap::testing::FakeApiServer;
using ::redmap::testing::Owner;
using ::redmap::testing::OwnerJson;
using ::redmap::testing::PodJson;
using ::redmap::testing::ServiceJson;
using ::redmap::testing::SliceJson;

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(15)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

const ResourceStatus& Res(const ClientStatus& s, Kind k) {
  for (const auto& r : s.resources) {
    if (r.kind == k) return r;
  }
  static ResourceStatus none;
  ADD_FAILURE() << "resource not watched: " << KindName(k);
  return none;
}

// "source|name|namespace|pod|workload kind/name|service namespace/name|node"
std::string Describe(const Identity& id) {
  return absl::StrCat(AbslView(IdentitySourceName(id.source)), "|", id.name, "|", id.k8s_namespace, "|",
                      id.pod, "|", id.workload_kind, "/", id.workload_name, "|",
                      id.service_namespace, "/", id.service_name, "|", id.node);
}

class K8sClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("redmap-k8s-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    client_.reset();
    fs::remove_all(dir_);
  }
  std::string Kubeconfig(const std::string& server, const std::string& token,
                         const std::string& cluster_extra = "") {
    std::string path = (dir_ / "kubeconfig").string();
    std::ofstream(path) << "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
                        << "    server: " << server << "\n"
                        << cluster_extra << "contexts:\n- name: fake\n  context:\n"
                        << "    cluster: fake\n    user: redmap\ncurrent-context: fake\n"
                        << "users:\n- name: redmap\n  user:\n    token: " << token << "\n";
    return path;
  }
  ClientOptions Options() {
    ClientOptions o;
    o.node_name = "node-a";
    o.list_page_size = 2;  // several pages per list
    o.initial_backoff = absl::Milliseconds(50);
    o.max_backoff = absl::Milliseconds(200);
    o.watch_timeout = absl::Seconds(60);
    o.connect_timeout = absl::Seconds(2);
    return o;
  }
  void StartClient(const std::string& kubeconfig, ClientOptions o) {
    auto api = LoadKubeconfig(kubeconfig);
    ASSERT_TRUE(api.ok()) << api.status();
    auto c = Client::Create(*api, o, &store_);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
    client_->Start();
  }
  std::string Remote(const char* ip) {
    return Describe(resolver_.ResolveRemote(ParseIp(ip), 1));
  }
  std::string ByUid(const std::string& uid) {
    auto o = store_.ByPodUid(uid);
    if (!o) return "none";
    return absl::StrCat(o->namespace_, "/", o->pod, " ", o->workload.kind, "/", o->workload.name,
                        " ", o->services.empty() ? "-" : o->services.front(), " ", o->node);
  }
  // The cluster every test starts from.
  void Seed(FakeApiServer& s) {
    json fe_labels = {{"app", "frontend"}, {"pod-template-hash", "7d4b9c6f8"}};
    s.Put("pods", PodJson("shop", "frontend-7d4b9c6f8-x2x9q", "uid-fe1", "node-a", "10.244.1.17",
                          fe_labels, Owner("ReplicaSet", "frontend-7d4b9c6f8")));
    s.Put("pods", PodJson("shop", "backend-0", "uid-be0", "node-b", "10.244.2.9",
                          {{"app", "backend"}}, Owner("StatefulSet", "backend")));
    s.Put("pods", PodJson("batch", "report-28561230-abcde", "uid-job", "node-a", "10.244.1.40",
                          {{"job-name", "report-28561230"}}, Owner("Job", "report-28561230")));
    s.Put("pods", PodJson("kube-system", "kube-proxy-7x", "uid-kp", "node-a", "192.168.10.11",
                          {{"k8s-app", "kube-proxy"}}, Owner("DaemonSet", "kube-proxy"), true));
    s.Put("pods", PodJson("shop", "cache-0", "uid-cache", "node-a", "10.244.1.50",
                          {{"app", "cache"}}, Owner("StatefulSet", "cache")));
    s.Put("services", ServiceJson("shop", "web", {{"app", "frontend"}}, "10.96.120.5"));
    s.Put("services", ServiceJson("shop", "backend", {{"app", "backend"}}, "10.96.7.7"));
    s.Put("replicasets", OwnerJson("shop", "frontend-7d4b9c6f8", Owner("Deployment", "frontend")));
    s.Put("jobs", OwnerJson("batch", "report-28561230", Owner("CronJob", "report")));
    s.Put("endpointslices", SliceJson("shop", "legacy-x1", "legacy", {"10.50.0.7"}));
  }

  fs::path dir_;
  Store store_;
  IdentityResolver resolver_{IdentityOptions{EdgeLevel::kWorkload, "node-a"}, &store_, nullptr,
                             nullptr, nullptr, nullptr};
  std::unique_ptr<Client> client_;
};

TEST_F(K8sClientTest, ListWatchEventsDropAndGone) {
  FakeApiServer server({"--token", "s3cret"});
  Seed(server);
  StartClient(Kubeconfig(absl::StrCat("http://127.0.0.1:", server.port()), "s3cret"), Options());
  ASSERT_TRUE(client_->WaitForSync(absl::Seconds(15))) << Res(client_->status(), Kind::kPods).last_error;
  ASSERT_TRUE(WaitFor([&] { return !client_->degraded(); }));

  // ---- the initial lists --------------------------------------------------------
  ClientStatus st = client_->status();
  EXPECT_EQ(st.resources.size(), 5u);
  EXPECT_EQ(Res(st, Kind::kPods).lists, 1u);
  EXPECT_EQ(st.store.objects[static_cast<size_t>(Kind::kPods)], 5u);
  json stats = server.Stats();
  EXPECT_EQ(stats["pods"]["lists"], 3);  // 5 pods, pages of 2
  EXPECT_EQ(stats["pods"]["list_continues"], 2);

  EXPECT_EQ(Remote("10.244.1.17"), "pod|frontend|shop|frontend-7d4b9c6f8-x2x9q|Deployment/frontend|shop/web|node-a");
  EXPECT_EQ(Remote("10.244.2.9"), "pod|backend|shop|backend-0|StatefulSet/backend|shop/backend|node-b");
  EXPECT_EQ(Remote("10.244.1.40"), "pod|report|batch|report-28561230-abcde|CronJob/report|/|node-a");
  EXPECT_EQ(Remote("10.96.120.5"), "service|web|shop||/|shop/web|");
  EXPECT_EQ(Remote("10.50.0.7"), "service|legacy|shop||/|shop/legacy|");
  // kube-proxy runs on the host network: its IP is node-a's.
  EXPECT_EQ(Remote("192.168.10.11"), "node|node-a|||/|/|node-a");
  EXPECT_EQ(ByUid("uid-kp"), "kube-system/kube-proxy-7x DaemonSet/kube-proxy - node-a");
  EXPECT_EQ(Remote("10.244.9.9"), "external|external|||/|/|");

  // ---- watch events: add, modify, delete -----------------------------------------
  server.Put("pods", PodJson("shop", "frontend-7d4b9c6f8-k2p4z", "uid-fe2", "node-a", "10.244.1.31",
                             {{"app", "frontend"}, {"pod-template-hash", "7d4b9c6f8"}},
                             Owner("ReplicaSet", "frontend-7d4b9c6f8")));
  ASSERT_TRUE(WaitFor([&] { return Remote("10.244.1.31") != "external|external|||/|/|"; }));
  EXPECT_EQ(Remote("10.244.1.31"), "pod|frontend|shop|frontend-7d4b9c6f8-k2p4z|Deployment/frontend|shop/web|node-a");
  // Relabelled out of the Service's selector.
  server.Put("pods", PodJson("shop", "frontend-7d4b9c6f8-k2p4z", "uid-fe2", "node-a", "10.244.1.31",
                             {{"app", "frontend-canary"}, {"pod-template-hash", "7d4b9c6f8"}},
                             Owner("ReplicaSet", "frontend-7d4b9c6f8")));
  ASSERT_TRUE(WaitFor([&] { return ByUid("uid-fe2").find(" - ") != std::string::npos; }));
  EXPECT_EQ(Remote("10.244.1.31"), "pod|frontend|shop|frontend-7d4b9c6f8-k2p4z|Deployment/frontend|/|node-a");
  // A new Service selects it again; its ClusterIP resolves.
  server.Put("services", ServiceJson("shop", "canary", {{"app", "frontend-canary"}}, "10.96.9.9"));
  ASSERT_TRUE(WaitFor([&] { return Remote("10.96.9.9") == "service|canary|shop||/|shop/canary|"; }));
  EXPECT_EQ(ByUid("uid-fe2"), "shop/frontend-7d4b9c6f8-k2p4z Deployment/frontend canary node-a");
  // The ReplicaSet is replaced by one owned by a different Deployment
  // (adoption): the owner walk follows.
  server.Put("replicasets", OwnerJson("shop", "frontend-7d4b9c6f8", Owner("Deployment", "storefront")));
  ASSERT_TRUE(WaitFor([&] { return ByUid("uid-fe2").find("Deployment/storefront") != std::string::npos; }));
  // Deleted: its IP is nobody's.
  server.Delete("pods", "shop", "frontend-7d4b9c6f8-k2p4z");
  ASSERT_TRUE(WaitFor([&] { return ByUid("uid-fe2") == "none"; }));
  EXPECT_EQ(Remote("10.244.1.31"), "external|external|||/|/|");
  server.Delete("services", "shop", "canary");
  ASSERT_TRUE(WaitFor([&] { return Remote("10.96.9.9") == "external|external|||/|/|"; }));
  st = client_->status();
  EXPECT_EQ(Res(st, Kind::kPods).events, 3u);
  EXPECT_EQ(Res(st, Kind::kServices).events, 2u);
  EXPECT_EQ(Res(st, Kind::kReplicaSets).events, 1u);

  // ---- bookmarks move the resourceVersion -----------------------------------------
  int rv = std::atoi(server.Do({{"op", "bookmark"}}).c_str() + 3);
  ASSERT_TRUE(WaitFor([&] {
    ClientStatus s = client_->status();
    for (const auto& r : s.resources) {
      if (r.bookmarks != 1 || r.resource_version != std::to_string(rv)) return false;
    }
    return true;
  }));

  // ---- a dropped watch resumes from the last resourceVersion, no relist ----------
  server.Do({{"op", "drop"}});
  int after_drop = server.Put("pods", PodJson("shop", "api-0", "uid-api", "node-b", "10.244.2.20",
                                              {{"app", "api"}}, Owner("StatefulSet", "api")));
  ASSERT_TRUE(WaitFor([&] { return Remote("10.244.2.20") != "external|external|||/|/|"; }));
  EXPECT_EQ(Remote("10.244.2.20"), "pod|api|shop|api-0|StatefulSet/api|/|node-b");
  ASSERT_TRUE(WaitFor([&] { return !client_->degraded(); }));
  st = client_->status();
  for (const auto& r : st.resources) {
    EXPECT_EQ(r.watch_errors, 1u) << KindName(r.kind);
    EXPECT_EQ(r.relists, 0u) << KindName(r.kind);
    EXPECT_EQ(r.lists, 1u) << KindName(r.kind);
  }
  EXPECT_EQ(Res(st, Kind::kPods).resource_version, std::to_string(after_drop));
  stats = server.Stats();
  EXPECT_EQ(stats["pods"]["lists"], 3);  // no new list
  EXPECT_EQ(stats["pods"]["watch_rvs"].back(), rv);  // resumed from the bookmark

  // ---- failures: degraded while they last, then recovered ------------------------
  server.Do({{"op", "fail"}, {"resource", "services"}, {"count", 3}, {"code", 500}});
  server.Do({{"op", "drop"}});
  ASSERT_TRUE(WaitFor([&] {
    return Res(client_->status(), Kind::kServices).last_error.find("HTTP 500") != std::string::npos;
  }));
  EXPECT_TRUE(client_->degraded());
  // Lookups keep answering from what is cached.
  EXPECT_EQ(Remote("10.96.120.5"), "service|web|shop||/|shop/web|");
  ASSERT_TRUE(WaitFor([&] { return !client_->degraded(); }));
  st = client_->status();
  EXPECT_EQ(Res(st, Kind::kServices).watch_errors, 1u + 1u + 3u);
  EXPECT_EQ(Res(st, Kind::kServices).last_error, "");
  EXPECT_EQ(Res(st, Kind::kPods).watch_errors, 2u);

  // ---- 410 Gone in the stream: relist; what vanished meanwhile is gone -----------
  server.Do({{"op", "compact"},
             {"silently_delete", json::array({json::array({"pods", "shop", "backend-0"}),
                                              json::array({"services", "shop", "backend"})})}});
  ASSERT_TRUE(WaitFor([&] { return Res(client_->status(), Kind::kPods).relists == 1; }));
  ASSERT_TRUE(WaitFor([&] { return Res(client_->status(), Kind::kServices).relists == 1; }));
  ASSERT_TRUE(WaitFor([&] { return Remote("10.244.2.9") == "external|external|||/|/|"; }));
  EXPECT_EQ(Remote("10.96.7.7"), "external|external|||/|/|");
  EXPECT_EQ(ByUid("uid-be0"), "none");
  // The rest survived the relist.
  EXPECT_EQ(Remote("10.244.1.17"), "pod|storefront|shop|frontend-7d4b9c6f8-x2x9q|Deployment/storefront|shop/web|node-a");
  EXPECT_EQ(Remote("10.244.2.20"), "pod|api|shop|api-0|StatefulSet/api|/|node-b");
  ASSERT_TRUE(WaitFor([&] { return !client_->degraded(); }));
  st = client_->status();
  for (const auto& r : st.resources) {
    EXPECT_EQ(r.relists, 1u) << KindName(r.kind);
    EXPECT_EQ(r.lists, 2u) << KindName(r.kind);
  }
  EXPECT_EQ(st.store.objects[static_cast<size_t>(Kind::kPods)], 5u);

  // ---- 410 Gone as the watch's HTTP status (resume from a compacted RV) ----------
  // Cut the watches, then compact before they come back (backoff >= 40 ms):
  // the resumed watch is refused with 410 and the client relists.
  server.Do({{"op", "drop"}});
  server.Do({{"op", "compact"}, {"silently_delete", json::array({json::array({"pods", "shop", "api-0"})})}});
  ASSERT_TRUE(WaitFor([&] { return Res(client_->status(), Kind::kPods).relists == 2; }));
  ASSERT_TRUE(WaitFor([&] { return Remote("10.244.2.20") == "external|external|||/|/|"; }));
  ASSERT_TRUE(WaitFor([&] { return !client_->degraded(); }));
  stats = server.Stats();
  // Pages of 2: five pods (3 pages), five again (3), then four (2).
  EXPECT_EQ(stats["pods"]["lists"], 3 + 3 + 2);
  // And the watch stream still works after all that.
  server.Put("pods", PodJson("shop", "late-0", "uid-late", "node-a", "10.244.1.99", {{"app", "late"}}));
  ASSERT_TRUE(WaitFor([&] { return Remote("10.244.1.99") == "pod|late-0|shop|late-0|Pod/late-0|/|node-a"; }));
}

TEST_F(K8sClientTest, ServerEndsWatchesAndTheClientWatchesAgain) {
  FakeApiServer server;
  Seed(server);
  ClientOptions o = Options();
  o.watch_timeout = absl::Seconds(1);  // the server ends each watch after 1-1.1 s
  StartClient(Kubeconfig(absl::StrCat("http://127.0.0.1:", server.port()), "unused"), o);
  ASSERT_TRUE(client_->WaitForSync(absl::Seconds(15)));
  ASSERT_TRUE(WaitFor([&] { return server.Stats()["pods"]["watches"] >= 3; }));
  int rv = server.Put("pods", PodJson("shop", "n-0", "uid-n", "node-a", "10.244.1.77", {{"a", "b"}}));
  ASSERT_TRUE(WaitFor([&] { return ByUid("uid-n") != "none"; }));
  ClientStatus st = client_->status();
  EXPECT_FALSE(st.degraded);
  for (const auto& r : st.resources) {
    EXPECT_EQ(r.watch_errors, 0u) << KindName(r.kind);  // a clean end is no error
    EXPECT_EQ(r.lists, 1u) << KindName(r.kind);
  }
  EXPECT_EQ(Res(st, Kind::kPods).resource_version, std::to_string(rv));
  // Every re-watch started where the previous one ended: never before the
  // list's resourceVersion, never going backwards.
  json rvs = server.Stats()["pods"]["watch_rvs"];
  for (size_t i = 1; i < rvs.size(); ++i) EXPECT_GE(rvs[i].get<int>(), rvs[i - 1].get<int>());
}

TEST_F(K8sClientTest, NodeScopedWithoutClusterWideWatches) {
  FakeApiServer server;
  Seed(server);
  ClientOptions o = Options();
  o.cluster_wide = false;
  o.owners = false;
  StartClient(Kubeconfig(absl::StrCat("http://127.0.0.1:", server.port()), "t"), o);
  ASSERT_TRUE(client_->WaitForSync(absl::Seconds(15)));
  ClientStatus st = client_->status();
  ASSERT_EQ(st.resources.size(), 2u);  // pods of node-a, services
  EXPECT_EQ(st.store.objects[static_cast<size_t>(Kind::kPods)], 4u);  // not backend-0 (node-b)
  json stats = server.Stats();
  EXPECT_EQ(stats["replicasets"]["lists"], 0);
  EXPECT_EQ(stats["endpointslices"]["lists"], 0);
  // Without ReplicaSets the Deployment comes from pod-template-hash; without
  // Jobs a CronJob's pod stays with its Job.
  EXPECT_EQ(Remote("10.244.1.17"), "pod|frontend|shop|frontend-7d4b9c6f8-x2x9q|Deployment/frontend|shop/web|node-a");
  EXPECT_EQ(Remote("10.244.1.40"), "pod|report-28561230|batch|report-28561230-abcde|Job/report-28561230|/|node-a");
  EXPECT_EQ(Remote("10.244.2.9"), "external|external|||/|/|");
  EXPECT_EQ(Remote("10.96.7.7"), "service|backend|shop||/|shop/backend|");
  // A pod scheduled to another node never shows up.
  server.Put("pods", PodJson("shop", "elsewhere", "uid-else", "node-b", "10.244.2.30", {{"a", "b"}}));
  server.Put("pods", PodJson("shop", "here", "uid-here", "node-a", "10.244.1.30", {{"a", "b"}}));
  ASSERT_TRUE(WaitFor([&] { return ByUid("uid-here") != "none"; }));
  EXPECT_EQ(ByUid("uid-else"), "none");
}

TEST_F(K8sClientTest, WrongTokenIsDegradedAndSaysWhy) {
  FakeApiServer server({"--token", "right"});
  Seed(server);
  StartClient(Kubeconfig(absl::StrCat("http://127.0.0.1:", server.port()), "wrong"), Options());
  EXPECT_FALSE(client_->WaitForSync(absl::Milliseconds(500)));
  ASSERT_TRUE(WaitFor([&] { return Res(client_->status(), Kind::kPods).list_errors >= 2; }));
  ClientStatus st = client_->status();
  EXPECT_TRUE(st.degraded);
  EXPECT_THAT(Res(st, Kind::kPods).last_error, HasSubstr("HTTP 401"));
  EXPECT_FALSE(Res(st, Kind::kPods).synced);
  EXPECT_EQ(st.store.objects[static_cast<size_t>(Kind::kPods)], 0u);
}

TEST_F(K8sClientTest, UnreachableServerIsDegraded) {
  // A port nobody listens on (bound, never listened).
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  StartClient(Kubeconfig(absl::StrCat("http://127.0.0.1:", ntohs(a.sin_port)), "t"), Options());
  ASSERT_TRUE(WaitFor([&] { return Res(client_->status(), Kind::kPods).list_errors >= 3; }));
  EXPECT_TRUE(client_->degraded());
  EXPECT_THAT(Res(client_->status(), Kind::kPods).last_error, HasSubstr("onnect"));
  client_->Stop();  // returns promptly even while backing off
  close(fd);
}

class K8sClientTlsTest : public K8sClientTest {
 protected:
  void MakeCert() {
    cert_ = (dir_ / "server.crt").string();
    key_ = (dir_ / "server.key").string();
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                      "-addext subjectAltName=IP:127.0.0.1 -keyout " + key_ + " -out " + cert_ +
                      " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::string cert_, key_;
};

TEST_F(K8sClientTlsTest, CaDataFromKubeconfig) {
  MakeCert();
  FakeApiServer server({"--token", "tls-token", "--tls-cert", cert_, "--tls-key", key_});
  Seed(server);
  std::ifstream in(cert_);
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  StartClient(Kubeconfig(absl::StrCat("https://127.0.0.1:", server.port()), "tls-token",
                         "    certificate-authority-data: " + absl::Base64Escape(pem) + "\n"),
              Options());
  ASSERT_TRUE(client_->WaitForSync(absl::Seconds(15))) << Res(client_->status(), Kind::kPods).last_error;
  EXPECT_EQ(Remote("10.244.1.17"), "pod|frontend|shop|frontend-7d4b9c6f8-x2x9q|Deployment/frontend|shop/web|node-a");
}

TEST_F(K8sClientTlsTest, UnknownCaFailsUnlessVerificationIsSkipped) {
  MakeCert();
  FakeApiServer server({"--tls-cert", cert_, "--tls-key", key_});
  Seed(server);
  const std::string url = absl::StrCat("https://127.0.0.1:", server.port());
  // The system CAs do not know our self-signed certificate.
  StartClient(Kubeconfig(url, "t", "    certificate-authority: " + (dir_ / "nothing.crt").string() + "\n"),
              Options());
  ASSERT_TRUE(WaitFor([&] { return Res(client_->status(), Kind::kPods).list_errors >= 1; }));
  EXPECT_TRUE(client_->degraded());
  client_.reset();
  StartClient(Kubeconfig(url, "t", "    insecure-skip-tls-verify: true\n"), Options());
  ASSERT_TRUE(client_->WaitForSync(absl::Seconds(15))) << Res(client_->status(), Kind::kPods).last_error;
}

}  // namespace
}  // namespace redmap::k8s
