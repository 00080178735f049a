#include "aggregators/red/route_normalizer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "aggregators/common/string_view.h"

namespace redmap {
namespace {

constexpr std::string_view kInvalid = "{invalid}";
constexpr std::string_view kRest = "/{*}";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsTokenChar(char c) { return IsDigit(c) || IsAlpha(c) || c == '_' || c == '-'; }
bool IsPrintable(char c) {
  return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !IsHex(s[i])) return false;
  }
  return true;
}

// RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), kept short.
bool IsScheme(std::string_view s) {
  if (s.empty() || s.size() > 16 || !IsAlpha(s[0])) return false;
  for (char c : s) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// The placeholder for seg, or seg itself when it looks like a route name.
std::string_view Classify(std::string_view seg) {
  if (seg.empty()) return seg;
  if (seg.size() > kMaxRouteSegmentBytes) return "{token}";
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
  return seg;
}

// Appends the normalized form of one segment (without its leading '/').
void AppendSegment(std::string_view seg, std::string* out) {
  seg = seg.substr(0, seg.find(';'));  // matrix params: ;jsessionid=...
  std::string_view p = Classify(seg);
  if (p.data() != seg.data()) {
    *out += p;
    return;
  }
  // A kept "name.ext" may still be an id with an extension (123.png).
  size_t dot = seg.rfind('.');
  if (dot != std::string_view::npos && dot > 0) {
    std::string_view ext = seg.substr(dot + 1);
    bool short_ext = !ext.empty() && ext.size() <= 8;
    for (char c : ext) short_ext &= IsDigit(c) || IsAlpha(c);
    if (short_ext) {
      std::string_view stem = seg.substr(0, dot);
      std::string_view sp = Classify(stem);
      if (sp.data() != stem.data()) {
        *out += sp;
        *out += '.';
        *out += ext;
        return;
      }
    }
  }
  *out += seg;
}

}  // namespace

void NormalizeRoute(std::string_view target, std::string* out) {
  out->clear();
  if (target == "*") {
    *out = "*";
    return;
  }
  // Query and fragment never name a route.
  target = target.substr(0, target.find_first_of("?#"));
  if (!target.empty() && target[0] != '/') {
    // Absolute form (requests to proxies): scheme://authority[/path].
    size_t scheme = target.find("://");
    if (scheme == std::string_view::npos || !IsScheme(target.substr(0, scheme))) {
      *out = kInvalid;
      return;
    }
    size_t path = target.find('/', scheme + 3);
    target = path == std::string_view::npos ? std::string_view() : target.substr(path);
  }
  if (target.empty()) {
    *out = "/";
    return;
  }
  for (char c : target) {
    if (!IsPrintable(c)) {
      *out = kInvalid;
      return;
    }
  }

  size_t segments = 0;
  size_t i = 1;  // target[0] == '/'
  while (true) {
    size_t slash = target.find('/', i);
    std::string_view seg =
        target.substr(i, slash == std::string_view::npos ? std::string_view::npos : slash - i);
    const size_t before = out->size();
    if (segments < kMaxRouteSegments) {
      *out += '/';
      AppendSegment(seg, out);
    }
    if (segments++ >= kMaxRouteSegments || out->size() > kMaxRouteBytes) {
      out->resize(before);
      *out += kRest;
      return;
    }
    if (slash == std::string_view::npos) return;
    i = slash + 1;
  }
}

std::string NormalizeRoute(std::string_view target) {
  std::string out;
  NormalizeRoute(target, &out);
  return out;
}

}  // namespace redmap

namespace redmap {

absl::StatusOr<RoutePatterns> RoutePatterns::Create(const std::vector<std::string>& patterns,
                                                    std::string_view key) {
  RoutePatterns out;
  if (patterns.size() > kMaxRoutePatterns) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(key), ": at most ", kMaxRoutePatterns, " patterns, got ", patterns.size()));
  }
  for (const std::string& text : patterns) {
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(AbslView(key), ": pattern \"", text, "\" ", AbslView(why)));
    };
    if (text.empty() || text[0] != '/') return bad("must start with '/'");
    if (text.size() > kMaxRouteBytes) return bad("is too long");
    for (char c : text) {
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f ||
          c == '?' || c == '#') {
        return bad("must be printable ASCII without spaces, '?' or '#'");
      }
    }
    Pattern p;
    p.text = text;
    for (absl::string_view part : absl::StrSplit(AbslView(text).substr(1), '/')) {
      const std::string_view seg = StdView(part);
      if (p.rest) return bad("may have \"**\" only as its last segment");
      if (seg == "**") {
        p.rest = true;
      } else if (seg == "*" || (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}')) {
        p.segments.emplace_back("*");
      } else {
        p.segments.emplace_back(seg);
      }
    }
    out.patterns_.push_back(std::move(p));
  }
  return out;
}

const std::string* RoutePatterns::Match(std::string_view target) const {
  if (patterns_.empty() || target.empty() || target[0] != '/') return nullptr;
  const std::string_view path = target.substr(1, target.find_first_of("?#") - 1);
  for (const Pattern& p : patterns_) {
    std::string_view rest = path;
    bool consumed = false;  // no segment left in the path
    bool ok = true;
    for (const std::string& want : p.segments) {
      if (consumed) {
        ok = false;
        break;
      }
      const size_t slash = rest.find('/');
      const std::string_view seg = rest.substr(0, slash);
      if (want == "*" ? seg.empty() : seg != want) {
        ok = false;
        break;
      }
      if (slash == std::string_view::npos) {
        consumed = true;
      } else {
        rest.remove_prefix(slash + 1);
      }
    }
    if (ok && (p.rest || consumed)) return &p.text;
  }
  return nullptr;
}

void RouteOf(const RoutePatterns* patterns, std::string_view target, std::string* out) {
  if (patterns != nullptr) {
    if (const std::string* p = patterns->Match(target)) {
      out->assign(*p);
      return;
    }
  }
  NormalizeRoute(target, out);
}

}  // namespace redmap
