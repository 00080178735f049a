#include "aggregators/traces/trace_context.h"

#include <algorithm>
#include <array>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/strings/ascii.h"

namespace redmap::traces {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 1..16 hex digits into *out.
bool ParseHex64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d = HexValue(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

void AppendHex64(uint64_t v, std::string* out) {
  for (int shift = 60; shift >= 0; shift -= 4) out->push_back(kHexDigits[(v >> shift) & 0xf]);
}

// FNV-1a, then a splitmix finalizer: stable across processes and nodes
// (absl::Hash is seeded per process, so it cannot name a trace).
uint64_t StableHash(std::string_view s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

// Debian's abseil has its own string_view type: compare std ones here.
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Calls fn(name, value, line_start, value_start, value_end) for each header
// field line of a head (after the start line), stopping at the empty line.
// Offsets index into head; value_end excludes the line end.
template <typename Fn>
void ForEachField(std::string_view head, Fn fn) {
  size_t pos = head.find('\n');
  if (pos == std::string_view::npos) return;
  ++pos;
  std::string_view last_name;
  while (pos < head.size()) {
    size_t eol = head.find('\n', pos);
    size_t line_end = eol == std::string_view::npos ? head.size() : eol;
    std::string_view line = head.substr(pos, line_end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return;  // end of the head
    size_t colon = line.find(':');
    if (line[0] == ' ' || line[0] == '\t') {
      // obs-fold: the previous field's value continues on this line.
      if (!last_name.empty()) fn(last_name, Trim(line), pos, pos, pos + line.size());
    } else if (colon != std::string_view::npos) {
      std::string_view name = Trim(line.substr(0, colon));
      size_t vstart = colon + 1;
      while (vstart < line.size() && (line[vstart] == ' ' || line[vstart] == '\t')) ++vstart;
      fn(name, Trim(line.substr(vstart)), pos, pos + vstart, pos + line.size());
      last_name = name;
    }
    if (eol == std::string_view::npos) return;
    pos = eol + 1;
  }
}

bool ParseTraceparent(std::string_view v, PropagatedContext* c) {
  // version "-" trace-id(32) "-" parent-id(16) "-" flags(2)
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  if (v.substr(0, 2) == "ff" || HexValue(v[0]) < 0 || HexValue(v[1]) < 0) return false;
  auto id = TraceId::FromHex(v.substr(3, 32));
  uint64_t parent = 0;
  if (!id || !ParseHex64(v.substr(36, 16), &parent) || parent == 0) return false;
  c->trace_id = *id;
  c->parent_span_id = parent;
  return true;
}

std::string Base64Decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '+' || ch == '-') v = 62;
    else if (ch == '/' || ch == '_') v = 63;
    else if (ch == '=') break;
    else return {};
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

bool ParseSw8(std::string_view v, PropagatedContext* c) {
  // sample-traceId-segmentId-spanId-service-instance-endpoint-target, the
  // ids base64 encoded.
  std::array<std::string_view, 4> f;
  for (size_t i = 0; i < f.size(); ++i) {
    size_t dash = v.find('-');
    if (dash == std::string_view::npos) {
      if (i < f.size() - 1) return false;
      f[i] = v;
      v = {};
    } else {
      f[i] = v.substr(0, dash);
      v.remove_prefix(dash + 1);
    }
  }
  if (f[0] != "0" && f[0] != "1") return false;
  std::string trace = Base64Decode(f[1]);
  if (trace.empty() || trace.size() > 256) return false;
  if (auto hex = TraceId::FromHex(trace); hex && trace.size() == 32) {
    c->trace_id = *hex;
  } else {
    c->trace_id = TraceId::FromKey(trace);
  }
  std::string segment = Base64Decode(f[2]);
  if (!segment.empty()) {
    c->parent_span_id = StableHash(segment, 0) ^ StableHash(f[3], 7);
    if (c->parent_span_id == 0) c->parent_span_id = 1;
  }
  return true;
}

bool ParseUberTraceId(std::string_view v, PropagatedContext* c) {
  // trace-id:span-id:parent-span-id:flags, sometimes with ':' URL-encoded.
  std::string decoded;
  if (v.find(':') == std::string_view::npos) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (i + 2 < v.size() + 0 && v[i] == '%' && v[i + 1] == '3' &&
          (v[i + 2] == 'A' || v[i + 2] == 'a')) {
        decoded.push_back(':');
        i += 2;
      } else {
        decoded.push_back(v[i]);
      }
    }
    v = decoded;
  }
  size_t a = v.find(':');
  if (a == std::string_view::npos) return false;
  size_t b = v.find(':', a + 1);
  auto id = TraceId::FromHex(v.substr(0, a));
  if (!id) return false;
  c->trace_id = *id;
  uint64_t span = 0;
  std::string_view span_hex =
      v.substr(a + 1, b == std::string_view::npos ? std::string_view::npos : b - a - 1);
  if (ParseHex64(span_hex, &span)) c->parent_span_id = span;
  return true;
}

bool ParseB3Single(std::string_view v, PropagatedContext* c) {
  // traceid-spanid[-sampled[-parentspanid]]; "0", "1", "d" alone carry no id.
  size_t dash = v.find('-');
  if (dash == std::string_view::npos) return false;
  auto id = TraceId::FromHex(v.substr(0, dash));
  if (!id) return false;
  c->trace_id = *id;
  std::string_view rest = v.substr(dash + 1);
  uint64_t span = 0;
  if (ParseHex64(rest.substr(0, rest.find('-')), &span)) c->parent_span_id = span;
  return true;
}

bool MayCarryContext(std::string_view head) {
  // Every name ExtractContext reads starts, in lower case, with one of
  // "tr" (traceparent), "sw" (sw8), "ub" (uber-trace-id), "b3" (b3) or "x-"
  // (x-b3-*, x-request-id), and a field's name starts its line (an obs-fold
  // line continues the previous field, so its name too). `| 0x20` lowers
  // letters and leaves '-' and '3' alone; what else it maps onto these pairs
  // only costs a full parse.
  const char* p = head.data();
  const size_t n = head.size();
  auto names_start_here = [&](size_t nl) {
    if (nl + 2 >= n) return false;
    const unsigned a = static_cast<unsigned char>(p[nl + 1]) | 0x20u;
    const unsigned b = static_cast<unsigned char>(p[nl + 2]) | 0x20u;
    switch ((a << 8) | b) {
      case ('t' << 8) | 'r':
      case ('s' << 8) | 'w':
      case ('u' << 8) | 'b':
      case ('b' << 8) | '3':
      case ('x' << 8) | '-':
        return true;
      default:
        return false;
    }
  };
  // Line ends 16 bytes at a time: this runs on every span, and a library
  // search call per line cost more than the scan itself on short heads.
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i newline = _mm_set1_epi8('\n');
  for (; i + 16 <= n; i += 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    for (unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, newline)));
         mask != 0; mask &= mask - 1) {
      if (names_start_here(i + static_cast<size_t>(__builtin_ctz(mask)))) return true;
    }
  }
