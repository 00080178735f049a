// Arbitrary bytes as a capture file: libpcap rejects or reads it, and every
// packet that comes out goes through link/IP/TCP parsing and reassembly.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "aggregators/sources/pcap_source.h"

namespace {
class Sink : public redmap::EventSink {
 public:
  void OnData(const redmap::DataEvent& e) override {
    for (char c : e.payload) sum_ += static_cast<unsigned char>(c);
  }
  void OnClose(const redmap::CloseEvent&) override {}
  uint64_t sum_ = 0;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> copy(data, data + size);
  auto source = redmap::PcapSource::OpenBuffer(copy.data(), copy.size());
  if (!source.ok()) return 0;
  Sink sink;
  std::atomic<bool> stop{false};
  (void)(*source)->Run(&sink, stop);
  return 0;
}
