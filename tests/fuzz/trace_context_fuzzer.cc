// Propagation-header extraction and redaction on arbitrary heads: never
// crash, respect the size cap, and never let a credential header's value
// (including an obs-fold continuation of it) through, whatever precedes it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "aggregators/traces/trace_context.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSecret = "zq9secretzq9";
  if (input.find(kSecret) != std::string_view::npos) return 0;
  const redmap::traces::Redactor redactor({"X-Api-Key"}, {"token"});

  (void)redmap::traces::ExtractContext(input);
  std::string out;
  redactor.RedactHead(input, 512, &out);
  if (out.size() > 512) __builtin_trap();
  std::string target;
  redactor.RedactTarget(input, &target);

  std::string head(input);
  head += "\r\nAuthorization: Bearer zq9secretzq9\r\n zq9secretzq9\r\nx-api-key: zq9secretzq9\r\n";
  out.clear();
  redactor.RedactHead(head, 1 << 20, &out);
  if (out.find(kSecret) != std::string::npos) __builtin_trap();
  (void)redmap::traces::ExtractContext(head);
  return 0;
}
