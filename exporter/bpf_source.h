// The live source: loads socket_trace.bpf.c, attaches what this kernel
// supports (reporting each probe in redmap_probe_up), and drains the ring
// buffer into an EventSink. The only place that includes libbpf.
#ifndef REDMAP_EXPORTER_BPF_SOURCE_H_
#define REDMAP_EXPORTER_BPF_SOURCE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "aggregators/self/self_metrics.h"
#include "aggregators/sources/source.h"
#include "exporter/config.h"

namespace redmap {

struct BpfSourceOptions {
  Config::Capture capture;
  Config::Network network;
  uint32_t self_tgid = 0;      // never traced (0: no exclusion)
  uint16_t self_port = 0;      // connections to/from this port are not traced
  uint16_t self_debug_port = 0;  // nor to/from this one (the debug listener)
  // Load the raw_tracepoint fallback even where tp_btf works (tests).
  bool force_raw_tracepoint = false;
  // Load sys_exit_compat, the tp_btf copy for kernels without bpf_rdonly_cast,
  // even where that kfunc exists (tests).
  bool force_helper_reads = false;
};

class BpfSource : public Source {
 public:
  // Opens, configures, loads and attaches. Fails (with a message naming the
  // program and the errno) when the BPF object cannot be loaded at all; a
  // single probe that fails to attach is logged, exported as
  // redmap_probe_up{probe}=0, and does not fail the start.
  static absl::StatusOr<std::unique_ptr<BpfSource>> Create(const BpfSourceOptions& options,
                                                           SelfMetrics* self);
  ~BpfSource() override;  // detaches everything

  // Drains the ring buffer into `sink` until `stop`; calls `tick` with the
  // current CLOCK_MONOTONIC ns after every drain.
  absl::Status Run(EventSink* sink, const std::atomic<bool>& stop) override;
  void SetTick(std::function<void(uint64_t now_ns)> tick);

  KernelStats ReadKernelStats() const;
  std::vector<SelfMetrics::TableFill> ReadTableFill() const;

 private:
  BpfSource();
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace redmap

#endif  // REDMAP_EXPORTER_BPF_SOURCE_H_
