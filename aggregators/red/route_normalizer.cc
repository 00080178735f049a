#include "aggregators/red/route_normalizer.h"

namespace redmap {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsTokenChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !IsHex(s[i])) return false;
  }
  return true;
}

std::string_view Placeholder(std::string_view seg) {
  if (seg.empty()) return seg;
  bool all_digits = true, all_hex = true, all_token = true;
  size_t digits = 0;
  for (char c : seg) {
    all_digits &= IsDigit(c);
    all_hex &= IsHex(c);
    all_token &= IsTokenChar(c);
    digits += IsDigit(c);
  }
  if (all_digits) return "{id}";
  if (IsUuid(seg)) return "{uuid}";
  if (all_hex && seg.size() >= 16) return "{hex}";
  if (all_token && seg.size() >= 20 && digits >= 4) return "{token}";
  if (seg.size() > kMaxRouteSegmentBytes) return "{token}";
  return seg;
}

}  // namespace

std::string NormalizeRoute(std::string_view target) {
  if (target == "*") return "*";
  // Absolute form (proxies): scheme://authority/path
  if (size_t scheme = target.find("://"); scheme != std::string_view::npos && scheme < 10) {
    size_t path = target.find('/', scheme + 3);
    target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
  }
  size_t end = target.find_first_of("?#");
  std::string_view path = target.substr(0, end);
  for (char c : path) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return "{invalid}";
    }
  }
  if (path.empty() || path[0] != '/') return path.empty() ? "/" : "{invalid}";

  std::string out;
  out.reserve(path.size());
  size_t segments = 0;
  size_t i = 1;
  while (true) {
    size_t slash = path.find('/', i);
    std::string_view seg =
        path.substr(i, slash == std::string_view::npos ? std::string_view::npos : slash - i);
    if (++segments > kMaxRouteSegments) {
      out += "/{*}";
      break;
    }
    out += '/';
    out += Placeholder(seg);
    if (slash == std::string_view::npos) break;
    i = slash + 1;
  }
  return out;
}

}  // namespace redmap
