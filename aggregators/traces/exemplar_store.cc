#include "aggregators/traces/exemplar_store.h"

#include <algorithm>

namespace redmap::traces {

ExemplarStore::ExemplarStore(std::vector<double> buckets, size_t max_series)
    : buckets_(std::move(buckets)), max_series_(max_series) {}

std::string ExemplarStore::Key(std::string_view family, const std::vector<std::string>& values) {
  std::string key(family);
  for (const std::string& v : values) {
    key += '\x1f';
    key += v;
  }
  return key;
}

void ExemplarStore::Record(std::string_view family, const std::vector<std::string>& values,
                           double seconds, std::string trace_id, double unix_seconds) {
  // le is inclusive: a value on a bound belongs to that bucket.
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(buckets_.begin(), buckets_.end(), seconds) - buckets_.begin());
  std::string key = Key(family, values);
  absl::MutexLock l(&mu_);
  auto it = series_.find(key);
  if (it == series_.end()) {
    if (max_series_ == 0) return;
    if (series_.size() >= max_series_) series_.clear();
    it = series_.emplace(std::move(key), std::vector<Exemplar>(buckets_.size() + 1)).first;
  }
  it->second[bucket] = Exemplar{std::move(trace_id), seconds, unix_seconds};
}

std::vector<Exemplar> ExemplarStore::Lookup(std::string_view family,
                                            const std::vector<std::string>& values) const {
  std::string key = Key(family, values);
  absl::MutexLock l(&mu_);
  auto it = series_.find(key);
  return it == series_.end() ? std::vector<Exemplar>() : it->second;
}

void ExemplarStore::Expire(double unix_cutoff_seconds) {
  absl::MutexLock l(&mu_);
  absl::erase_if(series_, [&](auto& kv) {
    bool any = false;
    for (Exemplar& e : kv.second) {
      if (!e.trace_id.empty() && e.unix_seconds < unix_cutoff_seconds) e = Exemplar{};
      any = any || !e.trace_id.empty();
    }
    return !any;
  });
}

size_t ExemplarStore::series() const {
  absl::MutexLock l(&mu_);
  return series_.size();
}

}  // namespace redmap::traces
