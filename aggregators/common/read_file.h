// Small reads of /proc and /sys files: bounded, EINTR-safe, no exceptions.
#ifndef REDMAP_AGGREGATORS_COMMON_READ_FILE_H_
#define REDMAP_AGGREGATORS_COMMON_READ_FILE_H_

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace redmap {

// Up to `limit` bytes of the file at `path`; "" when it cannot be read.
inline std::string ReadFileBounded(const std::string& path, size_t limit) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  while (out.size() < limit) {
    ssize_t n = read(fd, buf, std::min(sizeof(buf), limit - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_COMMON_READ_FILE_H_
