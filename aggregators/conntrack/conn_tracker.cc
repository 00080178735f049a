#include "aggregators/conntrack/conn_tracker.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "aggregators/conntrack/data_stream_buffer.h"
#include "aggregators/conntrack/peer_join.h"
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
  struct Conn;

 public:
  Impl(const ConnTrackerOptions& options, SpanSink* spans, SelfMetrics* self)
      : options_(options), spans_(spans), self_(self), server_spans_(this) {
    self_->SetTrackedConnectionsLimit(static_cast<int64_t>(options_.max_connections));
    self_->SetTrackedConnections(0);
    self_->SetPeerStashLimit(static_cast<int64_t>(PeerStash::kMaxStashed));
    self_->SetPeerStashEntries(0);
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
    if (e.peer_local && !c->ctx.peer_local) {
      c->ctx.peer_local = true;
      c->ctx.spans = &server_spans_;  // its spans also go to the client end
    }
    if (c->peer != nullptr && PeerEvent(c, e)) return;
    if (e.compact) {  // no bytes to parse: an end the tracker did not take for a client
      self_->AddDropped(DropReason::kPeerUnmatched);
      return;
    }
    const Direction dir = e.direction;
    ConnectionParser* parser = c->parser.get();
    const ConnContext& ctx = c->ctx;
    current_ = c;  // the connection whose parser may emit spans now
    auto result = c->streams[static_cast<size_t>(dir)].Add(
        e, [&](const StreamSegment& seg) { return parser->OnSegment(dir, seg, ctx); });
    current_ = nullptr;
    if (result == DataStreamBuffer::AddResult::kOverflow) {
      self_->AddDropped(DropReason::kBufferOverflow);
    }
  }

  // A client end that may pair with a local server end (a client whose
  // connect the kernel side saw): true when the event is consumed here.
  bool PeerEvent(Conn* c, const DataEvent& e) {
    c->peer->OnEvent(e);
    if (!c->peer_indexed) {
      if (!e.peer_parses) {
        // The kernel side copies its bytes: its first read says it is
        // not paired, and it is parsed as usual from here on.
        if (e.direction == Direction::kIngress) c->peer.reset();
        return false;
      }
      // Paired: from now on this end's spans come from the server end's.
      const PeerKey key{c->ctx.local, c->ctx.remote};
      c->peer_indexed = true;
      peers_[key] = c;
      if (size_t stale = stash_.Take(key, e.exit_ns, c->peer.get()); stale > 0) {
        self_->AddDropped(DropReason::kPeerUnmatched, stale);
      }
      self_->SetPeerStashEntries(static_cast<int64_t>(stash_.size()));
    }
    c->peer->Match(c->ctx, &peer_scratch_);
    return true;
  }

  // A span of a server end whose client end is on this node.
  void OnServerSpan(const Span& span) {
    spans_->OnSpan(span);
    if (span.side != Role::kServer || !span.has_tcp_seq) return;
    Conn* server = current_;
    Conn* client = server != nullptr ? server->peer_client : nullptr;
    if (client == nullptr) {
      const PeerKey key{span.client, span.server};
      auto it = peers_.find(key);
      if (it == peers_.end()) {
        if (!stash_.Put(key, span, options_.keep_heads)) {
          self_->AddDropped(DropReason::kPeerUnmatched);
        }
        self_->SetPeerStashEntries(static_cast<int64_t>(stash_.size()));
        return;
      }
      client = it->second;
      if (server != nullptr) {  // one lookup per pair, not per span
        server->peer_client = client;
        client->peer_server = server;
      }
    }
    if (!client->peer->Add(span, options_.keep_heads)) {
      self_->AddDropped(DropReason::kPeerUnmatched);
    }
    client->peer->Match(client->ctx, &peer_scratch_);
  }

  void OnClose(const CloseEvent& e) {
    auto it = conns_.find(e.conn);
    if (it != conns_.end()) Erase(it);
  }

  void ExpireIdle(uint64_t now_ns) {
    // Server spans whose client end never showed (it exited, or its events
    // were lost): counted now rather than when pushed out.
    if (size_t n = stash_.Expire(now_ns); n > 0) {
      self_->AddDropped(DropReason::kPeerUnmatched, n);
      self_->SetPeerStashEntries(static_cast<int64_t>(stash_.size()));
    }
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
    // Client end that may pair with a local server end (capture.parse_once):
    // set at its first event, reset once its first read shows it is not
    // paired; peer_indexed once it is (it is then in peers_).
    std::unique_ptr<PeerClient> peer;
    bool peer_indexed = false;
    // The other end of a pair, once a span has gone from server to client
    // (each clears the other's link when erased).
    Conn* peer_client = nullptr;
    Conn* peer_server = nullptr;
  };
  class ServerSpans : public SpanSink {
   public:
    explicit ServerSpans(Impl* impl) : impl_(impl) {}
    void OnSpan(const Span& span) override { impl_->OnServerSpan(span); }

   private:
    Impl* const impl_;
  };
  // Values are boxed: the LRU links need stable addresses.
  using Map = absl::flat_hash_map<ConnKey, std::unique_ptr<Conn>>;

  Conn* Lookup(const DataEvent& e) {
    // The connection of the previous event: a paired client end's write and
    // read come from one record, one after the other. It is at the front
    // of the LRU list already.
    if (last_ != nullptr && last_->ctx.key == e.conn) return last_;
    auto it = conns_.find(e.conn);
    if (it != conns_.end()) {
      Conn* c = it->second.get();
      c->Unlink();
      c->InsertAfter(&lru_);
      last_ = c;
      return c;
    }
    if (e.compact) {
      // A paired client end whose connection was evicted or never seen:
      // its spans cannot be built without its endpoints.
      self_->AddDropped(DropReason::kPeerUnmatched);
      return nullptr;
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
    if (e.role == Role::kClient && e.has_tcp_seq) c->peer = std::make_unique<PeerClient>();
    c->InsertAfter(&lru_);
    last_ = c;
    conns_.emplace(e.conn, std::move(conn));
    self_->SetTrackedConnections(static_cast<int64_t>(conns_.size()));
    return c;
  }

  void Erase(Map::iterator it) {
    Conn* c = it->second.get();
    current_ = c;
    if (c->ctx.role != Role::kUnknown) c->parser->OnEnd(c->ctx);
    current_ = nullptr;
    if (c->peer_client != nullptr) c->peer_client->peer_server = nullptr;
    if (c->peer_server != nullptr) c->peer_server->peer_client = nullptr;
    if (c->peer_indexed) {
      // A newer connection on the same ports may have taken the key (this
      // one ended without a close event, e.g. its process exited).
      auto p = peers_.find(PeerKey{c->ctx.local, c->ctx.remote});
      if (p != peers_.end() && p->second == c) peers_.erase(p);
      // Requests whose responses this end never read to the end.
      if (size_t n = c->peer->waiting(); n > 0) self_->AddDropped(DropReason::kPeerUnmatched, n);
    }
    c->Unlink();
    if (last_ == c) last_ = nullptr;
    conns_.erase(it);
    self_->SetTrackedConnections(static_cast<int64_t>(conns_.size()));
  }

  const ConnTrackerOptions options_;
  SpanSink* const spans_;
  SelfMetrics* const self_;
  Map conns_;
  LruNode lru_;           // sentinel
  Conn* last_ = nullptr;  // of the latest Lookup (cleared when erased)
  Span scratch_span_;
  // capture.parse_once: paired client ends by their endpoints, server spans
  // waiting for their client end's first event, and the span the client
  // ends' spans are built in.
  ServerSpans server_spans_;
  Conn* current_ = nullptr;
  absl::flat_hash_map<PeerKey, Conn*> peers_;
  PeerStash stash_;
  Span peer_scratch_;
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
