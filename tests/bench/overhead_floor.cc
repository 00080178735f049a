// The floors under redmap's overhead targets, for tests/bench/overhead.sh.
// Runs until SIGTERM/SIGINT in one of two modes:
//
//   overhead_floor hook      an empty program on tp_btf/sys_exit, the hook
//                            redmap's capture uses: what being there at all
//                            costs every syscall on the node
//   overhead_floor sock-hook empty programs on tp_btf/sock_send_length and
//                            sock_recv_length instead (kernel 6.4+): the
//                            floor of the socket layer's hooks, which only
//                            socket sends and receives pay
//   overhead_floor capture   redmap's real capture (BpfSource with the default
//                            config: every BPF program, the rings, the reader,
//                            the merger and the record decoder), with the
//                            events dropped instead of parsed and aggregated:
//                            the kernel side and the ring traffic alone
//
// With `capture`, prints the data events received at exit, so a run can be
// checked to have seen the traffic. The difference between these and the
// full exporter is what userspace parsing, aggregation and traces cost.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "aggregators/self/self_metrics.h"
#include "empty_hook.skel.h"
#include "exporter/bpf_source.h"
#include "exporter/config.h"
#include "exporter/tracefs.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

class CountingSink : public redmap::EventSink {
 public:
  void OnData(const redmap::DataEvent&) override { ++data_; }
  void OnClose(const redmap::CloseEvent&) override {}
  uint64_t data() const { return data_; }

 private:
  uint64_t data_ = 0;
};

int RunHook(bool socket_layer) {
  empty_hook* skel = empty_hook__open();
  int err = skel == nullptr ? errno : 0;
  if (skel != nullptr) {
    bpf_program__set_autoload(skel->progs.empty_sys_exit, !socket_layer);
    bpf_program__set_autoload(skel->progs.empty_sock_send, socket_layer);
    bpf_program__set_autoload(skel->progs.empty_sock_recv, socket_layer);
    if (int rc = empty_hook__load(skel); rc != 0) {
      err = -rc;
      empty_hook__destroy(skel);
      skel = nullptr;
    }
  }
  if (skel == nullptr) {
    fprintf(stderr, "overhead_floor: cannot load the empty programs: %s\n", strerror(err));
    return 1;
  }
  if (empty_hook__attach(skel) != 0) {
    fprintf(stderr, "overhead_floor: cannot attach the empty programs: %s\n", strerror(errno));
    empty_hook__destroy(skel);
    return 1;
  }
  fprintf(stderr, "overhead_floor: empty %s attached\n",
          socket_layer ? "tp_btf/sock_send_length and sock_recv_length programs"
                       : "tp_btf/sys_exit program");
  while (!g_stop.load()) pause();
  empty_hook__destroy(skel);
  return 0;
}

int RunCapture() {
  if (auto mounted = redmap::EnsureTracefsMounted(); !mounted.ok()) {
    fprintf(stderr, "overhead_floor: %s\n", std::string(mounted.status().message()).c_str());
    return 1;
  }
  const redmap::Config config;  // every default, as redmap_exporter without a file
  redmap::BpfSourceOptions options;
  options.capture = config.capture;
  options.network = config.network;
  options.self_tgid = static_cast<uint32_t>(getpid());
  redmap::SelfMetrics self;
  auto source = redmap::BpfSource::Create(options, &self);
  if (!source.ok()) {
    fprintf(stderr, "overhead_floor: %s\n", std::string(source.status().message()).c_str());
    return 1;
  }
  fprintf(stderr, "overhead_floor: capture attached, events are counted and dropped\n");
  CountingSink sink;
  if (absl::Status s = (*source)->Run(&sink, g_stop); !s.ok()) {
    fprintf(stderr, "overhead_floor: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  const redmap::KernelStats k = (*source)->ReadKernelStats();
  printf("data_events %llu kernel_ring_drops %llu\n", static_cast<unsigned long long>(sink.data()),
         static_cast<unsigned long long>(k.ringbuf_drops));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc == 2 ? argv[1] : "";
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  if (strcmp(mode, "hook") == 0) return RunHook(false);
  if (strcmp(mode, "sock-hook") == 0) return RunHook(true);
  if (strcmp(mode, "capture") == 0) return RunCapture();
  fprintf(stderr, "usage: overhead_floor hook|sock-hook|capture (root; runs until SIGTERM)\n");
  return 2;
}
