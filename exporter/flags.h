// Command-line flags, Prometheus-exporter style: --name=value or --name value.
#ifndef REDMAP_EXPORTER_FLAGS_H_
#define REDMAP_EXPORTER_FLAGS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace redmap {

struct Flags {
  std::string config_file;                   // --config.file
  std::optional<std::string> listen_address; // --web.listen-address (overrides the config)
  std::optional<std::string> debug_listen_address;  // --debug.listen-address (likewise)
  std::string replay;                        // --replay=FILE.pcap
  bool replay_spans = false;                 // --replay.spans
  bool help = false;
  bool version = false;
};

absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args);  // args without argv[0]
std::string Usage();

}  // namespace redmap

#endif  // REDMAP_EXPORTER_FLAGS_H_
