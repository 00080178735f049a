// Trace assembly (TCP seq, thread, header links), tail sampling, the ring's
// bounds and the exemplars, on hand-made spans whose timings follow what the
// live agent sees for curl -> nginx -> app -> backend on one node.
#include "aggregators/traces/trace_sampler.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "aggregators/red/route_normalizer.h"
#include "aggregators/traces/trace_context.h"
#include "aggregators/traces/trace_json.h"

namespace redmap::traces {
namespace {

constexpr uint64_t kMs = 1000 * 1000;

struct SpanSpec {
  Role side;
  uint32_t tgid;
  uint32_t tid;
  uint64_t start_ms;
  uint64_t end_ms;
  uint16_t client_port;
  uint16_t server_port;
  uint32_t seq;
  std::string target = "/x";
  int status = 200;
  std::string extra_headers;
};

// Owns what a Span's views point to while OnSpan runs.
void Feed(TraceSampler* s, const SpanSpec& spec, const std::string& service = "") {
  Span span;
  span.protocol = Protocol::kHttp1;
  span.side = spec.side;
  span.start_ns = spec.start_ms * kMs;
  span.end_ns = spec.end_ms * kMs;
  span.conn.tgid = spec.tgid;
  span.tid = spec.tid;
  std::string comm = service.empty() ? "svc" + std::to_string(spec.tgid) : service;
  span.process_name = comm;
  span.client.addr = IpAddress::V4(0x0100007f);
  span.client.port = spec.client_port;
  span.server.addr = IpAddress::V4(0x0100007f);
  span.server.port = spec.server_port;
  span.request_tcp_seq = spec.seq;
  span.has_tcp_seq = true;
  span.http.method = "GET";
  span.http.target = spec.target;
  span.http.status = spec.status;
  std::string req = "GET " + spec.target + " HTTP/1.1\r\nHost: h\r\n" + spec.extra_headers + "\r\n";
  std::string resp = "HTTP/1.1 " + std::to_string(spec.status) + " X\r\nContent-Length: 0\r\n\r\n";
  span.request_head = req;
  span.response_head = resp;
  s->OnSpan(span);
}

TraceOptions Options() {
  TraceOptions o;
  o.sample_ratio = 1;
  o.assembly_wait_ns = 100 * kMs;
  o.exemplar_buckets = {0.001, 0.01, 0.1, 1};
  o.random_seed = 42;
  o.max_traces_per_second = 1000;
  return o;
}

TraceSampler Sampler(const TraceOptions& o = Options()) {
  return TraceSampler(o, [](const Span& s, std::string* out) { out->append(s.process_name); });
}

const TraceSpan* Find(const Trace& t, const std::string& service, Role side) {
  for (const TraceSpan& s : t.spans) {
    if (s.service == service && s.side == side) return &s;
  }
  return nullptr;
}

double Value(const TraceSampler& s, const std::string& name,
             const std::map<std::string, std::string>& labels = {}) {
  for (const auto& f : s.Collect()) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const auto& l : m.label) found = found || (l.name == k && l.value == v);
        match = match && found;
      }
      if (match) return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  return -1;
}

