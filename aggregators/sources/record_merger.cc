#include "aggregators/sources/record_merger.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>

namespace redmap {

RecordMerger::RecordMerger(size_t max_buffered_bytes) : max_buffered_bytes_(max_buffered_bytes) {}

void RecordMerger::Add(const void* data, size_t size) {
  uint64_t ts;
  // Untimed (malformed) records sort first: they are rejected anyway.
  if (!RecordTimestamp(data, size, &ts)) ts = 0;
  const size_t offset = arena_.size();
  arena_.resize(offset + size);
  if (size > 0) std::memcpy(arena_.data() + offset, data, size);
  // Each ring is read in its own time order: a record older than the one
  // before it starts the next ring's run (or a nested program's record).
  if (!index_.empty() && ts < index_.back().ts) run_starts_.push_back(index_.size());
  index_.push_back({ts, seq_++, offset, size});
}

// Puts index_ in (ts, seq) order. It holds a few runs already in that
// order (the held-back records, then one per ring read): merging them is
// linear, where a sort of every record per round was a visible part of
// the exporter's CPU. Many runs (rings that were not in order) get a sort.
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
  if (index_.empty()) return 0;
  if (arena_.size() > max_buffered_bytes_) cutoff_ns = std::numeric_limits<uint64_t>::max();
  Order();
  size_t rejected = 0;
  size_t i = 0;
  for (; i < index_.size() && (index_[i].ts < cutoff_ns ||
                               cutoff_ns == std::numeric_limits<uint64_t>::max());
       ++i) {
    const Entry& e = index_[i];
    if (DecodeRecord(arena_.data() + e.offset, e.size, sink) == DecodeResult::kInvalid) {
      ++rejected;
    }
  }
  // Keep the held-back tail, compacted.
  next_arena_.clear();
  next_index_.clear();
  for (; i < index_.size(); ++i) {
    Entry e = index_[i];
    const size_t offset = next_arena_.size();
    next_arena_.insert(next_arena_.end(), arena_.begin() + static_cast<ptrdiff_t>(e.offset),
                       arena_.begin() + static_cast<ptrdiff_t>(e.offset + e.size));
    e.offset = offset;
    next_index_.push_back(e);
  }
  arena_.swap(next_arena_);
  index_.swap(next_index_);
  return rejected;
}

}  // namespace redmap
