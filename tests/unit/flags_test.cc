#include "exporter/flags.h"

#include <gtest/gtest.h>

#include "exporter/listen_address.h"
#include "tests/testlib/status_matchers.h"

namespace redmap {
namespace {

using ::redmap::testing::IsOk;
using ::redmap::testing::StatusIs;
using ::testing::HasSubstr;

TEST(FlagsTest, BothSpellings) {
  auto f = ParseFlags({"--config.file=/etc/r.yaml", "--web.listen-address", "127.0.0.1:1",
                       "--replay", "x.pcap", "--replay.spans"});
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->config_file, "/etc/r.yaml");
  EXPECT_EQ(*f->listen_address, "127.0.0.1:1");
  EXPECT_EQ(f->replay, "x.pcap");
  EXPECT_TRUE(f->replay_spans);
}

TEST(FlagsTest, Errors) {
  EXPECT_THAT(ParseFlags({"--web.listen-adress=x"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--web.listen-adress")));
  EXPECT_THAT(ParseFlags({"--config.file"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a value")));
  EXPECT_THAT(ParseFlags({"stray"}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stray")));
  EXPECT_THAT(ParseFlags({"--replay.spans"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--replay")));
}

TEST(ListenAddressTest, Forms) {
  auto a = ParseListenAddress("0.0.0.0:9435");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->port, 9435);
  EXPECT_EQ(a->ToString(), "0.0.0.0:9435");
  auto b = ParseListenAddress("[::1]:80");
  ASSERT_THAT(b, IsOk());
  EXPECT_TRUE(b->ipv6);
  EXPECT_EQ(b->ToString(), "[::1]:80");
  auto c = ParseListenAddress(":9435");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->ToString(), "0.0.0.0:9435");
  EXPECT_THAT(ParseListenAddress("localhost:1"), IsOk());
  EXPECT_FALSE(ParseListenAddress("example.com:80").ok());
  EXPECT_FALSE(ParseListenAddress("1.2.3.4").ok());
  EXPECT_FALSE(ParseListenAddress("[::1:80").ok());
  EXPECT_FALSE(ParseListenAddress("1.2.3.4:").ok());
}

}  // namespace
}  // namespace redmap
