#include "exporter/flags.h"

#include "absl/strings/str_cat.h"

namespace redmap {

std::string Usage() {
  return R"(usage: redmap_exporter [flags]

eBPF RED metrics for the HTTP traffic of unmodified programs on this node.

  --config.file=PATH          YAML configuration (default: built-in defaults;
                              see docs/configuration.md)
  --web.listen-address=HOST:PORT
                              where /metrics, /healthz and / are served
                              (default 0.0.0.0:9435; overrides web.listen_address)
  --debug.listen-address=HOST:PORT
                              where sampled traces are served: JSON, the Jaeger
                              query API and an HTML page (default 127.0.0.1:9436;
                              overrides debug.listen_address)
  --replay=FILE.pcap          run the pipeline over a capture instead of the
                              kernel, print the exposition to stdout and exit
  --replay.spans              with --replay, also print one JSON line per span
  --version                   print the version and exit
  -h, --help                  print this help and exit
)";
}

absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags f;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> value;
    if (name.rfind("--", 0) != 0 && name != "-h") {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", name, "'"));
    }
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto take_value = [&]() -> absl::StatusOr<std::string> {
      if (value) return *value;
      if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) return args[++i];
      return absl::InvalidArgumentError(absl::StrCat("flag ", name, " needs a value"));
    };
    if (name == "--help" || name == "-h" || name == "--version") {
      if (value) {
        return absl::InvalidArgumentError(absl::StrCat("flag ", name, " takes no value"));
      }
      (name == "--version" ? f.version : f.help) = true;
    } else if (name == "--replay.spans") {
      if (value && *value != "true" && *value != "false") {
        return absl::InvalidArgumentError("flag --replay.spans takes no value (or true/false)");
      }
      f.replay_spans = !value || *value == "true";
    } else if (name == "--config.file") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      f.config_file = *v;
    } else if (name == "--web.listen-address") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      f.listen_address = *v;
    } else if (name == "--debug.listen-address") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      f.debug_listen_address = *v;
    } else if (name == "--replay") {
      auto v = take_value();
      if (!v.ok()) return v.status();
      if (v->empty()) return absl::InvalidArgumentError("flag --replay needs a file");
      f.replay = *v;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", name, "'"));
    }
  }
  if (f.replay_spans && f.replay.empty()) {
    return absl::InvalidArgumentError("--replay.spans needs --replay=FILE.pcap");
  }
  return f;
}

}  // namespace redmap
