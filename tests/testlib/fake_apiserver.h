// A stand-in Kubernetes API server for tests: tests/fixtures/k8s/
// fake_apiserver.py as a child process on loopback, driven by one JSON
// command per line (put, delete, bookmark, drop, compact, fail, stats; see
// the script), and builders for API objects in the shapes of the API
// reference (the server adds kind, apiVersion and resourceVersion).
#ifndef REDMAP_TESTS_TESTLIB_FAKE_APISERVER_H_
#define REDMAP_TESTS_TESTLIB_FAKE_APISERVER_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace redmap::testing {

using nlohmann::json;

// The fake server as a child process: commands on its stdin, one reply
// line each on its stdout.
class FakeApiServer {
 public:
  explicit FakeApiServer(std::vector<std::string> args = {}) {
    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    std::string script = std::string(REDMAP_SOURCE_DIR) + "/tests/fixtures/k8s/fake_apiserver.py";
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      std::vector<char*> argv = {const_cast<char*>("python3"), script.data()};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("python3", argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = fdopen(out[0], "r");
    std::string first = ReadLine();
    EXPECT_TRUE(first.rfind("listening ", 0) == 0) << first;
    port_ = std::atoi(first.c_str() + 10);
  }
  ~FakeApiServer() {
    close(to_);
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    fclose(from_);
  }
  int port() const { return port_; }

  std::string Do(const json& cmd) {
    std::string line = cmd.dump() + "\n";
    EXPECT_EQ(write(to_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    std::string reply = ReadLine();
    EXPECT_TRUE(reply.rfind("error", 0) != 0) << reply;
    return reply;
  }
  // The server's resourceVersion after the command.
  int Put(const std::string& resource, const json& obj) {
    return std::atoi(Do({{"op", "put"}, {"resource", resource}, {"object", obj}}).c_str() + 3);
  }
  int Delete(const std::string& resource, const std::string& ns, const std::string& name) {
    return std::atoi(
        Do({{"op", "delete"}, {"resource", resource}, {"namespace", ns}, {"name", name}}).c_str() + 3);
  }
  json Stats() { return json::parse(Do({{"op", "stats"}})); }

 private:
  std::string ReadLine() {
    char buf[1 << 16];
    if (fgets(buf, sizeof(buf), from_) == nullptr) return "error: fake server exited";
    std::string s(buf);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  pid_t pid_ = -1;
  int to_ = -1;
  FILE* from_ = nullptr;
  int port_ = 0;
};

// A kubeconfig pointing at a FakeApiServer on 127.0.0.1:`port`.
inline std::string KubeconfigFor(int port) {
  return "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
         "    server: http://127.0.0.1:" + std::to_string(port) +
         "\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n"
         "    user: redmap\ncurrent-context: fake\nusers:\n- name: redmap\n"
         "  user:\n    token: unused\n";
}

// API objects in the shapes of the API reference (the server adds kind,
// apiVersion and resourceVersion).
inline json PodJson(const std::string& ns, const std::string& name, const std::string& uid,
             const std::string& node, const std::string& ip, const json& labels,
             const json& owner = nullptr, bool host_network = false) {
  json meta = {{"name", name}, {"namespace", ns}, {"uid", uid}, {"labels", labels},
               {"creationTimestamp", "2024-05-02T09:14:07Z"}};
  if (!owner.is_null()) meta["ownerReferences"] = json::array({owner});
  json spec = {{"nodeName", node},
               {"containers", json::array({{{"name", "app"}, {"image", "nginx:1.25"}}})}};
  if (host_network) spec["hostNetwork"] = true;
  return {{"metadata", meta},
          {"spec", spec},
          {"status",
           {{"phase", "Running"},
            {"hostIP", node == "node-a" ? "192.168.10.11" : "192.168.10.12"},
            {"podIP", ip},
            {"podIPs", json::array({{{"ip", ip}}})}}}};
}

inline json Owner(const std::string& kind, const std::string& name) {
  return {{"apiVersion", kind == "Job" ? "batch/v1" : "apps/v1"}, {"kind", kind}, {"name", name},
          {"uid", "owner-" + name}, {"controller", true}, {"blockOwnerDeletion", true}};
}

inline json ServiceJson(const std::string& ns, const std::string& name, const json& selector,
                 const std::string& cluster_ip) {
  return {{"metadata", {{"name", name}, {"namespace", ns}, {"uid", "svc-" + name}}},
          {"spec",
           {{"selector", selector},
            {"clusterIP", cluster_ip},
            {"clusterIPs", json::array({cluster_ip})},
            {"type", "ClusterIP"},
            {"ports", json::array({{{"port", 80}, {"protocol", "TCP"}}})}}}};
}

inline json OwnerJson(const std::string& ns, const std::string& name, const json& owner) {
  json meta = {{"name", name}, {"namespace", ns}, {"uid", "uid-" + name}};
  if (!owner.is_null()) meta["ownerReferences"] = json::array({owner});
  return {{"metadata", meta}, {"spec", json::object()}};
}

inline json SliceJson(const std::string& ns, const std::string& name, const std::string& service,
               const std::vector<std::string>& ips) {
  json eps = json::array();
  for (const auto& ip : ips) eps.push_back({{"addresses", {ip}}, {"conditions", {{"ready", true}}}});
  return {{"metadata",
           {{"name", name},
            {"namespace", ns},
            {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"endpoints", eps},
          {"ports", json::array({{{"port", 8080}}})}};
}

}  // namespace redmap::testing

#endif  // REDMAP_TESTS_TESTLIB_FAKE_APISERVER_H_
