// Ring-buffer records of any length and content must decode or be rejected,
// never read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aggregators/sources/event_decoder.h"

namespace {

class TouchingSink : public redmap::EventSink {
 public:
  void OnData(const redmap::DataEvent& e) override {
    // Read every payload byte so ASan sees any overrun.
    for (char c : e.payload) sum_ += static_cast<unsigned char>(c);
    sum_ += e.byte_count + e.local.port;
  }
  void OnClose(const redmap::CloseEvent& e) override { sum_ += e.ts_ns; }
  uint64_t sum_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exact-size heap copy: reads past the record are caught.
  std::vector<uint8_t> copy(data, data + size);
  TouchingSink sink;
  redmap::DecodeRecord(copy.empty() ? nullptr : copy.data(), copy.size(), &sink);
  return 0;
}
