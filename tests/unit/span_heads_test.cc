// The HTTP/1 stitcher hands each span the request's and response's heads as
// captured (Span::request_head / response_head, valid during OnSpan only):
// the one hook trace assembly and redaction need from the protocol layer.
// Bytes: curl 7.88 GET and nginx 1.22 200 (tests/fixtures/http1/README.md).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "aggregators/conntrack/conn_tracker.h"
#include "aggregators/self/self_metrics.h"
#include "tests/testlib/fixtures.h"

namespace redmap {
namespace {

using ::redmap::testing::Fixture;

struct Heads : SpanSink {
  void OnSpan(const Span& s) override {
    requests.emplace_back(s.request_head);
    responses.emplace_back(s.response_head);
    statuses.push_back(s.http.status);
    targets.emplace_back(s.http.target);
  }
  std::vector<std::string> requests, responses, targets;
  std::vector<int> statuses;
};

DataEvent Event(Direction d, std::string_view payload, uint64_t t, uint32_t seq) {
  DataEvent e;
  e.conn = ConnKey{42, 3, 7};
  e.tid = 43;
  e.direction = d;
  e.protocol = Protocol::kHttp1;
  e.role = Role::kServer;
  e.enter_ns = t;
  e.exit_ns = t + 100;
  e.byte_count = static_cast<uint32_t>(payload.size());
  e.has_tcp_seq = true;
  e.tcp_seq = seq;
  e.local.addr = IpAddress::V4(0x0100007f);
  e.local.port = 80;
  e.remote = e.local;
  e.remote.port = 50000;
  e.payload = payload;
  return e;
}

std::string HeadOf(const std::string& message) {
  return message.substr(0, message.find("\r\n\r\n") + 4);
}

// Two keep-alive exchanges (the second pair reuses the buffers).
void TwoExchanges(ConnTracker* t, const std::string& req, const std::string& resp) {
  uint32_t in = 1, out = 1;
  for (int i = 0; i < 2; ++i) {
    t->OnData(Event(Direction::kIngress, req, 1000 + i * 10000, in));
    in += static_cast<uint32_t>(req.size());
    t->OnData(Event(Direction::kEgress, resp, 5000 + i * 10000, out));
    out += static_cast<uint32_t>(resp.size());
  }
}

TEST(SpanHeadsTest, StitcherPassesBothHeads) {
  SelfMetrics self;
  Heads heads;
  ConnTracker t(ConnTrackerOptions{}, &heads, &self);
  const std::string req = Fixture("http1/curl_get.req");
  const std::string resp = Fixture("http1/nginx_200.resp");
  TwoExchanges(&t, req, resp);
  ASSERT_EQ(heads.requests.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(heads.requests[i], HeadOf(req));
    EXPECT_EQ(heads.responses[i], HeadOf(resp));
  }
}

// Without trace assembly nothing reads the heads: they are not copied, and
// the spans are otherwise the same.
TEST(SpanHeadsTest, NoHeadsWhenNotKept) {
  SelfMetrics self;
  Heads heads;
  ConnTrackerOptions o;
  o.keep_heads = false;
  ConnTracker t(o, &heads, &self);
  TwoExchanges(&t, Fixture("http1/curl_get.req"), Fixture("http1/nginx_200.resp"));
  EXPECT_EQ(heads.requests, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(heads.responses, (std::vector<std::string>{"", ""}));
  EXPECT_EQ(heads.statuses, (std::vector<int>{200, 200}));
  EXPECT_EQ(heads.targets,
            (std::vector<std::string>{"/api/items/42?page=2", "/api/items/42?page=2"}));
}

}  // namespace
}  // namespace redmap
