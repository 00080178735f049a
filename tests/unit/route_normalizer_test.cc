#include "aggregators/red/route_normalizer.h"

#include <gtest/gtest.h>

#include <string>

namespace redmap {
namespace {

struct Case {
  std::string target;
  std::string route;
};

void PrintTo(const Case& c, std::ostream* os) { *os << '"' << c.target << '"'; }

class RouteNormalizerTest : public ::testing::TestWithParam<Case> {};

TEST_P(RouteNormalizerTest, Normalizes) {
  const Case& c = GetParam();
  EXPECT_EQ(NormalizeRoute(c.target), c.route);
  // The buffer-reusing form agrees, whatever the buffer held before.
  std::string out = "/left/over/from/the/previous/span";
  NormalizeRoute(c.target, &out);
  EXPECT_EQ(out, c.route);
  // A route is its own route.
  EXPECT_EQ(NormalizeRoute(c.route), c.route);
}

INSTANTIATE_TEST_SUITE_P(Basics, RouteNormalizerTest,
                         ::testing::Values(Case{"/", "/"}, Case{"", "/"}, Case{"*", "*"},
                                           Case{"/ok", "/ok"}, Case{"/a//b/", "/a//b/"},
                                           Case{"/files/big.bin", "/files/big.bin"},
                                           Case{"?x=1", "/"}, Case{"#top", "/"}));

INSTANTIATE_TEST_SUITE_P(
    QueryAndFragment, RouteNormalizerTest,
    ::testing::Values(Case{"/api/users/42?verbose=1&x=2", "/api/users/{id}"},
                      Case{"/api/users/42#frag", "/api/users/{id}"},
                      Case{"/search?q=/api/42", "/search"}, Case{"/r?next=http://evil/x", "/r"},
                      Case{"/a/b?\x01", "/a/b"}));  // junk after '?' is not looked at

INSTANTIATE_TEST_SUITE_P(
    Placeholders, RouteNormalizerTest,
    ::testing::Values(
        Case{"/api/users/42", "/api/users/{id}"}, Case{"/orders/12345/items", "/orders/{id}/items"},
        Case{"/0", "/{id}"},
        Case{"/u/3f2504e0-4f89-11d3-9a0c-0305e82c3301/avatar", "/u/{uuid}/avatar"},
        Case{"/u/3F2504E0-4F89-11D3-9A0C-0305E82C3301", "/u/{uuid}"},
        Case{"/u/3f2504e0-4f89-11d3-9a0c-0305e82c330", "/u/{token}"},   // 35 chars: a token
        Case{"/u/3f2504e0x4f89-11d3-9a0c-0305e82c3301", "/u/{token}"},  // not a uuid: a token
        Case{"/blob/9c56cc51b374c3ba189210d5b6d4bf57790d351c", "/blob/{hex}"},
        Case{"/obj/507f1f77bcf86cd799439011", "/obj/{hex}"},
        Case{"/h/0123456789ABCDEF", "/h/{hex}"},           // exactly 16
        Case{"/h/0123456789abcde", "/h/0123456789abcde"},  // 15: too short for {hex}
        Case{"/h/0123456789abcdef0123", "/h/{hex}"},
        Case{"/t/eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9x1234", "/t/{token}"},
        Case{"/t/aB3dE5gH7jK9_-mnopqr", "/t/{token}"},               // 20 chars, 4 digits
        Case{"/t/aB3dE5gH7jKl_-mnopqr", "/t/aB3dE5gH7jKl_-mnopqr"},  // 3 digits: kept
        Case{"/t/a1b2c3d4e5fghij", "/t/a1b2c3d4e5fghij"},            // 17 chars: kept
        Case{"/x/" + std::string(100, 'z'), "/x/{token}"}));

INSTANTIATE_TEST_SUITE_P(KeptOnPurpose, RouteNormalizerTest,
                         ::testing::Values(Case{"/v1/users", "/v1/users"},
                                           Case{"/v2.1/users", "/v2.1/users"},
                                           Case{"/user123/profile", "/user123/profile"},
                                           Case{"/deadbeef", "/deadbeef"},  // short hex word
                                           Case{"/s3/ipv6", "/s3/ipv6"},
                                           Case{"/a-b_c.d", "/a-b_c.d"},
                                           Case{"/%7Euser/x", "/%7Euser/x"},  // no percent-decoding
                                           Case{"/{id}/{*}", "/{id}/{*}"}));

INSTANTIATE_TEST_SUITE_P(
    ExtensionsAndParams, RouteNormalizerTest,
    ::testing::Values(Case{"/img/12345.png", "/img/{id}.png"},
                      Case{"/dl/507f1f77bcf86cd799439011.tar", "/dl/{hex}.tar"},
                      Case{"/a/3f2504e0-4f89-11d3-9a0c-0305e82c3301.json", "/a/{uuid}.json"},
                      Case{"/img/logo.png", "/img/logo.png"},
                      Case{"/img/12345.verylongext", "/img/12345.verylongext"},
                      Case{"/img/.123", "/img/.123"}, Case{"/img/123.", "/img/123."},
                      Case{"/cart;jsessionid=0AB1C2D3E4/items/7", "/cart/items/{id}"},
                      Case{"/item/42;v=1", "/item/{id}"}, Case{"/;x", "/"}));

INSTANTIATE_TEST_SUITE_P(
    AbsoluteForm, RouteNormalizerTest,
    ::testing::Values(Case{"http://example.com/api/7?x", "/api/{id}"},
                      Case{"http://example.com", "/"}, Case{"http://example.com?x=/1", "/"},
                      Case{"https://h:8443/a/b", "/a/b"},
                      Case{"/a://b/7", "/a://b/{id}"},  // an origin-form path, not a URL
                      Case{"1http://h/x", "{invalid}"}, Case{"://h/x", "{invalid}"}));

INSTANTIATE_TEST_SUITE_P(
    Bounds, RouteNormalizerTest,
    ::testing::Values(
        Case{"/1/2/3/4/5/6/7/8", "/{id}/{id}/{id}/{id}/{id}/{id}/{id}/{id}"},
        Case{"/1/2/3/4/5/6/7/8/9/10", "/{id}/{id}/{id}/{id}/{id}/{id}/{id}/{id}/{*}"},
        Case{"/a/b/c/d/e/f/g/h/", "/a/b/c/d/e/f/g/h/{*}"},
        // Third 60-byte segment would pass kMaxRouteBytes (128).
        Case{"/" + std::string(60, 'p') + "/" + std::string(60, 'q') + "/" + std::string(60, 'r'),
             "/" + std::string(60, 'p') + "/" + std::string(60, 'q') + "/{*}"},
        Case{"/" + std::string(63, 'p') + "/" + std::string(63, 'q'),
             "/" + std::string(63, 'p') + "/" + std::string(63, 'q')}));  // exactly 128

INSTANTIATE_TEST_SUITE_P(
    Invalid, RouteNormalizerTest,
    ::testing::Values(Case{"/bad\x01path", "{invalid}"}, Case{"/caf\xc3\xa9", "{invalid}"},
                      Case{"/a b", "{invalid}"}, Case{std::string("/a\0b", 4), "{invalid}"},
                      Case{"relative", "{invalid}"}, Case{"example.com:443", "{invalid}"},
                      Case{"{invalid}", "{invalid}"}));

TEST(RouteNormalizerBoundsTest, OutputIsBoundedForHugeTargets) {
  std::string target;
  for (int i = 0; i < 1000; ++i) target += "/segment" + std::to_string(i) + "x";
  std::string route = NormalizeRoute(target);
  EXPECT_LE(route.size(), kMaxRouteBytes + 4);
  EXPECT_EQ(route.substr(route.size() - 4), "/{*}");
}

}  // namespace
}  // namespace redmap
