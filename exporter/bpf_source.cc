#include "exporter/bpf_source.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "aggregators/sources/event_decoder.h"
#include "bpf/socket_trace.h"
#include "bpf/tcp_health.h"
#include "socket_trace.skel.h"

namespace redmap {
namespace {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

// libbpf talks through a process-wide callback; keep warnings and errors
// (verifier logs on load failure), drop debug chatter.
int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, format, args);
}

std::string ErrnoText(int err) { return absl::StrCat(std::strerror(err), " (errno ", err, ")"); }

}  // namespace

class BpfSource::Impl {
 public:
  ~Impl() {
    if (rb_ != nullptr) ring_buffer__free(rb_);
    for (bpf_link* link : links_) bpf_link__destroy(link);
    if (skel_ != nullptr) socket_trace__destroy(skel_);
  }

  absl::Status Open(const BpfSourceOptions& options, SelfMetrics* self) {
    self_ = self;
    options_ = options;
    libbpf_set_print(LibbpfPrint);
    // The BTF-typed tracepoint is cheaper; kernels without it get the raw
    // tracepoint twin of the same program.
    absl::Status btf = options.force_raw_tracepoint
                           ? absl::UnavailableError("raw_tracepoint forced by the caller")
                           : OpenAndLoad(/*use_btf=*/true);
    if (btf.ok()) return Attach();
    fprintf(stderr, "redmap: tp_btf/sys_exit unavailable (%s); using raw_tracepoint/sys_exit\n",
            std::string(btf.message()).c_str());
    self_->SetProbeStatus("sys_exit_btf", false);
    if (options.network.enabled && skel_ != nullptr) {
      for (bpf_program* p : TcpPrograms()) self_->SetProbeStatus(bpf_program__name(p), false);
      fprintf(stderr, "redmap: TCP health probes need tp_btf; redmap_tcp_* stay empty\n");
    }
    if (skel_ != nullptr) socket_trace__destroy(skel_);
    skel_ = nullptr;
    absl::Status raw = OpenAndLoad(/*use_btf=*/false);
    if (!raw.ok()) return raw;
    return Attach();
  }

