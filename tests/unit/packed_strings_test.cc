// The assembly table's packed span strings: every field reads back exactly
// what was set, across refills with longer and shorter values, and the
// buffer stops growing once it is warm.
#include "aggregators/traces/packed_strings.h"

#include <gtest/gtest.h>

#include <string>

namespace redmap::traces {
namespace {

TEST(PackedStringsTest, FieldsReadBackWhatWasSetInAnyOrder) {
  PackedStrings<4> p;
  p.Set(2, "two");
  p.Set(0, "zero");
  p.Set(3, "");
  EXPECT_EQ(p.Get(0), "zero");
  EXPECT_EQ(p.Get(1), "");  // never set
  EXPECT_EQ(p.Get(2), "two");
  EXPECT_EQ(p.Get(3), "");
  EXPECT_EQ(p.size(), 7u);
}

TEST(PackedStringsTest, SetWithTakesWhatTheWriterAppends) {
  PackedStrings<2> p;
  p.Set(0, "head:");
  p.SetWith(1, [](std::string* out) {
    EXPECT_EQ(*out, "head:");  // appends after what is there
    out->append("abc");
    out->append("def");
  });
  EXPECT_EQ(p.Get(0), "head:");
  EXPECT_EQ(p.Get(1), "abcdef");
  p.SetWith(0, [](std::string*) {});
  EXPECT_EQ(p.Get(0), "");
  EXPECT_EQ(p.Get(1), "abcdef");
}

TEST(PackedStringsTest, SettingAgainPointsAtTheNewerCopy) {
  PackedStrings<2> p;
  p.Set(0, "old");
  p.Set(1, "other");
  p.Set(0, "newer value");
  EXPECT_EQ(p.Get(0), "newer value");
  EXPECT_EQ(p.Get(1), "other");
}

TEST(PackedStringsTest, ClearEmptiesEveryFieldAndKeepsTheBuffer) {
  PackedStrings<3> p;
  const std::string big(1000, 'x');
  p.Set(0, big);
  p.Set(1, "b");
  const size_t cap = p.capacity();
  EXPECT_GE(cap, 1001u);
  p.Clear();
  EXPECT_EQ(p.size(), 0u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(p.Get(i), "") << i;
  EXPECT_EQ(p.capacity(), cap);
  // Refilled shorter, then longer again: no stale bytes, no growth.
  for (int round = 0; round < 50; ++round) {
    p.Clear();
    const std::string a(static_cast<size_t>(round % 7) * 100, static_cast<char>('a' + round % 26));
    const std::string b = "short" + std::to_string(round);
    p.Set(0, a);
    p.Set(2, b);
    ASSERT_EQ(p.Get(0), a);
    ASSERT_EQ(p.Get(1), "");
    ASSERT_EQ(p.Get(2), b);
  }
  EXPECT_EQ(p.capacity(), cap);
}

}  // namespace
}  // namespace redmap::traces
