// One direction of a connection as a byte stream: places each event's bytes
// by stream position, forgets bytes seen before (retransmits in a replay,
// MSG_PEEK), turns missing bytes into explicit gaps, and keeps the bytes a
// parser left unconsumed (an incomplete head) until the next event.
//
// Never waits for a hole to fill: bytes that were moved but not captured are
// "known to exist, content unknown", and parsers skip them by position.
// Bytes are copied only while a parser holds some back; a message that fits
// in one event is parsed straight from the event's payload.
#ifndef REDMAP_AGGREGATORS_CONNTRACK_DATA_STREAM_BUFFER_H_
#define REDMAP_AGGREGATORS_CONNTRACK_DATA_STREAM_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "aggregators/protocols/protocol.h"
#include "aggregators/sources/event.h"

namespace redmap {

class DataStreamBuffer {
 public:
  // Returns how many leading bytes of the segment's data the parser used.
  using Parser = absl::FunctionRef<size_t(const StreamSegment&)>;

  enum class AddResult {
    kDuplicate,  // nothing new: every byte was seen before (or none moved)
    kAdded,
    kOverflow,  // the parser held back more than max_held_bytes: dropped as a gap
  };

  explicit DataStreamBuffer(size_t max_held_bytes) : max_held_(max_held_bytes) {}

  // Places the event's bytes and hands the new ones to `parse`: one segment,
  // preceded by a second one when the stream jumped forward (the held bytes,
  // if any, followed by the missing ones as unknown).
  //
  // Position of the event's first byte: with has_tcp_seq, tcp_seq unwrapped
  // into 64 bits relative to the previous event (wraps at 2^32 are steps
  // like any other); without, right after the previous event.
  AddResult Add(const DataEvent& event, Parser parse);

  // One past the furthest byte seen, in stream offsets.
  uint64_t end() const { return end_; }
  size_t held_bytes() const { return hold_.size(); }

 private:
  // Offset of the first byte ever seen: leaves room for steps back.
  static constexpr uint64_t kOrigin = uint64_t{1} << 32;
  // An emptied hold larger than this gives its memory back.
  static constexpr size_t kShrinkAbove = 64 * 1024;

  uint64_t Position(const DataEvent& event);
  uint32_t SeqAt(uint64_t pos) const {
    return seq_ref_ + static_cast<uint32_t>(pos - seq_ref_pos_);
  }

  size_t max_held_;
  bool started_ = false;
  bool has_seq_ref_ = false;
  uint32_t seq_ref_ = 0;            // tcp_seq of the last event that had one...
  uint64_t seq_ref_pos_ = kOrigin;  // ...and its stream offset
  uint64_t end_ = kOrigin;
  EventInfo last_event_;
  std::string hold_;      // bytes [end_ - hold_.size(), end_), unconsumed
  EventInfo hold_event_;  // the event of hold_[0]
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_CONNTRACK_DATA_STREAM_BUFFER_H_
