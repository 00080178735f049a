// HTTP/1.x on one connection: follows each direction's message framing
// across syscall boundaries and capture gaps, and pairs requests with
// responses in order (keep-alive and pipelining), emitting one Span per pair.
//
// Gaps are normal: only a prefix of each syscall's bytes is captured, and
// sendfile bodies are never seen. Framing needs only heads and chunk-size
// lines; body bytes are skipped by position. When framing is lost (a
// chunk-size line fell in a gap), the message ends at the last chunk before
// the next message start, or at connection end.
#ifndef REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_STITCHER_H_
#define REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_STITCHER_H_

#include <cstdint>
#include <deque>
#include <string>

#include "aggregators/protocols/http1/http1_parser.h"
#include "aggregators/protocols/protocol.h"

namespace redmap::http1 {

// Requests waiting for their response, per connection.
inline constexpr size_t kMaxPendingRequests = 128;

class Http1Stitcher : public ConnectionParser {
 public:
  Http1Stitcher();
  void OnChunk(Direction direction, const StreamChunk& chunk, const ConnContext& ctx) override;
  void OnEnd(const ConnContext& ctx) override;

  size_t pending_requests() const { return pending_.size(); }

 private:
  enum class State {
    kHead,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkCrlf,
    kTrailer,
    kLost,        // framing unknown: ends at the next message start or at close
    kUntilClose,  // body delimited by connection close
  };

  struct Message {
    std::string method;
    std::string target;
    int status = 0;
    uint64_t start_ns = 0;
    uint64_t end_ns = 0;
    uint32_t tid = 0;
    uint32_t seq = 0;
    uint64_t bytes = 0;
  };

  struct Stream {
    bool is_request = true;
    bool started = false;
    bool in_resync = false;  // skipping to the next message start; errors already counted
    uint64_t pos = 0;
    State state = State::kHead;
    bool head_active = false;
    std::string head_buf;
    std::string line_buf;
    uint64_t remaining = 0;
    uint64_t last_exit_ns = 0;
    Message msg;  // the message being read
  };

  void Feed(Stream& s, const StreamChunk& c, const ConnContext& ctx);
  void Gap(Stream& s, uint64_t n, const ConnContext& ctx);
  // Returns the chunk offset after the head, or c.len when the chunk is used up.
  uint64_t FeedHead(Stream& s, const StreamChunk& c, uint64_t o, const ConnContext& ctx);
  void StartBody(Stream& s, const Head& head, uint64_t end_ns, const ConnContext& ctx);
  void Complete(Stream& s, uint64_t end_ns, const ConnContext& ctx);
  void Error(Stream& s, const ConnContext& ctx);

  Stream requests_;
  Stream responses_;
  std::deque<Message> pending_;
  bool upgraded_ = false;
};

}  // namespace redmap::http1

#endif  // REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_STITCHER_H_
