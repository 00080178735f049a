// Debian's abseil (20220623) is built with its own absl::string_view, not an
// alias of std::string_view: absl string functions do not take our
// std::string_views directly. These bridge the two without copying.
#ifndef REDMAP_AGGREGATORS_COMMON_STRING_VIEW_H_
#define REDMAP_AGGREGATORS_COMMON_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace redmap {

inline absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view StdView(absl::string_view s) { return {s.data(), s.size()}; }

inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}
inline bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_COMMON_STRING_VIEW_H_
