// HTTP/1 heads from real bytes (tests/fixtures/http1, see README.md there:
// curl 7.88.1, nginx 1.22.1, Python 3.11.7 http.server).
#include "aggregators/protocols/http1/http1_parser.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/testlib/fixtures.h"

namespace redmap::http1 {
namespace {

using ::redmap::testing::Fixture;

struct HeadCase {
  const char* file;
  const char* at;  // the message starts at the first occurrence of this ("": at 0)
  bool request;
  const char* method;
  const char* target;
  int status;
  BodyKind kind;  // request kind, or response kind for a GET
  uint64_t length;
};

// Heads of the single-message fixtures and of messages inside the recorded
// conversations.
std::vector<HeadCase> Cases() {
  return {
      {"curl_get.req", "", true, "GET", "/api/items/42?page=2", 0, BodyKind::kNone, 0},
      {"curl_post.req", "", true, "POST", "/api/items/42?page=2", 0, BodyKind::kLength, 11},
      {"nginx_200.resp", "", false, "", "", 200, BodyKind::kLength, 3},
      {"nginx_404.resp", "", false, "", "", 404, BodyKind::kLength, 146},
      {"python_200.resp", "", false, "", "", 200, BodyKind::kLength, 493},
      {"chunked.resp", "", false, "", "", 200, BodyKind::kChunked, 0},
      {"nginx_bodyless.c2s", "", true, "HEAD", "/static/hello.txt", 0, BodyKind::kNone, 0},
      {"nginx_bodyless.s2c", "", false, "", "", 200, BodyKind::kLength, 17},
      {"nginx_ssi_chunked.s2c", "", false, "", "", 200, BodyKind::kChunked, 0},
      {"nginx_gzip_chunked.s2c", "", false, "", "", 200, BodyKind::kChunked, 0},
      {"nginx_http10_until_close.c2s", "", true, "GET", "/ssi/page.html", 0, BodyKind::kNone, 0},
      {"nginx_http10_until_close.s2c", "", false, "", "", 200, BodyKind::kUntilClose, 0},
      {"curl_chunked_upload.c2s", "", true, "POST", "/ok", 0, BodyKind::kChunked, 0},
      {"python_100_continue.c2s", "", true, "POST", "/upload", 0, BodyKind::kLength, 11400},
      {"python_100_continue.s2c", "", false, "", "", 100, BodyKind::kNone, 0},
      {"python_until_close.s2c", "", false, "", "", 200, BodyKind::kUntilClose, 0},
      {"python_100_continue.s2c", "HTTP/1.1 201", false, "", "", 201, BodyKind::kLength, 19},
      {"nginx_keepalive.s2c", "HTTP/1.1 404", false, "", "", 404, BodyKind::kLength, 146},
      {"nginx_keepalive.c2s", "GET /static", true, "GET", "/static/hello.txt", 0, BodyKind::kNone,
       0},
      {"nginx_bodyless.s2c", "HTTP/1.1 304", false, "", "", 304, BodyKind::kNone, 0},
      {"nginx_bodyless.s2c", "HTTP/1.1 204", false, "", "", 204, BodyKind::kNone, 0},
      {"nginx_pipelined.c2s", "GET /empty", true, "GET", "/empty", 0, BodyKind::kNone, 0},
  };
}

std::string At(const HeadCase& c) {
  const std::string file = Fixture(std::string("http1/") + c.file);
  const size_t at = file.find(c.at);
  if (at == std::string::npos) ADD_FAILURE() << c.file << " has no " << c.at;
  return file.substr(at == std::string::npos ? 0 : at);
}

TEST(Http1ParserTest, RealHeads) {
  for (const HeadCase& c : Cases()) {
    const std::string bytes = At(c);
    Head h;
    size_t consumed = 0;
    ASSERT_EQ(ParseHead(bytes, c.request, &h, &consumed), ParseState::kSuccess) << c.file;
    EXPECT_EQ(consumed, bytes.find("\r\n\r\n") + 4) << c.file;
    EXPECT_EQ(h.is_request, c.request);
    EXPECT_EQ(h.method, c.method) << c.file;
    EXPECT_EQ(h.target, c.target) << c.file;
    EXPECT_EQ(h.status, c.status) << c.file;
    const BodyKind kind = c.request ? RequestBodyKind(h) : ResponseBodyKind(h, "GET");
    EXPECT_EQ(kind, c.kind) << c.file;
    if (kind == BodyKind::kLength) EXPECT_EQ(h.content_length, c.length) << c.file;
    if (!c.request) EXPECT_EQ(ResponseBodyKind(h, "HEAD"), BodyKind::kNone) << c.file;
    // The same head parses as nothing but garbage from the other side.
    EXPECT_EQ(ParseHead(bytes, !c.request, &h, &consumed), ParseState::kInvalid) << c.file;
  }
}

TEST(Http1ParserTest, EveryPrefixOfARealHeadNeedsMoreData) {
  for (const HeadCase& c : Cases()) {
    const std::string bytes = At(c);
    Head h;
    size_t consumed = 0;
    ASSERT_EQ(ParseHead(bytes, c.request, &h, &consumed), ParseState::kSuccess);
    const size_t head_len = consumed;
    const size_t line_len = bytes.find('\n') + 1;
    for (size_t n = 0; n < head_len; ++n) {
      const std::string_view prefix = std::string_view(bytes).substr(0, n);
      EXPECT_EQ(ParseHead(prefix, c.request, &h, &consumed), ParseState::kNeedsMoreData)
          << c.file << " prefix " << n;
      EXPECT_EQ(ParseStartLine(prefix, c.request, &h, &consumed),
                n < line_len ? ParseState::kNeedsMoreData : ParseState::kSuccess)
          << c.file << " prefix " << n;
      EXPECT_EQ(LooksLikeMessageStart(prefix, c.request), n > 0) << c.file << " prefix " << n;
    }
    ASSERT_EQ(ParseStartLine(bytes, c.request, &h, &consumed), ParseState::kSuccess);
    EXPECT_EQ(consumed, line_len);
    EXPECT_EQ(h.method, c.method);
    EXPECT_EQ(h.target, c.target);
    EXPECT_EQ(h.status, c.status);
  }
}

// Header names are scanned 16 bytes at a time where 16 are left: every byte
// value at every place of a long name must still decide as the tchar rule
// says (RFC 9110: a name is one or more of !#$%&'*+-.^_`|~, digits, letters).
TEST(Http1ParserTest, EveryByteAtEveryPlaceOfAHeaderNameIsJudgedByTheTokenRule) {
  const std::string tchar_extras = "!#$%&'*+-.^_`|~";
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const bool tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                       (c >= 'A' && c <= 'Z') || tchar_extras.find(c) != std::string::npos;
    for (size_t at = 0; at < 24; ++at) {
      std::string name = "X-Long-Header-Name-Abcdef";  // 25 bytes
      name[at] = c;
      const std::string head = "GET / HTTP/1.1\r\n" + name + ": v\r\nContent-Length: 7\r\n\r\n";
      Head h;
      size_t consumed = 0;
      const ParseState st = ParseHead(head, true, &h, &consumed);
      if (tchar) {
        ASSERT_EQ(st, ParseState::kSuccess) << "byte " << b << " at " << at;
        EXPECT_EQ(h.content_length, 7u);
        EXPECT_EQ(consumed, head.size());
      } else if (c == ':' && at > 0) {
        // The name ends early; the rest of it is the value.
        ASSERT_EQ(st, ParseState::kSuccess) << "byte " << b << " at " << at;
      } else if (c == '\n' && at == 0) {
        EXPECT_EQ(st, ParseState::kSuccess) << "a bare LF ends the head";  // blank line
      } else if ((c == ' ' || c == '\t') && at == 0) {
        EXPECT_EQ(st, ParseState::kSuccess) << "obs-fold: a continuation line";
      } else {
        EXPECT_EQ(st, ParseState::kInvalid) << "byte " << b << " at " << at;
      }
    }
  }
}

TEST(Http1ParserTest, GarbageIsInvalidAtItsFirstWrongByte) {
  // Each is a valid prefix up to its last byte, which makes it invalid: the
  // parser must not wait for more.
  const struct {
    std::string_view bytes;
    bool request;
  } cases[] = {
      {"\x16", true},
      {"g", true},
      {"GET\t", true},
      {"GET  ", true},
      {"GET /a\x01", true},
      {"GET /a X", true},
      {"GET /a HTTP/2", true},
      {"GET /a HTTP/1.x", true},
      {"GET /a HTTP/1.1x", true},
      {"GET /a HTTP/1.1\rx", true},
      {"GET /a HTTP/1.1\r\nHost : x\r\n", true},
      {"GET /a HTTP/1.1\r\nNoColon\r\n", true},
      {"GET /a HTTP/1.1\r\n: empty name\r\n", true},
      {"GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n", true},
      {"GET /a HTTP/1.1\r\nContent-Length: -1\r\n", true},
      {"GET /a HTTP/1.1\r\nContent-Length: 1000000000000000000000\r\n", true},
      {"GET /a HTTP/1.1\r\n\rx", true},
      {"PROPFINDXXXXXXXXXXXXX", true},  // 21 > kMaxMethodBytes
      {"x", false},
      {"HTTP/2", false},
      {"HTTP/1.1x", false},
      {"HTTP/1.1 2x", false},
      {"HTTP/1.1 099", false},
      {"HTTP/1.1 2000", false},
      {"HTTP/1.1 200\rx", false},
  };
  for (const auto& c : cases) {
    Head h;
    size_t consumed;
    EXPECT_EQ(ParseHead(c.bytes, c.request, &h, &consumed), ParseState::kInvalid) << c.bytes;
    EXPECT_EQ(ParseHead(c.bytes.substr(0, c.bytes.size() - 1), c.request, &h, &consumed),
              ParseState::kNeedsMoreData)
        << c.bytes;
  }
}

TEST(Http1ParserTest, ToleratedForms) {
  const struct {
    std::string_view bytes;
    bool request;
    int status;
    BodyKind kind;
  } cases[] = {
      // Bare LF line ends, header names in any case, chunked wins over length.
      {"HTTP/1.0 200 OK\ncontent-LENGTH: 5\nTRANSFER-encoding: gzip, Chunked\n\n", false, 200,
       BodyKind::kChunked},
      // No reason phrase, with and without the space.
      {"HTTP/1.1 204\r\n\r\n", false, 204, BodyKind::kNone},
      {"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, 404, BodyKind::kNone},
      // obs-fold continuation lines, empty values, odd spacing.
      {"HTTP/1.1 200 OK\r\nX-Long: a\r\n\tb\r\nX-Empty:\r\nContent-Length:   7  \r\n\r\n", false,
       200, BodyKind::kLength},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", false, 200, BodyKind::kUntilClose},
      {"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", true, 0, BodyKind::kNone},
      {"CONNECT example.com:443 HTTP/1.1\r\n\r\n", true, 0, BodyKind::kNone},
      {"GET http://example.com/x?y=%20 HTTP/1.0\r\n\r\n", true, 0, BodyKind::kNone},
      {"M-SEARCH * HTTP/1.1\r\n\r\n", true, 0, BodyKind::kNone},
      {"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", true, 0,
       BodyKind::kChunked},
      {"POST /c HTTP/1.1\r\nContent-Length: 0\r\n\r\n", true, 0, BodyKind::kNone},
  };
  for (const auto& c : cases) {
    Head h;
    size_t consumed = 0;
    ASSERT_EQ(ParseHead(c.bytes, c.request, &h, &consumed), ParseState::kSuccess) << c.bytes;
    EXPECT_EQ(consumed, c.bytes.size()) << c.bytes;
    EXPECT_EQ(h.status, c.status) << c.bytes;
    EXPECT_EQ(c.request ? RequestBodyKind(h) : ResponseBodyKind(h, "GET"), c.kind) << c.bytes;
  }
}

TEST(Http1ParserTest, ResponseBodyDependsOnTheRequest) {
  Head h;
  size_t consumed;
  ASSERT_EQ(ParseHead("HTTP/1.1 200 Connection established\r\n\r\n", false, &h, &consumed),
            ParseState::kSuccess);
  EXPECT_EQ(ResponseBodyKind(h, "CONNECT"), BodyKind::kTunnel);
  EXPECT_EQ(ResponseBodyKind(h, "GET"), BodyKind::kUntilClose);
  EXPECT_EQ(ResponseBodyKind(h, "HEAD"), BodyKind::kNone);
  ASSERT_EQ(ParseHead("HTTP/1.1 407 Auth\r\nContent-Length: 4\r\n\r\n", false, &h, &consumed),
            ParseState::kSuccess);
  EXPECT_EQ(ResponseBodyKind(h, "CONNECT"), BodyKind::kLength);
  for (std::string_view line : {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 101 Switching\r\n\r\n",
                                "HTTP/1.1 103 Early Hints\r\nContent-Length: 9\r\n\r\n",
                                "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                                "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    ASSERT_EQ(ParseHead(line, false, &h, &consumed), ParseState::kSuccess) << line;
    EXPECT_EQ(ResponseBodyKind(h, ""), BodyKind::kNone) << line;
  }
}

TEST(Http1ParserTest, HeadLimits) {
  Head h;
  size_t consumed;
  auto with_headers = [](int n) {
    std::string s = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < n; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
  };
  EXPECT_EQ(ParseHead(with_headers(kMaxHeaders), true, &h, &consumed), ParseState::kSuccess);
  EXPECT_EQ(h.headers, kMaxHeaders);
  EXPECT_EQ(ParseHead(with_headers(kMaxHeaders + 1), true, &h, &consumed), ParseState::kInvalid);

  // A head of exactly kMaxHeadBytes is fine; one byte more is not.
  std::string head = "GET / HTTP/1.1\r\nX: ";
  const size_t pad = kMaxHeadBytes - head.size() - 4;
  std::string exact = head + std::string(pad, 'a') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), kMaxHeadBytes);
  EXPECT_EQ(ParseHead(exact, true, &h, &consumed), ParseState::kSuccess);
  std::string over = head + std::string(pad + 1, 'a') + "\r\n\r\n";
  EXPECT_EQ(ParseHead(over, true, &h, &consumed), ParseState::kInvalid);
  // An endless head is refused once it is too long, without its end.
  EXPECT_EQ(ParseHead(head + std::string(kMaxHeadBytes, 'a'), true, &h, &consumed),
            ParseState::kInvalid);
  EXPECT_EQ(ParseHead("GET /" + std::string(kMaxHeadBytes, 'a'), true, &h, &consumed),
            ParseState::kInvalid);
}

TEST(Http1ParserTest, MessageStartsForResynchronising) {
  for (std::string_view yes :
       {"GET /x", "POST /", "PUT *", "DELETE http://h/", "HEAD /", "OPTIONS *", "PATCH /p",
        "CONNECT example.com:443", "CONNECT [::1]:443", "PROPFIND /dav", "G", "GET", "GET "}) {
    EXPECT_TRUE(LooksLikeMessageStart(yes, true)) << yes;
  }
  for (std::string_view no : {"", "\x16\x03\x01", "GETX /", "get /", "BREW /pot", "GET  /",
                              "GET \"x\"", "HTTP/1.1 200"}) {
    EXPECT_FALSE(LooksLikeMessageStart(no, true)) << no;
  }
  for (std::string_view yes : {"HTTP/1.1 200", "HTTP/1.0", "H", "HTTP/1."}) {
    EXPECT_TRUE(LooksLikeMessageStart(yes, false)) << yes;
  }
  for (std::string_view no : {"", "HTTP/2 200", "http/1.1 200", "GET / HTTP/1.1", "xHTTP/1.1"}) {
    EXPECT_FALSE(LooksLikeMessageStart(no, false)) << no;
  }
}

TEST(Http1ParserTest, ChunkSizes) {
  const struct {
    std::string_view bytes;
    ParseState state;
    uint64_t size;
    size_t consumed;
  } cases[] = {
      {"1a\r\nxyz", ParseState::kSuccess, 26, 4},
      {"FF;name=value\r\n", ParseState::kSuccess, 255, 15},
      {"2c88\r\n", ParseState::kSuccess, 0x2c88, 6},
      {"0\r\n\r\n", ParseState::kSuccess, 0, 3},
      {"5 ;ext\n", ParseState::kSuccess, 5, 7},
      {"1a", ParseState::kNeedsMoreData, 0, 0},
      {"1a;ext", ParseState::kNeedsMoreData, 0, 0},
      {"1a\r", ParseState::kNeedsMoreData, 0, 0},
      {"", ParseState::kNeedsMoreData, 0, 0},
      {"zz\r\n", ParseState::kInvalid, 0, 0},
      {"1x\r\n", ParseState::kInvalid, 0, 0},
      {"\r\n", ParseState::kInvalid, 0, 0},
      {"ffffffffffffffffff\r\n", ParseState::kInvalid, 0, 0},
  };
  for (const auto& c : cases) {
    uint64_t size = 0;
    size_t consumed = 0;
    ASSERT_EQ(ParseChunkSize(c.bytes, &size, &consumed), c.state) << c.bytes;
    if (c.state != ParseState::kSuccess) continue;
    EXPECT_EQ(size, c.size) << c.bytes;
    EXPECT_EQ(consumed, c.consumed) << c.bytes;
  }
  uint64_t size;
  size_t consumed;
  const std::string long_ext = "5;" + std::string(kMaxChunkLineBytes, 'e');
  EXPECT_EQ(ParseChunkSize(long_ext, &size, &consumed), ParseState::kInvalid);
  EXPECT_EQ(ParseChunkSize(long_ext + "\r\n", &size, &consumed), ParseState::kInvalid);
}

}  // namespace
}  // namespace redmap::http1
