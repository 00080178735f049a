// Names this node's processes looked up, by the addresses the answers gave:
// 93.184.216.34 -> "example.com". Fed from DNS answers seen on this node
// (DnsCapture: a UDP/53 capture); read when a remote address is outside the
// cluster. Bounded: at most max_entries addresses, each kept for the
// answer's TTL clamped to [min_ttl, max_ttl]; when full, expired entries go
// first, then the entries closest to expiry. An address still being looked
// up keeps its name at least min_ttl past each lookup: a long-lived
// connection (a keep-alive pool that never resolves again) stays named as
// long as the identity cache keeps asking for it (every 30 s while in use).
#ifndef REDMAP_AGGREGATORS_METADATA_DNS_CACHE_H_
#define REDMAP_AGGREGATORS_METADATA_DNS_CACHE_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "aggregators/sources/event.h"

namespace redmap {

struct DnsCacheOptions {
  size_t max_entries = 10000;
  uint64_t min_ttl_ns = 60'000'000'000;     // short TTLs still name the connections they start
  uint64_t max_ttl_ns = 3600'000'000'000;
  size_t max_name_bytes = 253;              // longest valid DNS name
};

class DnsCache {
 public:
  explicit DnsCache(DnsCacheOptions options = {});

  // An answer: `name` resolved to `ip` with `ttl_s`, seen at now_ns
  // (monotonic). A name that is not label-safe (empty, too long, bytes
  // outside printable ASCII) is ignored. The latest answer for an address wins.
  void Add(const IpAddress& ip, std::string_view name, uint32_t ttl_s, uint64_t now_ns);
  // The name while the entry lives; extends it to now + min_ttl (in use).
  std::optional<std::string> Lookup(const IpAddress& ip, uint64_t now_ns);

  size_t size() const;
  size_t max_entries() const { return opt_.max_entries; }
  uint64_t evicted() const;  // dropped before expiry because the cache was full
  // Bumped whenever an address gains a name or changes it (not when an
  // answer only refreshes one): identities named below DNS (CIDR,
  // external) are re-resolved after it moves.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  struct Entry {
    std::string name;
    uint64_t expires_ns;
  };
  DnsCacheOptions opt_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<IpAddress, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t evicted_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_DNS_CACHE_H_
