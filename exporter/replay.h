// --replay: the whole pipeline over a capture, exposition (and optionally one
// JSON line per span) to `out`.
#ifndef REDMAP_EXPORTER_REPLAY_H_
#define REDMAP_EXPORTER_REPLAY_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "aggregators/span/span.h"
#include "exporter/config.h"

namespace redmap {

absl::Status RunReplay(const Config& config, const std::string& pcap_path, bool print_spans,
                       std::ostream& out);

// One span as a single JSON line (no trailing newline).
std::string SpanToJson(const Span& span);

}  // namespace redmap

#endif  // REDMAP_EXPORTER_REPLAY_H_
