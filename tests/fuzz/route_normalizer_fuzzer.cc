// NormalizeRoute on arbitrary bytes: never crashes, output is bounded,
// printable, and a fixed point (normalizing a route changes nothing).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "aggregators/red/route_normalizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view target(reinterpret_cast<const char*>(data), size);
  std::string route = redmap::NormalizeRoute(target);
  if (route.empty() || route.size() > redmap::kMaxRouteBytes + 4) __builtin_trap();
  for (char c : route) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      __builtin_trap();
    }
  }
  if (redmap::NormalizeRoute(route) != route) __builtin_trap();
  std::string reused = "previous contents";
  redmap::NormalizeRoute(target, &reused);
  if (reused != route) __builtin_trap();
  return 0;
}