TEST(TraceSamplerTest, ThreeTierChainAssembles) {
  TraceSampler s(Options(),
                 [](const Span& sp, std::string* out) { out->append(sp.process_name); });
  const std::string tp =
      "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n";
  // Arrival order is completion order: innermost first.
  Feed(&s, {Role::kServer, 30, 31, 14, 15, 42000, 9000, 500}, "backend");  // backend
  Feed(&s, {Role::kClient, 20, 22, 13, 16, 42000, 9000, 500}, "app");      // app -> backend
  Feed(&s, {Role::kServer, 20, 22, 12, 17, 41000, 8000, 300, "/x", 200, tp}, "app");
  Feed(&s, {Role::kClient, 10, 10, 11, 18, 41000, 8000, 300, "/x", 200, tp}, "nginx");
  Feed(&s, {Role::kServer, 10, 10, 10, 19, 40000, 80, 100, "/x", 200, tp}, "nginx");
  Feed(&s, {Role::kClient, 5, 5, 9, 20, 40000, 80, 100, "/x", 200, tp}, "curl");
  // An unrelated call on the app's other thread, during the request.
  Feed(&s, {Role::kClient, 20, 23, 13, 14, 43000, 9000, 900}, "app");
  EXPECT_EQ(s.pending_spans(), 7u);
  s.Tick(50 * kMs);  // not yet: 100 ms after the last span
  EXPECT_EQ(s.ring().stats().traces, 0u);
  s.Tick(200 * kMs);
  EXPECT_EQ(s.pending_spans(), 0u);

  auto t = s.ring().Find(*TraceId::FromHex("0af7651916cd43dd8448eb211c80319c"));
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->spans.size(), 6u);
  const TraceSpan* curl = Find(*t, "curl", Role::kClient);
  const TraceSpan* ngs = Find(*t, "nginx", Role::kServer);
  const TraceSpan* ngc = Find(*t, "nginx", Role::kClient);
  const TraceSpan* apps = Find(*t, "app", Role::kServer);
  const TraceSpan* appc = Find(*t, "app", Role::kClient);
  const TraceSpan* back = Find(*t, "backend", Role::kServer);
  ASSERT_TRUE(curl && ngs && ngc && apps && appc && back);
  EXPECT_EQ(&t->spans[0], curl);
  EXPECT_EQ(curl->parent_id, 0u);
  EXPECT_EQ(ngs->parent_id, curl->span_id);
  EXPECT_EQ(ngs->link, Link::kTcpSeq);
  EXPECT_EQ(ngc->parent_id, ngs->span_id);
  EXPECT_EQ(ngc->link, Link::kThread);
  EXPECT_EQ(apps->parent_id, ngc->span_id);
  EXPECT_EQ(apps->link, Link::kTcpSeq);
  EXPECT_EQ(appc->parent_id, apps->span_id);
  EXPECT_EQ(appc->link, Link::kThread);
  EXPECT_EQ(back->parent_id, appc->span_id);
  EXPECT_EQ(t->keep_reason, "ratio");
  ASSERT_EQ(t->warnings.size(), 1u);
  EXPECT_NE(t->warnings[0].find("root is a client span"), std::string::npos);
  EXPECT_TRUE(t->partial);
  // The stray call is a trace of its own.
  EXPECT_EQ(s.ring().stats().traces, 2u);
  EXPECT_EQ(Value(s, "redmap_trace_spans_linked_total", {{"link", "tcp_seq"}}), 3);
  EXPECT_EQ(Value(s, "redmap_trace_spans_linked_total", {{"link", "thread"}}), 2);
  EXPECT_EQ(Value(s, "redmap_traces_assembled_total"), 2);
}

