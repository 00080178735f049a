// N strings back to back in one buffer that keeps its capacity when it is
// cleared and refilled: the trace assembly table keeps a span's eight
// strings (service, process, method, target, route, request id and the two
// heads) this way, so filling a recycled table entry is a run of copies
// into one warm heap block (no allocation in the steady state) instead of
// eight string objects and up to eight heap blocks, each a cache miss once
// the table is larger than the CPU caches.
#ifndef REDMAP_AGGREGATORS_TRACES_PACKED_STRINGS_H_
#define REDMAP_AGGREGATORS_TRACES_PACKED_STRINGS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace redmap::traces {

template <size_t N>
class PackedStrings {
 public:
  // Every field empty; the buffer's capacity stays.
  void Clear() {
    buf_.clear();
    fields_.fill(Range{});
  }

  // Appends v to the buffer as field i (a field set again points at its
  // newer copy; the older bytes stay until Clear). v must not point into
  // this buffer.
  void Set(size_t i, std::string_view v) {
    Range& r = fields_[i];
    r.begin = static_cast<uint32_t>(buf_.size());
    buf_.append(v);
    r.size = static_cast<uint32_t>(v.size());
  }

  // Field i is what write(std::string* buf) appends to the buffer.
  template <typename Write>
  void SetWith(size_t i, Write write) {
    Range& r = fields_[i];
    const size_t begin = buf_.size();
    write(&buf_);
    r.begin = static_cast<uint32_t>(begin);
    r.size = static_cast<uint32_t>(buf_.size() - begin);
  }

  // Valid until the next Set, SetWith or Clear.
  std::string_view Get(size_t i) const {
    return std::string_view(buf_).substr(fields_[i].begin, fields_[i].size);
  }

  size_t size() const { return buf_.size(); }  // bytes of every field set
  const char* data() const { return buf_.data(); }
  size_t capacity() const { return buf_.capacity(); }

 private:
  struct Range {
    uint32_t begin = 0;
    uint32_t size = 0;
  };
  std::string buf_;
  std::array<Range, N> fields_{};
};

}  // namespace redmap::traces

#endif  // REDMAP_AGGREGATORS_TRACES_PACKED_STRINGS_H_