  absl::Status OpenAndLoad(bool use_btf) {
    const BpfSourceOptions& options = options_;
    // 1. Open: parse the embedded object, nothing in the kernel yet.
    skel_ = socket_trace__open();
    if (skel_ == nullptr) {
      return absl::InternalError(absl::StrCat("cannot open BPF object: ", ErrnoText(errno)));
    }

    // 2. Read-only knobs (.rodata) and map sizes from the config.
    skel_->rodata->self_tgid = options.self_tgid;
    skel_->rodata->self_port = options.self_port;
    skel_->rodata->payload_bytes = options.capture.payload_bytes;
    skel_->rodata->wakeup_bytes = options.capture.wakeup_bytes;
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return absl::InternalError("cannot count possible CPUs");
    num_cpus_ = cpus;
    struct {
      bpf_map* map;
      uint32_t entries;
    } sizes[] = {
        {skel_->maps.events, options.capture.ring_buffer_bytes},
        {skel_->maps.conn_info_map, options.capture.max_connections},
        {skel_->maps.scratch_map, static_cast<uint32_t>(cpus)},
        {skel_->maps.tcp_events, options.network.ring_buffer_bytes},
        {skel_->maps.tcp_conns, options.network.max_connections},
    };
    for (const auto& s : sizes) {
      if (int err = bpf_map__set_max_entries(s.map, s.entries); err != 0) {
        return absl::InvalidArgumentError(absl::StrCat("cannot size BPF map ", bpf_map__name(s.map),
                                                       " to ", s.entries, ": ", ErrnoText(-err)));
      }
    }

    // 3. Exactly one of the two program variants is loaded. The TCP health
    // programs are tp_btf only: without BTF tracepoints they stay out (and
    // redmap_probe_up says so).
    bpf_program__set_autoload(skel_->progs.sys_exit_btf, use_btf);
    bpf_program__set_autoload(skel_->progs.sys_exit_raw, !use_btf);
    for (bpf_program* p : TcpPrograms()) {
      bpf_program__set_autoload(p, use_btf && options.network.enabled);
    }

    // 4. Load: maps created, programs verified.
    if (int err = socket_trace__load(skel_); err != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot load BPF programs: ", ErrnoText(-err),
          " (needs root or CAP_BPF+CAP_PERFMON, a kernel with BTF at /sys/kernel/btf/vmlinux; "
          "the verifier log above says which program failed)"));
    }
    return absl::OkStatus();
  }

  absl::Status Attach() {
    bpf_program* prog;
    // 5. Attach one by one; a failure is logged and exported, not fatal.
    int attached = 0;
    bpf_object__for_each_program(prog, skel_->obj) {
      if (!bpf_program__autoload(prog)) continue;
      bpf_link* link = bpf_program__attach(prog);
      if (link == nullptr) {
        int err = errno;
        fprintf(stderr, "redmap: probe %s (%s) failed to attach: %s\n", bpf_program__name(prog),
                bpf_program__section_name(prog), ErrnoText(err).c_str());
        self_->SetProbeStatus(bpf_program__name(prog), false);
        continue;
      }
      links_.push_back(link);
      self_->SetProbeStatus(bpf_program__name(prog), true);
      ++attached;
    }
    if (attached == 0) return absl::FailedPreconditionError("no BPF probe could be attached");
    return OpenRing();
  }

  absl::Status OpenRing() {
    // 6. Ring buffer consumer: one epoll set over both rings.
    rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &Impl::OnRecord, this, nullptr);
    if (rb_ == nullptr) {
      return absl::InternalError(absl::StrCat("cannot open ring buffer: ", ErrnoText(errno)));
    }
    if (int err = ring_buffer__add(rb_, bpf_map__fd(skel_->maps.tcp_events), &Impl::OnRecord, this);
        err != 0) {
      return absl::InternalError(absl::StrCat("cannot open TCP ring buffer: ", ErrnoText(-err)));
    }
    return absl::OkStatus();
  }

  std::vector<bpf_program*> TcpPrograms() const {
    return {skel_->progs.tcp_state,         skel_->progs.tcp_retransmit,
            skel_->progs.tcp_retransmit_synack, skel_->progs.tcp_send_reset,
            skel_->progs.tcp_receive_reset, skel_->progs.tcp_zero_window,
            skel_->progs.tcp_destroy};
  }

  absl::Status Run(EventSink* sink, const std::atomic<bool>& stop) {
    sink_ = sink;
    const int timeout_ms = static_cast<int>(options_.capture.poll_interval_ms);
    while (!stop.load(std::memory_order_relaxed)) {
      // The kernel side wakes us only past wakeup_bytes; otherwise the
      // timeout drains whatever queued up (events carry kernel timestamps,
      // so batching delays nothing that is measured).
      int n = ring_buffer__poll(rb_, timeout_ms);
      if (n < 0 && n != -EINTR) {
        return absl::InternalError(absl::StrCat("ring buffer poll failed: ", ErrnoText(-n)));
      }
      ring_buffer__consume(rb_);
      if (tick_) tick_(MonotonicNs());
    }
    ring_buffer__consume(rb_);
    sink_ = nullptr;
    return absl::OkStatus();
  }

  KernelStats ReadKernelStats() const {
    KernelStats k;
    std::vector<uint64_t> values(num_cpus_);
    auto sum = [&](uint32_t idx) -> uint64_t {
      if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.stats), &idx, values.data()) != 0) return 0;
      uint64_t total = 0;
      for (uint64_t v : values) total += v;
      return total;
    };
    k.ringbuf_drops = sum(REDMAP_STAT_RINGBUF_DROPS);
    k.events = sum(REDMAP_STAT_EVENTS);
    k.conn_unclassified = sum(REDMAP_STAT_CONN_UNCLASSIFIED);
    k.conn_classified = sum(REDMAP_STAT_CONN_CLASSIFIED);
    k.read_failed = sum(REDMAP_STAT_READ_FAILED);
    k.tcp_ringbuf_drops = sum(REDMAP_STAT_TCP_RINGBUF_DROPS);
    k.tcp_events = sum(REDMAP_STAT_TCP_EVENTS);
    return k;
  }

  std::vector<SelfMetrics::TableFill> ReadTableFill() const {
    // Ring fill: the largest "queued bytes" any CPU saw at its last submit.
    std::vector<uint64_t> values(num_cpus_);
    uint32_t idx = REDMAP_STAT_RING_QUEUED;
    int64_t queued = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.stats), &idx, values.data()) == 0) {
      for (uint64_t v : values) queued = std::max<int64_t>(queued, static_cast<int64_t>(v));
    }
    return {
        {"bpf_connections", CountEntries(skel_->maps.conn_info_map),
         static_cast<int64_t>(options_.capture.max_connections)},
        {"ring_buffer_bytes", queued, static_cast<int64_t>(options_.capture.ring_buffer_bytes)},
        {"bpf_tcp_connections", CountEntries(skel_->maps.tcp_conns),
         static_cast<int64_t>(options_.network.max_connections)},
    };
  }

  void SetTick(std::function<void(uint64_t)> tick) { tick_ = std::move(tick); }

 private:
  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    if (DecodeRecord(data, size, self->sink_) == DecodeResult::kInvalid) {
      self->self_->AddDropped(DropReason::kDecodeError);
    }
    return 0;
  }

  // Entries of a hash map, read in batches (a few syscalls, not one per key).
  static int64_t CountEntries(bpf_map* map) {
    constexpr uint32_t kBatch = 4096;
    const int fd = bpf_map__fd(map);
    std::vector<uint8_t> keys(static_cast<size_t>(kBatch) * bpf_map__key_size(map));
    std::vector<uint8_t> values(static_cast<size_t>(kBatch) * bpf_map__value_size(map));
    uint64_t in_batch = 0, out_batch = 0;
    int64_t total = 0;
    bool first = true;
    for (int rounds = 0; rounds < 1024; ++rounds) {
      uint32_t count = kBatch;
      int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch, keys.data(),
                                     values.data(), &count, nullptr);
      first = false;
      if (err != 0 && errno != ENOENT) return -1;
      total += count;
      if (err != 0) break;  // ENOENT: that was the last batch
      in_batch = out_batch;
    }
    return total;
  }

  BpfSourceOptions options_;
  SelfMetrics* self_ = nullptr;
  socket_trace* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  ring_buffer* rb_ = nullptr;
  EventSink* sink_ = nullptr;
  std::function<void(uint64_t)> tick_;
  int num_cpus_ = 1;
};

BpfSource::BpfSource() : impl_(std::make_unique<Impl>()) {}
BpfSource::~BpfSource() = default;

absl::StatusOr<std::unique_ptr<BpfSource>> BpfSource::Create(const BpfSourceOptions& options,
                                                             SelfMetrics* self) {
  std::unique_ptr<BpfSource> source(new BpfSource());
  absl::Status status = source->impl_->Open(options, self);
  if (!status.ok()) return status;
  return source;
}

absl::Status BpfSource::Run(EventSink* sink, const std::atomic<bool>& stop) {
  return impl_->Run(sink, stop);
}

void BpfSource::SetTick(std::function<void(uint64_t now_ns)> tick) {
  impl_->SetTick(std::move(tick));
}

KernelStats BpfSource::ReadKernelStats() const { return impl_->ReadKernelStats(); }

std::vector<SelfMetrics::TableFill> BpfSource::ReadTableFill() const {
  return impl_->ReadTableFill();
}

}  // namespace redmap
