// Puts ring-buffer records from several rings back into time order.
//
// The kernel side writes each event to the ring of the CPU it ran on (no
// cross-CPU contention on one ring's lock and positions: measured, the
// sys_exit program got ~30% cheaper with two rings than with one). A thread
// that migrates between CPUs then has consecutive events in different rings,
// and the pipeline needs them in order (a response must not overtake its
// request). Each round, the reader notes every record it finds in every
// ring (Add), and Deliver decodes them in the order of their kernel
// timestamps (merged: each ring's records come in order, so a round is a few
// ordered runs).
//
// A record holds one or more events back to back (the kernel side batches
// them; bpf/socket_trace.h), each padded to 8 bytes, and events are merged
// one by one. A record cut by the cutoff stays in its ring (rings give back
// whole records), and its events before the cut are skipped when it is
// noted again: the next round's first Add of that ring must be that record,
// as it is for the ring reader, which notes from the consumer position.
//
// Records are read in place, never copied: they stay in their ring until
// delivered. Events newer than a cutoff are held back, because an event
// from just before the read may still be in flight in a ring that was read
// first. A ring can only give back a prefix of what it holds, so each ring
// delivers its events up to the first one at or after the cutoff; the rest
// stay in the ring and are noted again next round (delivered(ring) says how
// many whole records went). An event older than the cutoff behind a newer
// one in the same ring (a program preempted between its clock read and its
// ring write) waits with it; with a cutoff 250 us in the past that needs the
// preemption to straddle the cutoff, and costs that one event its place
// among other rings' events, nothing else.
#ifndef REDMAP_AGGREGATORS_SOURCES_RECORD_MERGER_H_
#define REDMAP_AGGREGATORS_SOURCES_RECORD_MERGER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "aggregators/sources/event_decoder.h"

namespace redmap {

class RecordMerger {
 public:
  // Notes the next record of ring `ring` (rings number from 0, each added
  // in its own order). The bytes are not copied: they must stay readable
  // until Deliver returns. Records without a readable timestamp are
  // delivered first (and rejected by the decoder).
  void Add(uint32_t ring, const void* data, size_t size);

  // Decodes, in timestamp order, each ring's events before its first one
  // at or after cutoff_ns (all of them when cutoff_ns is UINT64_MAX), then
  // forgets every noted record. Returns how many events the decoder
  // rejected.
  size_t Deliver(uint64_t cutoff_ns, EventSink* sink);

  // Whole records of `ring` the last Deliver decoded (a prefix of those
  // noted): where the ring's consumer position moves to.
  size_t delivered(uint32_t ring) const {
    return ring < delivered_.size() ? delivered_[ring] : 0;
  }
  // Events the last Deliver held back, all rings together.
  size_t held_back() const { return held_back_; }

 private:
  static constexpr size_t kMaxMergedRuns = 16;

  struct Entry {
    uint64_t ts;
    uint64_t seq;  // arrival order: ties and untimed records stay stable
    const uint8_t* data;  // one event
    size_t size;
    uint32_t ring;
    uint32_t index;  // of the event in its record
    bool last;       // the last event of its record
  };
  std::vector<Entry> index_;
  std::vector<Entry> merged_;       // Order's scratch, reused
  std::vector<size_t> run_starts_;  // where index_'s time-ordered runs begin, after the first
  std::vector<size_t> delivered_;   // by ring, of the last Deliver
  std::vector<uint8_t> cut_;        // by ring: its prefix ended this round
  std::vector<uint8_t> added_;      // by ring: noted a record this round
  // By ring: events of its first record delivered in earlier rounds.
  std::vector<uint32_t> skip_;
  size_t held_back_ = 0;
  uint64_t seq_ = 0;

  void Order();
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SOURCES_RECORD_MERGER_H_
