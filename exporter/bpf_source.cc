#include "exporter/bpf_source.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "aggregators/common/errno_text.h"
#include "aggregators/sources/event_decoder.h"
#include "aggregators/sources/record_merger.h"
#include "bpf/socket_trace.h"
#include "bpf/tcp_health.h"
#include "exporter/ring_reader.h"
#include "socket_trace.skel.h"

namespace redmap {
namespace {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

// Whether the kernel has the bpf_rdonly_cast kfunc (6.2+), which the
// preferred sys_exit program uses for its per-event reads. Asked of the
// kernel's BTF rather than learnt from a failed load (whose verifier log
// would fill the start-up output on every older kernel).
bool KernelHasRdonlyCast() {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) return false;
  const bool found = btf__find_by_name_kind(vmlinux, "bpf_rdonly_cast", BTF_KIND_FUNC) >= 0;
  btf__free(vmlinux);
  return found;
}

// libbpf talks through a process-wide callback; keep warnings and errors
// (verifier logs on load failure), drop debug chatter.
int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, format, args);
}

}  // namespace

class BpfSource::Impl {
 public:
  ~Impl() {
    if (batches_ != nullptr) munmap(const_cast<uint8_t*>(batches_), batches_len_);
    for (bpf_link* link : links_) bpf_link__destroy(link);
    if (skel_ != nullptr) socket_trace__destroy(skel_);
    for (int fd : cpu_rings_) close(fd);
  }

  absl::Status Open(const BpfSourceOptions& options, SelfMetrics* self) {
    self_ = self;
    options_ = options;
    libbpf_set_print(LibbpfPrint);
    // The BTF-typed tracepoint is cheaper; kernels without it get the raw
    // tracepoint twin of the same program. Of the two tp_btf copies, the one
    // with direct loads needs bpf_rdonly_cast; before 6.2 the one with helper
    // reads serves (logged, but not a probe failure: a supported kernel).
    absl::Status btf = absl::UnavailableError("raw_tracepoint forced by the caller");
    if (!options.force_raw_tracepoint) {
      Variant variant = Variant::kCompat;
      if (!options.force_helper_reads) {
        if (KernelHasRdonlyCast()) {
          variant = Variant::kDirect;
        } else {
          fprintf(stderr, "redmap: kernel lacks bpf_rdonly_cast (before 6.2); sys_exit_compat "
                          "reads kernel memory with helper calls\n");
        }
      }
      btf = OpenAndLoad(variant);
    }
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
    absl::Status raw = OpenAndLoad(Variant::kRaw);
    if (!raw.ok()) return raw;
    return Attach();
  }

  // The sys_exit program copies in socket_trace.bpf.c, best first.
  enum class Variant { kDirect, kCompat, kRaw };

