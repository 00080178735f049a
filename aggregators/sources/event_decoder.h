// Turns one raw ring-buffer record into events for a sink: a DataEvent,
// CloseEvent or compact peer record (bpf/socket_trace.h; the latter gives up
// to two DataEvents, a write and a read) or a TcpEvent (bpf/tcp_health.h).
// The single place where kernel structs become C++ types; validates every
// length before reading.
#ifndef REDMAP_AGGREGATORS_SOURCES_EVENT_DECODER_H_
#define REDMAP_AGGREGATORS_SOURCES_EVENT_DECODER_H_

#include <cstddef>
#include <cstdint>

#include "aggregators/sources/event.h"

namespace redmap {

enum class DecodeResult { kData, kClose, kTcp, kInvalid };

DecodeResult DecodeRecord(const void* data, size_t size, EventSink* sink);

// The length of the event at the start of a ring record of `size` bytes
// (> 0): the event with its padding to 8 bytes, or all of `size` when what
// is there is not a whole event (the decoder then rejects it).
size_t NextEventSize(const void* data, size_t size);

// Both at once, in one look at the event's type (the ring merger's per-event
// step): its length as NextEventSize, and *ts_ns its timestamp as
// RecordTimestamp, or 0 when it has none.
size_t NextEvent(const void* data, size_t size, uint64_t* ts_ns);

// The kernel timestamp a record is ordered by (a data event's exit, a close,
// a TCP event); false when the record is too short to have one.
bool RecordTimestamp(const void* data, size_t size, uint64_t* ts_ns);

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SOURCES_EVENT_DECODER_H_
