#include "aggregators/sources/event.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace redmap {
namespace {

TEST(IpAddressTest, MappedV4CollapsesToV4) {
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  IpAddress a = IpAddress::V6(mapped).Canonical();
  EXPECT_EQ(a.family, 4);
  EXPECT_EQ(a.ToString(), "127.0.0.1");
  EXPECT_TRUE(a.IsLoopback());
}

TEST(IpAddressTest, FormatsBothFamilies) {
  EXPECT_EQ(IpAddress::V4(htonl(0x0a000001)).ToString(), "10.0.0.1");
  EXPECT_EQ(IpAddress::V4(htonl(0xc0a8ff09)).ToString(), "192.168.255.9");
  EXPECT_EQ(IpAddress::V4(0).ToString(), "0.0.0.0");
  uint8_t v6[16] = {};
  v6[15] = 1;
  EXPECT_EQ(IpAddress::V6(v6).ToString(), "::1");
  EXPECT_TRUE(IpAddress::V6(v6).IsLoopback());
  EXPECT_EQ(IpAddress().ToString(), "");
}

}  // namespace
}  // namespace redmap
