#include "aggregators/metadata/dns_cache.h"

#include <algorithm>
#include <vector>

namespace redmap {

DnsCache::DnsCache(DnsCacheOptions options) : opt_(options) {
  opt_.max_entries = std::max<size_t>(opt_.max_entries, 1);
}

void DnsCache::Add(const IpAddress& ip_in, std::string_view name, uint32_t ttl_s, uint64_t now_ns) {
  while (!name.empty() && name.back() == '.') name.remove_suffix(1);  // "example.com."
  if (name.empty() || name.size() > opt_.max_name_bytes || ip_in.family == 0) return;
  for (char c : name) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return;
  }
  const IpAddress ip = ip_in.Canonical();
  uint64_t ttl = std::clamp<uint64_t>(uint64_t{ttl_s} * 1'000'000'000, opt_.min_ttl_ns, opt_.max_ttl_ns);
  absl::MutexLock l(&mu_);
  if (entries_.size() >= opt_.max_entries && !entries_.contains(ip)) {
    absl::erase_if(entries_, [now_ns](const auto& kv) { return kv.second.expires_ns <= now_ns; });
    if (entries_.size() >= opt_.max_entries) {
      // Drop the eighth closest to expiry: amortised O(1) per insert.
      std::vector<uint64_t> exp;
      exp.reserve(entries_.size());
      for (const auto& [k, e] : entries_) exp.push_back(e.expires_ns);
      size_t drop = std::max<size_t>(1, entries_.size() / 8);
      std::nth_element(exp.begin(), exp.begin() + (drop - 1), exp.end());
      const uint64_t cutoff = exp[drop - 1];
      size_t before = entries_.size();
      for (auto it = entries_.begin(); it != entries_.end() && before - entries_.size() < drop;) {
        if (it->second.expires_ns <= cutoff) {
          entries_.erase(it++);
        } else {
          ++it;
        }
      }
      evicted_ += before - entries_.size();
    }
  }
  auto [it, inserted] = entries_.try_emplace(ip);
  Entry& e = it->second;
  if (inserted || e.expires_ns <= now_ns || e.name != name) {
    e.name.assign(name);
    generation_.fetch_add(1, std::memory_order_release);
  }
  // The latest answer's TTL wins (a lookup's extension, min_ttl, is never longer).
  e.expires_ns = now_ns + ttl;
}

std::optional<std::string> DnsCache::Lookup(const IpAddress& ip, uint64_t now_ns) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(ip.Canonical());
  if (it == entries_.end() || it->second.expires_ns <= now_ns) return std::nullopt;
  it->second.expires_ns = std::max(it->second.expires_ns, now_ns + opt_.min_ttl_ns);
  return it->second.name;
}

size_t DnsCache::size() const {
  absl::MutexLock l(&mu_);
  return entries_.size();
}

uint64_t DnsCache::evicted() const {
  absl::MutexLock l(&mu_);
  return evicted_;
}

}  // namespace redmap
