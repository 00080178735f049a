#include "aggregators/conntrack/conn_tracker.h"

#include <list>

#include "absl/container/flat_hash_map.h"
#include "aggregators/protocols/protocol.h"
#include "bpf/protocol_infer.h"

namespace redmap {

class ConnTracker::Impl {
 public:
  Impl(const ConnTrackerOptions& options, SpanSink* spans, SelfMetrics* self)
      : options_(options), spans_(spans), self_(self) {
    self_->SetTrackedConnectionsLimit(static_cast<int64_t>(options_.max_connections));
  }

  ~Impl() { Flush(); }

  void OnData(const DataEvent& e) {
    if (e.protocol == Protocol::kUnknown) return;
    Conn* conn = Lookup(e);
    if (conn == nullptr) return;
    conn->last_ns = e.exit_ns;

    if (conn->ctx.role == Role::kUnknown) {
      conn->ctx.role = e.role != Role::kUnknown ? e.role : InferRole(e);
      if (conn->ctx.role == Role::kUnknown) return;  // nothing to tell yet
    }

    StreamPos& sp = conn->pos[e.direction == Direction::kEgress ? 0 : 1];
    uint64_t pos;
    if (e.has_tcp_seq) {
      // Unwrap the 32-bit sequence number relative to the last one seen.
      if (!sp.init) {
        sp.init = true;
        sp.last_pos = (1ull << 32) + e.tcp_seq;  // headroom for small steps back
      } else {
        sp.last_pos += static_cast<int64_t>(static_cast<int32_t>(e.tcp_seq - sp.last_seq));
      }
      sp.last_seq = e.tcp_seq;
      pos = sp.last_pos;
    } else {
      pos = sp.next_pos;
      sp.next_pos += e.byte_count;
    }

    StreamChunk chunk;
    chunk.pos = pos;
    chunk.len = e.byte_count;
    chunk.known = e.payload;
    chunk.enter_ns = e.enter_ns;
    chunk.exit_ns = e.exit_ns;
    chunk.tid = e.tid;
    chunk.seq = e.tcp_seq;
    conn->parser->OnChunk(e.direction, chunk, conn->ctx);
  }

  void OnClose(const CloseEvent& e) {
    auto it = conns_.find(e.conn);
    if (it == conns_.end()) return;
    Erase(it);
  }

  void ExpireIdle(uint64_t now_ns) {
    if (now_ns < options_.idle_timeout_ns) return;
    const uint64_t cutoff = now_ns - options_.idle_timeout_ns;
    // The LRU tail is the least recently used: stop at the first fresh one.
    while (!lru_.empty()) {
      auto it = conns_.find(lru_.back());
      if (it->second.last_ns >= cutoff) break;
      Erase(it);
    }
  }

  void Flush() {
    while (!lru_.empty()) Erase(conns_.find(lru_.back()));
  }

  size_t size() const { return conns_.size(); }

 private:
  struct StreamPos {
    bool init = false;
    uint32_t last_seq = 0;
    uint64_t last_pos = 0;
    uint64_t next_pos = 0;
  };
  struct Conn {
    ConnContext ctx;
    std::unique_ptr<ConnectionParser> parser;
    StreamPos pos[2];  // egress, ingress
    uint64_t last_ns = 0;
    std::list<ConnKey>::iterator lru;
  };
  using Map = absl::flat_hash_map<ConnKey, Conn>;

  static Role InferRole(const DataEvent& e) {
    __u32 is_request = 0;
    auto proto = redmap_infer_protocol(reinterpret_cast<const __u8*>(e.payload.data()),
                                       static_cast<__u32>(e.payload.size()), &is_request);
    if (proto == REDMAP_PROTO_UNKNOWN) return Role::kUnknown;
    return (is_request != 0) == (e.direction == Direction::kEgress) ? Role::kClient
                                                                     : Role::kServer;
  }

  Conn* Lookup(const DataEvent& e) {
    auto it = conns_.find(e.conn);
    if (it != conns_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);  // most recently used first
      return &it->second;
    }
    if (conns_.size() >= options_.max_connections && !lru_.empty()) {
      self_->AddDropped(DropReason::kConnTableFull);
      Erase(conns_.find(lru_.back()));
    }
    auto parser = NewConnectionParser(e.protocol);
    if (parser == nullptr) return nullptr;
    Conn& c = conns_[e.conn];
    c.ctx.key = e.conn;
    c.ctx.local = e.local;
    c.ctx.remote = e.remote;
    c.ctx.cgroup_id = e.cgroup_id;
    c.ctx.process_name.assign(e.process_name);
    c.ctx.has_tcp_seq = e.has_tcp_seq;
    c.ctx.max_buffer_bytes = options_.max_buffer_bytes;
    c.ctx.spans = spans_;
    c.ctx.self = self_;
    c.parser = std::move(parser);
    lru_.push_front(e.conn);
    c.lru = lru_.begin();
    self_->SetTrackedConnections(static_cast<int64_t>(conns_.size()));
    return &c;
  }

  void Erase(Map::iterator it) {
    if (it->second.ctx.role != Role::kUnknown) it->second.parser->OnEnd(it->second.ctx);
    lru_.erase(it->second.lru);
    conns_.erase(it);
    self_->SetTrackedConnections(static_cast<int64_t>(conns_.size()));
  }

  ConnTrackerOptions options_;
  SpanSink* spans_;
  SelfMetrics* self_;
  Map conns_;
  std::list<ConnKey> lru_;
};

ConnTracker::ConnTracker(const ConnTrackerOptions& options, SpanSink* spans, SelfMetrics* self)
    : impl_(std::make_unique<Impl>(options, spans, self)) {}
ConnTracker::~ConnTracker() = default;
void ConnTracker::OnData(const DataEvent& event) { impl_->OnData(event); }
void ConnTracker::OnClose(const CloseEvent& event) { impl_->OnClose(event); }
void ConnTracker::ExpireIdle(uint64_t now_ns) { impl_->ExpireIdle(now_ns); }
void ConnTracker::Flush() { impl_->Flush(); }
size_t ConnTracker::connections() const { return impl_->size(); }

}  // namespace redmap
