// The fake-pod harness (pod_util.h) against the live BPF source: two "pods"
// on a node bridge, a server in one and a client in the other, each in its
// kubelet-style cgroup. Every full event a pod's process causes carries that
// pod's cgroup id (the key Kubernetes identity is resolved from), the pod
// IPs are the endpoints, and TCP events name the same processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "exporter/bpf_source.h"
#include "tests/integration/harness_util.h"
#include "tests/integration/pod_util.h"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using ::redmap::testing::FakePod;
using ::redmap::testing::PodNetwork;

class Recorder : public EventSink {
 public:
  void OnData(const DataEvent& e) override {
    std::lock_guard<std::mutex> l(mu);
    data.push_back(e);
    data.back().payload = {};
    data.back().process_name = {};
  }
  void OnClose(const CloseEvent&) override {}
  void OnTcp(const TcpEvent& e) override {
    std::lock_guard<std::mutex> l(mu);
    tcp.push_back(e);
    tcp.back().process_name = {};
  }
  std::mutex mu;
  std::vector<DataEvent> data;
  std::vector<TcpEvent> tcp;
};

TEST(FakePodTest, EventsCarryThePodsCgroupAndAddresses) {
  const int n = getpid() % 200 + 20;
  auto net = PodNetwork::Create(absl::StrCat("10.215.", n));
  ASSERT_NE(net, nullptr);
  auto backend = FakePod::Create(
      net.get(), {.name = "be", .uid = "5f0c3e64-1d2b-4a51-9f7e-2b7a8c9d0e11",
                  .container_id = std::string(64, 'b'), .host_octet = 10});
  auto frontend = FakePod::Create(
      net.get(), {.name = "fe", .uid = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                  .container_id = std::string(64, 'f'), .qos = "besteffort", .host_octet = 20});
  ASSERT_NE(backend, nullptr);
  ASSERT_NE(frontend, nullptr);
  EXPECT_TRUE(absl::StrContains(backend->cgroup_path(),
                                "/kubepods.slice/kubepods-burstable.slice/"
                                "kubepods-burstable-pod5f0c3e64_1d2b_4a51_9f7e_2b7a8c9d0e11.slice/"
                                "cri-containerd-bbbb"))
      << backend->cgroup_path();
  ASSERT_NE(backend->cgroup_id(), 0u);
  ASSERT_NE(backend->cgroup_id(), frontend->cgroup_id());

  auto server = backend->Start({"python3", "-m", "http.server", "--bind", backend->ip(), "8080"});
  ASSERT_NE(server, nullptr);
  for (int i = 0; i < 100; ++i) {
    if (frontend->Run(absl::StrCat("curl -s -o /dev/null http://", backend->ip(), ":8080/"))
            .exit_code == 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  SelfMetrics self;
  BpfSourceOptions options;
  options.self_tgid = getpid();
  auto source = BpfSource::Create(options, &self);
  ASSERT_THAT(source, testing::IsOk());
  Recorder sink;
  std::atomic<bool> stop{false};
  std::thread runner([&] { ASSERT_THAT((*source)->Run(&sink, stop), testing::IsOk()); });
  for (int i = 0; i < 3; ++i) {
    auto r = frontend->Run(absl::StrCat("curl -sS -o /dev/null http://", backend->ip(), ":8080/"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  runner.join();

  int server_events = 0, client_events = 0, compact_client_events = 0;
  std::set<std::tuple<uint32_t, int32_t, uint64_t>> client_conns;
  for (const DataEvent& e : sink.data) {
    if (e.compact) continue;
    if (e.local.addr.ToString() == backend->ip() && e.local.port == 8080) {
      ++server_events;
      EXPECT_EQ(e.cgroup_id, backend->cgroup_id());
      EXPECT_EQ(e.remote.addr.ToString(), frontend->ip());
    } else if (e.remote.addr.ToString() == backend->ip() && e.remote.port == 8080) {
      ++client_events;
      client_conns.insert({e.conn.tgid, e.conn.fd, e.conn.start_ns});
      EXPECT_EQ(e.cgroup_id, frontend->cgroup_id());
      EXPECT_EQ(e.local.addr.ToString(), frontend->ip());
    }
  }
  // Both ends are traced on this node (capture.parse_once): after its first
  // write, curl's end sends compact records without addresses or cgroup,
  // which belong to the connections its full events named.
  for (const DataEvent& e : sink.data) {
    if (!e.compact) continue;
    EXPECT_TRUE(client_conns.contains({e.conn.tgid, e.conn.fd, e.conn.start_ns}));
    ++compact_client_events;
  }
  // Three requests and three responses on each side, at least.
  EXPECT_GE(server_events, 6);
  EXPECT_GE(client_events, 3);
  EXPECT_GE(client_events + compact_client_events, 6);

  int established = 0;
  for (const TcpEvent& e : sink.tcp) {
    if (e.kind == TcpEventKind::kEstablished && e.remote.addr.ToString() == backend->ip()) {
      ++established;
      EXPECT_EQ(e.role, Role::kClient);
      EXPECT_EQ(e.cgroup_id, frontend->cgroup_id());  // taken at connect(), in curl
      EXPECT_GT(e.value, 0u);  // handshake time across the bridge
    }
  }
  EXPECT_EQ(established, 3);
}

}  // namespace
}  // namespace redmap
