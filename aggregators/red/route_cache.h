// http_route of a request-target, RouteOf() (configured patterns, then
// NormalizeRoute()) behind two memos: the last target asked for, and a
// direct-mapped table keyed by the target's path (patterns and the
// heuristics ignore query and fragment, so requests that differ only there
// share a slot). The pipeline gives one RouteCache to the RED aggregator and
// the trace sampler: each span's route is worked out once for both (the
// second asks for the same target and hits the last-target memo), and most
// traffic repeats a few paths, so a miss of that memo is still a hash and a
// compare instead of a segment-by-segment scan.
// Bounded: kSlots paths of at most kMaxPath bytes; longer paths are never
// cached. One thread only (the source thread).
#ifndef REDMAP_AGGREGATORS_RED_ROUTE_CACHE_H_
#define REDMAP_AGGREGATORS_RED_ROUTE_CACHE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aggregators/red/route_normalizer.h"

namespace redmap {

class RouteCache {
 public:
  static constexpr size_t kSlots = 1024;
  static constexpr size_t kMaxPath = 256;

  explicit RouteCache(RoutePatterns patterns = {});

  // RouteOf(&patterns, target). The reference is valid until the next call.
  const std::string& Route(std::string_view target);

  // What the memos saved (tests and benchmarks): calls answered by the
  // last-target memo, by a table slot, and worked out in full.
  struct Stats {
    uint64_t last_hits = 0;
    uint64_t slot_hits = 0;
    uint64_t misses = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Slot {
    bool used = false;
    std::string path;
    std::string route;
  };

  const RoutePatterns patterns_;
  std::vector<Slot> slots_;
  bool has_last_ = false;
  std::string last_target_;
  const std::string* last_route_ = nullptr;
  std::string uncached_;  // the route of a path too long for a slot
  Stats stats_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_RED_ROUTE_CACHE_H_
