// Puts ring-buffer records from several per-CPU rings back into time order.
//
// The kernel side writes each event to the ring of the CPU it ran on (no
// cross-CPU contention on one ring's lock and positions: measured, the
// sys_exit program got ~30% cheaper with two rings than with one). A thread
// that migrates between CPUs then has consecutive events in different rings,
// and the pipeline needs them in order (a response must not overtake its
// request). Records are collected from every ring, put in the order of their
// kernel timestamps (merged: each ring's records come in order, so a round
// is a few ordered runs), and delivered in that order; records newer than a cutoff are
// held back for the next round, because an event from just before the read
// may still be in flight in a ring that was read first.
#ifndef REDMAP_AGGREGATORS_SOURCES_RECORD_MERGER_H_
#define REDMAP_AGGREGATORS_SOURCES_RECORD_MERGER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "aggregators/sources/event_decoder.h"

namespace redmap {

class RecordMerger {
 public:
  // Above this many buffered bytes everything is delivered at once (a
  // consumer that fell far behind should not also hold memory).
  explicit RecordMerger(size_t max_buffered_bytes = 64u << 20);

  // Copies one record. Records without a readable timestamp are delivered
  // (and rejected by the decoder) in arrival order at the next Deliver.
  void Add(const void* data, size_t size);

  // Decodes, in timestamp order, every buffered record older than cutoff_ns
  // (all of them when cutoff_ns is UINT64_MAX, or when over the byte bound).
  // Returns how many records the decoder rejected.
  size_t Deliver(uint64_t cutoff_ns, EventSink* sink);

  size_t buffered_records() const { return index_.size(); }
  size_t buffered_bytes() const { return arena_.size(); }

 private:
  static constexpr size_t kMaxMergedRuns = 16;

  struct Entry {
    uint64_t ts;
    uint64_t seq;  // arrival order: ties and untimed records stay stable
    size_t offset;
    size_t size;
  };
  size_t max_buffered_bytes_;
  std::vector<uint8_t> arena_;
  std::vector<Entry> index_;
  std::vector<uint8_t> next_arena_;  // reused between rounds
  std::vector<Entry> next_index_;
  std::vector<size_t> run_starts_;  // where index_'s time-ordered runs begin, after the first
  std::vector<Entry> merged_;       // Order's scratch, reused

  void Order();
  uint64_t seq_ = 0;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SOURCES_RECORD_MERGER_H_
