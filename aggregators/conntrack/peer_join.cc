#include "aggregators/conntrack/peer_join.h"

#include <algorithm>
#include <utility>

namespace redmap {

void PeerSpan::Assign(const Span& server, bool keep_heads) {
  protocol = server.protocol;
  request_seq = server.request_tcp_seq;
  response_end_seq = server.response_tcp_seq + static_cast<uint32_t>(server.http.response_bytes);
  server_end_ns = server.end_ns;
  method.assign(server.http.method);
  target.assign(server.http.target);
  status = server.http.status;
  request_bytes = server.http.request_bytes;
  response_bytes = server.http.response_bytes;
  if (keep_heads) {
    request_head.assign(server.request_head);
    response_head.assign(server.response_head);
  } else {
    request_head.clear();
    response_head.clear();
  }
}

void PeerClient::OnEvent(const DataEvent& e) {
  if (e.direction == Direction::kEgress) {
    Record(&sent_, Position{e.tcp_seq, e.byte_count, e.enter_ns, e.tid});
  } else {
    Record(&received_, Position{e.tcp_seq, e.byte_count, e.exit_ns, e.tid});
  }
}

PeerSpan& PeerClient::Push(bool* room) {
  *room = size_ < kMaxWaiting;
  if (!*room) {
    head_ = (head_ + 1) % slots_.size();
    --size_;
  }
  if (size_ == slots_.size()) {
    std::rotate(slots_.begin(), slots_.begin() + static_cast<ptrdiff_t>(head_), slots_.end());
    head_ = 0;
    slots_.emplace_back();
  }
  PeerSpan& slot = slots_[(head_ + size_) % slots_.size()];
  ++size_;
  return slot;
}

bool PeerClient::Add(const Span& server, bool keep_heads) {
  bool room = true;
  Push(&room).Assign(server, keep_heads);
  return room;
}

bool PeerClient::Add(PeerSpan&& span) {
  bool room = true;
  Push(&room) = std::move(span);
  return room;
}

// The position holding byte `seq` (32-bit stream numbering, wrapping).
const PeerClient::Position* PeerClient::Find(const std::vector<Position>& v, uint32_t seq) {
  for (const Position& p : v) {
    if (static_cast<uint32_t>(seq - p.seq) < p.len) return &p;
  }
  return nullptr;
}

// Whether `seq` lies before every position kept: it will never be found.
bool PeerClient::Passed(const std::vector<Position>& v, uint32_t seq) {
  return !v.empty() && static_cast<int32_t>(v.front().seq - seq) > 0;
}

// Forgets positions that end at or before `seq`.
void PeerClient::Prune(std::vector<Position>* v, uint32_t seq) {
  auto it = v->begin();
  while (it != v->end() && static_cast<int32_t>(it->seq + it->len - seq) <= 0) ++it;
  v->erase(v->begin(), it);
}

void PeerClient::Record(std::vector<Position>* v, const Position& p) {
  if (p.len == 0) return;
  if (v->size() >= kMaxPositions) v->erase(v->begin(), v->begin() + kMaxPositions / 2);
  v->push_back(p);
}

void PeerClient::Match(const ConnContext& ctx, Span* scratch) {
  while (size_ > 0) {
    PeerSpan& p = slots_[head_];
    const Position* start = Find(sent_, p.request_seq);
    const Position* end = Find(received_, p.response_end_seq - 1);
    if ((start == nullptr && Passed(sent_, p.request_seq)) ||
        (end == nullptr && Passed(received_, p.response_end_seq - 1))) {
      ctx.self->AddDropped(DropReason::kPeerUnmatched);
    } else if (start == nullptr || end == nullptr) {
      return;  // this end has not got that far yet
    } else {
      Span& s = *scratch;
      s.protocol = p.protocol;
      ctx.FillSpan(&s);
      s.start_ns = start->ns;
      s.end_ns = std::max(end->ns, start->ns);
      s.tid = start->tid;
      s.request_tcp_seq = p.request_seq;
      s.response_tcp_seq = p.response_end_seq - static_cast<uint32_t>(p.response_bytes);
      // Swapped, not copied: the slot's strings are reassigned when reused.
      s.http.method.swap(p.method);
      s.http.target.swap(p.target);
      s.http.status = p.status;
      s.http.request_bytes = p.request_bytes;
      s.http.response_bytes = p.response_bytes;
      s.request_head = p.request_head;
      s.response_head = p.response_head;
      ctx.self->AddSpan(p.protocol);
      ctx.self->AddPeerSpan();
      ctx.spans->OnSpan(s);
      s.request_head = s.response_head = {};
      Prune(&sent_, p.request_seq);
      Prune(&received_, p.response_end_seq);
    }
    head_ = (head_ + 1) % slots_.size();
    --size_;
  }
}

bool PeerStash::Put(const PeerKey& key, const Span& server, bool keep_heads) {
  const bool room = entries_.size() < kMaxStashed;
  if (!room) entries_.erase(entries_.begin());
  Entry& e = entries_.emplace_back();
  e.key = key;
  e.span.Assign(server, keep_heads);
  return room;
}

size_t PeerStash::Take(const PeerKey& key, uint64_t now_ns, PeerClient* client) {
  size_t stale = 0;
  auto keep = entries_.begin();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (!(it->key == key)) {
      if (keep != it) *keep = std::move(*it);
      ++keep;
      continue;
    }
    if (it->span.server_end_ns + kMaxAgeNs < now_ns) {
      ++stale;
    } else if (!client->Add(std::move(it->span))) {
      ++stale;
    }
  }
  entries_.erase(keep, entries_.end());
  return stale;
}

size_t PeerStash::Expire(uint64_t now_ns) {
  if (now_ns < kMaxAgeNs) return 0;
  const uint64_t cutoff = now_ns - kMaxAgeNs;
  // Oldest first, so the expired ones are a prefix.
  auto it = entries_.begin();
  while (it != entries_.end() && it->span.server_end_ns < cutoff) ++it;
  const size_t n = static_cast<size_t>(it - entries_.begin());
  entries_.erase(entries_.begin(), it);
  return n;
}

}  // namespace redmap
