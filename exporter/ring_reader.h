// Reads BPF ring buffers in place, for RecordMerger.
//
// libbpf's consumer (1.1, the Debian 12 one) moves a ring's consumer
// position past each record as soon as its callback returns. A record the
// merger holds back for a round then has to be copied out first, and every
// record costs a store to the cache line the producing CPU reads on its next
// reservation. This reader maps each ring the way libbpf does (consumer page
// writable, producer page and data read-only, data mapped twice so that a
// record across the end reads as one piece), notes every committed record
// with the merger, and after the merger's Deliver moves each consumer
// position once, past the records it delivered.
//
// Threads: one (the capture loop).
#ifndef REDMAP_EXPORTER_RING_READER_H_
#define REDMAP_EXPORTER_RING_READER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "aggregators/sources/record_merger.h"

namespace redmap {

class RingReader {
 public:
  RingReader() = default;
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;
  ~RingReader();

  // Maps the BPF_MAP_TYPE_RINGBUF map behind map_fd; rings are numbered
  // from 0 in the order added (the merger's ring numbers).
  absl::Status Add(int map_fd);

  // Waits up to timeout_ms for a ring to have data or for a wakeup from the
  // kernel side. Returns the rings ready (0 on timeout or EINTR).
  absl::StatusOr<int> Wait(int timeout_ms);

  // Whether some ring holds a record (committed or not): what Wait would
  // return at once for, read from the mapped positions without a syscall.
  bool HasData() const;

  // Notes every committed record of every ring, from its consumer position
  // on, with the merger (the merger's views point into the rings).
  void Note(RecordMerger* merger);

  // Moves each ring's consumer position past the records the merger
  // delivered of those Note found (and past discarded ones among them).
  void Consume(const RecordMerger& merger);

 private:
  struct Ring {
    uint64_t* consumer_pos = nullptr;        // writable page
    const uint64_t* producer_pos = nullptr;  // read-only page, data follows
    const uint8_t* data = nullptr;
    uint64_t mask = 0;
    size_t data_map_bytes = 0;  // producer page + data twice
    // The position after each record noted in this round, in order; and
    // the position after the last committed record, discarded ones included.
    std::vector<uint64_t> ends;
    uint64_t noted_end = 0;
  };
  std::vector<Ring> rings_;
  int epoll_fd_ = -1;
  size_t page_size_ = 0;
};

}  // namespace redmap

#endif  // REDMAP_EXPORTER_RING_READER_H_
