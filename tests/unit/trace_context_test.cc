// Propagation headers (W3C, SkyWalking, Jaeger, B3, X-Request-ID) read from
// request heads, and redaction of heads and targets. Header values follow
// each format's specification examples; heads are curl's and nginx's.
#include "aggregators/traces/trace_context.h"

#include <gtest/gtest.h>

#include <string>

namespace redmap::traces {
namespace {

std::string Head(const std::string& fields) {
  return "GET /x HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n";
}

TEST(TraceIdTest, HexRoundTripAndPadding) {
  auto id = TraceId::FromHex("0af7651916cd43dd8448eb211c80319c");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->Hex(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(TraceId::FromHex("abc")->Hex(), "00000000000000000000000000000abc");
  EXPECT_FALSE(TraceId::FromHex("").has_value());
  EXPECT_FALSE(TraceId::FromHex("00000000000000000000000000000000").has_value());
  EXPECT_FALSE(TraceId::FromHex("0af7651916cd43dd8448eb211c80319cff").has_value());
  EXPECT_FALSE(TraceId::FromHex("xyz").has_value());
  EXPECT_EQ(TraceId::FromKey("req-1"), TraceId::FromKey("req-1"));
  EXPECT_NE(TraceId::FromKey("req-1"), TraceId::FromKey("req-2"));
  EXPECT_EQ(SpanIdHex(0xb7ad6b7169203331ull), "b7ad6b7169203331");
}

TEST(ExtractContextTest, W3cTraceparent) {
  auto c = ExtractContext(
      Head("traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"));
  EXPECT_EQ(c.format, Propagation::kW3c);
  EXPECT_EQ(c.trace_id.Hex(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(c.parent_span_id, 0xb7ad6b7169203331ull);
  // Names are case-insensitive; invalid values are ignored.
  EXPECT_EQ(ExtractContext(Head("TraceParent: 00-0af7651916cd43dd8448eb211c80319c-"
                                "b7ad6b7169203331-00\r\n"))
                .format,
            Propagation::kW3c);
  for (const char* bad : {"00-00000000000000000000000000000000-b7ad6b7169203331-01",
                          "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                          "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033", "garbage"}) {
    EXPECT_EQ(ExtractContext(Head(std::string("traceparent: ") + bad + "\r\n")).format,
              Propagation::kNone)
        << bad;
  }
}

TEST(ExtractContextTest, OtherFormats) {
  // SkyWalking sw8: sample-base64(traceId)-base64(segmentId)-spanId-...
  auto sw = ExtractContext(Head(
      "sw8: 1-YTFiMmMzZDRlNWY2YTFiMmMzZDRlNWY2YTFiMmMzZDQ=-c2VnbWVudA==-3-c2Vydmlj"
      "ZQ==-aW5zdGFuY2U=-L2FwaQ==-dGFyZ2V0OjgwODA=\r\n"));
  EXPECT_EQ(sw.format, Propagation::kSkyWalking);
  EXPECT_TRUE(sw.trace_id.valid());
  EXPECT_NE(sw.parent_span_id, 0u);

  auto jaeger = ExtractContext(Head("uber-trace-id: 4bf92f3577b34da6:00f067aa0ba902b7:0:1\r\n"));
  EXPECT_EQ(jaeger.format, Propagation::kJaeger);
  EXPECT_EQ(jaeger.trace_id.Hex(), "00000000000000004bf92f3577b34da6");
  EXPECT_EQ(jaeger.parent_span_id, 0x00f067aa0ba902b7ull);
  auto encoded =
      ExtractContext(Head("uber-trace-id: 4bf92f3577b34da6%3A00f067aa0ba902b7%3A0%3A1\r\n"));
  EXPECT_EQ(encoded.trace_id, jaeger.trace_id);

  auto b3 = ExtractContext(
      Head("b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90\r\n"));
  EXPECT_EQ(b3.format, Propagation::kB3);
  EXPECT_EQ(b3.trace_id.Hex(), "80f198ee56343ba864fe8b2a57d3eff7");
  EXPECT_EQ(b3.parent_span_id, 0xe457b5a2e4d86bd1ull);
  EXPECT_EQ(ExtractContext(Head("b3: 1\r\n")).format, Propagation::kNone);

  auto multi = ExtractContext(
      Head("X-B3-TraceId: 463ac35c9f6413ad\r\nX-B3-SpanId: a2fb4a1d1a96d312\r\n"));
  EXPECT_EQ(multi.format, Propagation::kB3);
  EXPECT_EQ(multi.trace_id.Hex(), "0000000000000000463ac35c9f6413ad");
  EXPECT_EQ(multi.parent_span_id, 0xa2fb4a1d1a96d312ull);

  auto rid = ExtractContext(Head("X-Request-ID: f9d2c7a0-req\r\n"));
  EXPECT_EQ(rid.format, Propagation::kRequestId);
  EXPECT_EQ(rid.request_id, "f9d2c7a0-req");
  EXPECT_EQ(rid.trace_id, TraceId::FromKey("f9d2c7a0-req"));
}

TEST(ExtractContextTest, TraceparentWinsWhateverTheOrder) {
  auto c = ExtractContext(
      Head("X-Request-ID: r1\r\nb3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1\r\n"
           "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"));
  EXPECT_EQ(c.format, Propagation::kW3c);
  EXPECT_EQ(c.trace_id.Hex(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(c.request_id, "r1");
}

// Fields are looked at only on lines whose first two bytes could start a
// propagation header: every header must still be found whatever its case,
// place (last and cut line included) or folding, and heads without one
// give nothing.
TEST(ExtractContextTest, FoundWhateverTheCaseOrPlace) {
  const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const std::string filler = "Host: h\r\nUser-Agent: curl/8\r\nAccept: */*\r\n";
  for (const std::string& name : {"traceparent", "TRACEPARENT", "TraceParent"}) {
    EXPECT_EQ(ExtractContext("GET / HTTP/1.1\r\n" + filler + name + ": " + tp + "\r\n\r\n").format,
              Propagation::kW3c)
        << name;
    // The last line, cut before its line end.
    EXPECT_EQ(ExtractContext("GET / HTTP/1.1\r\n" + filler + name + ": " + tp).format,
              Propagation::kW3c)
        << name;
  }
  // Folded onto a continuation line.
  EXPECT_EQ(ExtractContext("GET / HTTP/1.1\r\n" + filler + "traceparent:\r\n " + tp + "\r\n\r\n")
                .format,
            Propagation::kW3c);
  EXPECT_EQ(ExtractContext("GET / HTTP/1.1\r\nSW8: 1-" + std::string("NGJmOTJmMzU3N2IzNGRhNmEzY2U5MjlkMGUwZTQ3MzY=") +
                           "-YWJj-3-c2Vydg==-aW5zdA==-L2E=-aDo4MA==\r\n\r\n")
                .format,
            Propagation::kSkyWalking);
  EXPECT_EQ(ExtractContext("GET / HTTP/1.1\r\nUBER-TRACE-ID: 4bf92f3577b34da6:00f067aa0ba902b7:0:1\r\n\r\n")
                .format,
            Propagation::kJaeger);
  EXPECT_EQ(ExtractContext("GET / HTTP/1.1\r\nB3: 4bf92f3577b34da6-00f067aa0ba902b7-1\r\n\r\n").format,
            Propagation::kB3);
  const auto multi = ExtractContext(
      "GET / HTTP/1.1\r\nX-B3-TraceId: 4bf92f3577b34da6\r\nX-B3-SpanId: 00f067aa0ba902b7\r\n\r\n");
  EXPECT_EQ(multi.format, Propagation::kB3);
  EXPECT_EQ(multi.parent_span_id, 0x00f067aa0ba902b7u);
  EXPECT_EQ(ExtractContext("GET / HTTP/1.1\r\nX-REQUEST-ID: r1\r\n\r\n").request_id, "r1");
  // None of them (names that share a first letter included).
  for (const std::string& head :
       {"GET / HTTP/1.1\r\n" + filler + "\r\n",
        std::string("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For: 1.2.3.4\r\n"
                    "Sec-Fetch-Mode: cors\r\nUpgrade: h2c\r\nB: x\r\n\r\n"),
        std::string("GET /traceparent HTTP/1.1\r\n\r\n"), std::string("\n"), std::string()}) {
    const PropagatedContext c = ExtractContext(head);
    EXPECT_EQ(c.format, Propagation::kNone) << head;
    EXPECT_TRUE(c.request_id.empty()) << head;
  }
}

// The header's line may start anywhere relative to the 16-byte blocks the
// pre-scan reads, and its name may be cut after one or two bytes.
TEST(ExtractContextTest, FoundAtEveryOffset) {
  const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  for (size_t pad = 0; pad < 40; ++pad) {
    const std::string start = "GET /" + std::string(pad, 'a') + " HTTP/1.1\r\n";
    EXPECT_EQ(ExtractContext(start + "traceparent: " + tp + "\r\n\r\n").format, Propagation::kW3c)
        << pad;
    EXPECT_EQ(ExtractContext(start + "Host: h\r\nX-Request-ID: r" + std::to_string(pad) + "\r\n")
                  .request_id,
              "r" + std::to_string(pad))
        << pad;
    // Cut inside the name: nothing to find, nothing read past the end.
    for (const std::string cut : {"t", "tr", "x-"}) {
      const std::string head = start + cut;
      EXPECT_EQ(ExtractContext(std::string_view(head)).format, Propagation::kNone) << pad;
    }
    EXPECT_EQ(ExtractContext(start + "Accept: */*\r\n\r\n").format, Propagation::kNone) << pad;
  }
}

TEST(ExtractContextTest, TruncatedAndGarbageHeads) {
  EXPECT_EQ(ExtractContext("").format, Propagation::kNone);
  EXPECT_EQ(ExtractContext("GET / HTTP/1.1").format, Propagation::kNone);
  EXPECT_EQ(ExtractContext("GET / HTTP/1.1\r\ntraceparent: 00-0af76519").format,
            Propagation::kNone);
  // Fields after the empty line are body bytes, not headers.
  EXPECT_EQ(ExtractContext("GET / HTTP/1.1\r\n\r\ntraceparent: "
                           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n")
                .format,
            Propagation::kNone);
}

TEST(RedactorTest, CredentialHeadersAlwaysMasked) {
  Redactor r({"X-Api-Key"}, {"token"});
  std::string out;
  r.RedactHead(
      "GET /a?token=qsecret&page=2 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer hsecret\r\n"
      "cookie: sid=csecret\r\nProxy-Authorization: Basic psecret\r\nx-api-key: ksecret\r\n"
      "Referer: http://h/b?token=rsecret&q=1\r\nAccept: */*\r\n\r\n",
      4096, &out);
  EXPECT_EQ(out,
            "GET /a?token=[redacted]&page=2 HTTP/1.1\r\nHost: h\r\nAuthorization: [redacted]\r\n"
            "cookie: [redacted]\r\nProxy-Authorization: [redacted]\r\nx-api-key: [redacted]\r\n"
            "Referer: http://h/b?token=[redacted]&q=1\r\nAccept: */*\r\n\r\n");
  out.clear();
  r.RedactHead("HTTP/1.1 200 OK\r\nSet-Cookie: sid=ssecret; HttpOnly\r\n"
               "Location: /next?token=lsecret\r\n\r\n",
               4096, &out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nSet-Cookie: [redacted]\r\nLocation: /next?token=[redacted]\r\n\r\n");
}

TEST(RedactorTest, FoldedCutAndCappedHeadsNeverLeak) {
  Redactor r({}, {});
  std::string out;
  // obs-fold: the value continues on the next line.
  r.RedactHead("GET / HTTP/1.1\r\nAuthorization: Basic\r\n  fsecret\r\nA: b\r\n\r\n", 4096, &out);
  EXPECT_EQ(out.find("fsecret"), std::string::npos) << out;
  EXPECT_NE(out.find("A: b"), std::string::npos);
  // Cut by the capture in the middle of the value.
  out.clear();
  r.RedactHead("GET / HTTP/1.1\r\nHost: h\r\nCookie: sid=cut-sec", 4096, &out);
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nHost: h\r\nCookie: [redacted]");
  // The cap applies after masking.
  out.clear();
  r.RedactHead("GET / HTTP/1.1\r\nAuthorization: Bearer xsecretx\r\n\r\n", 20, &out);
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nAuth");
}

TEST(RedactorTest, Targets) {
  Redactor r({}, {"password", "api_key"});
  std::string out;
  r.RedactTarget("/login?user=a&Password=x;api_key=y#frag", &out);
  EXPECT_EQ(out, "/login?user=a&Password=[redacted];api_key=[redacted]#frag");
  out.clear();
  r.RedactTarget("/plain", &out);
  EXPECT_EQ(out, "/plain");
  out.clear();
  r.RedactTarget("/x?password", &out);  // no value: nothing to hide
  EXPECT_EQ(out, "/x?password");
}

}  // namespace
}  // namespace redmap::traces
