// An errno value as error messages show it: "No such file (errno 2)".
#ifndef REDMAP_AGGREGATORS_COMMON_ERRNO_TEXT_H_
#define REDMAP_AGGREGATORS_COMMON_ERRNO_TEXT_H_

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace redmap {

inline std::string ErrnoText(int err) {
  return absl::StrCat(std::strerror(err), " (errno ", err, ")");
}

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_COMMON_ERRNO_TEXT_H_
