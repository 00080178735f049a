// The bounded store of sampled traces: at most max_traces traces and
// max_bytes bytes (Trace::Bytes), oldest evicted first. A trace whose id is
// already stored is merged into it (a late part of the same request: one
// trace id, more spans) and becomes the newest.
// Threads: Insert from the source thread, reads from HTTP threads. Each
// call holds one short lock; readers get shared immutable traces and
// serialize them outside it.
#ifndef REDMAP_AGGREGATORS_TRACES_TRACE_RING_H_
#define REDMAP_AGGREGATORS_TRACES_TRACE_RING_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "aggregators/traces/trace.h"

namespace redmap::traces {

class TraceRing {
 public:
  TraceRing(size_t max_bytes, size_t max_traces);

  enum class InsertResult { kInserted, kMerged, kTooLarge };
  InsertResult Insert(Trace trace);

  // Newest first.
  std::vector<std::shared_ptr<const Trace>> Snapshot() const;
  std::shared_ptr<const Trace> Find(const TraceId& id) const;

  struct Stats {
    size_t traces = 0;
    size_t bytes = 0;
    uint64_t insertions = 0;
    uint64_t evictions = 0;
    uint64_t too_large = 0;
  };
  Stats stats() const;
  size_t max_bytes() const { return max_bytes_; }
  size_t max_traces() const { return max_traces_; }

 private:
  void EvictOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_bytes_;
  const size_t max_traces_;
  mutable absl::Mutex mu_;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  // Oldest first; merged traces leave a stale entry behind (checked by
  // sequence against by_id_).
  std::deque<std::shared_ptr<const Trace>> order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TraceId, std::shared_ptr<const Trace>> by_id_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t insertions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t too_large_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace redmap::traces

#endif  // REDMAP_AGGREGATORS_TRACES_TRACE_RING_H_
