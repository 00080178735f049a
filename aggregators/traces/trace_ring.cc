#include "aggregators/traces/trace_ring.h"

#include <algorithm>
#include <utility>

namespace redmap::traces {

TraceRing::TraceRing(size_t max_bytes, size_t max_traces)
    : max_bytes_(max_bytes), max_traces_(max_traces) {}

TraceRing::InsertResult TraceRing::Insert(Trace trace) {
  // Merging and sizing happen on the caller's copy; only pointer moves and
  // counters happen under the lock, apart from a merge's span copy.
  std::shared_ptr<const Trace> previous;
  {
    absl::MutexLock l(&mu_);
    auto it = by_id_.find(trace.id);
    if (it != by_id_.end()) previous = it->second;
  }
  InsertResult result = InsertResult::kInserted;
  if (previous != nullptr) {
    std::vector<TraceSpan> spans = previous->spans;
    for (TraceSpan& s : trace.spans) spans.push_back(std::move(s));
    trace.spans = std::move(spans);
    for (const std::string& w : previous->warnings) {
      if (std::find(trace.warnings.begin(), trace.warnings.end(), w) == trace.warnings.end()) {
        trace.warnings.push_back(w);
      }
    }
    trace.partial = trace.partial || previous->partial;
    if (trace.keep_reason.empty()) trace.keep_reason = previous->keep_reason;
    result = InsertResult::kMerged;
  }
  const size_t size = trace.Bytes();
  absl::MutexLock l(&mu_);
  if (size > max_bytes_ || max_traces_ == 0) {
    ++too_large_;
    return InsertResult::kTooLarge;
  }
  auto it = by_id_.find(trace.id);
  if (it != by_id_.end()) {
    // Replaced by the merged trace; its entry in order_ goes stale.
    bytes_ -= it->second->Bytes();
    by_id_.erase(it);
  }
  trace.sequence = next_sequence_++;
  auto stored = std::make_shared<const Trace>(std::move(trace));
  while (!by_id_.empty() && (by_id_.size() + 1 > max_traces_ || bytes_ + size > max_bytes_)) {
    EvictOldest();
  }
  bytes_ += size;
  by_id_[stored->id] = stored;
  order_.push_back(std::move(stored));
  ++insertions_;
  // Stale entries are dropped from the front as they surface; bound them
  // anyway so a stream of merges cannot grow the deque.
  if (order_.size() > 2 * max_traces_ + 16) {
    std::deque<std::shared_ptr<const Trace>> live;
    for (auto& t : order_) {
      auto f = by_id_.find(t->id);
      if (f != by_id_.end() && f->second == t) live.push_back(std::move(t));
    }
    order_.swap(live);
  }
  return result;
}

void TraceRing::EvictOldest() {
  while (!order_.empty()) {
    std::shared_ptr<const Trace> t = std::move(order_.front());
    order_.pop_front();
    auto it = by_id_.find(t->id);
    if (it == by_id_.end() || it->second != t) continue;  // stale (merged)
    bytes_ -= t->Bytes();
    by_id_.erase(it);
    ++evictions_;
    return;
  }
}

std::vector<std::shared_ptr<const Trace>> TraceRing::Snapshot() const {
  std::vector<std::shared_ptr<const Trace>> out;
  absl::MutexLock l(&mu_);
  out.reserve(by_id_.size());
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    auto f = by_id_.find((*it)->id);
    if (f != by_id_.end() && f->second == *it) out.push_back(*it);
  }
  return out;
}

std::shared_ptr<const Trace> TraceRing::Find(const TraceId& id) const {
  absl::MutexLock l(&mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

TraceRing::Stats TraceRing::stats() const {
  absl::MutexLock l(&mu_);
  return {by_id_.size(), bytes_, insertions_, evictions_, too_large_};
}

}  // namespace redmap::traces
