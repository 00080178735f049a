#include "exporter/tracefs.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace redmap {

absl::StatusOr<bool> EnsureTracefsMounted() {
  if (access("/sys/kernel/tracing/events", F_OK) == 0 ||
      access("/sys/kernel/debug/tracing/events", F_OK) == 0) {
    return false;
  }
  if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("tracefs is not mounted and mounting it at /sys/kernel/tracing failed: ",
                     std::strerror(errno), " (run as root, or mount it: mount -t tracefs nodev "
                     "/sys/kernel/tracing)"));
  }
  return true;
}

}  // namespace redmap