#endif
  for (; i < n; ++i) {
    if (p[i] == '\n' && names_start_here(i)) return true;
  }
  return false;
}

}  // namespace

std::string TraceId::Hex() const {
  std::string s;
  s.reserve(32);
  AppendHex64(hi, &s);
  AppendHex64(lo, &s);
  return s;
}

std::optional<TraceId> TraceId::FromHex(std::string_view hex) {
  if (hex.empty() || hex.size() > 32) return std::nullopt;
  TraceId t;
  std::string_view lo = hex.size() > 16 ? hex.substr(hex.size() - 16) : hex;
  std::string_view hi = hex.size() > 16 ? hex.substr(0, hex.size() - 16) : std::string_view();
  if (!ParseHex64(lo, &t.lo)) return std::nullopt;
  if (!hi.empty() && !ParseHex64(hi, &t.hi)) return std::nullopt;
  if (!t.valid()) return std::nullopt;
  return t;
}

TraceId TraceId::FromKey(std::string_view key) {
  TraceId t{StableHash(key, 0x5bd1e995), StableHash(key, 0x27d4eb2f)};
  if (!t.valid()) t.lo = 1;
  return t;
}

std::string SpanIdHex(uint64_t id) {
  std::string s;
  s.reserve(16);
  AppendHex64(id, &s);
  return s;
}

std::string_view PropagationName(Propagation p) {
  switch (p) {
    case Propagation::kNone:
      return "";
    case Propagation::kW3c:
      return "traceparent";
    case Propagation::kSkyWalking:
      return "sw8";
    case Propagation::kJaeger:
      return "uber-trace-id";
    case Propagation::kB3:
      return "b3";
    case Propagation::kRequestId:
      return "x-request-id";
  }
  return "";
}

PropagatedContext ExtractContext(std::string_view head) {
  PropagatedContext c;
  // Most requests carry none of these headers: a scan of the first two
  // bytes of each line proves it without parsing a field.
  if (!MayCarryContext(head)) return c;
  // Lower rank wins: traceparent 1 ... x-b3-traceid 5.
  int rank = 99;
  uint64_t b3_span = 0;
  bool b3_multi = false;
  ForEachField(head, [&](std::string_view name, std::string_view value, size_t, size_t, size_t) {
    if (name.size() < 2 || name.size() > 13) return;
    PropagatedContext tmp;
    int r = 99;
    if (EqualsIgnoreCase(name, "traceparent")) {
      if (rank > 1 && ParseTraceparent(value, &tmp)) r = 1, tmp.format = Propagation::kW3c;
    } else if (EqualsIgnoreCase(name, "sw8")) {
      if (rank > 2 && ParseSw8(value, &tmp)) r = 2, tmp.format = Propagation::kSkyWalking;
    } else if (EqualsIgnoreCase(name, "uber-trace-id")) {
      if (rank > 3 && ParseUberTraceId(value, &tmp)) r = 3, tmp.format = Propagation::kJaeger;
    } else if (EqualsIgnoreCase(name, "b3")) {
      if (rank > 4 && ParseB3Single(value, &tmp)) r = 4, tmp.format = Propagation::kB3;
    } else if (EqualsIgnoreCase(name, "x-b3-traceid")) {
      if (auto id = TraceId::FromHex(value); id && rank > 5) {
        r = 5;
        tmp.format = Propagation::kB3;
        tmp.trace_id = *id;
        b3_multi = true;
      }
    } else if (EqualsIgnoreCase(name, "x-b3-spanid")) {
      ParseHex64(value, &b3_span);
    } else if (EqualsIgnoreCase(name, "x-request-id")) {
      if (!value.empty() && c.request_id.empty()) c.request_id = value.substr(0, 128);
    }
    if (r < rank) {
      rank = r;
      c.format = tmp.format;
      c.trace_id = tmp.trace_id;
      c.parent_span_id = tmp.parent_span_id;
    }
  });
  if (rank == 5 && b3_multi) c.parent_span_id = b3_span;
  if (c.format == Propagation::kNone && !c.request_id.empty()) {
    c.format = Propagation::kRequestId;
    c.trace_id = TraceId::FromKey(c.request_id);
  }
  return c;
}

