#include "exporter/ring_reader.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "aggregators/common/errno_text.h"

namespace redmap {
namespace {

// Bytes a record takes in the ring: header, then data, 8-byte aligned.
uint64_t RecordSpan(uint32_t len) {
  len &= ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
  return (static_cast<uint64_t>(len) + BPF_RINGBUF_HDR_SZ + 7) / 8 * 8;
}

}  // namespace

RingReader::~RingReader() {
  for (Ring& r : rings_) {
    if (r.consumer_pos != nullptr) munmap(r.consumer_pos, page_size_);
    if (r.producer_pos != nullptr) {
      munmap(const_cast<uint64_t*>(r.producer_pos), r.data_map_bytes);
    }
  }
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status RingReader::Add(int map_fd) {
  if (page_size_ == 0) page_size_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (epoll_fd_ < 0) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) {
      return absl::InternalError(absl::StrCat("cannot create epoll set: ", ErrnoText(errno)));
    }
  }
  bpf_map_info info{};
  uint32_t info_len = sizeof(info);
  if (bpf_obj_get_info_by_fd(map_fd, &info, &info_len) != 0) {
    return absl::InternalError(absl::StrCat("cannot inspect ring buffer map: ", ErrnoText(errno)));
  }
  if (info.type != BPF_MAP_TYPE_RINGBUF || info.max_entries == 0 ||
      (info.max_entries & (info.max_entries - 1)) != 0) {
    return absl::InvalidArgumentError("not a BPF ring buffer map");
  }
  Ring r;
  r.mask = info.max_entries - 1;
  void* cons = mmap(nullptr, page_size_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (cons == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("cannot map ring buffer: ", ErrnoText(errno)));
  }
  r.consumer_pos = static_cast<uint64_t*>(cons);
  r.data_map_bytes = page_size_ + 2 * static_cast<size_t>(info.max_entries);
  void* prod = mmap(nullptr, r.data_map_bytes, PROT_READ, MAP_SHARED, map_fd,
                    static_cast<off_t>(page_size_));
  if (prod == MAP_FAILED) {
    const int err = errno;
    munmap(cons, page_size_);
    return absl::InternalError(absl::StrCat("cannot map ring buffer: ", ErrnoText(err)));
  }
  r.producer_pos = static_cast<const uint64_t*>(prod);
  r.data = static_cast<const uint8_t*>(prod) + page_size_;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = static_cast<uint32_t>(rings_.size());
  rings_.push_back(r);  // unmapped by the destructor from here on
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, map_fd, &ev) != 0) {
    return absl::InternalError(absl::StrCat("cannot poll ring buffer: ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> RingReader::Wait(int timeout_ms) {
  epoll_event events[16];
  const int n = epoll_wait(epoll_fd_, events, 16, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    return absl::InternalError(absl::StrCat("ring buffer poll failed: ", ErrnoText(errno)));
  }
  return n;
}

bool RingReader::HasData() const {
  for (const Ring& r : rings_) {
    if (__atomic_load_n(r.producer_pos, __ATOMIC_ACQUIRE) !=
        __atomic_load_n(r.consumer_pos, __ATOMIC_RELAXED)) {
      return true;
    }
  }
  return false;
}

void RingReader::Note(RecordMerger* merger) {
  for (size_t i = 0; i < rings_.size(); ++i) {
    Ring& r = rings_[i];
    r.ends.clear();
    uint64_t pos = __atomic_load_n(r.consumer_pos, __ATOMIC_ACQUIRE);
    const uint64_t prod = __atomic_load_n(r.producer_pos, __ATOMIC_ACQUIRE);
    while (pos < prod) {
      const uint8_t* rec = r.data + (pos & r.mask);
      const uint32_t len =
          __atomic_load_n(reinterpret_cast<const uint32_t*>(rec), __ATOMIC_ACQUIRE);
      if (len & BPF_RINGBUF_BUSY_BIT) break;  // not committed yet: next round
      // A committed record ends by the producer position; one that does not
      // is not read (the kernel never writes one; this bounds the reads).
      if (RecordSpan(len) > prod - pos) break;
      pos += RecordSpan(len);
      if (len & BPF_RINGBUF_DISCARD_BIT) continue;
      merger->Add(static_cast<uint32_t>(i), rec + BPF_RINGBUF_HDR_SZ, len);
      r.ends.push_back(pos);
    }
    r.noted_end = pos;
  }
}

void RingReader::Consume(const RecordMerger& merger) {
  for (size_t i = 0; i < rings_.size(); ++i) {
    Ring& r = rings_[i];
    const size_t n = merger.delivered(static_cast<uint32_t>(i));
    uint64_t pos;
    if (n >= r.ends.size()) {
      pos = r.noted_end;  // all of it, trailing discarded records too
    } else if (n > 0) {
      pos = r.ends[n - 1];
    } else {
      continue;
    }
    // A store only when it moves: the producing CPU reads this line.
    // (Only this reader writes it, so reading it back is exact.)
    if (pos != __atomic_load_n(r.consumer_pos, __ATOMIC_RELAXED)) {
      __atomic_store_n(r.consumer_pos, pos, __ATOMIC_RELEASE);
    }
  }
}

}  // namespace redmap