  absl::Status OpenAndLoad(Variant variant) {
    const bool use_btf = variant != Variant::kRaw;
    const BpfSourceOptions& options = options_;
    // 1. Open: parse the embedded object, nothing in the kernel yet.
    skel_ = socket_trace__open();
    if (skel_ == nullptr) {
      return absl::InternalError(absl::StrCat("cannot open BPF object: ", ErrnoText(errno)));
    }

    // 2. Read-only knobs (.rodata) and map sizes from the config.
    skel_->rodata->self_tgid = options.self_tgid;
    skel_->rodata->self_port = options.self_port;
    skel_->rodata->self_debug_port = options.self_debug_port;
    skel_->rodata->payload_bytes = options.capture.payload_bytes;
    skel_->rodata->parse_once = options.capture.parse_once ? 1 : 0;
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return absl::InternalError("cannot count possible CPUs");
    num_cpus_ = cpus;
    // capture.ring_buffer_bytes and wakeup_bytes are totals, split evenly
    // over the per-CPU rings (each a power of two, at least 16 KiB).
    per_cpu_ring_bytes_ = 16u << 10;
    while (uint64_t{per_cpu_ring_bytes_} * 2 * cpus <= options.capture.ring_buffer_bytes) {
      per_cpu_ring_bytes_ *= 2;
    }
    skel_->rodata->batch_bytes = std::min<uint32_t>(REDMAP_BATCH_BYTES, per_cpu_ring_bytes_ / 16);
    skel_->rodata->wakeup_bytes =
        std::max<uint64_t>(1, std::min<uint64_t>(options.capture.wakeup_bytes / cpus,
                                                 per_cpu_ring_bytes_ / 2));
    struct {
      bpf_map* map;
      uint32_t entries;
    } sizes[] = {
        {skel_->maps.events, static_cast<uint32_t>(cpus)},
        {skel_->maps.conn_info_map, options.capture.max_connections},
        {skel_->maps.local_clients, options.capture.max_connections},
        {skel_->maps.scratch_map, static_cast<uint32_t>(cpus)},
        {skel_->maps.tcp_events, options.network.ring_buffer_bytes},
        {skel_->maps.tcp_conns, options.network.max_connections},
    };
    for (const auto& s : sizes) {
      if (s.map == nullptr) return absl::InternalError("BPF object lacks a map redmap sizes");
      if (int err = bpf_map__set_max_entries(s.map, s.entries); err != 0) {
        return absl::InvalidArgumentError(absl::StrCat("cannot size BPF map ", bpf_map__name(s.map),
                                                       " to ", s.entries, ": ", ErrnoText(-err)));
      }
    }

    // The per-CPU rings are created here; the first one also serves as the
    // template the `events` array is declared with (its size is part of
    // the map-in-map type). (bpf_map__set_max_entries on libbpf's own inner
    // map template crashes libbpf 1.1.)
    if (absl::Status s = CreateCpuRings(); !s.ok()) return s;
    if (int err = bpf_map__set_inner_map_fd(skel_->maps.events, cpu_rings_.at(0)); err != 0) {
      return absl::InternalError(absl::StrCat("cannot set the per-CPU ring template: ",
                                              ErrnoText(-err)));
    }

    // 3. Exactly one of the sys_exit program copies is loaded. The TCP health
    // programs are tp_btf only: without BTF tracepoints they stay out (and
    // redmap_probe_up says so).
    bpf_program__set_autoload(skel_->progs.sys_exit_btf, variant == Variant::kDirect);
    bpf_program__set_autoload(skel_->progs.sys_exit_compat, variant == Variant::kCompat);
    bpf_program__set_autoload(skel_->progs.sys_exit_raw, !use_btf);
    // The zero-window program has the same two tp_btf copies; TcpPrograms
    // names the one that goes with this variant.
    variant_ = variant;
    bpf_program__set_autoload(skel_->progs.tcp_zero_window, false);
    bpf_program__set_autoload(skel_->progs.tcp_zero_window_compat, false);
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
    return InstallCpuRings();
  }