Redactor::Redactor(const std::vector<std::string>& headers,
                   const std::vector<std::string>& query_params) {
  headers_ = {"authorization", "proxy-authorization", "cookie", "set-cookie"};
  for (const std::string& h : headers) {
    std::string l = absl::AsciiStrToLower(h);
    if (std::find(headers_.begin(), headers_.end(), l) == headers_.end()) headers_.push_back(l);
  }
  for (const std::string& p : query_params) params_.push_back(absl::AsciiStrToLower(p));
}

bool Redactor::IsSensitiveHeader(std::string_view name) const {
  for (const std::string& h : headers_) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  return false;
}

bool Redactor::IsSensitiveParam(std::string_view name) const {
  for (const std::string& p : params_) {
    if (EqualsIgnoreCase(name, p)) return true;
  }
  return false;
}

void Redactor::RedactTarget(std::string_view target, std::string* out) const {
  size_t q = target.find('?');
  if (q == std::string_view::npos || params_.empty()) {
    out->append(target);
    return;
  }
  out->append(target.substr(0, q + 1));
  std::string_view query = target.substr(q + 1);
  size_t frag = query.find('#');
  std::string_view fragment = frag == std::string_view::npos ? "" : query.substr(frag);
  if (frag != std::string_view::npos) query = query.substr(0, frag);
  bool first = true;
  while (true) {
    size_t amp = query.find_first_of("&;");
    std::string_view pair = query.substr(0, amp);
    if (!first) out->push_back(query.data()[-1]);
    first = false;
    size_t eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    if (eq != std::string_view::npos && IsSensitiveParam(name)) {
      out->append(name);
      out->push_back('=');
      out->append(kMask);
    } else {
      out->append(pair);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  out->append(fragment);
}

void Redactor::RedactHead(std::string_view head, size_t max_bytes, std::string* out) const {
  const size_t base = out->size();
  // The start line: a request's target may carry secrets in its query.
  size_t eol = head.find('\n');
  std::string_view start = head.substr(0, eol);
  size_t sp1 = start.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : start.find(' ', sp1 + 1);
  if (sp1 != std::string_view::npos && start.substr(0, 5) != "HTTP/") {
    out->append(start.substr(0, sp1 + 1));
    RedactTarget(start.substr(sp1 + 1, sp2 == std::string_view::npos ? sp2 : sp2 - sp1 - 1),
                 out);
    if (sp2 != std::string_view::npos) out->append(start.substr(sp2));
  } else {
    out->append(start);
  }
  size_t copied = start.size();
  ForEachField(head, [&](std::string_view name, std::string_view value, size_t line_start,
                         size_t value_start, size_t value_end) {
    out->append(head.substr(copied, value_start - copied));  // line end, name, ": "
    if (IsSensitiveHeader(name)) {
      out->append(kMask);
    } else if (EqualsIgnoreCase(name, "referer") ||
               EqualsIgnoreCase(name, "location")) {
      RedactTarget(head.substr(value_start, value_end - value_start), out);
    } else {
      out->append(head.substr(value_start, value_end - value_start));
    }
    (void)line_start;
    (void)value;
    copied = value_end;
  });
  // What follows the last field: its line end and the empty line, or an
  // incomplete field line whose name was cut (no value to hide).
  std::string_view rest = head.substr(std::min(copied, head.size()));
  size_t blank = rest.find("\n\r\n");
  if (blank == std::string_view::npos) blank = rest.find("\n\n");
  if (blank != std::string_view::npos) {
    rest = rest.substr(0, blank + (rest[blank + 1] == '\r' ? 3 : 2));
  } else if (rest.find(':') != std::string_view::npos) {
    rest = {};  // a field ForEachField did not report: never copy unseen values
  }
  out->append(rest);
  if (out->size() - base > max_bytes) out->resize(base + max_bytes);
}

}  // namespace redmap::traces
