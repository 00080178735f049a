// The live BPF source against real processes: python3's http.server and
// curl on loopback. Checks what the kernel side promises per event: roles,
// 4-tuples, payload prefixes, byte counts, close events, and that the TCP
// sequence number of a request is the same on both ends (what links a
// client span to its server span without headers).
#include "exporter/bpf_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bpf/socket_trace.h"
#include "tests/integration/harness_util.h"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using ::redmap::testing::FreePort;
using ::redmap::testing::RunShell;
using ::redmap::testing::Subprocess;
using ::redmap::testing::TempDir;
using ::redmap::testing::WaitForPort;

struct Recorded {
  DataEvent ev;
  std::string payload;
};

class RecordingSink : public EventSink {
 public:
  void OnData(const DataEvent& e) override {
    std::lock_guard<std::mutex> l(mu);
    Recorded r{e, std::string(e.payload)};
    r.ev.payload = {};
    data.push_back(std::move(r));
  }
  void OnClose(const CloseEvent& e) override {
    std::lock_guard<std::mutex> l(mu);
    closes.push_back(e);
  }
  std::mutex mu;
  std::vector<Recorded> data;
  std::vector<CloseEvent> closes;
};

// python3's http.server on a free loopback port, serving dir. Returns the
// port once it accepts connections, 0 if it never did.
int StartHttpServer(const TempDir& dir, Subprocess* server) {
  const int port = FreePort();
  if (!server->Start({"python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                      dir.path(), std::to_string(port)})) {
    return 0;
  }
  return WaitForPort("127.0.0.1", port, std::chrono::seconds(10)) ? port : 0;
}

// python3's http.server serving one file (port 0 if it never started).
struct FileServer {
  FileServer(const std::string& name, const std::string& body) {
    dir.Write(name, body);
    port = StartHttpServer(dir, &server);
  }
  TempDir dir;
  Subprocess server;
  int port = 0;
};

// Defaults, with this test process left out of the capture.
BpfSourceOptions NotSelfOptions() {
  BpfSourceOptions options;
  options.self_tgid = getpid();
  return options;
}

// Rings of 32 KiB per CPU (on 2 CPUs) with whole 4 KiB payloads: a few
// dozen records fill one.
BpfSourceOptions TinyRingOptions() {
  BpfSourceOptions options = NotSelfOptions();
  options.capture.ring_buffer_bytes = 16 * 4096;
  options.capture.payload_bytes = 4096;
  return options;
}

// Every copy of the sys_exit program: tp_btf with direct loads (preferred),
// tp_btf with helper reads (kernels without bpf_rdonly_cast) and the
// raw_tracepoint fallback for kernels without BTF tracepoints.
struct SysExitVariant {
  const char* name;   // of the test
  const char* probe;  // the program, as redmap_probe_up names it
  const char* zero_window_probe;  // the tcp_probe copy loaded with it (none: raw)
  bool force_raw_tracepoint;
  bool force_helper_reads;
};

class BpfSourceVariantTest : public ::testing::TestWithParam<SysExitVariant> {};

TEST_P(BpfSourceVariantTest, CapturesHttpBetweenCurlAndPythonServer) {
  FileServer fs("hello.txt", std::string(5000, 'x'));
  ASSERT_NE(fs.port, 0) << fs.server.Output();
  const int port = fs.port;
  Subprocess& server = fs.server;

  SelfMetrics self;
  BpfSourceOptions options = NotSelfOptions();
  options.force_raw_tracepoint = GetParam().force_raw_tracepoint;
  options.force_helper_reads = GetParam().force_helper_reads;
  auto source = BpfSource::Create(options, &self);
  ASSERT_THAT(source, testing::IsOk());
  RecordingSink sink;
  std::atomic<bool> stop{false};
  std::thread runner([&] { ASSERT_THAT((*source)->Run(&sink, stop), testing::IsOk()); });

  for (int i = 0; i < 3; ++i) {
    auto r = RunShell(absl::StrCat("curl -sS -o /dev/null http://127.0.0.1:", port, "/hello.txt"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  runner.join();

  const uint32_t server_tgid = server.pid();
  int client_requests = 0, server_requests = 0, server_responses = 0;
  uint64_t server_response_bytes = 0;
  std::vector<uint32_t> client_seqs, server_seqs;
  for (const auto& r : sink.data) {
    const DataEvent& e = r.ev;
    EXPECT_EQ(e.protocol, Protocol::kHttp1);
    EXPECT_LE(r.payload.size(), e.byte_count);
    EXPECT_LE(e.enter_ns, e.exit_ns);
    if (e.conn.tgid == server_tgid) {
      EXPECT_EQ(e.role, Role::kServer);
      EXPECT_EQ(e.local.port, port);
      EXPECT_EQ(e.local.addr.ToString(), "127.0.0.1");
      if (e.direction == Direction::kIngress && absl::StartsWith(r.payload, "GET /hello.txt")) {
        ++server_requests;
        server_seqs.push_back(e.tcp_seq);
      }
      if (e.direction == Direction::kEgress) {
        if (absl::StartsWith(r.payload, "HTTP/1.0 200")) ++server_responses;
        server_response_bytes += e.byte_count;
      }
    } else if (e.remote.port == port) {
      EXPECT_EQ(e.role, Role::kClient);
      if (e.direction == Direction::kEgress && absl::StartsWith(r.payload, "GET /hello.txt")) {
        ++client_requests;
        client_seqs.push_back(e.tcp_seq);
      }
    }
  }
  EXPECT_EQ(client_requests, 3);
  EXPECT_EQ(server_requests, 3);
  EXPECT_EQ(server_responses, 3);
  // Three bodies of 5000 bytes plus headers.
  EXPECT_GT(server_response_bytes, 3u * 5000);
  // The request's first byte has the same stream position on both ends.
  std::sort(client_seqs.begin(), client_seqs.end());
  std::sort(server_seqs.begin(), server_seqs.end());
  EXPECT_EQ(client_seqs, server_seqs);

  int server_closes = 0;
  for (const auto& c : sink.closes)
    if (c.conn.tgid == server_tgid) ++server_closes;
  EXPECT_EQ(server_closes, 3);

  KernelStats k = (*source)->ReadKernelStats();
  EXPECT_GT(k.events, 0u);
  EXPECT_EQ(k.ringbuf_drops, 0u);
  auto probes = self.Collect();
  bool found = false;
  std::vector<std::string> tcp_probe_copies;  // up, among the two tcp_probe copies
  for (const auto& f : probes) {
    if (f.name != "redmap_probe_up") continue;
    for (const auto& m : f.metric) {
      const std::string& name = m.label[0].value;
      if (name == GetParam().probe) {
        found = true;
        EXPECT_EQ(m.gauge.value, 1);
      }
      if (absl::StartsWith(name, "tcp_zero_window") && m.gauge.value == 1) {
        tcp_probe_copies.push_back(name);
      }
    }
  }
  EXPECT_TRUE(found);
  if (GetParam().zero_window_probe != nullptr) {
    EXPECT_THAT(tcp_probe_copies, ::testing::ElementsAre(GetParam().zero_window_probe));
  } else {
    EXPECT_THAT(tcp_probe_copies, ::testing::IsEmpty());
  }
  auto fill = (*source)->ReadTableFill();
  ASSERT_EQ(fill.size(), 4u);
  EXPECT_EQ(fill[3].table, "bpf_tcp_connections");
  EXPECT_EQ(fill[2].table, "ring_buffer_bytes");
  EXPECT_EQ(fill[2].capacity, options.capture.ring_buffer_bytes);
  EXPECT_EQ(fill[1].table, "bpf_local_clients");
  EXPECT_EQ(fill[1].capacity, options.capture.max_connections);
  EXPECT_GE(fill[0].entries, 0);
  EXPECT_EQ(fill[0].capacity, options.capture.max_connections);
}

INSTANTIATE_TEST_SUITE_P(
    Programs, BpfSourceVariantTest,
    ::testing::Values(
        SysExitVariant{"TpBtf", "sys_exit_btf", "tcp_zero_window", false, false},
        SysExitVariant{"TpBtfHelperReads", "sys_exit_compat", "tcp_zero_window_compat", false,
                       true},
        SysExitVariant{"RawTracepoint", "sys_exit_raw", nullptr, true, false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(BpfSourceTest, DoesNotTraceItsOwnPort) {
  FileServer fs("x", "x");
  ASSERT_NE(fs.port, 0) << fs.server.Output();
  const int port = fs.port;
  SelfMetrics self;
  BpfSourceOptions options = NotSelfOptions();
  options.self_port = static_cast<uint16_t>(port);
  auto source = BpfSource::Create(options, &self);
  ASSERT_THAT(source, testing::IsOk());
  RecordingSink sink;
  std::atomic<bool> stop{false};
  std::thread runner([&] { (void)(*source)->Run(&sink, stop); });
  auto r = RunShell(absl::StrCat("curl -sS -o /dev/null http://127.0.0.1:", port, "/"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  runner.join();
  for (const auto& rec : sink.data) {
    EXPECT_NE(rec.ev.local.port, port);
    EXPECT_NE(rec.ev.remote.port, port);
  }
}

}  // namespace
}  // namespace redmap

namespace redmap {
namespace {

// Far slower than 100 sequential curls produce events (the TCP events'
// prompt wakeups keep the consumer awake, so batching alone does not fill
// the ring).
class SlowSink : public EventSink {
 public:
  void OnData(const DataEvent&) override {
    ++data;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  void OnClose(const CloseEvent&) override { ++closes; }
  std::atomic<uint64_t> data{0};
  std::atomic<uint64_t> closes{0};
};

TEST(BpfSourceTest, OverloadDropsAreCountedNotHidden) {
  FileServer fs("x", "x");
  ASSERT_NE(fs.port, 0) << fs.server.Output();
  const int port = fs.port;

  SelfMetrics self;
  auto source = BpfSource::Create(TinyRingOptions(), &self);
  ASSERT_THAT(source, testing::IsOk());
  SlowSink sink;
  std::atomic<bool> stop{false};
  std::thread runner([&] { (void)(*source)->Run(&sink, stop); });
  auto r = RunShell(absl::StrCat("for i in $(seq 100); do echo http://127.0.0.1:", port,
                                 "/x; done | xargs curl -sS -o /dev/null"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop = true;
  runner.join();
  KernelStats k = (*source)->ReadKernelStats();
  EXPECT_GT(k.ringbuf_drops, 0u);
  // Every record written was delivered: what was lost is exactly what the
  // kernel counted as dropped.
  EXPECT_EQ(k.events, sink.data.load() + sink.closes.load());
}

// The capture loop sleeps in epoll_wait for up to poll_interval_ms, and the
// kernel side wakes it when a ring holds wakeup_bytes, but only while it
// sleeps there (a busy or pacing reader comes back by itself; a wakeup is an
// IPI). With a poll interval of 6 s and the TCP programs off (their ring
// wakes the reader on its own), traffic that fills the rings far past
// wakeup_bytes must reach the sink before the first timeout would.
TEST(BpfSourceTest, ASleepingReaderIsWokenOnceARingHoldsWakeupBytes) {
  FileServer fs("b.txt", std::string(3000, 'b'));
  ASSERT_NE(fs.port, 0) << fs.server.Output();
  const int port = fs.port;
  Subprocess& server = fs.server;

  BpfSourceOptions options = NotSelfOptions();
  options.capture.poll_interval_ms = 6000;
  options.network.enabled = false;
  SelfMetrics self;
  auto source = BpfSource::Create(options, &self);
  ASSERT_THAT(source, testing::IsOk());
  RecordingSink sink;
  std::atomic<bool> stop{false};
  const auto started = std::chrono::steady_clock::now();
  std::thread runner([&] { ASSERT_THAT((*source)->Run(&sink, stop), testing::IsOk()); });
  // The loop's first round finds the rings empty: it sleeps from here.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  constexpr int kRequests = 200;  // ~1.3 MB of events, wakeup_bytes is 64 KiB
  std::string args;
  for (int i = 0; i < kRequests; ++i) {
    absl::StrAppend(&args, " -o /dev/null http://127.0.0.1:", port, "/b.txt");
  }
  auto r = RunShell(absl::StrCat("curl -sS", args));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto server_requests = [&] {
    std::lock_guard<std::mutex> l(sink.mu);
    int n = 0;
    for (const auto& rec : sink.data) {
      n += rec.ev.conn.tgid == static_cast<uint32_t>(server.pid()) &&
           rec.ev.direction == Direction::kIngress;
    }
    return n;
  };
  // Before the 6 s timeout: only a wakeup can have brought these.
  const auto deadline = started + std::chrono::milliseconds(5000);
  while (server_requests() < kRequests / 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int seen = server_requests();
  const auto waited = std::chrono::steady_clock::now() - started;
  stop = true;
  runner.join();
  EXPECT_GE(seen, kRequests / 2) << "after "
                                 << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                                 << " ms";
  EXPECT_EQ((*source)->ReadKernelStats().ringbuf_drops, 0u);
}

// A ring much smaller than the traffic: records keep crossing its end, and
// the capture loop reads them in place (the ring is mapped twice in a row,
// so a record across the end reads as one piece) and moves the consumer
// position only past what it delivered. Every record must arrive once, whole
// and in order: the request lines in the order curl sent them, every
// response body byte for byte.
TEST(BpfSourceTest, RecordsAcrossTheEndOfASmallRingArriveWholeAndInOrder) {
  std::string body;
  for (int i = 0; body.size() < 3000; ++i) absl::StrAppend(&body, i, ",");
  FileServer fs("b.txt", body);
  ASSERT_NE(fs.port, 0) << fs.server.Output();
  const int port = fs.port;
  Subprocess& server = fs.server;

  SelfMetrics self;
  const BpfSourceOptions options = TinyRingOptions();
  auto source = BpfSource::Create(options, &self);
  ASSERT_THAT(source, testing::IsOk());
  RecordingSink sink;
  std::atomic<bool> stop{false};
  std::thread runner([&] { ASSERT_THAT((*source)->Run(&sink, stop), testing::IsOk()); });
  constexpr int kRequests = 300;
  std::string args;
  for (int i = 0; i < kRequests; ++i) {
    absl::StrAppend(&args, " -o /dev/null http://127.0.0.1:", port, "/b.txt?i=", i);
  }
  auto r = RunShell(absl::StrCat("curl -sS", args));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  runner.join();

  std::vector<int> requests;
  int bodies = 0;
  for (const auto& rec : sink.data) {
    if (rec.ev.conn.tgid != static_cast<uint32_t>(server.pid())) continue;
    ASSERT_EQ(rec.payload.size(), rec.ev.byte_count) << "captured whole (payload_bytes 4096)";
    if (rec.ev.direction == Direction::kIngress) {
      const std::string prefix = "GET /b.txt?i=";
      ASSERT_TRUE(absl::StartsWith(rec.payload, prefix)) << rec.payload;
      requests.push_back(std::atoi(rec.payload.c_str() + prefix.size()));
    } else if (!absl::StartsWith(rec.payload, "HTTP/")) {
      EXPECT_EQ(rec.payload, body);
      ++bodies;
    }
  }
  std::vector<int> expected(kRequests);
  for (int i = 0; i < kRequests; ++i) expected[i] = i;
  EXPECT_EQ(requests, expected);
  EXPECT_EQ(bodies, kRequests);
  KernelStats k = (*source)->ReadKernelStats();
  EXPECT_EQ(k.ringbuf_drops, 0u);
  EXPECT_EQ(k.events, sink.data.size() + sink.closes.size());
  uint64_t ring_bytes = sink.closes.size() * (sizeof(redmap_close_event) + 8);
  for (const auto& rec : sink.data) ring_bytes += sizeof(redmap_data_event) + 8 + rec.payload.size();
  EXPECT_GT(ring_bytes, 4u * options.capture.ring_buffer_bytes) << "the rings went round a few times";
}

}  // namespace
}  // namespace redmap
