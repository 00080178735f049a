#include "aggregators/protocols/http1/http1_parser.h"

#include <algorithm>

namespace redmap::http1 {
namespace {

constexpr size_t kMaxMethod = 20;

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (Lower(a[i]) != Lower(b[i])) return false;
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Whether `list` (comma separated) contains `token`, case-insensitively.
bool ListHasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// "HTTP/1.x" at the start of s: returns the minor version or -1.
int ParseVersion(std::string_view s) {
  if (s.size() < 8 || s.substr(0, 7) != "HTTP/1." || !IsDigit(s[7])) return -1;
  return s[7] - '0';
}

// Prefix check for bytes that may not yet hold a whole start line.
ParseState CheckStartPrefix(std::string_view buf, bool is_request) {
  if (is_request) {
    size_t i = 0;
    while (i < buf.size() && i <= kMaxMethod && IsUpper(buf[i])) ++i;
    if (i == buf.size()) return i > kMaxMethod ? ParseState::kInvalid : ParseState::kNeedsMoreData;
    return (i > 0 && i <= kMaxMethod && buf[i] == ' ') ? ParseState::kSuccess : ParseState::kInvalid;
  }
  constexpr std::string_view kHttp = "HTTP/1.";
  size_t n = std::min(buf.size(), kHttp.size());
  if (buf.substr(0, n) != kHttp.substr(0, n)) return ParseState::kInvalid;
  return buf.size() < kHttp.size() ? ParseState::kNeedsMoreData : ParseState::kSuccess;
}

}  // namespace

bool LooksLikeMessageStart(std::string_view buf, bool is_request) {
  if (buf.empty()) return false;
  return CheckStartPrefix(buf.substr(0, std::min<size_t>(buf.size(), kMaxMethod + 1)),
                          is_request) != ParseState::kInvalid;
}

ParseState ParseHead(std::string_view buf, bool is_request, Head* head, size_t* consumed) {
  if (CheckStartPrefix(buf, is_request) == ParseState::kInvalid) return ParseState::kInvalid;

  // End of the head: the first empty line (CRLF CRLF, or bare LF LF).
  size_t end = std::string_view::npos;
  size_t head_len = 0;
  for (size_t i = buf.find('\n'); i != std::string_view::npos; i = buf.find('\n', i + 1)) {
    if (i + 1 < buf.size() && buf[i + 1] == '\n') {
      end = i;
      head_len = i + 2;
      break;
    }
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
      end = i;
      head_len = i + 3;
      break;
    }
    if (i > kMaxHeadBytes) break;
  }
  if (end == std::string_view::npos) {
    return buf.size() > kMaxHeadBytes ? ParseState::kInvalid : ParseState::kNeedsMoreData;
  }
  if (head_len > kMaxHeadBytes) return ParseState::kInvalid;

  Head h;
  h.is_request = is_request;
  std::string_view rest = buf.substr(0, end);
  size_t eol = rest.find('\n');
  std::string_view line = rest.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);

  if (is_request) {
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp1 == sp2 || sp1 == 0 || sp1 > kMaxMethod) {
      return ParseState::kInvalid;
    }
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    int minor = ParseVersion(line.substr(sp2 + 1));
    if (target.empty() || minor < 0 || line.size() - sp2 - 1 != 8) return ParseState::kInvalid;
    for (char c : target)
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return ParseState::kInvalid;
    h.method.assign(line.substr(0, sp1));
    h.target.assign(target);
    h.minor_version = minor;
  } else {
    int minor = ParseVersion(line);
    if (minor < 0 || line.size() < 12 || line[8] != ' ' || !IsDigit(line[9]) ||
        !IsDigit(line[10]) || !IsDigit(line[11]) || (line.size() > 12 && line[12] != ' ')) {
      return ParseState::kInvalid;
    }
    h.minor_version = minor;
    h.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (h.status < 100) return ParseState::kInvalid;
  }

  int headers = 0;
  while (!rest.empty()) {
    eol = rest.find('\n');
    line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (++headers > kMaxHeaders) return ParseState::kInvalid;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return ParseState::kInvalid;
    std::string_view name = line.substr(0, colon);
    if (name.find(' ') != std::string_view::npos) return ParseState::kInvalid;
    std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-length")) {
      uint64_t v = 0;
      if (value.empty() || value.size() > 18) return ParseState::kInvalid;
      for (char c : value) {
        if (!IsDigit(c)) return ParseState::kInvalid;
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      // Differing repeated lengths are a smuggling vector: refuse.
      if (h.has_content_length && v != h.content_length) return ParseState::kInvalid;
      h.has_content_length = true;
      h.content_length = v;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      if (ListHasToken(value, "chunked")) h.chunked = true;
    } else if (EqualsIgnoreCase(name, "connection")) {
      if (ListHasToken(value, "close")) h.connection_close = true;
    }
  }
  *head = std::move(h);
  *consumed = head_len;
  return ParseState::kSuccess;
}

BodyKind ResponseBodyKind(const Head& response, std::string_view request_method) {
  if (request_method == "HEAD" || (response.status >= 100 && response.status < 200) ||
      response.status == 204 || response.status == 304) {
    return BodyKind::kNone;
  }
  if (request_method == "CONNECT" && response.status >= 200 && response.status < 300) {
    return BodyKind::kUntilClose;  // a tunnel: nothing more to parse
  }
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
    char c = buf[i];
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
  // Chunk extensions (";name=value") up to the end of the line.
  size_t eol = buf.find('\n', i);
  if (eol == std::string_view::npos) {
    return buf.size() > 1024 ? ParseState::kInvalid : ParseState::kNeedsMoreData;
  }
  char next = buf[i];
  if (next != ';' && next != '\r' && next != '\n' && next != ' ' && next != '\t') {
    return ParseState::kInvalid;
  }
  *size = v;
  *consumed = eol + 1;
  return ParseState::kSuccess;
}

}  // namespace redmap::http1
