#include <cstddef>
#include <cstdint>
#include <string_view>

#include "aggregators/red/route_normalizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string route = redmap::NormalizeRoute(std::string_view(reinterpret_cast<const char*>(data), size));
  // Bounded output whatever the input.
  if (route.size() > size + 16 && route.size() > 8 * (64 + 8) + 8) __builtin_trap();
  return 0;
}
