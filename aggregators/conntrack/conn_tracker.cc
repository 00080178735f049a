#include "aggregators/conntrack/conn_tracker.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "aggregators/conntrack/data_stream_buffer.h"
#include "aggregators/protocols/protocol.h"
#include "bpf/protocol_infer.h"

namespace redmap {
namespace {

// Role from the bytes when the kernel side did not see connect/accept: the
// end that sends requests is the client.
Role InferRole(const DataEvent& e) {
  __u32 is_request = 0;
  const __u32 n = static_cast<__u32>(std::min<size_t>(e.payload.size(), REDMAP_INFER_BYTES));
  if (redmap_infer_protocol(reinterpret_cast<const __u8*>(e.payload.data()), n, &is_request) ==
      REDMAP_PROTO_UNKNOWN) {
    return Role::kUnknown;
  }
  return (is_request != 0) == (e.direction == Direction::kEgress) ? Role::kClient : Role::kServer;
}

}  // namespace

class ConnTracker::Impl {
 public:
  Impl(const ConnTrackerOptions& options, SpanSink* spans, SelfMetrics* self)
      : options_(options), spans_(spans), self_(self) {
    self_->SetTrackedConnectionsLimit(static_cast<int64_t>(options_.max_connections));
    self_->SetTrackedConnections(0);
  }

  ~Impl() { Flush(); }

  void OnData(const DataEvent& e) {
    if (e.protocol == Protocol::kUnknown) return;  // the kernel side counts these
    Conn* c = Lookup(e);
    if (c == nullptr) return;
    c->last_ns = std::max(c->last_ns, e.exit_ns);
    if (c->ctx.role == Role::kUnknown) {
      c->ctx.role = e.role != Role::kUnknown ? e.role : InferRole(e);
      if (c->ctx.role == Role::kUnknown) return;  // mid-message: wait for a message start
    }
    if (e.has_tcp_seq) c->ctx.has_tcp_seq = true;
    const Direction dir = e.direction;
    ConnectionParser* parser = c->parser.get();
    const ConnContext& ctx = c->ctx;
    auto result = c->streams[static_cast<size_t>(dir)].Add(
        e, [&](const StreamSegment& seg) { return parser->OnSegment(dir, seg, ctx); });
    if (result == DataStreamBuffer::AddResult::kOverflow) {
      self_->AddDropped(DropReason::kBufferOverflow);
    }
  }

  void OnClose(const CloseEvent& e) {
    auto it = conns_.find(e.conn);
    if (it != conns_.end()) Erase(it);
  }

  void ExpireIdle(uint64_t now_ns) {
    if (now_ns < options_.idle_timeout_ns) return;
    const uint64_t cutoff = now_ns - options_.idle_timeout_ns;
    // Oldest first along the LRU list: stop at the first one still active.
    while (lru_.prev != &lru_ && lru_.prev->last_ns < cutoff) {
      Erase(conns_.find(static_cast<Conn*>(lru_.prev)->ctx.key));
    }
  }

  void Flush() {
    while (lru_.prev != &lru_) Erase(conns_.find(static_cast<Conn*>(lru_.prev)->ctx.key));
  }

  size_t size() const { return conns_.size(); }

 private:
  // Intrusive LRU list: most recently used after the sentinel.
  struct LruNode {
    LruNode* prev = this;
    LruNode* next = this;
    uint64_t last_ns = 0;  // exit_ns of the latest event
    void Unlink() {
      prev->next = next;
      next->prev = prev;
    }
    void InsertAfter(LruNode* n) {
      prev = n;
      next = n->next;
      n->next->prev = this;
      n->next = this;
    }
  };
  struct Conn : LruNode {
    explicit Conn(size_t max_buffer_bytes)
        : streams{DataStreamBuffer(max_buffer_bytes), DataStreamBuffer(max_buffer_bytes)} {}
    ConnContext ctx;
    std::unique_ptr<ConnectionParser> parser;
    DataStreamBuffer streams[2];  // indexed by Direction
  };
  // Values are boxed: the LRU links need stable addresses.
  using Map = absl::flat_hash_map<ConnKey, std::unique_ptr<Conn>>;

  Conn* Lookup(const DataEvent& e) {
    auto it = conns_.find(e.conn);
    if (it != conns_.end()) {
      Conn* c = it->second.get();
      c->Unlink();
      c->InsertAfter(&lru_);
      return c;
    }
    auto parser = NewConnectionParser(e.protocol);
    if (parser == nullptr) return nullptr;
    if (conns_.size() >= options_.max_connections) {
      if (lru_.prev == &lru_) return nullptr;  // max_connections == 0
      self_->AddDropped(DropReason::kConnTableFull);
      Erase(conns_.find(static_cast<Conn*>(lru_.prev)->ctx.key));
    }
    auto conn = std::make_unique<Conn>(options_.max_buffer_bytes);
    Conn* c = conn.get();
    c->ctx.key = e.conn;
    c->ctx.local = e.local;
    c->ctx.remote = e.remote;
    c->ctx.cgroup_id = e.cgroup_id;
    c->ctx.process_name.assign(e.process_name);
    c->ctx.keep_heads = options_.keep_heads;
    c->ctx.spans = spans_;
    c->ctx.self = self_;
    c->ctx.scratch_span = &scratch_span_;
    c->parser = std::move(parser);
    c->InsertAfter(&lru_);
    conns_.emplace(e.conn, std::move(conn));
    self_->SetTrackedConnections(static_cast<int64_t>(conns_.size()));
    return c;
  }

  void Erase(Map::iterator it) {
    Conn* c = it->second.get();
    if (c->ctx.role != Role::kUnknown) c->parser->OnEnd(c->ctx);
    c->Unlink();
    conns_.erase(it);
    self_->SetTrackedConnections(static_cast<int64_t>(conns_.size()));
  }

  const ConnTrackerOptions options_;
  SpanSink* const spans_;
  SelfMetrics* const self_;
  Map conns_;
  LruNode lru_;  // sentinel
  Span scratch_span_;
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
