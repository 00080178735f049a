#include "aggregators/sources/record_merger.h"

#include <algorithm>
#include <iterator>
#include <limits>

namespace redmap {

void RecordMerger::Add(uint32_t ring, const void* data, size_t size) {
  if (ring >= added_.size()) {  // every per-ring vector, here only
    added_.resize(ring + 1, 0);
    skip_.resize(ring + 1, 0);
    cut_.resize(ring + 1, 0);
    delivered_.resize(ring + 1, 0);
  }
  uint32_t skip = 0;
  if (!added_[ring]) {  // the ring's first record: maybe cut last round
    added_[ring] = 1;
    skip = skip_[ring];
    skip_[ring] = 0;
  }
  for (;;) {
    const auto* p = static_cast<const uint8_t*>(data);
    size_t left = size;
    uint32_t index = 0;
    const size_t first = index_.size();
    do {
      // Untimed (malformed) events get 0 and sort first: they are rejected anyway.
      uint64_t ts;
      const size_t n = NextEvent(p, left, &ts);
      if (index >= skip) {
        // Fields stored in place: an Entry built on the stack and copied in
        // stalled on store forwarding (the copy's load was this function's
        // hottest instruction live).
        Entry& e = index_.emplace_back();
        e.ts = ts;
        e.seq = seq_++;
        e.data = p;
        e.size = n;
        e.ring = ring;
        e.index = index;
      }
      ++index;
      p += n;
      left -= n;
    } while (left > 0);
    if (index_.size() > first) {
      index_.back().last = true;
      return;
    }
    skip = 0;  // fewer events than were delivered: not the record that was cut
  }
}

// Puts index_ in (ts, seq) order. It holds a few runs already in that
// order (one per ring read): merging them is linear, where a sort of every
// record per round was a visible part of the exporter's CPU. Many runs
// (rings that were not in order) get a sort.
void RecordMerger::Order() {
  auto before = [](const Entry& a, const Entry& b) {
    return a.ts != b.ts ? a.ts < b.ts : a.seq < b.seq;
  };
  if (run_starts_.empty()) return;
  if (run_starts_.size() > kMaxMergedRuns) {
    std::sort(index_.begin(), index_.end(), before);
    run_starts_.clear();
    return;
  }
  run_starts_.push_back(index_.size());
  size_t sorted_end = run_starts_[0];
  for (size_t r = 1; r < run_starts_.size(); ++r) {
    const size_t run_end = run_starts_[r];
    merged_.clear();
    std::merge(index_.begin(), index_.begin() + static_cast<ptrdiff_t>(sorted_end),
               index_.begin() + static_cast<ptrdiff_t>(sorted_end),
               index_.begin() + static_cast<ptrdiff_t>(run_end), std::back_inserter(merged_),
               before);
    std::copy(merged_.begin(), merged_.end(), index_.begin());
    sorted_end = run_end;
  }
  run_starts_.clear();
}

size_t RecordMerger::Deliver(uint64_t cutoff_ns, EventSink* sink) {
  std::fill(delivered_.begin(), delivered_.end(), 0);
  std::fill(cut_.begin(), cut_.end(), 0);
  held_back_ = 0;
  if (index_.empty()) return 0;
  // Each ring's prefix before its first event at or after the cutoff,
  // kept in arrival order; where the kept records step back in time, the
  // next ring's run (or a preempted program's record) starts.
  const bool all = cutoff_ns == std::numeric_limits<uint64_t>::max();
  size_t kept = 0;
  for (size_t i = 0; i < index_.size(); ++i) {
    const Entry& e = index_[i];
    if (cut_[e.ring] || (!all && e.ts >= cutoff_ns)) {
      if (!cut_[e.ring]) {
        cut_[e.ring] = 1;
        // The events of its record before it go now; the record stays.
        skip_[e.ring] = e.index;
      }
      ++held_back_;
      continue;
    }
    if (kept > 0 && e.ts < index_[kept - 1].ts) run_starts_.push_back(kept);
    index_[kept++] = e;
  }
  index_.resize(kept);
  Order();
  size_t rejected = 0;
  for (const Entry& e : index_) {
    if (e.last) ++delivered_[e.ring];
    if (DecodeRecord(e.data, e.size, sink) == DecodeResult::kInvalid) ++rejected;
  }
  index_.clear();
  std::fill(added_.begin(), added_.end(), 0);
  return rejected;
}

}  // namespace redmap
