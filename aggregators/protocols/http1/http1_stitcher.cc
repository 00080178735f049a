#include "aggregators/protocols/http1/http1_stitcher.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace redmap::http1 {
namespace {

bool IsInterim(int status) { return status >= 100 && status < 200 && status != 101; }

// The end of a chunked body at the end of an event: a last-chunk line and
// the empty trailer, right after chunk data (or alone in its write).
bool EndsWithLastChunk(std::string_view s) {
  constexpr std::string_view kLast = "0\r\n\r\n";
  if (s.size() < kLast.size() || s.substr(s.size() - kLast.size()) != kLast) return false;
  return s.size() == kLast.size() || s[s.size() - kLast.size() - 1] == '\n';
}

}  // namespace

Http1Stitcher::Http1Stitcher() {
  requests_.is_request = true;
  responses_.is_request = false;
}

size_t Http1Stitcher::OnSegment(Direction direction, const StreamSegment& seg,
                                const ConnContext& ctx) {
  if (upgraded_) return seg.data.size();
  // A client sends requests; a server receives them.
  const bool request_dir = (direction == Direction::kEgress) == (ctx.role == Role::kClient);
  Stream& s = request_dir ? requests_ : responses_;
  const uint64_t previous_exit_ns = s.last_exit_ns;
  s.last_exit_ns = seg.event.exit_ns;
  const std::string_view data = seg.data;
  size_t o = 0;
  while (o < data.size() && !upgraded_) {
    switch (s.state) {
      case State::kResync:
        // Only where an event's bytes begin: inside one, a message start
        // cannot be told from body bytes that look like one.
        if (o == seg.held && seg.at_event_start &&
            LooksLikeMessageStart(data.substr(o), s.is_request)) {
          s.state = State::kHead;
          s.candidate = true;
        } else {
          o = data.size();
        }
        break;
      case State::kHead:
        if (!FeedHead(s, seg, &o, ctx)) return o;
        break;
      case State::kBody: {
        const uint64_t take = std::min<uint64_t>(s.remaining, data.size() - o);
        o += take;
        s.remaining -= take;
        s.msg.bytes += take;
        if (s.remaining == 0) Complete(s, seg.EventAt(o - 1).exit_ns, ctx);
        break;
      }
      case State::kChunkSize: {
        uint64_t size = 0;
        size_t n = 0;
        const ParseState st = ParseChunkSize(data.substr(o), &size, &n);
        if (st == ParseState::kSuccess) {
          o += n;
          s.msg.bytes += n;
          s.remaining = size;
          s.state = size == 0 ? State::kTrailer : State::kChunkData;
        } else if (st == ParseState::kNeedsMoreData && seg.unknown == 0) {
          return o;  // the line continues in the next event
        } else {
          // Invalid, or the line runs into uncaptured bytes: the framing is
          // lost, not the message.
          if (st == ParseState::kInvalid) ctx.self->AddParseError(Protocol::kHttp1);
          s.state = State::kLost;
        }
        break;
      }
      case State::kChunkData: {
        const uint64_t take = std::min<uint64_t>(s.remaining, data.size() - o);
        o += take;
        s.remaining -= take;
        s.msg.bytes += take;
        if (s.remaining == 0) {
          s.state = State::kChunkEnd;
          s.remaining = 2;
        }
        break;
      }
      case State::kChunkEnd:
        if (s.remaining == 2 && data[o] == '\r') {
          s.remaining = 1;
        } else if (data[o] == '\n') {  // a bare LF is tolerated
          s.state = State::kChunkSize;
        } else {
          ctx.self->AddParseError(Protocol::kHttp1);
          s.state = State::kLost;
          break;
        }
        ++o;
        ++s.msg.bytes;
        break;
      case State::kTrailer: {
        const std::string_view rest = data.substr(o);
        const size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) {
          if (rest.size() > kMaxChunkLineBytes) {
            ctx.self->AddParseError(Protocol::kHttp1);
            s.state = State::kLost;
            break;
          }
          if (seg.unknown == 0) return o;  // the line continues in the next event
          // Cut by the gap that follows. A lone CR may begin the final CRLF;
          // anything else is a trailer field whose end is not seen.
          s.remaining = rest == "\r" ? 1 : 2;
          s.msg.bytes += rest.size();
          o = data.size();
          break;
        }
        o += nl + 1;
        s.msg.bytes += nl + 1;
        s.remaining = 0;
        if (nl == 0 || (nl == 1 && rest[0] == '\r')) {
          Complete(s, seg.EventAt(o - 1).exit_ns, ctx);
        }
        break;
      }
      case State::kLost:
        if (o == seg.held && seg.at_event_start &&
            LooksLikeMessageStart(data.substr(o), s.is_request)) {
          // The lost message ended with the previous event.
          Complete(s, previous_exit_ns, ctx);
          break;
        }
        s.msg.bytes += data.size() - o;
        if (seg.unknown == 0 && EndsWithLastChunk(data.substr(o))) {
          o = data.size();
          Complete(s, seg.event.exit_ns, ctx);
          break;
        }
        o = data.size();
        break;
      case State::kTruncated:
      case State::kUntilClose:
        s.msg.bytes += data.size() - o;
        o = data.size();
        break;
    }
  }
  if (seg.unknown > 0 && !upgraded_) Gap(s, seg, ctx);
  return data.size();
}