TEST(TraceSamplerTest, HeadersLinkAcrossThreadsAndWinOverThreads) {
  auto s = Sampler();
  const std::string a = "traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1111111111111111-01\r\n";
  const std::string b = "traceparent: 00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-2222222222222222-01\r\n";
  // A worker thread (7) calls out for request a, served on thread 5.
  Feed(&s, {Role::kClient, 2, 7, 12, 13, 41000, 8000, 1, "/w", 200, a});
  // Same thread as request a, but it carries trace b: another request.
  Feed(&s, {Role::kClient, 2, 5, 12, 13, 41001, 8000, 2, "/v", 200, b});
  Feed(&s, {Role::kServer, 2, 5, 10, 20, 40000, 80, 3, "/x", 200, a});
  s.Flush();
  auto ta = s.ring().Find(*TraceId::FromHex("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
  ASSERT_NE(ta, nullptr);
  ASSERT_EQ(ta->spans.size(), 2u);
  EXPECT_EQ(ta->spans[1].link, Link::kHeader);
  EXPECT_EQ(ta->spans[1].tid, 7u);
  auto tb = s.ring().Find(*TraceId::FromHex("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->spans.size(), 1u);
}

TEST(TraceSamplerTest, RequestIdGivesTheTraceId) {
  auto s = Sampler();
  Feed(&s, {Role::kServer, 2, 5, 10, 20, 40000, 80, 3, "/x", 200, "X-Request-ID: abc-1\r\n"});
  s.Flush();
  EXPECT_NE(s.ring().Find(TraceId::FromKey("abc-1")), nullptr);
}

TEST(TraceSamplerTest, TailSamplingRules) {
  TraceOptions o = Options();
  o.sample_ratio = 0;
  o.slow_threshold_ns = 500 * kMs;
  auto s = Sampler(o);
  uint16_t port = 30000;
  uint64_t t = 1000;
  auto one = [&](uint64_t dur_ms, int status, const std::string& target) {
    Feed(&s, {Role::kServer, 2, 5, t, t + dur_ms, port++, 80, port, target, status});
    t += dur_ms + 1;
  };
  one(1, 200, "/fast");   // dropped
  one(1, 503, "/boom");   // error
  one(600, 200, "/big");  // slow
  // /route: 200 observations at 2 ms, then one at 9 ms (over its p99).
  for (int i = 0; i < 200; ++i) one(2, 200, "/route");
  one(9, 200, "/route");
  s.Flush();
  EXPECT_EQ(Value(s, "redmap_traces_sampled_total", {{"reason", "error"}}), 1);
  EXPECT_EQ(Value(s, "redmap_traces_sampled_total", {{"reason", "slow"}}), 1);
  EXPECT_EQ(Value(s, "redmap_traces_sampled_total", {{"reason", "route_p99"}}), 1);
  EXPECT_EQ(Value(s, "redmap_traces_sampled_total", {{"reason", "ratio"}}), 0);
  EXPECT_EQ(Value(s, "redmap_traces_assembled_total"), 204);
  std::map<std::string, std::string> kept;
  for (const auto& tr : s.ring().Snapshot()) kept[tr->spans[0].route] = tr->keep_reason;
  EXPECT_EQ(kept, (std::map<std::string, std::string>{
                      {"/boom", "error"}, {"/big", "slow"}, {"/route", "route_p99"}}));
}

// A 200 from process 2's server on port 80 for `target`, from a client port.
Span RouteSpan(uint64_t start_ns, uint64_t end_ns, uint16_t client_port, const std::string& target) {
  Span span;
  span.protocol = Protocol::kHttp1;
  span.side = Role::kServer;
  span.start_ns = start_ns;
  span.end_ns = end_ns;
  span.conn.tgid = 2;
  span.tid = 5;
  span.process_name = "svc";
  span.client.port = client_port;
  span.server.port = 80;
  span.http.method = "GET";
  span.http.target = target;
  span.http.status = 200;
  return span;
}

// The route's p99 follows its distribution up and down (it is kept up to
// date per observation, not scanned per decision). Buckets are 10 us x
// 1.25^i: 1 ms is under the 1.08 ms edge, 3 ms under 3.31 ms, 4.5 and 5 ms
// both under 5.17 ms.
TEST(TraceSamplerTest, RouteP99FollowsTheDistribution) {
  TraceOptions o = Options();
  o.sample_ratio = 0;
  auto s = Sampler(o);
  uint16_t port = 20000;
  uint64_t t = 1000;
  auto phase = [&](int count, uint64_t dur_us) {
    for (int i = 0; i < count; ++i) {
      s.OnSpan(RouteSpan(t * kMs, t * kMs + dur_us * 1000, port++, "/r"));
      t += dur_us / 1000 + 1;
    }
    t += 200;
    s.Tick(t * kMs);  // decides everything so far
  };
  auto kept = [&] { return Value(s, "redmap_traces_sampled_total", {{"reason", "route_p99"}}); };
  phase(150, 1000);
  EXPECT_EQ(kept(), 0);
  phase(1, 3000);  // p99 in the 1 ms bucket
  EXPECT_EQ(kept(), 1);
  phase(100, 5000);  // p99 moves up to the 5 ms bucket
  EXPECT_EQ(kept(), 1);
  phase(1, 4500);  // same bucket as 5 ms: not slower than the p99
  EXPECT_EQ(kept(), 1);
  phase(10000, 1000);  // p99 moves down to the 3 ms bucket
  EXPECT_EQ(kept(), 1);
  phase(1, 4500);  // now over it
  EXPECT_EQ(kept(), 2);
  EXPECT_EQ(Value(s, "redmap_traces_assembled_total"), 10253);
}

// A duration equal to a bucket's upper edge is in that bucket, one ns more
// is in the next: checked at edges across the range (the bucket search
// starts from the duration's power of two).
TEST(TraceSamplerTest, RouteP99BucketEdgesAreInclusive) {
  TraceOptions o = Options();
  o.sample_ratio = 0;
  auto s = Sampler(o);
  uint16_t port = 20000;
  uint64_t t_ns = 1000 * kMs;
  auto feed = [&](const std::string& route, uint64_t dur_ns) {
    s.OnSpan(RouteSpan(t_ns, t_ns + dur_ns, port++, route));
    t_ns += dur_ns + kMs;
  };
  auto decide = [&] {
    t_ns += 2000 * kMs;
    s.Tick(t_ns);
  };
  auto kept = [&] { return Value(s, "redmap_traces_sampled_total", {{"reason", "route_p99"}}); };
  double edge = 10000;
  int expected = 0;
  for (int i = 0; i < 40; ++i, edge *= 1.25) {
    if (i % 3 != 0) continue;
    const uint64_t e = static_cast<uint64_t>(edge);
    const std::string route = "/edge" + std::to_string(i);
    for (int k = 0; k < 200; ++k) feed(route, e);
    feed(route, e);  // in the p99 bucket: not slower than its edge
    decide();
    EXPECT_EQ(kept(), expected) << "edge " << i << " (" << e << " ns)";
    feed(route, e + 1);  // the next bucket
    decide();
    EXPECT_EQ(kept(), ++expected) << "edge " << i << " (" << e << " ns) + 1";
  }
}

TEST(TraceSamplerTest, RateLimitAppliesToEveryReason) {
  TraceOptions o = Options();
  o.max_traces_per_second = 2;
  auto s = Sampler(o);
  for (uint16_t i = 0; i < 5; ++i) {
    Feed(&s, {Role::kServer, 2, 5, 10, 11, static_cast<uint16_t>(30000 + i), 80, i, "/e", 500});
  }
  s.Flush();
  EXPECT_EQ(s.ring().stats().traces, 2u);
  EXPECT_EQ(Value(s, "redmap_trace_ring_rejections_total", {{"reason", "rate_limited"}}), 3);
}

TEST(TraceSamplerTest, PendingTableIsBoundedAndCountsForcedDecisions) {
  TraceOptions o = Options();
  o.max_pending_spans = 4;
  auto s = Sampler(o);
  for (uint16_t i = 0; i < 10; ++i) {
    const uint64_t at = 10u + i;
    Feed(&s, {Role::kServer, 2, 5, at, at + 1, static_cast<uint16_t>(30000 + i), 80, i});
    EXPECT_LE(s.pending_spans(), 4u);
  }
  EXPECT_EQ(Value(s, "redmap_trace_pending_forced_total"), 6);
  EXPECT_EQ(Value(s, "redmap_trace_pending_spans_limit"), 4);
  bool warned = false;
  for (const auto& t : s.ring().Snapshot()) {
    for (const auto& w : t->warnings) warned = warned || w.find("max_pending_spans") != std::string::npos;
  }
  EXPECT_TRUE(warned);
}

// A tree decided early leaves its other spans' entries in the due ring
// until they reach its head. A client span (the root) arriving before its
// server half, on a full table, makes the ring hold more entries than the
// table has slots: the stale ones must go, not wrap over live ones (or
// past the ring). Every tree is still decided whole.
TEST(TraceSamplerTest, DueRingSurvivesStaleEntriesOfForcedTrees) {
  TraceOptions o = Options();
  o.max_pending_spans = 4;
  o.max_traces_per_second = 1e6;
  auto s = Sampler(o);
  constexpr int kTrees = 500;
  for (int i = 0; i < kTrees; ++i) {
    const uint64_t at = 10u + 10u * static_cast<uint64_t>(i);
    const uint16_t port = static_cast<uint16_t>(30000 + i);
    const uint32_t seq = 1000u + static_cast<uint32_t>(i);
    Feed(&s, {Role::kClient, 5, 5, at, at + 5, port, 80, seq, "/t" + std::to_string(i)});
    Feed(&s, {Role::kServer, 2, 7, at + 1, at + 4, port, 80, seq, "/t" + std::to_string(i)});
    ASSERT_LE(s.pending_spans(), 4u);
  }
  s.Flush();
  EXPECT_EQ(Value(s, "redmap_traces_assembled_total"), kTrees);
  EXPECT_EQ(Value(s, "redmap_trace_spans_linked_total", {{"link", "tcp_seq"}}), kTrees);
  auto all = s.ring().Snapshot();
  ASSERT_EQ(all.size(), static_cast<size_t>(kTrees));
  for (const auto& t : all) {
    ASSERT_EQ(t->spans.size(), 2u);
    EXPECT_EQ(t->spans[0].side, Role::kClient);
    EXPECT_EQ(t->spans[1].parent_id, t->spans[0].span_id);
  }
}

// The same on a saturated table, at volume: compacting the due ring walks
// all of it, so it must stay rare (amortized O(1) per span), never once per
// span. Counted, not timed.
TEST(TraceSamplerTest, DueRingCompactionsAreRareOnASaturatedTable) {
  TraceOptions o = Options();
  o.max_pending_spans = 64;
  o.max_traces_per_second = 1e6;
  o.max_spans_per_second = 0;  // 20,000 trees in 20 ms
  auto s = Sampler(o);
  constexpr int kTrees = 20000;
  for (int i = 0; i < kTrees; ++i) {
    const uint64_t at = 10u + static_cast<uint64_t>(i) / 1000;  // ms: within the wait
    const uint16_t port = static_cast<uint16_t>(1024 + i % 60000);
    const uint32_t seq = 1000u + static_cast<uint32_t>(i);
    // A load generator's request and the server's span of it, linked by
    // TCP seq, in the order they complete: the server's first.
    Feed(&s, {Role::kServer, 2, 7, at + 1, at + 4, port, 80, seq, "/t"});
    Feed(&s, {Role::kClient, 5, 5, at, at + 5, port, 80, seq, "/t"});
  }
  s.Flush();
  EXPECT_EQ(Value(s, "redmap_traces_assembled_total"), kTrees);
  EXPECT_GT(Value(s, "redmap_trace_pending_forced_total"), kTrees / 2)
      << "the table was not saturated: the test tests nothing";
  EXPECT_LE(s.due_compactions(), 2u * kTrees / o.max_pending_spans + 2);
}

TEST(TraceSamplerTest, SpansOverTheBudgetOfATenthOfASecondAreCountedNotAssembled) {
  TraceOptions o = Options();
  o.max_spans_per_second = 100;  // 10 per window
  o.sample_ratio = 0;
  auto s = Sampler(o);
  // 30 unrelated spans in each of two windows (0-99 ms, 100-199 ms).
  for (uint64_t window : {0, 100}) {
    for (uint16_t i = 0; i < 30; ++i) {
      const uint64_t at = window + 10 + i;
      Feed(&s, {Role::kServer, 2, 7, at, at + 1, static_cast<uint16_t>(2000 + window + i), 80,
                static_cast<uint32_t>(window * 100 + i)});
    }
  }
  s.Flush();
  EXPECT_EQ(Value(s, "redmap_traces_assembled_total"), 20);
  EXPECT_EQ(Value(s, "redmap_trace_spans_skipped_total"), 40);
  EXPECT_EQ(Value(s, "redmap_trace_spans_assembled_total"), 20);
  EXPECT_EQ(Value(s, "redmap_trace_spans_per_second_limit"), 100);
}

TEST(TraceSamplerTest, ErrorsAndSlowSpansAreAssembledOverTheBudget) {
  TraceOptions o = Options();
  o.max_spans_per_second = 100;  // 10 per window
  o.sample_ratio = 0;
  o.slow_threshold_ns = 50 * kMs;
  auto s = Sampler(o);
  for (uint64_t i = 0; i < 20; ++i) {  // the budget is spent on the first 10
    Feed(&s, {Role::kServer, 2, 7, 10 + i, 11 + i, static_cast<uint16_t>(2000 + i), 80,
              static_cast<uint32_t>(i)});
  }
  for (uint64_t i = 0; i < 3; ++i) {
    Feed(&s, {Role::kServer, 2, 7, 40 + i, 41 + i, static_cast<uint16_t>(3000 + i), 80,
              static_cast<uint32_t>(100 + i), "/boom", 503});
  }
  for (uint64_t i = 0; i < 2; ++i) {
    Feed(&s, {Role::kServer, 2, 7, 20 + i, 90 + i, static_cast<uint16_t>(4000 + i), 80,
              static_cast<uint32_t>(200 + i), "/slow"});
  }
  // Skipped after every kept span began: each may lack it, and says so.
  Feed(&s, {Role::kServer, 2, 7, 48, 50, 5000, 80, 300});
  s.Flush();
  EXPECT_EQ(Value(s, "redmap_traces_assembled_total"), 15);
  EXPECT_EQ(Value(s, "redmap_trace_spans_skipped_total"), 11);
  std::map<std::string, int> kept;
  for (const auto& t : s.ring().Snapshot()) {
    ++kept[t->spans.at(0).target];
    EXPECT_TRUE(t->partial) << t->spans.at(0).target;
    bool says_why = false;
    for (const std::string& w : t->warnings) {
      says_why |= w.find("traces.max_spans_per_second") != std::string::npos;
    }
    EXPECT_TRUE(says_why) << t->spans.at(0).target;
  }
  EXPECT_EQ(kept["/boom"], 3);
  EXPECT_EQ(kept["/slow"], 2);
}

TEST(TraceSamplerTest, SecretsAreRedactedBeforeAnythingIsKept) {
  TraceOptions o = Options();
  o.redact_headers = {"X-Secret"};
  o.redact_query_params = {"token"};
  auto s = Sampler(o);
  Feed(&s, {Role::kServer, 2, 5, 10, 11, 30000, 80, 1, "/a?token=qs3cret", 200,
            "Authorization: Bearer hs3cret\r\nCookie: cs3cret\r\nX-Secret: xs3cret\r\n"});
  s.Flush();
  auto all = s.ring().Snapshot();
  ASSERT_EQ(all.size(), 1u);
  const std::string json = Dump(TraceDetailJson(*all[0])) + Dump(JaegerTraceJson(*all[0]));
  for (const char* secret : {"qs3cret", "hs3cret", "cs3cret", "xs3cret"}) {
    EXPECT_EQ(json.find(secret), std::string::npos) << secret;
  }
  EXPECT_NE(json.find("/a?token=[redacted]"), std::string::npos);
}

// Redaction happens when a trace is kept; a head that fits the snippet is
// held raw until then, a longer one is redacted on arrival. Either way the
// kept snippet is exactly the redacted head cut to the snippet size.
TEST(TraceSamplerTest, KeptSnippetsAreRedactedWhetherTheHeadFitsTheSnippetOrNot) {
  TraceOptions o = Options();
  o.payload_snippet_bytes = 96;
  o.redact_query_params = {"token"};
  auto s = Sampler(o);
  const std::string fits = "Cookie: cs3cret\r\n";  // whole head: 59 bytes
  const std::string longer = "Authorization: Bearer hs3cret\r\nX-Pad: " + std::string(80, 'p') +
                             "\r\nCookie: cs3cret\r\n";
  Feed(&s, {Role::kServer, 2, 5, 10, 11, 30000, 80, 1, "/a?token=qs3cret", 200, fits});
  Feed(&s, {Role::kServer, 3, 6, 10, 11, 30001, 81, 1, "/b?token=qs3cret", 200, longer});
  s.Flush();
  auto all = s.ring().Snapshot();
  ASSERT_EQ(all.size(), 2u);
  const Redactor redactor({}, {"token"});
  for (const auto& t : all) {
    ASSERT_EQ(t->spans.size(), 1u);
    const TraceSpan& span = t->spans[0];
    const bool is_a = span.target.rfind("/a", 0) == 0;
    const std::string raw = "GET " + std::string(is_a ? "/a" : "/b") +
                            "?token=qs3cret HTTP/1.1\r\nHost: h\r\n" + (is_a ? fits : longer) +
                            "\r\n";
    EXPECT_EQ(raw.size() <= o.payload_snippet_bytes, is_a);
    std::string want;
    redactor.RedactHead(raw, o.payload_snippet_bytes, &want);
    EXPECT_EQ(span.request_head, want);
    EXPECT_EQ(span.target, std::string(is_a ? "/a" : "/b") + "?token=[redacted]");
    for (const char* secret : {"qs3cret", "hs3cret", "cs3cret"}) {
      EXPECT_EQ(span.request_head.find(secret), std::string::npos) << secret;
    }
  }
}

// Heads are copied only for spans that would keep their tree on their own
// as they arrive; the other spans of a kept tree come without, and the
// trace says how many.
TEST(TraceSamplerTest, HeadsAreCopiedOnlyForSpansThatWouldKeepTheirTree) {
  TraceOptions o = Options();
  o.sample_ratio = 0;
  o.slow_threshold_ns = 500 * kMs;
  auto s = Sampler(o);
  // nginx serves /x (200, fast) and calls upstream from the same thread,
  // which answers 503: the tree is kept for the error.
  Feed(&s, {Role::kClient, 10, 10, 11, 12, 41000, 8000, 300, "/up", 503}, "nginx");
  Feed(&s, {Role::kServer, 10, 10, 10, 19, 40000, 80, 100, "/x", 200}, "nginx");
  // A slow request on its own.
  Feed(&s, {Role::kServer, 20, 20, 100, 700, 40001, 81, 100, "/slow", 200}, "app");
  s.Flush();
  auto all = s.ring().Snapshot();
  ASSERT_EQ(all.size(), 2u);
  for (const auto& t : all) {
    if (t->keep_reason == "error") {
      ASSERT_EQ(t->spans.size(), 2u);
      EXPECT_EQ(t->spans[0].target, "/x");
      EXPECT_EQ(t->spans[0].request_head, "");
      EXPECT_EQ(t->spans[0].response_head, "");
      EXPECT_EQ(t->spans[1].target, "/up");
      EXPECT_EQ(t->spans[1].link, Link::kThread);
      EXPECT_EQ(t->spans[1].request_head.rfind("GET /up HTTP/1.1\r\n", 0), 0u);
      EXPECT_EQ(t->spans[1].response_head.rfind("HTTP/1.1 503", 0), 0u);
      bool warned = false;
      for (const auto& w : t->warnings) {
        warned = warned || w.find("no request/response heads for 1 of its 2 spans") == 0;
      }
      EXPECT_TRUE(warned);
    } else {
      EXPECT_EQ(t->keep_reason, "slow");
      ASSERT_EQ(t->spans.size(), 1u);
      EXPECT_EQ(t->spans[0].request_head.rfind("GET /slow HTTP/1.1\r\n", 0), 0u);
      for (const auto& w : t->warnings) EXPECT_EQ(w.find("no request/response heads"), std::string::npos);
    }
  }
}

// Routes go through a cache keyed by path; what it returns must be what
// NormalizeRoute says for the whole target, hit or miss.
TEST(TraceSamplerTest, RoutesMatchNormalizeRouteThroughTheCache) {
  auto s = Sampler();
  const std::vector<std::string> targets = {
      "/users/1?x=1", "/users/2",  "/users/1#f", "/users/1?x=2", "*", "*?x",
      "/" + std::string(300, 'a'), "/" + std::string(300, 'a') + "?q", "/users/1"};
  uint16_t port = 30000;
  for (const std::string& t : targets) {
    Feed(&s, {Role::kServer, 2, 5, 10, 11, port++, 80, 1, t});
  }
  s.Flush();
  auto all = s.ring().Snapshot();
  ASSERT_EQ(all.size(), targets.size());
  for (const auto& t : all) {
    ASSERT_EQ(t->spans.size(), 1u);
    EXPECT_EQ(t->spans[0].route, NormalizeRoute(t->spans[0].target)) << t->spans[0].target;
  }
}

// The assembly table keeps a span's strings packed in a buffer that each
// new span of that slot reuses: spans of every length, through a table of
// three, must come out exactly as they went in (no bytes of the slot's
// previous span, no field cut or shifted).
TEST(TraceSamplerTest, KeptSpansComeOutAsTheyWentInThroughReusedTableSlots) {
  TraceOptions o = Options();
  o.max_pending_spans = 3;
  o.payload_snippet_bytes = 4096;
  auto s = Sampler(o);
  struct Want {
    std::string service, target, request_head, response_head, request_id;
    uint64_t cgroup_id, request_bytes, response_bytes;
    uint16_t client_port;
    uint32_t seq;
  };
  std::map<std::string, Want> want;  // by request id
  for (int i = 0; i < 40; ++i) {
    Want w;
    w.service = (i % 3 == 0 ? std::string(40 + i, 's') : "svc") + std::to_string(i);
    w.target = "/t" + std::to_string(i) + "/" + std::string(static_cast<size_t>(i * 37 % 300), 'p');
    w.request_id = "rid-" + std::to_string(i) + std::string(static_cast<size_t>(i % 5) * 20, 'r');
    w.request_head = "GET " + w.target + " HTTP/1.1\r\nHost: h\r\nX-Request-ID: " + w.request_id +
                     "\r\nX-Pad: " + std::string(static_cast<size_t>(i * 53 % 700), 'q') +
                     "\r\n\r\n";
    w.response_head = "HTTP/1.1 200 OK\r\nX-Len: " + std::string(static_cast<size_t>(i % 4) * 90, 'z') +
                      "\r\n\r\n";
    w.cgroup_id = 1000u + static_cast<uint64_t>(i);
    w.request_bytes = 10u * static_cast<uint64_t>(i);
    w.response_bytes = 7u * static_cast<uint64_t>(i);
    w.client_port = static_cast<uint16_t>(30000 + i);
    w.seq = 77u * static_cast<uint32_t>(i);
    Span span;
    span.protocol = Protocol::kHttp1;
    span.side = Role::kServer;
    span.start_ns = (10 + static_cast<uint64_t>(i)) * kMs;
    span.end_ns = span.start_ns + kMs;
    span.conn.tgid = 2;
    span.tid = 5;
    span.cgroup_id = w.cgroup_id;
    span.process_name = w.service;
    span.client.addr = IpAddress::V4(0x0100007f);
    span.client.port = w.client_port;
    span.server.addr = IpAddress::V4(0x0100007f);
    span.server.port = 80;
    span.request_tcp_seq = w.seq;
    span.has_tcp_seq = true;
    span.http.method = i % 2 == 0 ? "GET" : "DELETE";
    span.http.target = w.target;
    span.http.status = 200;
    span.http.request_bytes = w.request_bytes;
    span.http.response_bytes = w.response_bytes;
    span.request_head = w.request_head;
    span.response_head = w.response_head;
    s.OnSpan(span);
    EXPECT_LE(s.pending_spans(), 3u);
    want[w.request_id] = w;
  }
  s.Flush();
  auto all = s.ring().Snapshot();
  ASSERT_EQ(all.size(), 40u);
  for (const auto& t : all) {
    ASSERT_EQ(t->spans.size(), 1u);
    const TraceSpan& sp = t->spans[0];
    auto it = want.find(sp.request_id);
    ASSERT_NE(it, want.end()) << sp.request_id;
    const Want& w = it->second;
    EXPECT_EQ(t->id, TraceId::FromKey(w.request_id));
    EXPECT_EQ(sp.service, w.service);
    EXPECT_EQ(sp.process, w.service);
    EXPECT_EQ(sp.method, w.cgroup_id % 2 == 0 ? "GET" : "DELETE");
    EXPECT_EQ(sp.target, w.target);
    EXPECT_EQ(sp.route, NormalizeRoute(w.target));
    EXPECT_EQ(sp.request_head, w.request_head);
    EXPECT_EQ(sp.response_head, w.response_head);
    EXPECT_EQ(sp.cgroup_id, w.cgroup_id);
    EXPECT_EQ(sp.request_bytes, w.request_bytes);
    EXPECT_EQ(sp.response_bytes, w.response_bytes);
    EXPECT_EQ(sp.client.port, w.client_port);
    EXPECT_EQ(sp.tcp_seq, w.seq);
    EXPECT_EQ(sp.propagation, Propagation::kRequestId);
    EXPECT_NE(sp.span_id, 0u);
    EXPECT_EQ(sp.parent_id, 0u);
  }
  EXPECT_EQ(Value(s, "redmap_trace_pending_forced_total"), 37);
}

TEST(TraceSamplerTest, ExemplarsPointAtKeptTraces) {
  auto s = Sampler();
  Feed(&s, {Role::kServer, 2, 5, 10, 15, 30000, 80, 1, "/users/42", 200,
            "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"},
       "api");
  s.Flush();
  auto ex = s.exemplars().Lookup("http_server_request_duration_seconds",
                                 {"api", "GET", "200", "/users/{id}"});
  ASSERT_EQ(ex.size(), 5u);  // 4 bounds + Inf
  EXPECT_TRUE(ex[0].trace_id.empty());
  EXPECT_EQ(ex[1].trace_id, "0af7651916cd43dd8448eb211c80319c");  // 5 ms <= 0.01
  EXPECT_DOUBLE_EQ(ex[1].value, 0.005);
}

TEST(TraceSamplerTest, LateSpansExtendTheWait) {
  auto s = Sampler();
  Feed(&s, {Role::kServer, 3, 9, 10, 20, 42000, 9000, 5});
  s.Tick(100 * kMs);  // 80 ms after: still waiting (100 ms wait)
  Feed(&s, {Role::kClient, 2, 5, 9, 110, 42000, 9000, 5});  // its caller, much later
  s.Tick(150 * kMs);
  EXPECT_EQ(s.ring().stats().traces, 0u);
  s.Tick(211 * kMs);
  auto all = s.ring().Snapshot();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]->spans.size(), 2u);
}

TEST(TraceRingTest, BoundsEvictionAndMerge) {
  TraceRing ring(1 << 20, 3);
  auto make = [](uint64_t id, size_t payload) {
    Trace t;
    t.id = TraceId{0, id};
    TraceSpan s;
    s.span_id = id;
    s.request_head.assign(payload, 'x');
    t.spans.push_back(s);
    return t;
  };
  for (uint64_t i = 1; i <= 5; ++i) ring.Insert(make(i, 10));
  auto st = ring.stats();
  EXPECT_EQ(st.traces, 3u);
  EXPECT_EQ(st.insertions, 5u);
  EXPECT_EQ(st.evictions, 2u);
  EXPECT_EQ(ring.Find(TraceId{0, 1}), nullptr);
  ASSERT_NE(ring.Find(TraceId{0, 5}), nullptr);
  EXPECT_EQ(ring.Snapshot().front()->id.lo, 5u);  // newest first
  // Same id: merged, and it becomes the newest.
  EXPECT_EQ(ring.Insert(make(3, 10)), TraceRing::InsertResult::kMerged);
  EXPECT_EQ(ring.Find(TraceId{0, 3})->spans.size(), 2u);
  EXPECT_EQ(ring.Snapshot().front()->id.lo, 3u);
  EXPECT_EQ(ring.stats().traces, 3u);

  // The byte bound: never exceeded, oldest out first; a trace larger than
  // the whole ring is refused.
  TraceRing small(8192, 1000);
  for (uint64_t i = 1; i <= 50; ++i) {
    small.Insert(make(i, 1000));
    EXPECT_LE(small.stats().bytes, 8192u);
  }
  EXPECT_GT(small.stats().evictions, 0u);
  EXPECT_EQ(small.Insert(make(99, 10000)), TraceRing::InsertResult::kTooLarge);
  EXPECT_EQ(small.stats().too_large, 1u);
}

}  // namespace
}  // namespace redmap::traces
