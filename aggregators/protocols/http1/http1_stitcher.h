// HTTP/1.x on one connection: follows each direction's message framing
// across syscall boundaries and capture gaps, and pairs requests with
// responses in order (keep-alive and pipelining), emitting one Span per pair.
//
// Gaps are normal: only a prefix of each syscall's bytes is captured, and
// sendfile bodies are never seen. Framing needs only heads and chunk-size
// lines; body bytes are skipped by position. When framing is lost (a
// chunk-size line fell in a gap), the message ends with the last event
// before the next event that starts a message, or at connection end. A head
// whose end was not captured still yields its start line (method, target,
// status); the message then ends with that event.
#ifndef REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_STITCHER_H_
#define REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_STITCHER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aggregators/protocols/http1/http1_parser.h"
#include "aggregators/protocols/protocol.h"

namespace redmap::http1 {

// Requests waiting for their response, per connection; beyond, the oldest
// is dropped and counted as a parse error.
inline constexpr size_t kMaxPendingRequests = 128;

class Http1Stitcher : public ConnectionParser {
 public:
  Http1Stitcher();
  size_t OnSegment(Direction direction, const StreamSegment& seg, const ConnContext& ctx) override;
  void OnEnd(const ConnContext& ctx) override;

  size_t pending_requests() const { return pending_size_; }

 private:
  enum class State : uint8_t {
    kResync,      // skipping to the next event that starts a message
    kHead,        // at a message boundary
    kBody,        // `remaining` Content-Length bytes to go
    kChunkSize,   // at a chunk-size line
    kChunkData,   // `remaining` chunk data bytes to go
    kChunkEnd,    // `remaining` bytes of the CRLF after chunk data
    kTrailer,     // trailer lines; `remaining`: final CRLF bytes seen (2: a field was cut)
    kLost,        // framing unknown: ends at the next message start or at the end
    kTruncated,   // head cut by a gap: the message ends with this event
    kUntilClose,  // response body delimited by connection close
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
    bool orphan = false;  // a response that began when no request was waiting
    std::string head;     // raw head bytes as captured, for Span::*_head
  };

  struct Stream {
    bool is_request = true;
    State state = State::kResync;
    // The head being parsed was found while resynchronising: if it proves
    // invalid, the bytes were just not a message (no parse error).
    bool candidate = false;
    // The request was queued before its end (its response began first).
    bool queued = false;
    uint64_t remaining = 0;
    uint64_t last_exit_ns = 0;
    Message msg;  // the message being read
  };

  // Returns false when the head needs bytes of the next event.
  bool FeedHead(Stream& s, const StreamSegment& seg, size_t* o, const ConnContext& ctx);
  void Salvage(Stream& s, const StreamSegment& seg, size_t o, const ConnContext& ctx);
  void BeginMessage(Stream& s, const Head& head, const StreamSegment& seg, size_t o,
                    const ConnContext& ctx);
  void StartBody(Stream& s, const Head& head, uint64_t end_ns, const ConnContext& ctx);
  void Gap(Stream& s, const StreamSegment& seg, const ConnContext& ctx);
  void Complete(Stream& s, uint64_t end_ns, const ConnContext& ctx);
  // A final (non-1xx) response began: pairs it with the oldest request.
  void FinalResponseBegins(const ConnContext& ctx);
  // The request a response answers has ended too, even if its framing was
  // lost or its body is still on the way.
  void QueueRequestInProgress(const ConnContext& ctx);
  // Framing lost at a message boundary: skip to the next message start.
  void Lose(Stream& s);
  void Enqueue(Message& request, const ConnContext& ctx);
  void PopPending();
  void Emit(Message& request, const Message& response, const ConnContext& ctx);
  std::string_view PendingMethod() const;

  Stream requests_;
  Stream responses_;
  // FIFO ring of requests awaiting responses; grows to kMaxPendingRequests,
  // slots (and their strings' capacity) are reused.
  std::vector<Message> pending_;
  size_t pending_head_ = 0;
  size_t pending_size_ = 0;
  bool upgraded_ = false;  // 101 / CONNECT tunnel: nothing after is HTTP/1
};

}  // namespace redmap::http1

#endif  // REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_STITCHER_H_