bool Http1Stitcher::FeedHead(Stream& s, const StreamSegment& seg, size_t* o,
                             const ConnContext& ctx) {
  const std::string_view data = seg.data;
  // Stray line ends between messages (some clients send CRLF after a body).
  while (*o < data.size() && (data[*o] == '\r' || data[*o] == '\n')) ++*o;
  if (*o == data.size()) return true;
  Head head;
  size_t n = 0;
  switch (ParseHead(data.substr(*o), s.is_request, &head, &n)) {
    case ParseState::kSuccess:
      BeginMessage(s, head, seg, *o, ctx);
      if (ctx.keep_heads) s.msg.head.assign(data.substr(*o, n));
      s.msg.bytes = n;
      *o += n;
      StartBody(s, head, seg.EventAt(*o - 1).exit_ns, ctx);
      return true;
    case ParseState::kNeedsMoreData:
      if (seg.unknown == 0) return false;
      Salvage(s, seg, *o, ctx);
      *o = data.size();
      return true;
    case ParseState::kInvalid:
      // Text that starts with a method name may be a body; text that starts
      // with "HTTP/1." is a broken response.
      if (s.candidate && s.is_request) {
        s.state = State::kResync;  // not a message after all
      } else {
        ctx.self->AddParseError(Protocol::kHttp1);
        Lose(s);
      }
      *o = data.size();
      return true;
  }
  return true;
}

void Http1Stitcher::Salvage(Stream& s, const StreamSegment& seg, size_t o, const ConnContext& ctx) {
  // The head runs into uncaptured bytes (larger than the capture, e.g. big
  // cookies): the start line still says what the message is.
  Head head;
  size_t n = 0;
  if (ParseStartLine(seg.data.substr(o), s.is_request, &head, &n) != ParseState::kSuccess) {
    ctx.self->AddParseError(Protocol::kHttp1);
    Lose(s);
    return;
  }
  BeginMessage(s, head, seg, o, ctx);
  if (ctx.keep_heads) s.msg.head.assign(seg.data.substr(o, kMaxHeadBytes));
  s.msg.bytes = seg.data.size() - o;
  if (!s.is_request && !IsInterim(head.status)) FinalResponseBegins(ctx);
  // Without the framing headers, the end is a guess: most requests and
  // bodiless responses are one write; other responses run to the next one.
  const bool bodyless = s.is_request || head.status < 200 || head.status == 204 ||
                        head.status == 304 || PendingMethod() == "HEAD";
  s.state = bodyless ? State::kTruncated : State::kLost;
}

