// Ring-buffer records of any length and content must decode or be rejected,
// never read out of bounds; decoded TCP events go through the TcpAggregator
// and its exposition, which must not crash on any field values either.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aggregators/network/tcp_aggregator.h"
#include "aggregators/sources/event_decoder.h"
#include "aggregators/sources/record_merger.h"

namespace {

class TouchingSink : public redmap::EventSink {
 public:
  void OnData(const redmap::DataEvent& e) override {
    // Read every payload byte so ASan sees any overrun.
    for (char c : e.payload) sum_ += static_cast<unsigned char>(c);
    sum_ += e.byte_count + e.local.port;
  }
  void OnClose(const redmap::CloseEvent& e) override { sum_ += e.ts_ns; }
  void OnTcp(const redmap::TcpEvent& e) override {
    for (char c : e.process_name) sum_ += static_cast<unsigned char>(c);
    tcp_.OnTcp(e);
  }
  uint64_t sum_ = 0;
  redmap::TcpAggregator tcp_{redmap::NetworkOptions{},
                             [](uint32_t, std::string_view comm, uint64_t) {
                               return std::string(comm);
                             }};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exact-size heap copy: reads past the record are caught.
  std::vector<uint8_t> copy(data, data + size);
  TouchingSink sink;
  if (redmap::DecodeRecord(copy.empty() ? nullptr : copy.data(), copy.size(), &sink) ==
      redmap::DecodeResult::kTcp) {
    sink.tcp_.Expire(UINT64_MAX);
    sink.sum_ += sink.tcp_.Collect().size();
  }
  // The same bytes as records of two rings: cut where the first byte says,
  // merged back in timestamp order, delivered across two rounds (what a
  // ring held back is noted again, as the ring reader does).
  redmap::RecordMerger merger;
  const size_t cut = copy.empty() ? 0 : copy[0] % (copy.size() + 1);
  // Each piece its own exact-size copy: a record is walked event by event
  // (a ring record may hold a batch), never past its end.
  const std::vector<uint8_t> pieces[2] = {std::vector<uint8_t>(copy.begin(), copy.begin() + cut),
                                          std::vector<uint8_t>(copy.begin() + cut, copy.end())};
  for (uint32_t ring = 0; ring < 2; ++ring) merger.Add(ring, pieces[ring].data(), pieces[ring].size());
  merger.Deliver(size >= 16 ? copy[1] * 1000ull : 0, &sink);
  for (uint32_t ring = 0; ring < 2; ++ring) {
    if (merger.delivered(ring) == 0) merger.Add(ring, pieces[ring].data(), pieces[ring].size());
  }
  merger.Deliver(UINT64_MAX, &sink);
  return 0;
}
