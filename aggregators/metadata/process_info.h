// Who a process is, for service_name: OTEL_SERVICE_NAME from its environment
// (or service.name in OTEL_RESOURCE_ATTRIBUTES), else its executable name as
// the kernel records it (comm, e.g. "nginx", "python3"). comm is preferred
// over the exe link because it is also what the BPF side reports for a
// process that is gone from /proc by the time its first span completes
// (curl), so a service keeps one name whether or not /proc could be read;
// only when comm is cut at the kernel's 15 bytes and is a prefix of the exe
// link's base name is the full name taken ("kube-controller" ->
// "kube-controller-manager").
// /proc is read once per process (keyed by pid and start time, so a reused
// pid is a new process) and cached in a bounded table.
#ifndef REDMAP_AGGREGATORS_METADATA_PROCESS_INFO_H_
#define REDMAP_AGGREGATORS_METADATA_PROCESS_INFO_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace redmap {

inline constexpr char kUnknownService[] = "unknown_service";

// A label-safe service name from the kernel's comm: printable ASCII only,
// at most 128 bytes; kUnknownService when empty.
std::string ServiceNameFromComm(std::string_view comm);

class ProcessResolver {
 public:
  // proc_root is "/proc" in production; tests point it at a fake tree.
  explicit ProcessResolver(std::string proc_root = "/proc", size_t max_entries = 16384);

  // Service name of tgid; kUnknownService for 0, or for a process that is
  // gone when the kernel gave no comm either.
  // now_ns is any monotonic clock: a cached entry is trusted for
  // kRevalidateNs, then /proc/<pid>/stat is re-read to catch pid reuse.
  // Thread-safe.
  std::string ServiceName(uint32_t tgid, uint64_t now_ns, std::string_view kernel_comm = {});
  static constexpr uint64_t kRevalidateNs = 30ull * 1000 * 1000 * 1000;

  size_t cached() const;

 private:
  struct Entry {
    uint64_t start_time;
    uint64_t checked_ns;
    std::string service_name;
  };
  uint64_t StartTime(uint32_t tgid) const;
  std::string Resolve(uint32_t tgid, std::string_view kernel_comm) const;

  std::string proc_root_;
  size_t max_entries_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint32_t, Entry> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_PROCESS_INFO_H_
