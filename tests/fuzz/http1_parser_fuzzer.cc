// Arbitrary bytes through the HTTP/1 head parser, and through whole
// connections (ConnTracker -> DataStreamBuffer -> Http1Stitcher) cut into
// arbitrary events with arbitrary capture truncation, sequence jumps,
// retransmits, roles and closes. Nothing may crash, read out of bounds,
// grow without bound, or emit an inconsistent span.
//
// Input: [options] then events, each [ctl][len][captured][jump] + len bytes.
//   options: bit0 no tcp_seq, bit1 max_buffer_bytes 64, bits 2-3 max_connections - 1
//   ctl: bit0 egress, bit1 role server, bit2 role client (neither: infer),
//        bit3 jump*16 uncaptured bytes after the payload, bit4 skip `jump`
//        bytes first (a position gap), bit5 close afterwards, bits 6-7 connection;
//        ctl == 0xff: step back `jump` bytes (a retransmit) instead.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "aggregators/conntrack/conn_tracker.h"
#include "aggregators/protocols/http1/http1_parser.h"

namespace {

class CheckingSink : public redmap::SpanSink {
 public:
  void OnSpan(const redmap::Span& s) override {
    if (s.end_ns < s.start_ns || s.http.status < 100 || s.http.status > 999 ||
        s.http.method.empty() || s.http.method.size() > redmap::http1::kMaxMethodBytes ||
        s.http.target.empty() || s.http.target.size() > redmap::http1::kMaxHeadBytes ||
        s.protocol != redmap::Protocol::kHttp1 || s.side == redmap::Role::kUnknown) {
      abort();
    }
    ++spans;
  }
  size_t spans = 0;
};

void ParseAlone(std::string_view in) {
  using namespace redmap::http1;
  for (bool request : {true, false}) {
    Head head;
    size_t consumed = 0;
    if (ParseHead(in, request, &head, &consumed) == ParseState::kSuccess &&
        (consumed == 0 || consumed > in.size() || consumed > kMaxHeadBytes)) {
      abort();
    }
    if (ParseStartLine(in, request, &head, &consumed) == ParseState::kSuccess &&
        (consumed == 0 || consumed > in.size())) {
      abort();
    }
    LooksLikeMessageStart(in, request);
    ResponseBodyKind(head, head.method);
    RequestBodyKind(head);
  }
  uint64_t chunk = 0;
  size_t consumed = 0;
  if (ParseChunkSize(in, &chunk, &consumed) == ParseState::kSuccess &&
      (consumed == 0 || consumed > in.size())) {
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  ParseAlone(in);
  if (size == 0) return 0;

  const uint8_t opts = data[0];
  redmap::SelfMetrics self;
  CheckingSink sink;
  redmap::ConnTrackerOptions options;
  options.max_connections = 1 + ((opts >> 2) & 3);
  options.max_buffer_bytes = (opts & 2) ? 64 : 4096;
  options.idle_timeout_ns = 1'000'000;
  const bool with_seq = (opts & 1) == 0;
  redmap::ConnTracker tracker(options, &sink, &self);

  uint32_t seq[4][2] = {{1000, 2000}, {0xfffffff0u, 5}, {0x7ffffff0u, 0}, {0, 0xffffff00u}};
  uint64_t now = 1;
  size_t i = 1;
  while (i + 4 <= size) {
    const uint8_t ctl = data[i], len = data[i + 1], cap = data[i + 2], jump = data[i + 3];
    i += 4;
    const size_t n = std::min<size_t>(len, size - i);
    const int conn = ctl >> 6;
    const int dir = ctl & 1;
    redmap::DataEvent e;
    e.conn = redmap::ConnKey{1, conn, 1};
    e.tid = static_cast<uint32_t>(i);
    e.direction = dir ? redmap::Direction::kEgress : redmap::Direction::kIngress;
    e.role = (ctl & 2)   ? redmap::Role::kServer
             : (ctl & 4) ? redmap::Role::kClient
                         : redmap::Role::kUnknown;
    e.protocol = redmap::Protocol::kHttp1;
    e.enter_ns = now++;
    e.exit_ns = now++;
    e.byte_count = static_cast<uint32_t>(n) + ((ctl & 8) ? jump * 16u : 0);
    if (ctl == 0xff) {
      seq[conn][dir] -= jump;  // a retransmit of earlier bytes
    } else if (ctl & 16) {
      seq[conn][dir] += jump;  // bytes no event reported
    }
    e.tcp_seq = seq[conn][dir];
    e.has_tcp_seq = with_seq;
    seq[conn][dir] += e.byte_count;
    e.payload = in.substr(i, std::min<size_t>(n, cap));
    e.process_name = "fuzz";
    tracker.OnData(e);
    if (tracker.connections() > options.max_connections) abort();
    if (ctl != 0xff && (ctl & 32)) tracker.OnClose(redmap::CloseEvent{e.conn, now});
    if ((i & 0x3f) == 0) tracker.ExpireIdle(now + 999'990);  // idle for ~5 events
    i += n;
  }
  tracker.ExpireIdle(now + 1'000'000'000'000ull);
  if (tracker.connections() != 0) abort();
  tracker.Flush();
  if (self.spans(redmap::Protocol::kHttp1) != sink.spans) abort();
  return 0;
}
