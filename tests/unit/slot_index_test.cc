// The assembly table's link indexes: lookups, removal from any place in a
// chain, newest-first iteration, and agreement with a plain multimap under
// a random mix of operations on a table with few buckets (long chains).
#include "aggregators/traces/slot_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

namespace redmap::traces {
namespace {

TEST(SlotIndexTest, FindInsertRemove) {
  SlotIndex x(8);
  EXPECT_EQ(x.buckets(), 16u);
  EXPECT_EQ(x.Find(7), SlotIndex::kNone);
  x.Insert(3, 7);
  x.Insert(5, 7);
  x.Insert(1, 9);
  EXPECT_EQ(x.size(), 3u);
  EXPECT_EQ(x.Find(7), 5);  // the last inserted
  EXPECT_EQ(x.Find(9), 1);
  EXPECT_TRUE(x.Contains(3));
  EXPECT_FALSE(x.Contains(0));
  x.Remove(5);
  EXPECT_EQ(x.Find(7), 3);
  x.Remove(5);  // not there: nothing happens
  EXPECT_EQ(x.size(), 2u);
  x.Insert(3, 9);  // moved to another key
  EXPECT_EQ(x.Find(7), SlotIndex::kNone);
  EXPECT_EQ(x.Find(9), 3);
  EXPECT_EQ(x.size(), 2u);
}

TEST(SlotIndexTest, ForEachIsNewestFirstAndMayRemoveTheCurrentSlot) {
  SlotIndex x(16);
  for (int32_t s : {4, 2, 9, 7}) x.Insert(s, 42);
  x.Insert(1, 43);
  std::vector<int32_t> seen;
  x.ForEach(42, [&](int32_t s) {
    seen.push_back(s);
    if (s % 2 == 0) x.Remove(s);
  });
  EXPECT_EQ(seen, (std::vector<int32_t>{7, 9, 2, 4}));
  seen.clear();
  x.ForEach(42, [&](int32_t s) { seen.push_back(s); });
  EXPECT_EQ(seen, (std::vector<int32_t>{7, 9}));
  EXPECT_EQ(x.Find(43), 1);
}

// Against std::multimap, with 64 slots on the index's smallest table for
// them and keys that collide into the same buckets.
TEST(SlotIndexTest, AgreesWithAMultimapUnderRandomOperations) {
  constexpr int32_t kSlots = 64;
  SlotIndex x(kSlots);
  std::map<int32_t, uint64_t> key_of;               // slot -> key
  std::map<uint64_t, std::vector<int32_t>> by_key;  // key -> slots, oldest first
  std::mt19937_64 rng(7);
  auto erase = [&](int32_t s) {
    auto it = key_of.find(s);
    if (it == key_of.end()) return;
    auto& v = by_key[it->second];
    v.erase(std::find(v.begin(), v.end(), s));
    key_of.erase(it);
  };
  for (int step = 0; step < 20000; ++step) {
    const int32_t s = static_cast<int32_t>(rng() % kSlots);
    const uint64_t key = rng() % 24;  // few keys: long same-key runs
    switch (rng() % 3) {
      case 0:
        x.Insert(s, key);
        erase(s);
        key_of[s] = key;
        by_key[key].push_back(s);
        break;
      case 1:
        x.Remove(s);
        erase(s);
        break;
      default: {
        std::vector<int32_t> got;
        x.ForEach(key, [&](int32_t slot) { got.push_back(slot); });
        std::vector<int32_t> want(by_key[key].rbegin(), by_key[key].rend());
        ASSERT_EQ(got, want) << "step " << step;
        ASSERT_EQ(x.Find(key), want.empty() ? SlotIndex::kNone : want.front());
      }
    }
    ASSERT_EQ(x.size(), key_of.size());
    ASSERT_EQ(x.Contains(s), key_of.count(s) == 1);
  }
}

}  // namespace
}  // namespace redmap::traces