  // One ring per possible CPU (made once: a fallback load reuses them).
  absl::Status CreateCpuRings() {
    for (uint32_t cpu = cpu_rings_.size(); cpu < static_cast<uint32_t>(num_cpus_); ++cpu) {
      int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "redmap_cpu_ring", 0, 0, per_cpu_ring_bytes_,
                              nullptr);
      if (fd < 0) {
        return absl::InternalError(absl::StrCat("cannot create the ring buffer of CPU ", cpu,
                                                " (", per_cpu_ring_bytes_,
                                                " bytes): ", ErrnoText(errno)));
      }
      cpu_rings_.push_back(fd);
    }
    return absl::OkStatus();
  }

  // Slots each ring into the loaded `events` array at its CPU's index.
  absl::Status InstallCpuRings() {
    const int outer = bpf_map__fd(skel_->maps.events);
    for (uint32_t cpu = 0; cpu < cpu_rings_.size(); ++cpu) {
      if (bpf_map_update_elem(outer, &cpu, &cpu_rings_[cpu], BPF_ANY) != 0) {
        return absl::InternalError(
            absl::StrCat("cannot install the ring buffer of CPU ", cpu, ": ", ErrnoText(errno)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Attach() {
    bpf_program* prog;
    // 5. Attach one by one; a failure is logged and exported, not fatal.
    int attached = 0;
    bpf_object__for_each_program(prog, skel_->obj) {
      if (!bpf_program__autoload(prog) || prog == skel_->progs.flush_batch) continue;
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
    // Batches reach the rings when full or when flush_batch sends them
    // (before a read that needs them). Where it cannot run, every event is
    // sent alone.
    const bpf_map* scratch = skel_->maps.scratch_map;
    batch_stride_ = (bpf_map__value_size(scratch) + 7) & ~size_t{7};
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    batches_len_ = (batch_stride_ * static_cast<size_t>(num_cpus_) + page - 1) / page * page;
    void* m = mmap(nullptr, batches_len_, PROT_READ, MAP_SHARED, bpf_map__fd(scratch), 0);
    if (m == MAP_FAILED) {
      return absl::InternalError(absl::StrCat("cannot map the event batches: ", ErrnoText(errno)));
    }
    batches_ = static_cast<const uint8_t*>(m);
    if (!FlushBatches(std::numeric_limits<uint64_t>::max())) {
      fprintf(stderr, "redmap: cannot run flush_batch on each CPU (%s); events are sent one "
                      "by one\n", ErrnoText(errno).c_str());
      skel_->data->batch_events = 1;
    }
    return OpenRing();
  }

  absl::Status OpenRing() {
    // 6. Ring buffer consumer: one epoll set over every CPU's ring and the
    // TCP ring, read in place (ring_reader.h).
    for (int fd : cpu_rings_) {
      if (absl::Status s = rings_.Add(fd); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("cannot open ring buffer: ", s.message()));
      }
    }
    if (absl::Status s = rings_.Add(bpf_map__fd(skel_->maps.tcp_events)); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("cannot open TCP ring buffer: ", s.message()));
    }
    return absl::OkStatus();
  }

  // The TCP health programs of the variant being loaded.
  std::vector<bpf_program*> TcpPrograms() const {
    return {skel_->progs.tcp_state,
            skel_->progs.tcp_retransmit,
            skel_->progs.tcp_retransmit_synack,
            skel_->progs.tcp_send_reset,
            skel_->progs.tcp_receive_reset,
            variant_ == Variant::kDirect ? skel_->progs.tcp_zero_window
                                         : skel_->progs.tcp_zero_window_compat,
            skel_->progs.tcp_destroy};
  }

  absl::Status Run(EventSink* sink, const std::atomic<bool>& stop) {
    sink_ = sink;
    const int timeout_ms = static_cast<int>(options_.capture.poll_interval_ms);
    while (!stop.load(std::memory_order_relaxed)) {
      const uint64_t round_start = MonotonicNs();
      // With the rings empty, wait: the kernel side wakes us while we wait
      // here and a ring holds wakeup_bytes; otherwise the timeout drains
      // whatever queued up (events carry kernel timestamps, so batching
      // delays nothing that is measured). reader_waiting is set with a full
      // barrier before epoll_wait looks at the rings: a batch committed
      // after that look is followed by a producer that sees the flag.
      // A ring that holds records (always, under load; also records the
      // merger held back) would make epoll_wait return at once: the mapped
      // positions say so without the syscall (~2.3 us a round measured on
      // nginx + wrk, ~20 ns per request), and the pacing below spaces the
      // rounds.
      if (!rings_.HasData()) {
        __atomic_store_n(&skel_->bss->reader_waiting, 1u, __ATOMIC_SEQ_CST);
        absl::StatusOr<int> n = rings_.Wait(timeout_ms);
        __atomic_store_n(&skel_->bss->reader_waiting, 0u, __ATOMIC_RELAXED);
        if (!n.ok()) return n.status();
      }
      // Everything older than the start of this read is in some ring by
      // now; newer records wait a round (see record_merger.h).
      const uint64_t read_start = MonotonicNs();
      Deliver(read_start > kHoldBackNs ? read_start - kHoldBackNs : 0);
      if (tick_) tick_(MonotonicNs());
      // Under steady traffic a ring always has data and the wait above is
      // skipped: pace the rounds so that each one handles a batch, not a few
      // records (each round sorts, and reads again what it held back).
      const uint64_t spent = MonotonicNs() - round_start;
      if (spent < kMinRoundNs) usleep(static_cast<useconds_t>((kMinRoundNs - spent) / 1000));
    }
    Deliver(std::numeric_limits<uint64_t>::max());
    sink_ = nullptr;
    return absl::OkStatus();
  }

  KernelStats ReadKernelStats() const {
    KernelStats k;
    std::vector<redmap_stats> per_cpu = ReadStats();
    auto sum = [&](uint32_t idx) -> uint64_t {
      uint64_t total = 0;
      for (const redmap_stats& s : per_cpu) total += s.v[idx];
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
    // Ring fill: the bytes each CPU's ring held at its last submit, summed.
    int64_t queued = 0;
    for (const redmap_stats& s : ReadStats()) {
      queued += static_cast<int64_t>(s.v[REDMAP_STAT_RING_QUEUED]);
    }
    return {
        {"bpf_connections", CountEntries(skel_->maps.conn_info_map),
         static_cast<int64_t>(options_.capture.max_connections)},
        {"bpf_local_clients", CountEntries(skel_->maps.local_clients),
         static_cast<int64_t>(options_.capture.max_connections)},
        {"ring_buffer_bytes", queued, int64_t{per_cpu_ring_bytes_} * num_cpus_},
        {"bpf_tcp_connections", CountEntries(skel_->maps.tcp_conns),
         static_cast<int64_t>(options_.network.max_connections)},
    };
  }

  void SetTick(std::function<void(uint64_t)> tick) { tick_ = std::move(tick); }

 private:
  // Hands every ring's records older than cutoff_ns to the sink, in time
  // order, and frees their place in the rings.
  void Deliver(uint64_t cutoff_ns) {
    FlushBatches(cutoff_ns);
    rings_.Note(&merger_);
    const size_t rejected = merger_.Deliver(cutoff_ns, sink_);
    rings_.Consume(merger_);
    if (rejected > 0) self_->AddDropped(DropReason::kDecodeError, rejected);
  }

  // Runs flush_batch on each CPU whose batch holds an event older than
  // cutoff_ns (on every CPU for UINT64_MAX): those events go to its ring.
  // False (errno set to the first error) when it could not run on some
  // online CPU.
  bool FlushBatches(uint64_t cutoff_ns) {
    const int fd = bpf_program__fd(skel_->progs.flush_batch);
    int first_error = 0;
    for (int cpu = 0; cpu < num_cpus_; ++cpu) {
      if (cutoff_ns != std::numeric_limits<uint64_t>::max()) {
        // Read while the kernel writes: a stale look costs a needless
        // flush or leaves a batch that is younger than the cutoff anyway.
        const auto* st = reinterpret_cast<const volatile redmap_batch_state*>(
            batches_ + batch_stride_ * static_cast<size_t>(cpu));
        if (st->count == 0 || st->first_ns >= cutoff_ns) continue;
      }
      LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU,
                  .cpu = static_cast<uint32_t>(cpu));
      if (bpf_prog_test_run_opts(fd, &opts) != 0 && errno != ENXIO && first_error == 0) {
        first_error = errno;  // ENXIO: an offline CPU, nothing to flush
      }
    }
    errno = first_error;
    return first_error == 0;
  }

  // Records younger than this at the start of a read are held back a round.
  // (An event is in its ring microseconds after its timestamp.)
  static constexpr uint64_t kHoldBackNs = 250 * 1000;
  // Rounds under load: each wakeup costs a sleep, two context switches and
  // a sort, so fewer rounds cost less CPU per event. Measured on nginx +
  // wrk (ab.sh, 3 runs of 8-10 alternations): 2 ms rounds 0.79-0.82 us of
  // exporter CPU per request against 0.86-0.89 at 1 ms, same throughput and
  // idle time; 0.5 ms cost more CPU and idled the machine more; 4 ms saved
  // a little more CPU but idled it more (longer bursts). At 2 ms the rings
  // hold ~2 ms of events more (~130 KB at 110k requests/s).
  static constexpr uint64_t kMinRoundNs = 2000 * 1000;

  // The per-CPU counters (all zero if the map cannot be read).
  std::vector<redmap_stats> ReadStats() const {
    std::vector<redmap_stats> per_cpu(num_cpus_);
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.stats), &zero, per_cpu.data()) != 0) {
      per_cpu.assign(num_cpus_, redmap_stats{});
    }
    return per_cpu;
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
  Variant variant_ = Variant::kDirect;
  // scratch_map, mapped read-only: each CPU's redmap_batch_state.
  const uint8_t* batches_ = nullptr;
  size_t batches_len_ = 0;
  size_t batch_stride_ = 0;
  SelfMetrics* self_ = nullptr;
  socket_trace* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  EventSink* sink_ = nullptr;
  std::function<void(uint64_t)> tick_;
  int num_cpus_ = 1;
  uint32_t per_cpu_ring_bytes_ = 0;
  std::vector<int> cpu_rings_;  // ring map fds, by CPU
  RecordMerger merger_;
  RingReader rings_;
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
