// Exemplars for the RED latency histograms: per series and bucket, the
// latest sampled trace whose span fell in that bucket. The TraceSampler
// records them when it keeps a trace; the OpenMetrics exposition reads them.
// Bounded by max_series (a full store starts over: exemplars are hints, and
// a restart keeps the newest ones coming). Threads: Record from the source
// thread, Lookup from scrapes; one short lock each.
#ifndef REDMAP_AGGREGATORS_TRACES_EXEMPLAR_STORE_H_
#define REDMAP_AGGREGATORS_TRACES_EXEMPLAR_STORE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace redmap::traces {

struct Exemplar {
  std::string trace_id;  // empty: none
  double value = 0;      // seconds
  double unix_seconds = 0;
};

class ExemplarStore {
 public:
  ExemplarStore(std::vector<double> buckets, size_t max_series);

  // `values` are the series' label values in the family's label order.
  void Record(std::string_view family, const std::vector<std::string>& values, double seconds,
              std::string trace_id, double unix_seconds);
  // One exemplar slot per bucket (buckets.size() + 1, the last is +Inf);
  // empty when the series has none.
  std::vector<Exemplar> Lookup(std::string_view family,
                               const std::vector<std::string>& values) const;
  // Drops exemplars recorded before unix_cutoff_seconds.
  void Expire(double unix_cutoff_seconds);

  size_t series() const;
  size_t max_series() const { return max_series_; }

 private:
  static std::string Key(std::string_view family, const std::vector<std::string>& values);

  const std::vector<double> buckets_;
  const size_t max_series_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<Exemplar>> series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace redmap::traces

#endif  // REDMAP_AGGREGATORS_TRACES_EXEMPLAR_STORE_H_
