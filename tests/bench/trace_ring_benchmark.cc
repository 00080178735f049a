// Memory of the sampled-trace ring at its bound: the ring is filled with
// realistic traces (six spans, redacted heads of a few hundred bytes) until
// three times what fits has gone through it, and the process's RSS growth
// is compared with traces.ring_max_bytes. Target (issue 5): growth ≤ bound
// + 10%. Also the insert cost at the bound (every insert evicts).
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "aggregators/traces/trace.h"
#include "aggregators/traces/trace_ring.h"

namespace redmap::traces {
namespace {

size_t RssBytes() {
  long pages_total = 0, pages_resident = 0;
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
  fclose(f);
  return static_cast<size_t>(pages_resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Heads sized like a browser's or an SDK's request (400-700 bytes), the
// way the sampler stores them: redacted copies, one string per field.
Trace MakeTrace(uint64_t n) {
  Trace t;
  t.id = TraceId::FromKey(absl::StrCat("trace-", n));
  t.keep_reason = "ratio";
  static const char* kServices[] = {"curl", "nginx", "nginx", "app", "app", "backend"};
  for (int i = 0; i < 6; ++i) {
    TraceSpan s;
    s.span_id = n * 8 + i + 1;
    s.parent_id = i == 0 ? 0 : s.span_id - 1;
    s.start_ns = n * 1000000 + i * 1000;
    s.end_ns = s.start_ns + 500000 - i * 1000;
    s.service = kServices[i];
    s.process = kServices[i];
    s.method = "GET";
    s.target = absl::StrCat("/api/v1/orders/", n, "?page=2&token=[redacted]");
    s.route = "/api/v1/orders/{id}";
    s.status = 200;
    s.request_head = absl::StrCat(
        "GET ", s.target, " HTTP/1.1\r\nHost: frontend.shop.svc.cluster.local\r\n",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n",
        "Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\n",
        "Authorization: [redacted]\r\nCookie: [redacted]\r\n",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n",
        "X-Request-ID: ", n, "-", i, "\r\n\r\n");
    s.response_head = absl::StrCat(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ", 100 + n % 900,
        "\r\nDate: Mon, 23 Nov 2026 08:00:00 GMT\r\nServer: nginx\r\n\r\n");
    t.spans.push_back(std::move(s));
  }
  return t;
}

void BM_TraceRingMemoryAtBound(benchmark::State& state) {
  const size_t bound = static_cast<size_t>(state.range(0)) << 20;
  double growth = 0;
  uint64_t inserted = 0;
  for (auto _ : state) {
    malloc_trim(0);
    const size_t before = RssBytes();
    TraceRing ring(bound, 1'000'000);
    const size_t per_trace = MakeTrace(0).Bytes();
    const uint64_t total = 3 * bound / per_trace;
    for (uint64_t n = 0; n < total; ++n) ring.Insert(MakeTrace(n));
    growth = static_cast<double>(RssBytes() - before);
    inserted = total;
    benchmark::DoNotOptimize(ring.stats());
    if (ring.stats().evictions == 0) state.SkipWithError("the ring never reached its bound");
  }
  state.counters["bound_MiB"] = static_cast<double>(bound) / (1 << 20);
  state.counters["rss_growth_MiB"] = growth / (1 << 20);
  state.counters["growth_over_bound"] = growth / static_cast<double>(bound);
  state.counters["traces_inserted"] = static_cast<double>(inserted);
}
BENCHMARK(BM_TraceRingMemoryAtBound)->Arg(16)->Arg(64)->Iterations(1)->Unit(benchmark::kMillisecond);

// Insert cost once full: every insert evicts the oldest trace.
void BM_TraceRingInsertAtBound(benchmark::State& state) {
  TraceRing ring(4 << 20, 1'000'000);
  uint64_t n = 0;
  for (; ring.stats().evictions == 0; ++n) ring.Insert(MakeTrace(n));
  std::vector<Trace> batch;
  for (int i = 0; i < 1024; ++i) batch.push_back(MakeTrace(n + i));
  size_t i = 0;
  for (auto _ : state) {
    Trace t = batch[i++ % batch.size()];
    t.id = TraceId::FromKey(absl::StrCat("insert-", n++));
    ring.Insert(std::move(t));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TraceRingInsertAtBound);

}  // namespace
}  // namespace redmap::traces

BENCHMARK_MAIN();
