// Arbitrary bytes through the HTTP/1 head parser, and through a whole
// connection (ConnTracker + stitcher) cut into arbitrary events with
// arbitrary capture truncation and sequence jumps. Nothing may crash, read
// out of bounds, or grow without bound.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "aggregators/conntrack/conn_tracker.h"
#include "aggregators/protocols/http1/http1_parser.h"

namespace {

class Discard : public redmap::SpanSink {
 public:
  void OnSpan(const redmap::Span& s) override { total_ += s.http.target.size() + s.process_name.size(); }
  size_t total_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  redmap::http1::Head head;
  size_t consumed = 0;
  redmap::http1::ParseHead(in, true, &head, &consumed);
  redmap::http1::ParseHead(in, false, &head, &consumed);
  uint64_t chunk;
  redmap::http1::ParseChunkSize(in, &chunk, &consumed);

  // Control bytes drive the event split: [dir|role][len][captured][seq jump] ...
  redmap::SelfMetrics self;
  Discard sink;
  redmap::ConnTrackerOptions options;
  options.max_connections = 4;
  redmap::ConnTracker tracker(options, &sink, &self);
  uint32_t seq[2] = {1000, 2000};
  uint64_t now = 1;
  size_t i = 0;
  while (i + 4 <= size) {
    const uint8_t ctl = data[i], len = data[i + 1], cap = data[i + 2], jump = data[i + 3];
    i += 4;
    const size_t n = std::min<size_t>(len, size - i);
    redmap::DataEvent e;
    e.conn = redmap::ConnKey{1, static_cast<int32_t>(ctl >> 6), 1};
    e.direction = (ctl & 1) ? redmap::Direction::kEgress : redmap::Direction::kIngress;
    e.role = (ctl & 2) ? redmap::Role::kServer : ((ctl & 4) ? redmap::Role::kClient : redmap::Role::kUnknown);
    e.protocol = redmap::Protocol::kHttp1;
    e.enter_ns = now++;
    e.exit_ns = now++;
    e.byte_count = static_cast<uint32_t>(n) + ((ctl & 8) ? jump * 16u : 0);
    const int d = (ctl & 1) ? 0 : 1;
    if (ctl & 16) seq[d] += jump;  // a position jump: lost bytes
    e.tcp_seq = seq[d];
    e.has_tcp_seq = true;
    seq[d] += e.byte_count;
    e.payload = in.substr(i, std::min<size_t>(n, cap));
    tracker.OnData(e);
    if (ctl & 32) tracker.OnClose(redmap::CloseEvent{e.conn, now});
    i += n;
  }
  tracker.ExpireIdle(now + 1'000'000'000'000ull);
  tracker.Flush();
  return 0;
}
