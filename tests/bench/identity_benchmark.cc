// Identity enrichment on the hot path, and the memory of the Kubernetes
// metadata cache, on a synthetic cluster of 10,000 pods (5 labels each, a
// ReplicaSet -> Deployment owner), 2,000 Services (ClusterIP, selector) and
// 2,000 EndpointSlices (5 addresses each).
//
//   BM_EnrichSpan          what one span costs the pipeline: one cached local
//                          lookup (the pipeline resolves the observing process
//                          once per span for RED, the service graph and traces)
//                          and one cached remote lookup (the peer), over 1,000
//                          live connections. Target <= 200 ns/span.
//   BM_ResolveUncached     a cache miss: IdentityResolver on the store (pod
//                          by UID, pod by IP), for scale.
//   BM_StoreMemory         RSS growth of building the store; counter
//                          store_MB. Target <= 50 MB.
#include <benchmark/benchmark.h>
#include <arpa/inet.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "aggregators/metadata/identity.h"
#include "aggregators/metadata/identity_cache.h"
#include "aggregators/metadata/k8s/k8s_store.h"

namespace redmap {
namespace {

constexpr int kPods = 10000;
constexpr int kServices = 2000;

IpAddress PodIp(int i) { return IpAddress::V4(htonl(0x0af40000u + static_cast<uint32_t>(i))); }
IpAddress ServiceIp(int i) {
  return IpAddress::V4(htonl(0x0a600000u + static_cast<uint32_t>(i)));
}

void Fill(k8s::Store* store) {
  std::vector<k8s::Pod> pods;
  pods.reserve(kPods);
  std::vector<k8s::OwnerObject> rss;
  for (int i = 0; i < kPods; ++i) {
    const int app = i % kServices;
    k8s::Pod p;
    p.meta.namespace_ = absl::StrCat("ns-", app % 50);
    p.meta.name = absl::StrCat("app-", app, "-7d4b9c6f8-", i);
    p.meta.uid = absl::StrCat("0a1b2c3d-4e5f-4a6b-8c7d-", 100000000000 + i);
    p.meta.labels = {{"app", absl::StrCat("app-", app)},
                     {"pod-template-hash", "7d4b9c6f8"},
                     {"app.kubernetes.io/name", absl::StrCat("app-", app)},
                     {"app.kubernetes.io/part-of", "shop"},
                     {"tier", "backend"}};
    p.meta.owners = {{"ReplicaSet", absl::StrCat("app-", app, "-7d4b9c6f8"), "rs", true}};
    p.node_name = absl::StrCat("node-", i % 100);
    p.phase = "Running";
    p.ips = {PodIp(i)};
    p.host_ip = IpAddress::V4(htonl(0xc0a80a00u + static_cast<uint32_t>(i % 100)));
    pods.push_back(std::move(p));
  }
  for (int a = 0; a < kServices; ++a) {
    k8s::OwnerObject rs;
    rs.meta.namespace_ = absl::StrCat("ns-", a % 50);
    rs.meta.name = absl::StrCat("app-", a, "-7d4b9c6f8");
    rs.meta.owners = {{"Deployment", absl::StrCat("app-", a), "d", true}};
    rss.push_back(std::move(rs));
  }
  std::vector<k8s::Service> services;
  std::vector<k8s::EndpointSlice> slices;
  for (int a = 0; a < kServices; ++a) {
    k8s::Service s;
    s.meta.namespace_ = absl::StrCat("ns-", a % 50);
    s.meta.name = absl::StrCat("app-", a);
    s.selector = {{"app", absl::StrCat("app-", a)}};
    s.cluster_ips = {ServiceIp(a)};
    s.type = "ClusterIP";
    services.push_back(s);
    k8s::EndpointSlice e;
    e.meta = s.meta;
    e.meta.name = absl::StrCat("app-", a, "-abcde");
    e.service_name = s.meta.name;
    for (int k = 0; k < kPods / kServices; ++k) e.addresses.push_back(PodIp(a + k * kServices));
    slices.push_back(std::move(e));
  }
  store->ReplaceOwners(k8s::Kind::kReplicaSets, std::move(rss));
  store->ReplaceServices(std::move(services));
  store->ReplaceEndpointSlices(std::move(slices));
  store->ReplacePods(std::move(pods));
}

size_t HeapBytes() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

void BM_StoreMemory(benchmark::State& state) {
  double mb = 0;
  for (auto _ : state) {
    malloc_trim(0);
    const size_t before = HeapBytes();
    auto store = std::make_unique<k8s::Store>();
    Fill(store.get());
    mb = static_cast<double>(HeapBytes() - before) / (1 << 20);
    benchmark::DoNotOptimize(store->counts());
  }
  state.counters["store_MB"] = mb;
  state.counters["pods"] = kPods;
  state.counters["services"] = kServices;
}
BENCHMARK(BM_StoreMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

struct Cluster {
  Cluster() {
    Fill(&store);
    IdentityOptions o;
    o.node_name = "node-0";
    resolver = std::make_unique<IdentityResolver>(o, &store, nullptr, nullptr, nullptr, nullptr);
  }
  k8s::Store store;
  std::unique_ptr<IdentityResolver> resolver;
};

Cluster& TheCluster() {
  static Cluster* c = new Cluster();
  return *c;
}

void BM_EnrichSpan(benchmark::State& state) {
  Cluster& c = TheCluster();
  IdentityCacheOptions o;
  o.node_name = "node-0";
  IdentityCache cache(o, c.resolver.get(), &c.store,
                      [](uint32_t, std::string_view comm, uint64_t) { return std::string(comm); });
  constexpr int kConns = 1000;
  uint64_t now = 1'000'000'000;
  size_t i = 0;
  for (auto _ : state) {
    const int conn = static_cast<int>(i++ % kConns);
    // Local: a process per connection (tgid), its container's cgroup id.
    IdentityPtr local = cache.Local(10000 + conn, 5000 + conn % 100, "app", now);
    IdentityPtr peer = cache.Remote(PodIp(conn * 7 % kPods), now);
    benchmark::DoNotOptimize(local);
    benchmark::DoNotOptimize(peer);
    now += 1000;  // 1 us per span: entries stay fresh
  }
  state.counters["misses"] = static_cast<double>(cache.misses());
}
BENCHMARK(BM_EnrichSpan);

void BM_ResolveUncached(benchmark::State& state) {
  Cluster& c = TheCluster();
  size_t i = 0;
  for (auto _ : state) {
    Identity id = c.resolver->ResolveRemote(PodIp(static_cast<int>(i++ % kPods)), 1);
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_ResolveUncached);

}  // namespace
}  // namespace redmap

BENCHMARK_MAIN();
