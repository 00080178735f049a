#include "aggregators/metadata/k8s/api_server_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/escaping.h"
#include "tests/testlib/status_matchers.h"

namespace redmap::k8s {
namespace {

namespace fs = std::filesystem;
using ::redmap::testing::IsOk;
using ::redmap::testing::StatusIs;
using ::testing::HasSubstr;

class ApiServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("redmap-kc-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  EnvLookup Env(std::map<std::string, std::string> vars) {
    return [vars](const char* n) {
      auto it = vars.find(n);
      return it == vars.end() ? std::string() : it->second;
    };
  }
  fs::path dir_;
};

constexpr char kCaPem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

TEST_F(ApiServerConfigTest, KubeconfigWithDataAndToken) {
  // The shape kubeadm / kind write, two contexts.
  std::string path = Write("config", R"(apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: )" + absl::Base64Escape(kCaPem) + R"(
    server: https://127.0.0.1:6443/
  name: kind-kind
- cluster:
    insecure-skip-tls-verify: true
    server: https://10.0.0.1:6443
  name: lab
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
  name: kind-kind
- context:
    cluster: lab
    user: lab-admin
    namespace: default
  name: lab
current-context: kind-kind
preferences: {}
users:
- name: kind-kind
  user:
    token: abc.def
- name: lab-admin
  user:
    client-certificate: certs/admin.crt
    client-key: /etc/lab/admin.key
)");
  auto c = LoadKubeconfig(path);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->ca_data, kCaPem);
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->CurrentToken(), "abc.def");
  EXPECT_EQ(c->source, path);

  auto lab = LoadKubeconfig(path, "lab");
  ASSERT_THAT(lab, IsOk());
  EXPECT_EQ(lab->server, "https://10.0.0.1:6443");
  EXPECT_TRUE(lab->insecure_skip_tls_verify);
  EXPECT_EQ(lab->client_cert_file, (dir_ / "certs/admin.crt").string());  // relative to the file
  EXPECT_EQ(lab->client_key_file, "/etc/lab/admin.key");
  EXPECT_EQ(lab->CurrentToken(), "");

  EXPECT_THAT(LoadKubeconfig(path, "nope"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

TEST_F(ApiServerConfigTest, KubeconfigClientCertDataAndTokenFile) {
  Write("token", "  rotated-token\n");
  std::string path = Write("config.json", R"({"apiVersion":"v1","kind":"Config",
    "clusters":[{"name":"c","cluster":{"server":"http://127.0.0.1:8001","certificate-authority":"ca.crt"}}],
    "users":[{"name":"u","user":{"tokenFile":"token","client-certificate-data":")" +
                                         absl::Base64Escape("CERT") + R"(","client-key-data":")" +
                                         absl::Base64Escape("KEY") + R"("}}],
    "contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"})");
  auto c = LoadKubeconfig(path);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->server, "http://127.0.0.1:8001");
  EXPECT_EQ(c->ca_file, (dir_ / "ca.crt").string());
  EXPECT_EQ(c->client_cert_data, "CERT");
  EXPECT_EQ(c->client_key_data, "KEY");
  EXPECT_EQ(c->CurrentToken(), "rotated-token");
  Write("token", "next-token");
  EXPECT_EQ(c->CurrentToken(), "next-token");  // re-read every time
}

TEST_F(ApiServerConfigTest, KubeconfigErrorsSayWhatIsWrong) {
  EXPECT_THAT(LoadKubeconfig((dir_ / "missing").string()), StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  EXPECT_THAT(LoadKubeconfig(Write("bad", "clusters: [")), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(LoadKubeconfig(Write("noctx", "apiVersion: v1\nclusters: []\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("current-context")));
  std::string exec = Write("exec", R"(clusters:
- name: eks
  cluster: {server: "https://x.eks.amazonaws.com"}
users:
- name: aws
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws}
contexts:
- name: eks
  context: {cluster: eks, user: aws}
current-context: eks
)");
  EXPECT_THAT(LoadKubeconfig(exec), StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("exec")));
  std::string badb64 = Write("b64", R"(clusters:
- name: c
  cluster: {server: "https://x", certificate-authority-data: "!!!"}
contexts:
- name: c
  context: {cluster: c}
current-context: c
)");
  EXPECT_THAT(LoadKubeconfig(badb64), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("base64")));
}

TEST_F(ApiServerConfigTest, InCluster) {
  Write("token", "sa-token\n");
  Write("ca.crt", kCaPem);
  auto c = LoadInCluster(Env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
                         dir_.string());
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->ca_file, (dir_ / "ca.crt").string());
  EXPECT_EQ(c->CurrentToken(), "sa-token");
  EXPECT_EQ(c->source, "in-cluster");
  auto v6 = LoadInCluster(Env({{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
                          dir_.string());
  ASSERT_THAT(v6, IsOk());
  EXPECT_EQ(v6->server, "https://[fd00::1]:443");
  EXPECT_THAT(LoadInCluster(Env({}), dir_.string()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("KUBERNETES_SERVICE_HOST")));
  fs::remove(dir_ / "token");
  EXPECT_THAT(LoadInCluster(Env({{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", "1"}}),
                            dir_.string()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("token")));
}

TEST_F(ApiServerConfigTest, AutoDetectOrder) {
  Write("token", "t");
  Write("ca.crt", kCaPem);
  std::string kc = Write("kc", R"(clusters: [{name: c, cluster: {server: "https://from-kubeconfig"}}]
contexts: [{name: c, context: {cluster: c}}]
current-context: c
)");
  fs::create_directories(dir_ / "home/.kube");
  Write("home/.kube/config", R"(clusters: [{name: c, cluster: {server: "https://from-home"}}]
contexts: [{name: c, context: {cluster: c}}]
current-context: c
)");
  auto in_pod = Env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"},
                     {"KUBECONFIG", kc}, {"HOME", (dir_ / "home").string()}});
  EXPECT_EQ(LoadApiServerConfig(kc, in_pod, dir_.string())->server, "https://from-kubeconfig");
  EXPECT_EQ(LoadApiServerConfig("", in_pod, dir_.string())->server, "https://10.96.0.1:443");
  auto outside = Env({{"KUBECONFIG", "/nonexistent:" + kc}, {"HOME", (dir_ / "home").string()}});
  EXPECT_EQ(LoadApiServerConfig("", outside, dir_.string())->server, "https://from-kubeconfig");
  auto home = Env({{"HOME", (dir_ / "home").string()}});
  EXPECT_EQ(LoadApiServerConfig("", home, dir_.string())->server, "https://from-home");
  EXPECT_THAT(LoadApiServerConfig("", Env({}), dir_.string()),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(ApiServerConfigTest, NodeName) {
  EXPECT_EQ(NodeNameFromEnv(Env({{"NODE_NAME", "node-7"}})), "node-7");
  EXPECT_FALSE(NodeNameFromEnv(Env({})).empty());  // the hostname
}

}  // namespace
}  // namespace redmap::k8s
