#include "aggregators/red/route_normalizer.h"

#include <gtest/gtest.h>

namespace redmap {
namespace {

TEST(RouteNormalizerTest, Table) {
  struct Case {
    const char* target;
    const char* route;
  } cases[] = {
      {"/", "/"},
      {"", "/"},
      {"*", "*"},
      {"/ok", "/ok"},
      {"/api/users/42", "/api/users/{id}"},
      {"/api/users/42?verbose=1&x=2", "/api/users/{id}"},
      {"/api/users/42#frag", "/api/users/{id}"},
      {"/orders/12345/items", "/orders/{id}/items"},
      {"/u/3f2504e0-4f89-11d3-9a0c-0305e82c3301/avatar", "/u/{uuid}/avatar"},
      {"/u/3F2504E0-4F89-11D3-9A0C-0305E82C3301", "/u/{uuid}"},
      {"/blob/9c56cc51b374c3ba189210d5b6d4bf57790d351c", "/blob/{hex}"},
      {"/obj/507f1f77bcf86cd799439011", "/obj/{hex}"},
      {"/t/eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9x1234", "/t/{token}"},
      {"/v1/users", "/v1/users"},
      {"/user123/profile", "/user123/profile"},
      {"/deadbeef", "/deadbeef"},  // short hex word: kept
      {"/files/big.bin", "/files/big.bin"},
      {"/a//b/", "/a//b/"},
      {"http://example.com/api/7?x", "/api/{id}"},
      {"http://example.com", "/"},
      {"/1/2/3/4/5/6/7/8/9/10", "/{id}/{id}/{id}/{id}/{id}/{id}/{id}/{id}/{*}"},
      {"/bad\x01path", "{invalid}"},
      {"/caf\xc3\xa9", "{invalid}"},
      {"relative", "{invalid}"},
  };
  for (const Case& c : cases) EXPECT_EQ(NormalizeRoute(c.target), c.route) << c.target;
}

TEST(RouteNormalizerTest, LongSegmentsBecomeTokens) {
  EXPECT_EQ(NormalizeRoute("/x/" + std::string(100, 'z')), "/x/{token}");
}

}  // namespace
}  // namespace redmap