void Http1Stitcher::BeginMessage(Stream& s, const Head& head, const StreamSegment& seg, size_t o,
                                 const ConnContext& ctx) {
  const EventInfo& ev = seg.EventAt(o);
  Message& m = s.msg;
  // Received bytes are "seen" when the read returns (a blocking read may
  // have waited idle since its entry); sent bytes when the write starts.
  m.start_ns = (s.is_request && ctx.role == Role::kServer) ? ev.exit_ns : ev.enter_ns;
  m.end_ns = 0;
  m.tid = ev.tid;
  m.seq = seg.SeqAt(o);
  m.bytes = 0;
  m.status = head.status;
  m.orphan = false;
  if (s.is_request) {
    m.method.assign(head.method);
    m.target.assign(head.target);
  }
  s.candidate = false;
  s.queued = false;
}

void Http1Stitcher::StartBody(Stream& s, const Head& head, uint64_t end_ns,
                              const ConnContext& ctx) {
  BodyKind kind;
  if (s.is_request) {
    kind = RequestBodyKind(head);
  } else {
    if (!IsInterim(head.status)) FinalResponseBegins(ctx);
    kind = ResponseBodyKind(head, PendingMethod());
  }
  switch (kind) {
    case BodyKind::kNone:
      Complete(s, end_ns, ctx);
      break;
    case BodyKind::kLength:
      s.remaining = head.content_length;
      s.state = State::kBody;
      break;
    case BodyKind::kChunked:
      s.state = State::kChunkSize;
      break;
    case BodyKind::kUntilClose:
      s.state = State::kUntilClose;
      break;
    case BodyKind::kTunnel:
      Complete(s, end_ns, ctx);
      upgraded_ = true;
      break;
  }
}

void Http1Stitcher::Gap(Stream& s, const StreamSegment& seg, const ConnContext& ctx) {
  const uint64_t end_ns = seg.event.exit_ns;
  uint64_t n = seg.unknown;
  while (n > 0 && !upgraded_) {
    switch (s.state) {
      case State::kResync:
        return;
      case State::kHead:
        Lose(s);  // whatever starts in there is not seen
        return;
      case State::kBody:
      case State::kChunkData:
      case State::kChunkEnd: {
        const uint64_t take = std::min(n, s.remaining);
        n -= take;
        s.remaining -= take;
        s.msg.bytes += take;
        if (s.remaining > 0) return;
        if (s.state == State::kBody) {
          Complete(s, end_ns, ctx);
        } else if (s.state == State::kChunkData) {
          s.state = State::kChunkEnd;
          s.remaining = 2;
        } else {
          s.state = State::kChunkSize;
        }
        break;
      }
      case State::kChunkSize:
        s.state = State::kLost;
        break;
      case State::kTrailer: {
        // An unseen trailer is most likely just the final CRLF; after a cut
        // trailer field (remaining 2), where the body ends is unknown.
        if (s.remaining >= 2) {
          s.state = State::kLost;
          break;
        }
        const uint64_t need = 2 - s.remaining;
        const uint64_t take = std::min(n, need);
        n -= take;
        s.msg.bytes += take;
        s.remaining += take;
        if (take == need) Complete(s, end_ns, ctx);
        break;
      }
      case State::kLost:
      case State::kUntilClose:
        s.msg.bytes += n;
        return;
      case State::kTruncated:
        s.msg.bytes += n;
        Complete(s, end_ns, ctx);
        s.state = State::kResync;  // framing unknown: find the next message
        return;
    }
  }
}

void Http1Stitcher::Complete(Stream& s, uint64_t end_ns, const ConnContext& ctx) {
  s.state = State::kHead;
  s.msg.end_ns = end_ns;
  if (s.is_request) {
    if (s.queued) {
      s.queued = false;  // already waiting for its response
    } else {
      Enqueue(s.msg, ctx);
    }
    return;
  }
  const int status = s.msg.status;
  // Interim responses (100 Continue, 103 Early Hints) precede the real one.
  if (IsInterim(status)) return;
  // No request: it was sent before redmap saw the connection, or was lost.
  if (s.msg.orphan || pending_size_ == 0) return;
  Emit(pending_[pending_head_], s.msg, ctx);
  PopPending();
  if (status == 101) upgraded_ = true;  // switched protocols
}

