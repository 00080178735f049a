// HTTP/1.x message heads from bytes (RFC 9112): start line, the headers that
// decide framing, and how the body is delimited. Pure: no sockets, no time,
// no allocation beyond the returned strings. Accepts any prefix of a message
// (kNeedsMoreData) and garbage (kInvalid) without reading out of bounds.
#ifndef REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_PARSER_H_
#define REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace redmap::http1 {

enum class ParseState { kSuccess, kNeedsMoreData, kInvalid };

enum class BodyKind {
  kNone,        // no body (requests without length, HEAD/1xx/204/304 responses)
  kLength,      // Content-Length bytes
  kChunked,     // Transfer-Encoding: chunked
  kUntilClose,  // response delimited by connection close
};

// Limits: a head larger than this, or with more headers, is invalid.
inline constexpr size_t kMaxHeadBytes = 16 * 1024;
inline constexpr int kMaxHeaders = 128;

struct Head {
  bool is_request = true;
  std::string method;  // requests
  std::string target;  // requests
  int status = 0;      // responses
  int minor_version = 1;
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool connection_close = false;
};

// Parses a message head at the start of buf. On kSuccess, *consumed is the
// head's length including the blank line. kNeedsMoreData also means "so far
// so good": the bytes seen are a valid prefix of a head.
ParseState ParseHead(std::string_view buf, bool is_request, Head* head, size_t* consumed);

// Whether buf starts like a message of the given kind (method token or
// "HTTP/1."), looking at most at the first 8 bytes. Used to resynchronise.
bool LooksLikeMessageStart(std::string_view buf, bool is_request);

// Body framing of a parsed head. request_method is the method of the request
// a response answers ("" when unknown).
BodyKind ResponseBodyKind(const Head& response, std::string_view request_method);
BodyKind RequestBodyKind(const Head& request);

// Chunk-size line "1a;ext=x\r\n" at the start of buf.
ParseState ParseChunkSize(std::string_view buf, uint64_t* size, size_t* consumed);

}  // namespace redmap::http1

#endif  // REDMAP_AGGREGATORS_PROTOCOLS_HTTP1_HTTP1_PARSER_H_
