// HTTP/1.x message heads from bytes (RFC 9112): start line, the headers that
// decide framing, and how the body is delimited. Pure: no sockets, no time,
// no allocation (results point into the parsed bytes). Accepts any prefix of
// a message (kNeedsMoreData) and garbage (kInvalid) without reading out of
// bounds; garbage is refused as early as its first wrong byte.
#ifndef REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_PARSER_H_
#define REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace redmap::http1 {

enum class ParseState { kSuccess, kNeedsMoreData, kInvalid };

enum class BodyKind {
  kNone,        // no body (requests without length, HEAD/1xx/204/304 responses)
  kLength,      // Content-Length bytes
  kChunked,     // Transfer-Encoding: chunked
  kUntilClose,  // response delimited by connection close
  kTunnel,      // 2xx to CONNECT: the connection stops being HTTP
};

// Limits: a head larger than this, or with more header lines, is invalid.
inline constexpr size_t kMaxHeadBytes = 16 * 1024;
inline constexpr int kMaxHeaders = 100;
inline constexpr size_t kMaxMethodBytes = 20;
// A chunk-size line (with extensions) or trailer line longer than this is invalid.
inline constexpr size_t kMaxChunkLineBytes = 1024;

struct Head {
  bool is_request = true;
  std::string_view method;  // requests; points into the parsed bytes
  std::string_view target;  // requests; raw request-target
  int status = 0;           // responses
  int minor_version = 1;
  int headers = 0;
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool connection_close = false;
};

// Parses a message head at the start of buf. On kSuccess, *consumed is the
// head's length including the blank line. kNeedsMoreData also means "so far
// so good": the bytes seen are a valid prefix of a head. *head is filled
// in place: unspecified unless kSuccess.
ParseState ParseHead(std::string_view buf, bool is_request, Head* head, size_t* consumed);

// Only the start line ("GET /x HTTP/1.1" / "HTTP/1.1 200 OK"), for heads
// whose end was not captured. Fills method/target or status and version.
ParseState ParseStartLine(std::string_view buf, bool is_request, Head* head, size_t* consumed);

// Whether buf starts like a message of the given kind: a well-known method
// and the start of a request-target, or "HTTP/1.". Stricter than ParseHead
// (any upper-case method name) because it decides where to resynchronise
// inside bytes of unknown meaning, e.g. a body.
bool LooksLikeMessageStart(std::string_view buf, bool is_request);

// Body framing of a parsed head. request_method is the method of the request
// a response answers ("" when unknown).
BodyKind ResponseBodyKind(const Head& response, std::string_view request_method);
BodyKind RequestBodyKind(const Head& request);

// Chunk-size line "1a;ext=x\r\n" at the start of buf.
ParseState ParseChunkSize(std::string_view buf, uint64_t* size, size_t* consumed);

}  // namespace redmap::http1

#endif  // REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_PARSER_H_
