// Syscall tracepoints attach through tracefs; a fresh machine may not have
// it mounted.
#ifndef REDMAP_EXPORTER_TRACEFS_H_
#define REDMAP_EXPORTER_TRACEFS_H_

#include "absl/status/statusor.h"

namespace redmap {

// Mounts tracefs at /sys/kernel/tracing if no tracefs is reachable. Returns
// true if it mounted it, false if it was already there.
absl::StatusOr<bool> EnsureTracefsMounted();

}  // namespace redmap

#endif  // REDMAP_EXPORTER_TRACEFS_H_
