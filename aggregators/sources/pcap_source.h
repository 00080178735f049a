// Replays a capture (pcap or pcapng, via libpcap) as the events the BPF side
// would have produced. TCP is reassembled per direction by sequence number
// (duplicates dropped, out-of-order segments buffered up to a bound, holes
// become gaps), classified with the kernel's own inference function
// (bpf/protocol_infer.h), and emitted twice: once as the client process sees
// the connection and once as the server process does, because a live node
// running both ends reports both.
#ifndef REDMAP_AGGREGATORS_SOURCES_PCAP_SOURCE_H_
#define REDMAP_AGGREGATORS_SOURCES_PCAP_SOURCE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "aggregators/sources/source.h"

typedef struct pcap pcap_t;

namespace redmap {

class PcapSource : public Source {
 public:
  struct Stats {
    uint64_t packets = 0;
    uint64_t tcp_segments = 0;
    uint64_t payload_bytes = 0;
    uint64_t duplicate_bytes = 0;
    uint64_t out_of_order = 0;
    uint64_t gap_bytes = 0;
    uint64_t unsupported_packets = 0;  // not IPv4/IPv6 TCP, fragments, truncated headers
    uint64_t connections = 0;
    uint64_t unclassified_connections = 0;
  };

  // Bounds: connections tracked at once, out-of-order bytes per direction.
  static constexpr size_t kMaxConnections = 65536;
  static constexpr size_t kMaxOutOfOrderBytes = 1 << 20;

  static absl::StatusOr<std::unique_ptr<PcapSource>> Open(const std::string& path);
  // Reads a capture from memory (fuzzing, tests).
  static absl::StatusOr<std::unique_ptr<PcapSource>> OpenBuffer(const void* data, size_t size);
  ~PcapSource() override;

  absl::Status Run(EventSink* sink, const std::atomic<bool>& stop) override;
  const Stats& stats() const { return stats_; }

 private:
  class Reassembler;
  PcapSource() = default;
  static absl::StatusOr<std::unique_ptr<PcapSource>> FromHandle(pcap_t* p, const std::string& name);

  pcap_t* pcap_ = nullptr;
  FILE* memfile_ = nullptr;
  int linktype_ = 0;
  std::string name_;
  Stats stats_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SOURCES_PCAP_SOURCE_H_
