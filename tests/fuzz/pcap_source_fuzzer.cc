// Arbitrary bytes as a capture file: libpcap rejects or reads it, and every
// packet that comes out goes through link/IP/TCP parsing, reassembly and
// classification. Small bounds so eviction and hole skipping happen often.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "aggregators/sources/pcap_source.h"

namespace {

class Sink : public redmap::EventSink {
 public:
  void OnData(const redmap::DataEvent& e) override {
    if (e.payload.size() > e.byte_count) abort();
    for (char c : e.payload) sum_ += static_cast<unsigned char>(c);
  }
  void OnClose(const redmap::CloseEvent&) override { closes_++; }
  uint64_t sum_ = 0;
  uint64_t closes_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> copy(data, data + size);  // fmemopen wants a writable pointer
  redmap::PcapSource::Options options;
  options.max_connections = 4;
  options.max_out_of_order_bytes = 256;
  auto source = redmap::PcapSource::OpenBuffer(copy.data(), copy.size(), options);
  if (!source.ok()) return 0;
  Sink sink;
  std::atomic<bool> stop{false};
  (void)(*source)->Run(&sink, stop);
  return 0;
}
