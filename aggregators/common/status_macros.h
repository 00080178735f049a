// Debian's abseil (20220623) ships absl::Status but not the status macros.
#ifndef REDMAP_AGGREGATORS_COMMON_STATUS_MACROS_H_
#define REDMAP_AGGREGATORS_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define REDMAP_CONCAT_INNER_(a, b) a##b
#define REDMAP_CONCAT_(a, b) REDMAP_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status _redmap_status = (expr);    \
    if (!_redmap_status.ok()) return _redmap_status; \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(*tmp)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(REDMAP_CONCAT_(_redmap_statusor_, __LINE__), lhs, expr)

#endif  // REDMAP_AGGREGATORS_COMMON_STATUS_MACROS_H_
