// The interface every L7 protocol implements, and the registry that picks
// one per connection. A new protocol is a new folder under protocols/ plus
// one line in kFactories (protocol.cc).
//
// The ConnTracker does the stream bookkeeping once for every protocol
// (DataStreamBuffer): it places each event's bytes by stream position,
// drops bytes seen before, turns missing bytes into explicit gaps, and keeps
// the bytes a parser could not use yet (an incomplete head) for the next
// event. A parser therefore sees each direction as an ordered sequence of
// segments: known bytes followed by unknown ones.
#ifndef REDMAP_AGGREGATORS_PROTOCOLS_PROTOCOL_H_
#define REDMAP_AGGREGATORS_PROTOCOLS_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "aggregators/self/self_metrics.h"
#include "aggregators/sources/event.h"
#include "aggregators/span/span.h"

namespace redmap {

// The syscall that moved some bytes.
struct EventInfo {
  uint64_t enter_ns = 0;
  uint64_t exit_ns = 0;
  uint32_t tid = 0;
};

// A stretch of one direction of a connection: `data` (known bytes) and then
// `unknown` more bytes that exist but were not captured (the kernel copies a
// prefix of each syscall; sendfile/splice bodies; lost events).
struct StreamSegment {
  // Stream offset of data[0]; the stream continues at pos + data.size() + unknown.
  uint64_t pos = 0;
  uint32_t seq = 0;  // the same position in the original 32-bit numbering (tcp_seq)
  std::string_view data;
  uint64_t unknown = 0;
  // data[0, held) are bytes the parser left unconsumed in earlier segments,
  // carried by held_event (the event of data[0]); the rest of data and the
  // unknown bytes came with `event`. For a gap between events (a position
  // jump), data is only the held bytes and `event` is the last event seen.
  size_t held = 0;
  EventInfo held_event;
  EventInfo event;
  // data[held] is where a new event's bytes begin (no overlap trimmed away):
  // parsers resynchronise only at such points.
  bool at_event_start = false;

  const EventInfo& EventAt(size_t offset) const { return offset < held ? held_event : event; }
  uint32_t SeqAt(size_t offset) const { return seq + static_cast<uint32_t>(offset); }
};

// What a parser knows about its connection; owned by the ConnTracker.
struct ConnContext {
  ConnKey key;
  Role role = Role::kUnknown;  // resolved before any segment reaches a parser
  Endpoint local;
  Endpoint remote;
  uint64_t cgroup_id = 0;
  std::string process_name;  // from the first event
  bool has_tcp_seq = false;
  // Server end whose client end is traced on this node and builds its spans
  // from this end's (DataEvent::peer_local).
  bool peer_local = false;
  bool keep_heads = true;  // ConnTrackerOptions::keep_heads
  SpanSink* spans = nullptr;
  SelfMetrics* self = nullptr;
  // Reused for every span emitted (its strings keep their capacity), so the
  // steady state does not allocate. Shared by all connections of a tracker.
  Span* scratch_span = nullptr;

  // Client and server endpoints, side and identity of a span on this connection.
  void FillSpan(Span* span) const;
};

// One per connection; a direction's segments arrive in stream order.
class ConnectionParser {
 public:
  virtual ~ConnectionParser() = default;
  // Returns how many leading bytes of seg.data it used. When seg.unknown is
  // 0, the rest is handed back (as the held part of the next segment) until
  // more bytes arrive, up to ConnTrackerOptions::max_buffer_bytes; when bytes
  // are unknown after data, the rest is dropped.
  virtual size_t OnSegment(Direction direction, const StreamSegment& seg,
                           const ConnContext& ctx) = 0;
  // The connection ended (close, idle expiry, end of replay, eviction):
  // complete what can be completed (e.g. bodies delimited by close).
  virtual void OnEnd(const ConnContext& ctx) = 0;
};

// nullptr for protocols without a parser (Protocol::kUnknown).
std::unique_ptr<ConnectionParser> NewConnectionParser(Protocol protocol);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_PROTOCOLS_PROTOCOL_H_
