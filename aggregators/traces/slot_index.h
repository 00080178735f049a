// A hash index from 64-bit keys to the slots of a fixed-size table (the
// trace assembly table), chained through per-slot links: inserting,
// removing and looking a key up touch one bucket and the few links on its
// chain, with no probing, tombstones, rehashing or allocation after
// construction. Each slot is under at most one key at a time. Buckets are
// a power of two, at least twice the slots, so chains stay short; the index
// takes 4 bytes per bucket and 16 per slot (about 48 KiB per 1024 slots).
#ifndef REDMAP_AGGREGATORS_TRACES_SLOT_INDEX_H_
#define REDMAP_AGGREGATORS_TRACES_SLOT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace redmap::traces {

class SlotIndex {
 public:
  static constexpr int32_t kNone = -1;

  explicit SlotIndex(size_t slots) : links_(slots) {
    size_t buckets = 2;
    while (buckets < 2 * slots) buckets *= 2;
    buckets_.assign(buckets, kNone);
    shift_ = 64;
    for (size_t b = buckets; b > 1; b /= 2) --shift_;
  }

  // Adds slot under key, ahead of the slots already under it. A slot
  // already in the index is moved.
  void Insert(int32_t slot, uint64_t key) {
    Remove(slot);
    Link& l = links_[static_cast<size_t>(slot)];
    int32_t& head = buckets_[Bucket(key)];
    l.key = key;
    l.prev = kNone;
    l.next = head;
    if (head != kNone) links_[static_cast<size_t>(head)].prev = slot;
    head = slot;
    ++size_;
  }

  // Takes slot out; a slot that is not in the index is left alone.
  void Remove(int32_t slot) {
    Link& l = links_[static_cast<size_t>(slot)];
    if (l.prev == kOut) return;
    if (l.prev == kNone) {
      buckets_[Bucket(l.key)] = l.next;
    } else {
      links_[static_cast<size_t>(l.prev)].next = l.next;
    }
    if (l.next != kNone) links_[static_cast<size_t>(l.next)].prev = l.prev;
    l.prev = kOut;
    l.next = kNone;
    --size_;
  }

  bool Contains(int32_t slot) const { return links_[static_cast<size_t>(slot)].prev != kOut; }

  // The slot inserted last under key, or kNone.
  int32_t Find(uint64_t key) const {
    for (int32_t s = buckets_[Bucket(key)]; s != kNone; s = links_[static_cast<size_t>(s)].next) {
      if (links_[static_cast<size_t>(s)].key == key) return s;
    }
    return kNone;
  }

  // fn(slot) for every slot under key, the last inserted first. fn may
  // Remove the slot it is given, and no other slot of this index.
  template <typename Fn>
  void ForEach(uint64_t key, Fn fn) {
    int32_t s = buckets_[Bucket(key)];
    while (s != kNone) {
      const Link& l = links_[static_cast<size_t>(s)];
      const int32_t next = l.next;
      if (l.key == key) fn(s);
      s = next;
    }
  }

  // Cache hints, for a caller that knows which keys and slots it will
  // touch a little later: the bucket a key's lookup or insertion reads,
  // and a slot's link (Remove, Contains).
  void PrefetchKey(uint64_t key) const { __builtin_prefetch(&buckets_[Bucket(key)], 1); }
  void PrefetchSlot(int32_t slot) const {
    __builtin_prefetch(&links_[static_cast<size_t>(slot)], 1);
  }
  // After PrefetchSlot: the bucket that removing the slot would write.
  void PrefetchSlotBucket(int32_t slot) const {
    const Link& l = links_[static_cast<size_t>(slot)];
    if (l.prev == kNone) __builtin_prefetch(&buckets_[Bucket(l.key)], 1);
  }

  size_t size() const { return size_; }
  size_t buckets() const { return buckets_.size(); }

 private:
  static constexpr int32_t kOut = -2;  // prev of a slot not in the index

  struct Link {
    uint64_t key = 0;
    int32_t prev = kOut;
    int32_t next = kNone;
  };

  // Fibonacci hashing: the top bits of key x 2^64/phi, so keys that differ
  // only in their low bits (thread ids) spread over the buckets.
  size_t Bucket(uint64_t key) const {
    return static_cast<size_t>((key * 0x9e3779b97f4a7c15ull) >> shift_);
  }

  std::vector<int32_t> buckets_;
  std::vector<Link> links_;
  int shift_ = 63;
  size_t size_ = 0;
};

}  // namespace redmap::traces

#endif  // REDMAP_AGGREGATORS_TRACES_SLOT_INDEX_H_
