#include "aggregators/red/route_cache.h"

#include <utility>

#include "absl/hash/hash.h"

namespace redmap {

RouteCache::RouteCache(RoutePatterns patterns)
    : patterns_(std::move(patterns)), slots_(kSlots) {}

const std::string& RouteCache::Route(std::string_view target) {
  if (has_last_ && target == last_target_) {
    ++stats_.last_hits;
    return *last_route_;
  }
  has_last_ = true;
  last_target_.assign(target);
  const RoutePatterns* patterns = patterns_.empty() ? nullptr : &patterns_;
  const std::string_view path = target.substr(0, target.find_first_of("?#"));
  // "*" alone is the asterisk form; "*?x" is not: only the full target tells.
  if (path.size() > kMaxPath || path == "*") {
    ++stats_.misses;
    RouteOf(patterns, target, &uncached_);
    last_route_ = &uncached_;
    return uncached_;
  }
  Slot& slot = slots_[absl::Hash<std::string_view>()(path) % kSlots];
  last_route_ = &slot.route;
  if (slot.used && slot.path == path) {
    ++stats_.slot_hits;
    return slot.route;
  }
  ++stats_.misses;
  RouteOf(patterns, path, &slot.route);
  slot.used = true;
  slot.path.assign(path);
  return slot.route;
}

}  // namespace redmap