void Http1Stitcher::FinalResponseBegins(const ConnContext& ctx) {
  QueueRequestInProgress(ctx);
  // Which request a response answers is decided now: a request that starts
  // later cannot be it.
  responses_.msg.orphan = pending_size_ == 0;
}

void Http1Stitcher::QueueRequestInProgress(const ConnContext& ctx) {
  Stream& r = requests_;
  switch (r.state) {
    case State::kResync:
    case State::kHead:
      return;
    case State::kLost:
    case State::kTruncated:
    case State::kUntilClose:
      // Nothing more to learn about it: end it here and find the next one.
      Complete(r, r.last_exit_ns, ctx);
      r.state = State::kResync;
      return;
    default:
      // Body still arriving (an early answer): queue it now, keep following it.
      if (r.queued) return;
      r.msg.end_ns = r.last_exit_ns;
      Enqueue(r.msg, ctx);
      r.queued = true;
      return;
  }
}

void Http1Stitcher::Enqueue(Message& request, const ConnContext& ctx) {
  if (pending_size_ == kMaxPendingRequests) {
    // Never answered: count it, keep the queue bounded.
    PopPending();
    ctx.self->AddParseError(Protocol::kHttp1);
  }
  if (pending_size_ == pending_.size()) {
    std::rotate(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(pending_head_),
                pending_.end());
    pending_head_ = 0;
    pending_.emplace_back();
  }
  Message& slot = pending_[(pending_head_ + pending_size_) % pending_.size()];
  ++pending_size_;
  // Swapped, not copied: nothing reads a request's strings from its stream
  // once it is queued (a request queued before its end is only followed
  // for its byte count), and the stream's next message assigns into the
  // slot's old buffers, so neither side allocates in the steady state.
  slot.method.swap(request.method);
  slot.target.swap(request.target);
  slot.status = request.status;
  slot.start_ns = request.start_ns;
  slot.end_ns = request.end_ns;
  slot.tid = request.tid;
  slot.seq = request.seq;
  slot.bytes = request.bytes;
  slot.head.swap(request.head);
}

void Http1Stitcher::Emit(Message& request, const Message& response, const ConnContext& ctx) {
  std::optional<Span> local;
  Span& span = ctx.scratch_span != nullptr ? *ctx.scratch_span : local.emplace();
  span.protocol = Protocol::kHttp1;
  ctx.FillSpan(&span);
  span.start_ns = request.start_ns;
  span.end_ns = std::max(response.end_ns, request.start_ns);
  span.tid = request.tid;
  span.request_tcp_seq = request.seq;
  span.response_tcp_seq = response.seq;
  // Swapped, not copied: both sides keep capacity for the next message.
  span.http.method.swap(request.method);
  span.http.target.swap(request.target);
  span.http.status = response.status;
  span.http.request_bytes = request.bytes;
  span.http.response_bytes = response.bytes;
  span.request_head = request.head;
  span.response_head = response.head;
  ctx.self->AddSpan(Protocol::kHttp1);
  ctx.spans->OnSpan(span);
  span.request_head = span.response_head = {};  // views into this stitcher
}

void Http1Stitcher::Lose(Stream& s) {
  s.state = State::kResync;
  // A response that could not be read most likely answered the oldest
  // request: forget that one, or every later response would be paired with
  // the request before its own.
  if (!s.is_request && pending_size_ > 0) PopPending();
}

void Http1Stitcher::PopPending() {
  pending_head_ = (pending_head_ + 1) % pending_.size();
  --pending_size_;
}

std::string_view Http1Stitcher::PendingMethod() const {
  return pending_size_ == 0 ? std::string_view() : pending_[pending_head_].method;
}

void Http1Stitcher::OnEnd(const ConnContext& ctx) {
  if (!upgraded_) {
    // What is delimited by the end is complete now; a response whose body
    // was cut short still answered its request. (A request still in flight
    // has no response to pair with.)
    switch (responses_.state) {
      case State::kResync:
      case State::kHead:
        break;
      default:
        Complete(responses_, responses_.last_exit_ns, ctx);
        break;
    }
  }
  requests_.state = responses_.state = State::kResync;
  pending_size_ = 0;
}

}  // namespace redmap::http1
