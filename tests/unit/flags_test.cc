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

TEST(FlagsTest, DebugListenAddress) {
  auto f = ParseFlags({"--debug.listen-address=127.0.0.1:7"});
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(*f->debug_listen_address, "127.0.0.1:7");
  EXPECT_FALSE(ParseFlags({}).value().debug_listen_address.has_value());
  EXPECT_THAT(ParseFlags({"--debug.listen-address"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a value")));
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

TEST(FlagsTest, DefaultsWithoutArguments) {
  auto f = ParseFlags({});
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->config_file, "");
  EXPECT_FALSE(f->listen_address.has_value());
  EXPECT_EQ(f->replay, "");
  EXPECT_FALSE(f->replay_spans);
  EXPECT_FALSE(f->help);
  EXPECT_FALSE(f->version);
}

TEST(FlagsTest, SwitchesAndExplicitValues) {
  auto f = ParseFlags({"--replay=a.pcap", "--replay.spans=false", "--version"});
  ASSERT_THAT(f, IsOk());
  EXPECT_FALSE(f->replay_spans);
  EXPECT_TRUE(f->version);
  auto h = ParseFlags({"-h"});
  ASSERT_THAT(h, IsOk());
  EXPECT_TRUE(h->help);
  auto t = ParseFlags({"--replay", "a.pcap", "--replay.spans=true"});
  ASSERT_THAT(t, IsOk());
  EXPECT_TRUE(t->replay_spans);
}

TEST(FlagsTest, LastValueWinsAndEqualsMayBeEmptyOrContainEquals) {
  auto f = ParseFlags({"--config.file=a", "--config.file=b=c"});
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(f->config_file, "b=c");
}

TEST(FlagsTest, EveryErrorNamesTheFlag) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  } cases[] = {
      {{"--log.level=debug"}, "unknown flag '--log.level'"},
      {{"--config-file=x"}, "unknown flag '--config-file'"},
      {{"-config.file=x"}, "unexpected argument '-config.file=x'"},
      {{"--web.listen-address"}, "flag --web.listen-address needs a value"},
      {{"--web.listen-address", "--replay=x"}, "flag --web.listen-address needs a value"},
      {{"--replay"}, "flag --replay needs a value"},
      {{"--replay="}, "flag --replay needs a file"},
      {{"--replay=x", "--replay.spans=maybe"}, "--replay.spans takes no value"},
      {{"--help=yes"}, "flag --help takes no value"},
      {{"--version=1"}, "flag --version takes no value"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseFlags(c.args),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.args[0];
  }
}

TEST(FlagsTest, UsageListsEveryFlag) {
  for (const char* flag : {"--config.file=PATH", "--web.listen-address=HOST:PORT",
                           "--debug.listen-address=HOST:PORT", "--replay=FILE.pcap", "--replay.spans", "--version", "--help"}) {
    EXPECT_THAT(Usage(), HasSubstr(flag));
  }
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
  EXPECT_FALSE(ParseListenAddress("1.2.3.4:65536").ok());
  EXPECT_FALSE(ParseListenAddress("1.2.3.4:+80").ok());
  EXPECT_FALSE(ParseListenAddress("[::1]9435").ok());
  EXPECT_FALSE(ParseListenAddress("[nope]:9435").ok());
  EXPECT_FALSE(ParseListenAddress("::1:9435").ok());
  EXPECT_FALSE(ParseListenAddress("").ok());
  auto l = ParseListenAddress("localhost:9435");
  ASSERT_THAT(l, IsOk());
  EXPECT_EQ(l->ToString(), "127.0.0.1:9435");
  auto z = ParseListenAddress("127.0.0.1:0");
  ASSERT_THAT(z, IsOk());
  EXPECT_EQ(z->port, 0);
}

}  // namespace
}  // namespace redmap
