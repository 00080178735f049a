// Replays a capture (pcap or pcapng, read by libpcap) as the events the BPF
// side would have produced. TCP is reassembled per direction by sequence
// number (duplicates dropped, out-of-order segments buffered up to a bound,
// holes the capture never filled skipped), classified with the kernel's own
// inference function (bpf/protocol_infer.h) and emitted twice: once as the
// client process sees the connection and once as the server process does,
// because a live node running both ends reports both.
//
// Views of connection number i (in order of first packet): client view
// ConnKey{0, 2i, start}, server view ConnKey{0, 2i+1, start}; tgid, tid and
// cgroup are unknown in a capture and stay 0.
#ifndef REDMAP_AGGREGATORS_SOURCES_PCAP_SOURCE_H_
#define REDMAP_AGGREGATORS_SOURCES_PCAP_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "aggregators/sources/source.h"

typedef struct pcap pcap_t;

namespace redmap {

class PcapSource : public Source {
 public:
  struct Options {
    // Connections tracked at once; beyond it the oldest (closed ones first)
    // is dropped, a live one with a CloseEvent.
    size_t max_connections = 65536;
    // Bytes held per direction while waiting for a hole to fill; beyond it
    // the hole is accepted as lost and the stream moves on.
    size_t max_out_of_order_bytes = 1 << 20;
  };

  struct Stats {
    uint64_t packets = 0;                   // records read from the capture
    uint64_t tcp_segments = 0;              // TCP segments carrying payload
    uint64_t payload_bytes = 0;             // bytes emitted (once per byte, not per view)
    uint64_t duplicate_bytes = 0;           // retransmitted bytes already emitted or buffered
    uint64_t out_of_order = 0;              // segments that arrived ahead of a hole
    uint64_t gap_bytes = 0;                 // bytes of holes given up on
    uint64_t truncated_packets = 0;         // payload cut short by the capture's snap length
    uint64_t unsupported_packets = 0;       // not TCP over IPv4/IPv6, or IP fragments
    uint64_t malformed_packets = 0;         // headers cut short or inconsistent
    uint64_t connections = 0;               // TCP connections seen
    uint64_t unclassified_connections = 0;  // first bytes not a known protocol: ignored
    uint64_t evicted_connections = 0;       // live connections dropped for the bound
  };

  // Fails (InvalidArgument) if the file is missing, unreadable, not a capture,
  // or of a link type other than Ethernet, Linux cooked v1/v2, raw IP or
  // BSD loopback.
  static absl::StatusOr<std::unique_ptr<PcapSource>> Open(const std::string& path);
  static absl::StatusOr<std::unique_ptr<PcapSource>> Open(const std::string& path,
                                                          const Options& options);
  // Reads a capture held in memory (fuzzing, tests); `data` must outlive the source.
  static absl::StatusOr<std::unique_ptr<PcapSource>> OpenBuffer(const void* data, size_t size,
                                                                const Options& options);
  static absl::StatusOr<std::unique_ptr<PcapSource>> OpenBuffer(const void* data, size_t size);

  PcapSource(const PcapSource&) = delete;
  PcapSource& operator=(const PcapSource&) = delete;
  ~PcapSource() override;

  // Replays the whole capture (or until `stop`), then closes every connection
  // still open. DataLoss if the file is corrupt part way; the events before
  // the corruption have been delivered.
  absl::Status Run(EventSink* sink, const std::atomic<bool>& stop) override;
  const Stats& stats() const { return stats_; }

 private:
  class Reassembler;
  PcapSource(pcap_t* pcap, std::string name, const Options& options);
  static absl::StatusOr<std::unique_ptr<PcapSource>> FromHandle(pcap_t* pcap, std::string name,
                                                                const Options& options);

  pcap_t* pcap_;
  std::string name_;
  Options options_;
  int linktype_;
  Stats stats_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SOURCES_PCAP_SOURCE_H_
