// A source of socket events: the live BPF ring buffer (exporter/bpf_source.h)
// or a pcap replay (pcap_source.h). Both deliver the same DataEvent/CloseEvent.
#ifndef REDMAP_AGGREGATORS_SOURCES_SOURCE_H_
#define REDMAP_AGGREGATORS_SOURCES_SOURCE_H_

#include <atomic>

#include "absl/status/status.h"
#include "aggregators/sources/event.h"

namespace redmap {

class Source {
 public:
  virtual ~Source() = default;
  // Delivers events to `sink` on the calling thread until the source is
  virtual absl::Status Run(EventSink* sink, const std::atomic<bool>& stop) = 0;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SOURCES_SOURCE_H_
