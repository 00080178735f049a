// The interface every L7 protocol implements, and the registry that picks
// one per connection. A new protocol is a new folder under protocols/ plus
// one line in NewConnectionParser (protocol.cc).
#ifndef REDMAP_AGGREGATORS_PROTOCOLS_PROTOCOL_H_
#define REDMAP_AGGREGATORS_PROTOCOLS_PROTOCOL_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "aggregators/self/self_metrics.h"
#include "aggregators/sources/event.h"
#include "aggregators/span/span.h"

namespace redmap {

// Bytes of one direction of a connection, placed by stream position. Only
// the first known.size() of len bytes are known; the rest are a gap (the
// kernel captured a prefix, or the bytes went by sendfile).
struct StreamChunk {
  uint64_t pos = 0;  // unwrapped stream offset of the first byte
  uint32_t len = 0;
  std::string_view known;
  uint64_t enter_ns = 0;
  uint64_t exit_ns = 0;
  uint32_t tid = 0;
  uint32_t seq = 0;  // original 32-bit stream position (tcp_seq) of the first byte
};

// What a parser knows about its connection; owned by the ConnTracker.
struct ConnContext {
  ConnKey key;
  Role role = Role::kUnknown;  // resolved before any chunk reaches a parser
  Endpoint local;
  Endpoint remote;
  uint64_t cgroup_id = 0;
  std::string process_name;  // from the first event; fallback for service_name
  bool has_tcp_seq = false;
  size_t max_buffer_bytes = 256 * 1024;  // unparsed bytes a parser may hold per direction
  SpanSink* spans = nullptr;
  SelfMetrics* self = nullptr;
};

// One per connection. Chunks of a direction arrive in position order with
// duplicates removed; gaps show as a pos beyond the previous chunk's end.
class ConnectionParser {
 public:
  virtual ~ConnectionParser() = default;
  virtual void OnChunk(Direction direction, const StreamChunk& chunk, const ConnContext& ctx) = 0;
  // The connection ended (close, idle expiry, end of replay): complete what
  // can be completed (e.g. bodies delimited by close).
  virtual void OnEnd(const ConnContext& ctx) = 0;
};

std::unique_ptr<ConnectionParser> NewConnectionParser(Protocol protocol);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_PROTOCOLS_PROTOCOL_H_
