// Parse once when both ends are local (capture.parse_once): the kernel side
// copies a connection's bytes only at its server end when the client end is
// a traced process on this node too (socket_trace.bpf.c, local_clients).
// The client end's events then carry positions and times but no payload,
// and its spans are the server end's spans seen from the client: the same
// method, target, status, sizes and heads (the same bytes), with the
// client's own timestamps and thread. They are matched by TCP sequence
// number: the client's write_seq at a request's first byte is the server's
// copied_seq of it, and the server's write_seq at a response's last byte is
// the client's copied_seq of it.
//
// Either side may come first: a server span usually precedes the client's
// read of its response's end, but a client's write or read can return after
// the server's write did. So both are kept until they meet, within bounds:
// kMaxWaiting spans per client end, kMaxPositions positions per direction,
// and kMaxStashed spans whose client end has not been seen yet (PeerStash).
#ifndef REDMAP_AGGREGATORS_CONNTRACK_PEER_JOIN_H_
#define REDMAP_AGGREGATORS_CONNTRACK_PEER_JOIN_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "aggregators/protocols/protocol.h"
#include "aggregators/sources/event.h"
#include "aggregators/span/span.h"

namespace redmap {

// A client end and its server, as the client names them.
struct PeerKey {
  Endpoint client;
  Endpoint server;
  friend bool operator==(const PeerKey&, const PeerKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const PeerKey& k) {
    return H::combine(std::move(h), k.client, k.server);
  }
};

// What a server end's span tells its client end.
struct PeerSpan {
  Protocol protocol = Protocol::kUnknown;
  uint32_t request_seq = 0;       // the request's first byte
  uint32_t response_end_seq = 0;  // one past the response's last byte
  uint64_t server_end_ns = 0;     // when the server sent it (for the stash's age bound)
  std::string method;
  std::string target;
  int status = 0;
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  std::string request_head;
  std::string response_head;

  void Assign(const Span& server, bool keep_heads);
};

// The client end of a pair: its events' stream positions and the server
// spans waiting for them.
class PeerClient {
 public:
  static constexpr size_t kMaxWaiting = 128;
  static constexpr size_t kMaxPositions = 256;

  // One of the client end's events (its payload is not needed).
  void OnEvent(const DataEvent& e);
  // A server span for this connection. Returns false when the oldest
  // waiting span had to be dropped to make room.
  bool Add(const Span& server, bool keep_heads);
  bool Add(PeerSpan&& span);
  // Emits every waiting span whose request start and response end this end
  // has been seen at, in order, through ctx.spans (ctx is the client end's;
  // *scratch is reused). Spans whose positions this end can no longer see
  // (an event lost, or seen before redmap paired the ends) are dropped and
  // counted.
  void Match(const ConnContext& ctx, Span* scratch);
  // Spans still waiting (dropped with the connection).
  size_t waiting() const { return size_; }

 private:
  struct Position {
    uint32_t seq = 0;
    uint32_t len = 0;
    uint64_t ns = 0;  // sends: the write's start; receives: the read's return
    uint32_t tid = 0;
  };
  // A slot at the back, dropping the oldest waiting span when full.
  PeerSpan& Push(bool* room);
  static const Position* Find(const std::vector<Position>& v, uint32_t seq);
  static bool Passed(const std::vector<Position>& v, uint32_t seq);
  static void Prune(std::vector<Position>* v, uint32_t seq);
  static void Record(std::vector<Position>* v, const Position& p);

  std::vector<Position> sent_;
  std::vector<Position> received_;
  std::vector<PeerSpan> slots_;  // FIFO ring; slots (and their strings) are reused
  size_t head_ = 0;
  size_t size_ = 0;
};

// Server spans whose client end has not sent an event since the pair was
// made (its events can reach userspace after the server's): bounded FIFO,
// the oldest dropped and counted.
class PeerStash {
 public:
  static constexpr size_t kMaxStashed = 1024;
  // Spans older than this when claimed belong to an earlier connection on
  // the same ports: dropped.
  static constexpr uint64_t kMaxAgeNs = 10ull * 1000 * 1000 * 1000;

  // Returns false when the oldest stashed span was dropped.
  bool Put(const PeerKey& key, const Span& server, bool keep_heads);
  // Moves the spans stashed for key into client, oldest first. Returns how
  // many were dropped as too old relative to now_ns.
  size_t Take(const PeerKey& key, uint64_t now_ns, PeerClient* client);
  // Drops spans older than kMaxAgeNs at now_ns (their client end never
  // showed). Returns how many.
  size_t Expire(uint64_t now_ns);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    PeerKey key;
    PeerSpan span;
  };
  std::vector<Entry> entries_;  // oldest first
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_CONNTRACK_PEER_JOIN_H_
