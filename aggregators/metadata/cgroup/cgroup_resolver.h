// cgroup id -> cgroup path, and pid -> cgroup identity.
//
// The BPF side reports bpf_get_current_cgroup_id(): the id of the task's
// cgroup on the unified (v2) hierarchy, which is the inode number of that
// cgroup's directory under the cgroup2 mount. The kernel offers no cheap
// reverse lookup for an unprivileged reader, so a miss walks the cgroup2 tree
// (bounded in depth and entries) and remembers every directory it saw, up to
// the cache bound: one walk answers the whole node's containers. Walks are
// rate-limited and ids a walk did not find are remembered as misses for a
// while, so a stream of unknown ids costs at most one walk per interval.
// cgroup ids are never reused while the system runs (64-bit kernfs ids), so
// a found path stays valid; entries of removed cgroups age out by eviction.
#ifndef REDMAP_AGGREGATORS_METADATA_CGROUP_CGROUP_RESOLVER_H_
#define REDMAP_AGGREGATORS_METADATA_CGROUP_CGROUP_RESOLVER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "aggregators/metadata/cgroup/cgroup_path.h"

namespace redmap {

// The first cgroup2 mount point in a mountinfo file ("/proc/self/mountinfo"),
// e.g. "/sys/fs/cgroup" (unified hosts) or "/sys/fs/cgroup/unified"
// (hybrid); "" when there is none.
std::string FindCgroup2Mount(const std::string& mountinfo_path = "/proc/self/mountinfo");

struct CgroupResolverOptions {
  // The cgroup2 mount; "" = FindCgroup2Mount(), else "/sys/fs/cgroup".
  std::string cgroup_root;
  std::string proc_root = "/proc";
  size_t max_entries = 16384;      // cached id -> path entries (found and missed)
  uint64_t min_walk_interval_ns = 1'000'000'000;  // at most one tree walk per interval
  uint64_t miss_ttl_ns = 10'000'000'000;          // an unfound id is retried after this
  size_t max_walk_entries = 200'000;              // directories visited per walk
  int max_walk_depth = 16;
};

class CgroupResolver {
 public:
  explicit CgroupResolver(CgroupResolverOptions options = {});

  // Path of cgroup `id` relative to the cgroup root ("/kubepods.slice/..."),
  // "/" for the root itself; nullopt when unknown. now_ns: any monotonic
  // clock. Thread-safe; a miss may walk the tree (without holding the lock
  // other callers need for hits).
  std::optional<std::string> PathOf(uint64_t id, uint64_t now_ns);

  // Identity of cgroup `id` (ParseCgroupPath of its path); nullopt when the
  // id is unknown.
  std::optional<CgroupIdentity> IdentityOf(uint64_t id, uint64_t now_ns);

  // Identity of a process from /proc/<tgid>/cgroup; nullopt when it is gone.
  std::optional<CgroupIdentity> IdentityOfProcess(uint32_t tgid) const;

  const std::string& cgroup_root() const { return root_; }
  size_t cached() const;  // entries in the id cache
  size_t max_cached() const { return opt_.max_entries; }
  uint64_t walks() const;  // tree walks so far

 private:
  struct Entry {
    std::string path;  // "" for a miss
    uint64_t checked_ns;
  };
  void Walk(absl::flat_hash_map<uint64_t, std::string>* found) const;
  void Insert(uint64_t id, Entry e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  CgroupResolverOptions opt_;
  std::string root_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> cache_ ABSL_GUARDED_BY(mu_);
  uint64_t last_walk_ns_ ABSL_GUARDED_BY(mu_) = 0;
  bool walked_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t walks_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex walk_mu_;  // one walk at a time
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_CGROUP_CGROUP_RESOLVER_H_
