#include "aggregators/protocols/http1/http1_parser.h"

#include <emmintrin.h>

#include <algorithm>
#include <array>
#include <new>

namespace redmap::http1 {
namespace {

constexpr std::string_view kVersionPrefix = "HTTP/1.";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
char Lower(char c) { return IsUpper(c) ? static_cast<char>(c + ('a' - 'A')) : c; }

// RFC 9110 tchar: what header names (and methods) are made of.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
bool IsTokenChar(char c) { return kTokenChars[static_cast<unsigned char>(c)]; }
bool IsMethodChar(char c) { return IsUpper(c) || c == '-' || c == '_'; }
// Visible ASCII and obs-text: what a request-target may hold on the wire.
bool IsTargetChar(char c) { return static_cast<unsigned char>(c) > ' ' && c != 0x7f; }

// Header lines are short: the name and the line end are found 16 bytes at a
// time (SSE2, part of x86-64) where 16 bytes are left, instead of a table
// lookup per byte and a memchr call per line (together ~30 % of parsing).
__m128i Load16(const char* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// The end of the token starting at buf[i]: its first byte that is not a
// tchar (or buf.size()).
size_t TokenEnd(std::string_view buf, size_t i) {
  const size_t n = buf.size();
  if (i + 16 <= n) {
    // Letters, digits and '-' (nearly every header name) by range compares;
    // the first other byte, often the colon, goes to the table below.
    const __m128i c = Load16(buf.data() + i);
    const __m128i lower = _mm_or_si128(c, _mm_set1_epi8(0x20));
    const __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
                                        _mm_cmplt_epi8(lower, _mm_set1_epi8('z' + 1)));
    const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('0' - 1)),
                                        _mm_cmplt_epi8(c, _mm_set1_epi8('9' + 1)));
    const __m128i dash = _mm_cmpeq_epi8(c, _mm_set1_epi8('-'));
    const unsigned good = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), dash)));
    i += good == 0xffff ? 16 : static_cast<size_t>(__builtin_ctz(~good));
  }
  while (i < n && IsTokenChar(buf[i])) ++i;
  return i;
}

// The offset of the first '\n' at or after buf[i], or npos.
size_t FindNewline(std::string_view buf, size_t i) {
  const size_t n = buf.size();
  const __m128i newline = _mm_set1_epi8('\n');
  for (int k = 0; k < 4 && i + 16 <= n; ++k, i += 16) {
    const unsigned m =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(Load16(buf.data() + i), newline)));
    if (m != 0) return i + static_cast<size_t>(__builtin_ctz(m));
  }
  return buf.find('\n', i);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != lower[i]) return false;
  }
  return true;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether the comma-separated `list` holds `token` (lower case), ignoring case.
