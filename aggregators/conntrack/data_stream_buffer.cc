#include "aggregators/conntrack/data_stream_buffer.h"

#include <algorithm>

namespace redmap {

uint64_t DataStreamBuffer::Position(const DataEvent& e) {
  if (!e.has_tcp_seq) return end_;
  if (!has_seq_ref_) {
    // The first numbered event continues the stream where it stands.
    has_seq_ref_ = true;
    seq_ref_ = e.tcp_seq;
    seq_ref_pos_ = end_;
    return end_;
  }
  // Steps of less than 2^31 either way; the 32-bit difference wraps for free.
  const int64_t delta = static_cast<int32_t>(e.tcp_seq - seq_ref_);
  if (delta < 0 && static_cast<uint64_t>(-delta) > seq_ref_pos_) return 0;  // far behind: old
  seq_ref_ = e.tcp_seq;
  seq_ref_pos_ += delta;
  return seq_ref_pos_;
}

DataStreamBuffer::AddResult DataStreamBuffer::Add(const DataEvent& e, Parser parse) {
  uint64_t len = e.byte_count;
  if (len == 0) return AddResult::kDuplicate;
  std::string_view known = e.payload.substr(0, std::min<uint64_t>(e.payload.size(), len));
  uint64_t pos = Position(e);
  if (!started_) {
    started_ = true;
    end_ = pos;
  }
  if (pos + len <= end_) return AddResult::kDuplicate;
  const EventInfo info{e.enter_ns, e.exit_ns, e.tid};

  bool at_event_start = true;
  if (pos < end_) {
    // Overlap: only the bytes beyond what was seen are new.
    const uint64_t seen = end_ - pos;
    known.remove_prefix(std::min<uint64_t>(seen, known.size()));
    len -= seen;
    pos = end_;
    at_event_start = false;
  } else if (pos > end_) {
    // Bytes moved that no event reported: the held bytes, if any, run into them.
    StreamSegment jump;
    jump.pos = end_ - hold_.size();
    jump.seq = SeqAt(jump.pos);
    jump.data = hold_;
    jump.held = hold_.size();
    jump.held_event = hold_event_;
    jump.event = last_event_;
    jump.unknown = pos - end_;
    parse(jump);
    hold_.clear();
    end_ = pos;
  }

  StreamSegment seg;
  seg.event = info;
  seg.unknown = len - known.size();
  seg.at_event_start = at_event_start;
  if (!hold_.empty()) {
    seg.held = hold_.size();
    seg.held_event = hold_event_;
    hold_.append(known);
    seg.data = hold_;
  } else {
    seg.data = known;
  }
  seg.pos = end_ - seg.held;
  seg.seq = SeqAt(seg.pos);
  end_ += len;
  last_event_ = info;

  const size_t used = std::min(parse(seg), seg.data.size());
  AddResult result = AddResult::kAdded;
  const size_t rest = seg.data.size() - used;
  if (seg.unknown > 0 || rest == 0) {
    hold_.clear();
  } else if (rest > max_held_) {
    // The parser cannot make sense of this much: it sees the bytes as lost.
    hold_.clear();
    StreamSegment lost;
    lost.pos = seg.pos + used;
    lost.seq = SeqAt(lost.pos);
    lost.event = info;
    lost.unknown = rest;
    parse(lost);
    result = AddResult::kOverflow;
  } else if (seg.held > 0) {
    // seg.data is hold_ itself.
    if (used >= seg.held) hold_event_ = info;
    hold_.erase(0, used);
  } else {
    hold_.assign(seg.data.substr(used));
    hold_event_ = info;
  }
  if (hold_.empty() && hold_.capacity() > kShrinkAbove) std::string().swap(hold_);
  return result;
}

}  // namespace redmap
