// Userspace throughput: HTTP/1 events through parse + pair + aggregate
// (Pipeline: ConnTracker -> Http1Stitcher -> RedAggregator) on one core.
// Events are what the BPF side emits for keep-alive traffic: one read of a
// curl-like request and one write of an nginx-like response per exchange,
// spread over 64 connections, all owned by this process so that the
// service_name lookup (cached /proc resolution) is part of the cost, as it
// is live. Target: >= 1,000,000 events/s. `traces` adds trace assembly and
// tail sampling (traces.* defaults but no span budget, ticked as the live source does); its
// cost per span is the difference of ns per iteration divided by the spans
// per iteration (target <= 300 ns/span). `sides:1` observes the server
// only (one span per iteration); `sides:2` also the client on the same node
// (a wrk-like process: request write and response read, four events and two
// spans per iteration, linked into one trace by TCP sequence), as redmap
// sees loopback or same-node traffic.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "aggregators/pipeline.h"
#include "aggregators/sources/event_decoder.h"
#include "aggregators/sources/record_merger.h"
#include "bpf/socket_trace.h"

namespace redmap {
namespace {

void BM_PipelineHttp1(benchmark::State& state) {
  const int kConns = 64;
  const bool varied_routes = state.range(0) != 0;
  const bool both_sides = state.range(2) == 2;
  PipelineOptions options;
  options.traces_enabled = state.range(1) != 0;
  // Every span assembled: this measures assembly, which the budget (a few
  // thousand spans per tenth of a second) would skip at these rates.
  options.traces.max_spans_per_second = 0;
  options.red.buckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                         0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  auto pipeline = *Pipeline::Create(options);

  std::vector<std::string> requests;
  for (int i = 0; i < 16; ++i) {
    requests.push_back("GET /api/users/" + std::to_string(varied_routes ? 1000 + i : 42) +
                       "?page=2 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n"
                       "Accept: */*\r\n\r\n");
  }
  const std::string response =
      "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 23 Nov 2026 02:07:44 GMT\r\n"
      "Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n";

  struct Conn {
    uint32_t in_seq = 1000, out_seq = 9000;
  };
  std::vector<Conn> conns(kConns);
  const uint32_t tgid = static_cast<uint32_t>(getpid());
  DataEvent e;  // the server's events
  e.protocol = Protocol::kHttp1;
  e.role = Role::kServer;
  e.has_tcp_seq = true;
  e.local.addr = IpAddress::V4(0x0100007f);
  e.local.port = 8080;
  e.remote.addr = IpAddress::V4(0x0100007f);
  e.process_name = "nginx";
  e.tid = tgid;
  DataEvent ce = e;  // the client's, on other fds and another thread
  ce.role = Role::kClient;
  ce.local = e.remote;
  ce.remote = e.local;
  ce.process_name = "wrk";
  ce.tid = tgid + 1;
  uint64_t now = 1'000'000'000;
  uint64_t events = 0;
  size_t i = 0;
  // One syscall's event: [now + start_gap, + duration], `bytes` at `seq`.
  auto emit = [&](DataEvent& ev, Direction dir, uint64_t start_gap, uint64_t duration,
                  const std::string& bytes, uint32_t seq) {
    ev.direction = dir;
    ev.enter_ns = now += start_gap;
    ev.exit_ns = now += duration;
    ev.byte_count = static_cast<uint32_t>(bytes.size());
    ev.tcp_seq = seq;
    ev.payload = bytes;
    pipeline->OnData(ev);
  };
  for (auto _ : state) {
    const int c = static_cast<int>(i % kConns);
    const std::string& req = requests[i % requests.size()];
    ++i;
    e.conn = ConnKey{tgid, c, 1};
    e.remote.port = static_cast<uint16_t>(40000 + c);
    if (both_sides) {
      ce.conn = ConnKey{tgid, 1000 + c, 1};
      ce.local.port = e.remote.port;
      emit(ce, Direction::kEgress, 0, 5'000, req, conns[c].in_seq);
    }
    emit(e, Direction::kIngress, 0, 20'000, req, conns[c].in_seq);
    conns[c].in_seq += static_cast<uint32_t>(req.size());
    emit(e, Direction::kEgress, 30'000, 10'000, response, conns[c].out_seq);
    events += 2;
    if (both_sides) {
      emit(ce, Direction::kIngress, 0, 5'000, response, conns[c].out_seq);
      events += 2;
    }
    conns[c].out_seq += static_cast<uint32_t>(response.size());
    if ((i & 1023) == 0) pipeline->Tick(now);
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
  state.counters["spans"] = static_cast<double>(pipeline->self_metrics().spans(Protocol::kHttp1));
  if (traces::TraceSampler* sampler = pipeline->trace_sampler()) {
    // Spans linked to a parent: with both sides, every server span (by TCP
    // sequence), so the figure is the cost of assembling real trees.
    for (const auto& f : sampler->Collect()) {
      if (f.name != "redmap_trace_spans_linked_total") continue;
      double linked = 0;
      for (const auto& m : f.metric) linked += m.counter.value;
      state.counters["linked"] = linked;
    }
  }
}
BENCHMARK(BM_PipelineHttp1)
    ->ArgsProduct({{0, 1}, {0, 1}, {1, 2}})
    ->ArgNames({"varied_routes", "traces", "sides"});

// The stage before the pipeline: ring records (as a sys_exit batch lays
// them out: 8-byte aligned, header then captured bytes) split and decoded
// into DataEvents, into a sink that only looks at them.
void BM_DecodeRecords(benchmark::State& state) {
  class Sink : public EventSink {
   public:
    void OnData(const DataEvent& e) override {
      bytes += e.payload.size() + e.process_name.size() + e.local.port;
    }
    void OnClose(const CloseEvent&) override {}
    size_t bytes = 0;
  } sink;
  const std::string request =
      "GET /api/users/42 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n";
  const std::string response =
      "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 23 Nov 2026 02:07:44 GMT\r\n"
      "Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n";
  std::vector<uint64_t> batch;  // 8-byte aligned, as ring records are
  size_t used = 0;
  for (int i = 0; i < 64; ++i) {
    const std::string& payload = i % 2 == 0 ? request : response;
    redmap_data_event h{};
    h.type = REDMAP_EVENT_DATA;
    h.direction = i % 2 == 0 ? REDMAP_DIR_INGRESS : REDMAP_DIR_EGRESS;
    h.tgid = h.tid = 4242;
    h.fd = 10 + i / 2;
    h.protocol = REDMAP_PROTO_HTTP1;
    h.conn_start_ns = 1;
    h.enter_ns = h.exit_ns = 1'000'000 + static_cast<uint64_t>(i);
    h.byte_count = h.captured_len = static_cast<uint32_t>(payload.size());
    h.family = REDMAP_AF_INET;
    h.role = REDMAP_ROLE_SERVER;
    h.local_port = 8080;
    h.remote_port = static_cast<uint16_t>(40000 + i);
    h.local_addr[0] = h.remote_addr[0] = 127;
    h.local_addr[3] = h.remote_addr[3] = 1;
    std::memcpy(h.comm, "nginx", 5);
    const size_t size = (sizeof(h) + payload.size() + 7) & ~size_t{7};
    batch.resize((used + size) / 8);
    auto* at = reinterpret_cast<uint8_t*>(batch.data()) + used;
    std::memcpy(at, &h, sizeof(h));
    std::memcpy(at + sizeof(h), payload.data(), payload.size());
    used += size;
  }
  int64_t events = 0;
  for (auto _ : state) {
    const auto* p = reinterpret_cast<const uint8_t*>(batch.data());
    for (size_t off = 0; off < used;) {
      const size_t n = NextEventSize(p + off, used - off);
      DecodeRecord(p + off, n, &sink);
      off += n;
      ++events;
    }
    benchmark::DoNotOptimize(sink.bytes);
  }
  state.SetItemsProcessed(events);
}
BENCHMARK(BM_DecodeRecords);

// The exporter's whole userspace path per round, as it runs on nginx + wrk
// with capture.parse_once (the default): ring records merged from two
// rings (the server's events on one CPU, the client's on the other),
// decoded, tracked, parsed at the server end, and the client end's compact
// records matched to the server's spans; then RED, service graph and
// traces for both spans. Each iteration is one round of 128 requests over
// 16 keep-alive connections (wrk -c16; ~1 ms of the saturated workload),
// laid out as the kernel side lays them out: full events in batches of up
// to REDMAP_BATCH_EVENTS, one 64-byte redmap_peer_event per client request.
// Building the records is not timed; reading the rings and sleeping
// between rounds are not part of it. Figures are ns per request.
void BM_LiveRound(benchmark::State& state) {
  constexpr int kConns = 16;
  constexpr int kPerRound = 128;
  PipelineOptions options;
  options.traces_enabled = state.range(0) != 0;
  options.red.buckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                         0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  auto pipeline = *Pipeline::Create(options);
  const std::string request = "GET / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n";
  const std::string response =
      "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 23 Nov 2026 02:07:44 GMT\r\n"
      "Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n";
  const uint32_t server_tgid = static_cast<uint32_t>(getpid());
  const uint32_t client_tgid = static_cast<uint32_t>(getppid());
  struct Conn {
    uint32_t req_seq = 1000, resp_seq = 90000;
  };
  std::vector<Conn> conns(kConns);
  uint64_t now = 1'000'000'000;

  // A ring: records (batches) back to back, 8-byte aligned.
  struct Ring {
    std::vector<uint64_t> buf;
    size_t used = 0;                                 // bytes
    std::vector<std::pair<size_t, size_t>> records;  // offset, size
    size_t open = 0, open_events = 0;                // the batch being filled
    void Clear() {
      used = open = open_events = 0;
      records.clear();
    }
    uint8_t* Reserve(size_t n) {
      const size_t size = (n + 7) & ~size_t{7};
      if (open_events == REDMAP_BATCH_EVENTS || used - open + size > REDMAP_BATCH_BYTES) Close();
      if (buf.size() * 8 < used + size) buf.resize((used + size) / 8 + 4096);
      uint8_t* at = reinterpret_cast<uint8_t*>(buf.data()) + used;
      std::memset(at, 0, size);
      used += size;
      ++open_events;
      return at;
    }
    void Close() {
      if (open_events > 0) records.emplace_back(open, used - open);
      open = used;
      open_events = 0;
    }
  } server_ring, client_ring;

  auto data_event = [&](Ring& r, bool server, int c, uint32_t dir, const std::string& bytes,
                        uint32_t seq, uint64_t ts) {
    uint8_t* at = r.Reserve(sizeof(redmap_data_event) + bytes.size());
    redmap_data_event h{};
    h.type = REDMAP_EVENT_DATA;
    h.direction = dir;
    h.tgid = h.tid = server ? server_tgid : client_tgid;
    h.fd = 100 + c;
    h.protocol = REDMAP_PROTO_HTTP1;
    h.conn_start_ns = 1;
    h.enter_ns = h.exit_ns = ts;
    h.cgroup_id = 1;
    h.byte_count = h.captured_len = static_cast<uint32_t>(bytes.size());
    h.tcp_seq = seq;
    h.family = REDMAP_AF_INET;
    h.role = server ? REDMAP_ROLE_SERVER : REDMAP_ROLE_CLIENT;
    h.local_port = server ? 18080 : static_cast<uint16_t>(40000 + c);
    h.remote_port = server ? static_cast<uint16_t>(40000 + c) : 18080;
    h.flags = server ? REDMAP_EVENT_F_PEER_LOCAL : 0;
    h.local_addr[0] = h.remote_addr[0] = 127;
    h.local_addr[3] = h.remote_addr[3] = 1;
    std::memcpy(h.comm, server ? "nginx" : "wrk", server ? 5 : 3);
    std::memcpy(at, &h, sizeof(h));
    std::memcpy(at + sizeof(h), bytes.data(), bytes.size());
  };
  // One round: kPerRound requests, 8 us apart, each ring in time order as a
  // CPU writes it (client write, server read, server write, client read,
  // 2 us apart). The first round also has
  // each client end's first write as a full event (inference needs it).
  auto build = [&](bool first) {
    server_ring.Clear();
    client_ring.Clear();
    for (int i = 0; i < kPerRound; ++i) {
      const int c = i % kConns;
      Conn& k = conns[static_cast<size_t>(c)];
      const uint64_t t = now += 8'000;
      const bool full_write = first && i < kConns;
      if (full_write) {
        data_event(client_ring, false, c, REDMAP_DIR_EGRESS, request, k.req_seq, t);
      }
      data_event(server_ring, true, c, REDMAP_DIR_INGRESS, request, k.req_seq, t + 2'000);
      data_event(server_ring, true, c, REDMAP_DIR_EGRESS, response, k.resp_seq, t + 4'000);
      auto* p =
          reinterpret_cast<redmap_peer_event*>(client_ring.Reserve(sizeof(redmap_peer_event)));
      p->type = REDMAP_EVENT_PEER;
      p->tgid = client_tgid;
      p->fd = 100 + c;
      p->protocol = REDMAP_PROTO_HTTP1;
      p->conn_start_ns = 1;
      p->ts_ns = t + 6'000;
      if (!full_write) {
        p->send_ns = t;
        p->send_seq = k.req_seq;
        p->send_len = static_cast<uint32_t>(request.size());
        p->send_tid = client_tgid;
      }
      p->recv_tid = client_tgid;
      p->recv_seq = k.resp_seq;
      p->recv_len = static_cast<uint32_t>(response.size());
      k.req_seq += static_cast<uint32_t>(request.size());
      k.resp_seq += static_cast<uint32_t>(response.size());
    }
    server_ring.Close();
    client_ring.Close();
  };
  RecordMerger merger;
  auto deliver = [&] {
    const Ring* rings[] = {&server_ring, &client_ring};
    for (uint32_t r = 0; r < 2; ++r) {
      const auto* base = reinterpret_cast<const uint8_t*>(rings[r]->buf.data());
      for (const auto& [off, size] : rings[r]->records) merger.Add(r, base + off, size);
    }
    merger.Deliver(std::numeric_limits<uint64_t>::max(), pipeline.get());
    pipeline->Tick(now);
  };
  build(true);
  deliver();
  // cold: between rounds, 4 MiB written over (the core's L2 is 1 MiB here),
  // as nginx and wrk leave the caches when the exporter's round starts.
  const bool cold = state.range(1) != 0;
  std::vector<uint64_t> other(cold ? (4u << 20) / 8 : 0);
  int64_t requests = 0;
  for (auto _ : state) {
    state.PauseTiming();
    build(false);
    for (size_t j = 0; j < other.size(); j += 8) other[j] += j;
    state.ResumeTiming();
    deliver();
    requests += kPerRound;
  }
  state.SetItemsProcessed(requests);
  state.counters["spans"] = static_cast<double>(pipeline->self_metrics().spans(Protocol::kHttp1));
  state.counters["peer_spans"] = static_cast<double>(pipeline->self_metrics().peer_spans());
  state.counters["unmatched"] =
      static_cast<double>(pipeline->self_metrics().dropped(DropReason::kPeerUnmatched));
}
BENCHMARK(BM_LiveRound)->ArgsProduct({{0, 1}, {0, 1}})->ArgNames({"traces", "cold"});

}  // namespace
}  // namespace redmap

int main(int argc, char** argv) {
  // As redmap_exporter does: Debian's abseil has Mutex deadlock detection on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