bool ListHasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (EqualsIgnoreCase(TrimSpaces(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// "HTTP/1.x" at buf[i]: *minor and *next (the offset after it) on success.
ParseState MatchVersion(std::string_view buf, size_t i, int* minor, size_t* next) {
  const size_t avail = buf.size() - i;
  const size_t n = std::min(avail, kVersionPrefix.size());
  if (buf.substr(i, n) != kVersionPrefix.substr(0, n)) return ParseState::kInvalid;
  if (avail <= kVersionPrefix.size()) return ParseState::kNeedsMoreData;
  const char d = buf[i + kVersionPrefix.size()];
  if (!IsDigit(d)) return ParseState::kInvalid;
  *minor = d - '0';
  *next = i + kVersionPrefix.size() + 1;
  return ParseState::kSuccess;
}

// CRLF or a bare LF at buf[i]: *next is the offset after it.
ParseState MatchLineEnd(std::string_view buf, size_t i, size_t* next) {
  if (i >= buf.size()) return ParseState::kNeedsMoreData;
  if (buf[i] == '\n') {
    *next = i + 1;
    return ParseState::kSuccess;
  }
  if (buf[i] != '\r') return ParseState::kInvalid;
  if (i + 1 >= buf.size()) return ParseState::kNeedsMoreData;
  if (buf[i + 1] != '\n') return ParseState::kInvalid;
  *next = i + 2;
  return ParseState::kSuccess;
}

ParseState NeedMore(size_t have) {
  return have > kMaxHeadBytes ? ParseState::kInvalid : ParseState::kNeedsMoreData;
}

ParseState ScanRequestLine(std::string_view buf, Head* h, size_t* line_len) {
  const size_t n = buf.size();
  size_t i = 0;
  while (i < n && IsMethodChar(buf[i])) {
    if (++i > kMaxMethodBytes) return ParseState::kInvalid;
  }
  if (i == n) return ParseState::kNeedsMoreData;
  if (i == 0 || buf[i] != ' ') return ParseState::kInvalid;
  const size_t method_end = i++;
  const size_t target_start = i;
  while (i < n && IsTargetChar(buf[i])) ++i;
  if (i == n) return NeedMore(n);
  if (i == target_start || buf[i] != ' ') return ParseState::kInvalid;
  const size_t target_end = i++;
  int minor = 0;
  ParseState st = MatchVersion(buf, i, &minor, &i);
  if (st != ParseState::kSuccess) return st;
  st = MatchLineEnd(buf, i, line_len);
  if (st != ParseState::kSuccess) return st;
  h->method = buf.substr(0, method_end);
  h->target = buf.substr(target_start, target_end - target_start);
  h->minor_version = minor;
  return ParseState::kSuccess;
}

ParseState ScanStatusLine(std::string_view buf, Head* h, size_t* line_len) {
  const size_t n = buf.size();
  int minor = 0;
  size_t i = 0;
  ParseState st = MatchVersion(buf, 0, &minor, &i);
  if (st != ParseState::kSuccess) return st;
  for (size_t k = 0; k < 4; ++k, ++i) {  // " 200"
    if (i == n) return ParseState::kNeedsMoreData;
    if (k == 0 ? buf[i] != ' ' : !IsDigit(buf[i])) return ParseState::kInvalid;
  }
  const int status = (buf[i - 3] - '0') * 100 + (buf[i - 2] - '0') * 10 + (buf[i - 1] - '0');
  if (status < 100) return ParseState::kInvalid;
  if (i < n && buf[i] == ' ') {  // reason phrase: anything up to the line end
    const size_t eol = buf.find('\n', i);
    if (eol == std::string_view::npos) return NeedMore(n);
    *line_len = eol + 1;
  } else {
    st = MatchLineEnd(buf, i, line_len);
    if (st != ParseState::kSuccess) return st;
  }
  h->status = status;
  h->minor_version = minor;
  return ParseState::kSuccess;
}

// Framing-relevant header fields; `value` is untrimmed (only these few
// are worth trimming).
ParseState ApplyHeader(std::string_view name, std::string_view value, Head* h) {
  switch (name.size()) {
    case 14:
      if (EqualsIgnoreCase(name, "content-length")) {
        value = TrimSpaces(value);
        uint64_t v = 0;
        if (value.empty() || value.size() > 18) return ParseState::kInvalid;
        for (char c : value) {
          if (!IsDigit(c)) return ParseState::kInvalid;
          v = v * 10 + static_cast<uint64_t>(c - '0');
        }
        // Differing repeated lengths are a smuggling vector: refuse.
        if (h->has_content_length && v != h->content_length) return ParseState::kInvalid;
        h->has_content_length = true;
        h->content_length = v;
      }
      break;
    case 17:
      if (EqualsIgnoreCase(name, "transfer-encoding") && ListHasToken(value, "chunked")) {
        h->chunked = true;
      }
      break;
    case 10:
      if (EqualsIgnoreCase(name, "connection") && ListHasToken(value, "close")) {
        h->connection_close = true;
      }
      break;
    default:
      break;
  }
  return ParseState::kSuccess;
}

constexpr std::string_view kResyncMethods[] = {
    "GET ",     "POST ",   "PUT ",      "DELETE ",    "HEAD ",  "OPTIONS ", "PATCH ",
    "CONNECT ", "TRACE ",  "PROPFIND ", "PROPPATCH ", "MKCOL ", "COPY ",    "MOVE ",
    "LOCK ",    "UNLOCK ", "REPORT ",   "SEARCH ",    "PURGE ",
};

}  // namespace

ParseState ParseStartLine(std::string_view buf, bool is_request, Head* head, size_t* consumed) {
  Head h;
  h.is_request = is_request;
  size_t len = 0;
  const ParseState st = is_request ? ScanRequestLine(buf, &h, &len) : ScanStatusLine(buf, &h, &len);
  if (st != ParseState::kSuccess) return st;
  *head = h;
  *consumed = len;
  return ParseState::kSuccess;
}

ParseState ParseHead(std::string_view buf, bool is_request, Head* head, size_t* consumed) {
  // Filled in place: a local Head copied out at the end stalled on store
  // forwarding (its fields written piecewise, read back 16 bytes at a time),
  // ~15 % of this function live. Constructed in place too: `h = Head{}`
  // built the zeroed Head on the stack and copied it over, the same stall.
  Head& h = *::new (static_cast<void*>(head)) Head{};
  h.is_request = is_request;
  size_t i = 0;
  ParseState st = is_request ? ScanRequestLine(buf, &h, &i) : ScanStatusLine(buf, &h, &i);
  if (st != ParseState::kSuccess) return st;
  const size_t n = buf.size();
  while (true) {
    if (i >= n) return NeedMore(n);
    size_t end = 0;
    if (buf[i] == '\r' || buf[i] == '\n') {  // the blank line
      st = MatchLineEnd(buf, i, &end);
      if (st == ParseState::kNeedsMoreData) return NeedMore(n);
      if (st != ParseState::kSuccess) return st;
      if (end > kMaxHeadBytes) return ParseState::kInvalid;
      *consumed = end;
      return ParseState::kSuccess;
    }
    // The name is token characters up to the colon: scanned first, so the
    // line end is searched for from the colon on (no colon, an empty name
    // or any other byte first: invalid once the line is complete).
    const bool fold = buf[i] == ' ' || buf[i] == '\t';  // obs-fold continuation
    const size_t colon = fold ? i : TokenEnd(buf, i);
    const size_t eol = FindNewline(buf, colon);
    if (eol == std::string_view::npos) return NeedMore(n);
    if (eol >= kMaxHeadBytes || ++h.headers > kMaxHeaders) return ParseState::kInvalid;
    const size_t line_start = i;
    i = eol + 1;
    if (fold) continue;
    if (colon == line_start || buf[colon] != ':') return ParseState::kInvalid;
    const size_t value_end = buf[eol - 1] == '\r' ? eol - 1 : eol;
    st = ApplyHeader(buf.substr(line_start, colon - line_start),
                     buf.substr(colon + 1, value_end - colon - 1), &h);
    if (st != ParseState::kSuccess) return st;
  }
}

bool LooksLikeMessageStart(std::string_view buf, bool is_request) {
  if (buf.empty()) return false;
  // A prefix counts: a write may stop anywhere (rare, but legal).
  if (!is_request)
    return buf.substr(0, kVersionPrefix.size()) == kVersionPrefix.substr(0, buf.size());
  for (std::string_view m : kResyncMethods) {
    if (buf.substr(0, m.size()) != m.substr(0, buf.size())) continue;
    if (buf.size() <= m.size()) return true;
    // origin-form "/x", asterisk-form "*", absolute-form "http://", authority-form "host:443"
    const char c = buf[m.size()];
    return c == '/' || c == '*' || IsUpper(c) || (c >= 'a' && c <= 'z') || IsDigit(c) || c == '[';
  }
  return false;
}

BodyKind ResponseBodyKind(const Head& response, std::string_view request_method) {
  const int status = response.status;
  if (request_method == "HEAD" || (status >= 100 && status < 200) || status == 204 ||
      status == 304) {
    return BodyKind::kNone;
  }
  if (request_method == "CONNECT" && status >= 200 && status < 300) return BodyKind::kTunnel;
  if (response.chunked) return BodyKind::kChunked;
  if (response.has_content_length) {
    return response.content_length == 0 ? BodyKind::kNone : BodyKind::kLength;
  }
  return BodyKind::kUntilClose;
}

BodyKind RequestBodyKind(const Head& request) {
  if (request.chunked) return BodyKind::kChunked;
  if (request.has_content_length && request.content_length > 0) return BodyKind::kLength;
  return BodyKind::kNone;
}

ParseState ParseChunkSize(std::string_view buf, uint64_t* size, size_t* consumed) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < buf.size(); ++i) {
    const char c = buf[i];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      break;
    }
    if (i >= 15) return ParseState::kInvalid;  // > 2^60: not a real chunk
    v = v * 16 + static_cast<uint64_t>(d);
  }
  if (i == buf.size()) return ParseState::kNeedsMoreData;
  if (i == 0) return ParseState::kInvalid;
  const char next = buf[i];
  if (next != ';' && next != '\r' && next != '\n' && next != ' ' && next != '\t') {
    return ParseState::kInvalid;
  }
  // Chunk extensions (";name=value") up to the end of the line.
  const size_t eol = buf.find('\n', i);
  if (eol == std::string_view::npos) {
    return buf.size() > kMaxChunkLineBytes ? ParseState::kInvalid : ParseState::kNeedsMoreData;
  }
  if (eol >= kMaxChunkLineBytes) return ParseState::kInvalid;
  *size = v;
  *consumed = eol + 1;
  return ParseState::kSuccess;
}

}  // namespace redmap::http1
