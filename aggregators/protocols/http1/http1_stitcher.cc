#include "aggregators/protocols/http1/http1_stitcher.h"

#include <algorithm>

namespace redmap::http1 {
namespace {

constexpr std::string_view kLastChunk = "0\r\n\r\n";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Http1Stitcher::Http1Stitcher() {
  requests_.is_request = true;
  responses_.is_request = false;
}

void Http1Stitcher::OnChunk(Direction direction, const StreamChunk& chunk,
                            const ConnContext& ctx) {
  // A client sends requests; a server receives them.
  if (upgraded_) return;
  const bool request_dir = (direction == Direction::kEgress) == (ctx.role == Role::kClient);
  Feed(request_dir ? requests_ : responses_, chunk, ctx);
}

void Http1Stitcher::OnEnd(const ConnContext& ctx) {
  // Requests complete before responses can be paired with them.
  for (Stream* s : {&requests_, &responses_}) {
    if (upgraded_) break;
    if (s->state == State::kUntilClose || s->state == State::kLost) {
      Complete(*s, s->last_exit_ns, ctx);
    }
    s->state = State::kHead;
  }
  pending_.clear();
}

void Http1Stitcher::Error(Stream& s, const ConnContext& ctx) {
  if (!s.in_resync) ctx.self->AddParseError(Protocol::kHttp1);
  s.in_resync = true;
  s.head_active = false;
  s.head_buf.clear();
  s.state = State::kHead;
}

void Http1Stitcher::Gap(Stream& s, uint64_t n, const ConnContext& ctx) {
  switch (s.state) {
    case State::kHead:
      // The start of whatever came next is gone: skip to a message start.
      s.head_active = false;
      s.head_buf.clear();
      s.in_resync = true;
      break;
    case State::kBody:
      if (n < s.remaining) {
        s.remaining -= n;
        s.msg.bytes += n;
      } else {
        s.msg.bytes += s.remaining;
        s.remaining = 0;
        Complete(s, s.last_exit_ns, ctx);
        s.state = State::kHead;
        s.in_resync = true;
      }
      break;
    case State::kChunkSize:
    case State::kChunkData:
    case State::kChunkCrlf:
    case State::kTrailer:
      s.msg.bytes += n;
      s.state = State::kLost;
      break;
    case State::kLost:
    case State::kUntilClose:
      s.msg.bytes += n;
      break;
  }
}

void Http1Stitcher::Feed(Stream& s, const StreamChunk& c, const ConnContext& ctx) {
  if (!s.started) {
    s.started = true;
    s.pos = c.pos;
    // Mid-stream start (connection older than redmap): wait for a message start.
    s.in_resync = true;
  }
  const uint64_t end = c.pos + c.len;
  if (end <= s.pos) return;  // already seen (retransmit, MSG_PEEK)
  uint64_t o = 0;
  if (c.pos < s.pos) {
    o = s.pos - c.pos;
  } else if (c.pos > s.pos) {
    Gap(s, c.pos - s.pos, ctx);
  }
  const uint64_t chunk_start = o;
  const std::string_view known = c.known;

  while (o < c.len) {
    switch (s.state) {
      case State::kHead:
        o = FeedHead(s, c, o, ctx);
        break;
      case State::kBody: {
        uint64_t take = std::min<uint64_t>(s.remaining, c.len - o);
        o += take;
        s.remaining -= take;
        s.msg.bytes += take;
        if (s.remaining == 0) {
          Complete(s, c.exit_ns, ctx);
          s.state = State::kHead;
        }
        break;
      }
      case State::kChunkSize: {
        if (o >= known.size()) {
          s.state = State::kLost;  // the size line is in a gap
          break;
        }
        std::string_view avail = known.substr(o);
        size_t prev = s.line_buf.size();
        std::string_view line = avail;
        if (prev > 0) {
          s.line_buf.append(avail.substr(0, 1100 - std::min<size_t>(prev, 1100)));
          line = s.line_buf;
        }
        uint64_t size = 0;
        size_t consumed = 0;
        ParseState st = ParseChunkSize(line, &size, &consumed);
        if (st == ParseState::kSuccess) {
          uint64_t used = consumed - prev;
          o += used;
          s.msg.bytes += used;
          s.line_buf.clear();
          if (size == 0) {
            s.state = State::kTrailer;
          } else {
            s.remaining = size;
            s.state = State::kChunkData;
          }
        } else if (st == ParseState::kNeedsMoreData && known.size() == c.len) {
          if (prev == 0) s.line_buf.assign(avail);
          s.msg.bytes += c.len - o;
          o = c.len;
        } else {
          // Invalid, or the line runs into a gap: framing is lost, not the message.
          if (st == ParseState::kInvalid) ctx.self->AddParseError(Protocol::kHttp1);
          s.line_buf.clear();
          s.state = State::kLost;
        }
        break;
      }
      case State::kChunkData: {
        uint64_t take = std::min<uint64_t>(s.remaining, c.len - o);
        o += take;
        s.remaining -= take;
        s.msg.bytes += take;
        if (s.remaining == 0) {
          s.remaining = 2;  // CRLF after the data
          s.state = State::kChunkCrlf;
        }
        break;
      }
      case State::kChunkCrlf: {
        uint64_t take = std::min<uint64_t>(s.remaining, c.len - o);
        o += take;
        s.remaining -= take;
        s.msg.bytes += take;
        if (s.remaining == 0) s.state = State::kChunkSize;
        break;
      }
      case State::kTrailer: {
        if (o >= known.size()) {
          // Trailers are rare; an unseen one is most likely the final CRLF.
          s.msg.bytes += c.len - o;
          o = c.len;
          Complete(s, c.exit_ns, ctx);
          s.state = State::kHead;
          break;
        }
        std::string_view avail = known.substr(o);
        size_t nl = avail.find('\n');
        if (nl == std::string_view::npos) {
          s.line_buf.append(avail.substr(0, 1024 - std::min<size_t>(s.line_buf.size(), 1024)));
          s.msg.bytes += avail.size();
          o += avail.size();
          break;
        }
        // The line may have started in an earlier chunk ("\r" | "\n").
        const size_t line_len = s.line_buf.size() + nl;
        const bool empty_line =
            line_len == 0 ||
            (line_len == 1 && (s.line_buf.empty() ? avail[0] : s.line_buf[0]) == '\r');
        s.line_buf.clear();
        o += nl + 1;
        s.msg.bytes += nl + 1;
        if (empty_line) {
          Complete(s, c.exit_ns, ctx);
          s.state = State::kHead;
        }
        break;
      }
      case State::kLost: {
        if (o == chunk_start && LooksLikeMessageStart(known.substr(std::min<size_t>(o, known.size())),
                                                      s.is_request)) {
          Complete(s, s.last_exit_ns, ctx);
          s.state = State::kHead;
          break;
        }
        s.msg.bytes += c.len - o;
        o = c.len;
        if (known.size() == c.len && EndsWith(known, kLastChunk)) {
          Complete(s, c.exit_ns, ctx);
          s.state = State::kHead;
        }
        break;
      }
      case State::kUntilClose:
        s.msg.bytes += c.len - o;
        o = c.len;
        break;
    }
  }
  s.pos = end;
  s.last_exit_ns = c.exit_ns;
  if (s.state == State::kLost || s.state == State::kUntilClose) s.msg.end_ns = c.exit_ns;
}

uint64_t Http1Stitcher::FeedHead(Stream& s, const StreamChunk& c, uint64_t o,
                                 const ConnContext& ctx) {
  const std::string_view known = c.known;
  if (o >= known.size()) {
    // Bytes where a head should be were not captured.
    if (s.head_active) Error(s, ctx);
    s.in_resync = true;
    return c.len;
  }
  std::string_view avail = known.substr(o);
  if (!s.head_active) {
    if (s.in_resync && !LooksLikeMessageStart(avail, s.is_request)) return c.len;
    s.head_active = true;
    s.head_buf.clear();
    s.msg = Message();
    // Received bytes are "seen" when the read returns (a blocking read may
    // have waited idle since its entry); sent bytes when the write starts.
    s.msg.start_ns = (s.is_request && ctx.role == Role::kServer) ? c.exit_ns : c.enter_ns;
    s.msg.tid = c.tid;
    s.msg.seq = c.seq + static_cast<uint32_t>(o);
  }
  const size_t limit = std::min(kMaxHeadBytes, ctx.max_buffer_bytes);
  const size_t prev = s.head_buf.size();
  std::string_view buf = avail;
  if (prev > 0) {
    size_t room = prev < limit + 1 ? limit + 1 - prev : 0;
    s.head_buf.append(avail.substr(0, room));
    buf = s.head_buf;
  }
  Head head;
  size_t consumed = 0;
  ParseState st = ParseHead(buf, s.is_request, &head, &consumed);
  if (st == ParseState::kSuccess) {
    uint64_t used = consumed - prev;
    s.head_active = false;
    s.head_buf.clear();
    s.in_resync = false;
    s.msg.bytes = consumed;
    StartBody(s, head, c.exit_ns, ctx);
    return o + used;
  }
  if (st == ParseState::kNeedsMoreData) {
    if (buf.size() > limit) {
      ctx.self->AddDropped(DropReason::kBufferOverflow);
      Error(s, ctx);
      return c.len;
    }
    if (known.size() < c.len) {
      // The head runs into uncaptured bytes (larger than capture.payload_bytes).
      // Salvage the start line when it is complete; framing is then unknown.
      std::string_view start_line = buf.substr(0, buf.find('\n'));
      if (start_line.size() < buf.size()) {
        if (!start_line.empty() && start_line.back() == '\r') start_line.remove_suffix(1);
        std::string line(start_line);
        line += "\r\n\r\n";
        size_t unused;
        if (ParseHead(line, s.is_request, &head, &unused) == ParseState::kSuccess) {
          s.head_active = false;
          s.head_buf.clear();
          s.in_resync = false;
          s.msg.method = head.method;
          s.msg.target = head.target;
          s.msg.status = head.status;
          s.msg.bytes = c.len - o + prev;
          if (s.is_request) {
            // Most requests are one write: end it with this chunk.
            Complete(s, c.exit_ns, ctx);
            s.state = State::kHead;
          } else {
            s.state = State::kLost;
            s.msg.end_ns = c.exit_ns;
          }
          return c.len;
        }
      }
      Error(s, ctx);
      return c.len;
    }
    if (prev == 0) s.head_buf.assign(avail);
    return c.len;
  }
  Error(s, ctx);
  return c.len;
}

void Http1Stitcher::StartBody(Stream& s, const Head& head, uint64_t end_ns,
                              const ConnContext& ctx) {
  s.msg.method = head.method;
  s.msg.target = head.target;
  s.msg.status = head.status;
  BodyKind kind;
  if (s.is_request) {
    kind = RequestBodyKind(head);
  } else {
    std::string_view method = pending_.empty() ? std::string_view() : pending_.front().method;
    kind = ResponseBodyKind(head, method);
  }
  switch (kind) {
    case BodyKind::kNone:
      Complete(s, end_ns, ctx);
      s.state = State::kHead;
      break;
    case BodyKind::kLength:
      s.remaining = head.content_length;
      s.state = State::kBody;
      break;
    case BodyKind::kChunked:
      s.line_buf.clear();
      s.state = State::kChunkSize;
      break;
    case BodyKind::kUntilClose:
      s.msg.end_ns = end_ns;
      s.state = State::kUntilClose;
      break;
  }
}

void Http1Stitcher::Complete(Stream& s, uint64_t end_ns, const ConnContext& ctx) {
  s.msg.end_ns = end_ns;
  if (s.is_request) {
    if (pending_.size() >= kMaxPendingRequests) {
      pending_.pop_front();  // never answered: count, keep the table bounded
      ctx.self->AddParseError(Protocol::kHttp1);
    }
    pending_.push_back(std::move(s.msg));
    s.msg = Message();
    return;
  }
  Message response = std::move(s.msg);
  s.msg = Message();
  // Interim responses (100 Continue, 103 Early Hints) precede the real one.
  if (response.status >= 100 && response.status < 200 && response.status != 101) return;
  if (pending_.empty()) return;  // answer to a request seen before redmap started
  Message request = std::move(pending_.front());
  pending_.pop_front();

  Span span;
  span.protocol = Protocol::kHttp1;
  span.side = ctx.role;
  span.start_ns = request.start_ns;
  span.end_ns = response.end_ns;
  span.conn = ctx.key;
  span.tid = request.tid;
  span.cgroup_id = ctx.cgroup_id;
  span.process_name = ctx.process_name;
  if (ctx.role == Role::kClient) {
    span.client = ctx.local;
    span.server = ctx.remote;
  } else {
    span.client = ctx.remote;
    span.server = ctx.local;
  }
  span.request_tcp_seq = request.seq;
  span.has_tcp_seq = ctx.has_tcp_seq;
  span.http.method = std::move(request.method);
  span.http.target = std::move(request.target);
  span.http.status = response.status;
  span.http.request_bytes = request.bytes;
  span.http.response_bytes = response.bytes;
  ctx.self->AddSpan(Protocol::kHttp1);
  ctx.spans->OnSpan(span);
  if (response.status == 101) {
    upgraded_ = true;  // switched protocols: nothing after this is HTTP/1
  }
}

}  // namespace redmap::http1
