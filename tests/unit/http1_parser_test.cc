// HTTP/1 heads from real bytes (tests/fixtures/http1, see capture.py there:
// curl 7.88.1, nginx 1.22.1, Python 3.11.7 http.server).
#include "aggregators/protocols/http1/http1_parser.h"

#include <gtest/gtest.h>

#include "tests/testlib/fixtures.h"

namespace redmap::http1 {
namespace {

using ::redmap::testing::Fixture;

TEST(Http1ParserTest, CurlGetRequest) {
  std::string req = Fixture("http1/curl_get.req");
  Head h;
  size_t consumed = 0;
  ASSERT_EQ(ParseHead(req, true, &h, &consumed), ParseState::kSuccess);
  EXPECT_EQ(consumed, req.size());
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/api/items/42?page=2");
  EXPECT_EQ(h.minor_version, 1);
  EXPECT_EQ(RequestBodyKind(h), BodyKind::kNone);
}

TEST(Http1ParserTest, CurlPostRequestHasLengthBody) {
  std::string req = Fixture("http1/curl_post.req");
  Head h;
  size_t consumed = 0;
  ASSERT_EQ(ParseHead(req, true, &h, &consumed), ParseState::kSuccess);
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(RequestBodyKind(h), BodyKind::kLength);
  EXPECT_EQ(h.content_length, 11u);
  EXPECT_EQ(req.size() - consumed, 11u);  // "hello=world"
}

TEST(Http1ParserTest, NginxAndPythonResponses) {
  struct Case {
    const char* file;
    int status;
    BodyKind kind;
  } cases[] = {
      {"http1/nginx_200.resp", 200, BodyKind::kLength},
      {"http1/nginx_404.resp", 404, BodyKind::kLength},
      {"http1/python_200.resp", 200, BodyKind::kLength},
      {"http1/chunked.resp", 200, BodyKind::kChunked},
  };
  for (const Case& c : cases) {
    std::string resp = Fixture(c.file);
    Head h;
    size_t consumed = 0;
    ASSERT_EQ(ParseHead(resp, false, &h, &consumed), ParseState::kSuccess) << c.file;
    EXPECT_EQ(h.status, c.status) << c.file;
    EXPECT_EQ(ResponseBodyKind(h, "GET"), c.kind) << c.file;
    if (c.kind == BodyKind::kLength) EXPECT_EQ(resp.size() - consumed, h.content_length) << c.file;
    EXPECT_EQ(ResponseBodyKind(h, "HEAD"), BodyKind::kNone) << c.file;
  }
}

TEST(Http1ParserTest, EveryPrefixOfAHeadNeedsMoreData) {
  for (const char* file : {"http1/curl_get.req", "http1/nginx_404.resp"}) {
    std::string msg = Fixture(file);
    const bool request = std::string(file).find(".req") != std::string::npos;
    Head h;
    size_t consumed = 0;
    ASSERT_EQ(ParseHead(msg, request, &h, &consumed), ParseState::kSuccess);
    for (size_t n = 0; n < consumed; ++n) {
      EXPECT_EQ(ParseHead(std::string_view(msg).substr(0, n), request, &h, &consumed),
                ParseState::kNeedsMoreData)
          << file << " prefix " << n;
    }
  }
}

TEST(Http1ParserTest, GarbageIsInvalidEarly) {
  Head h;
  size_t consumed;
  for (std::string_view bad : {"\x16\x03\x01\x02\x00", "get / HTTP/1.1\r\n\r\n", "HTTX/1.1 200",
                               "GET / HTTP/2.0\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
                               "HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
                               "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                               "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                               "PROPFINDXXXXXXXXXXXXXXXXXXXX / HTTP/1.1\r\n\r\n"}) {
    bool request = bad.substr(0, 4) != "HTTP";
    EXPECT_EQ(ParseHead(bad, request, &h, &consumed), ParseState::kInvalid) << bad;
  }
  EXPECT_FALSE(LooksLikeMessageStart("\x16\x03\x01", true));
  EXPECT_TRUE(LooksLikeMessageStart("DELETE /x", true));
  EXPECT_TRUE(LooksLikeMessageStart("HTTP/1.0 200", false));
  EXPECT_FALSE(LooksLikeMessageStart("HTTP/2 200", false));
}

TEST(Http1ParserTest, BareLineFeedsAndCaseInsensitiveHeaders) {
  Head h;
  size_t consumed;
  std::string_view msg = "HTTP/1.0 200 OK\ncontent-LENGTH: 5\nTRANSFER-encoding: gzip, Chunked\n\nabcde";
  ASSERT_EQ(ParseHead(msg, false, &h, &consumed), ParseState::kSuccess);
  EXPECT_EQ(consumed, msg.size() - 5);
  EXPECT_TRUE(h.chunked);
  EXPECT_EQ(ResponseBodyKind(h, "GET"), BodyKind::kChunked);  // chunked wins over length
}

TEST(Http1ParserTest, NoBodyStatusesAndUntilClose) {
  Head h;
  size_t consumed;
  ASSERT_EQ(ParseHead("HTTP/1.1 204 No Content\r\n\r\n", false, &h, &consumed),
            ParseState::kSuccess);
  EXPECT_EQ(ResponseBodyKind(h, "GET"), BodyKind::kNone);
  ASSERT_EQ(ParseHead("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, &h,
                      &consumed),
            ParseState::kSuccess);
  EXPECT_EQ(ResponseBodyKind(h, "GET"), BodyKind::kNone);
  ASSERT_EQ(ParseHead("HTTP/1.0 200 OK\r\n\r\n", false, &h, &consumed), ParseState::kSuccess);
  EXPECT_EQ(ResponseBodyKind(h, "GET"), BodyKind::kUntilClose);
  ASSERT_EQ(ParseHead("HTTP/1.1 100 Continue\r\n\r\n", false, &h, &consumed),
            ParseState::kSuccess);
  EXPECT_EQ(ResponseBodyKind(h, "POST"), BodyKind::kNone);
}

TEST(Http1ParserTest, OversizedHeadIsInvalid) {
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(kMaxHeadBytes, 'a');
  Head h;
  size_t consumed;
  EXPECT_EQ(ParseHead(big, true, &h, &consumed), ParseState::kInvalid);
}

TEST(Http1ParserTest, ChunkSizes) {
  uint64_t size;
  size_t consumed;
  ASSERT_EQ(ParseChunkSize("1a\r\nxyz", &size, &consumed), ParseState::kSuccess);
  EXPECT_EQ(size, 26u);
  EXPECT_EQ(consumed, 4u);
  ASSERT_EQ(ParseChunkSize("FF;name=value\r\n", &size, &consumed), ParseState::kSuccess);
  EXPECT_EQ(size, 255u);
  EXPECT_EQ(ParseChunkSize("1a", &size, &consumed), ParseState::kNeedsMoreData);
  EXPECT_EQ(ParseChunkSize("1a;ext", &size, &consumed), ParseState::kNeedsMoreData);
  EXPECT_EQ(ParseChunkSize("zz\r\n", &size, &consumed), ParseState::kInvalid);
  EXPECT_EQ(ParseChunkSize("1x\r\n", &size, &consumed), ParseState::kInvalid);
  EXPECT_EQ(ParseChunkSize("ffffffffffffffffff\r\n", &size, &consumed), ParseState::kInvalid);
}

}  // namespace
}  // namespace redmap::http1
