// One Exporter owns everything a live redmap needs: the pipeline, the BPF
// source and the HTTP server. No globals, so a test can build two.
#ifndef REDMAP_EXPORTER_EXPORTER_H_
#define REDMAP_EXPORTER_EXPORTER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "aggregators/pipeline.h"
#include "exporter/bpf_source.h"
#include "exporter/config.h"
#include "exporter/debug_api.h"
#include "exporter/http_server.h"
#include "exporter/identity_sources.h"

namespace redmap {

PipelineOptions PipelineOptionsFromConfig(const Config& config);
// A family's labels to leave out: `drop`, plus, when `keep` is not empty,
// every one of `names` past the first `required` that is not in `keep`.
std::vector<std::string> DroppedLabels(const std::vector<std::string>& names, size_t required,
                                       const std::vector<std::string>& drop,
                                       const std::vector<std::string>& keep);
// The same for a RED family (everything but service_name may go).
std::vector<std::string> DroppedLabels(bool server, const std::vector<std::string>& drop,
                                       const std::vector<std::string>& keep);

class Exporter {
 public:
  // Binds the HTTP port first (a busy port fails before any BPF work), then
  // mounts tracefs if needed, loads and attaches the probes.
  static absl::StatusOr<std::unique_ptr<Exporter>> Create(const Config& config);
  ~Exporter();

  // Drains events on the calling thread until stop.
  absl::Status Run(const std::atomic<bool>& stop);
  const std::string& address() const { return server_->address(); }
  int port() const { return server_->port(); }
  // The debug listener (sampled traces); "" / 0 when traces are disabled.
  std::string debug_address() const { return debug_server_ ? debug_server_->address() : ""; }
  int debug_port() const { return debug_server_ ? debug_server_->port() : 0; }

 private:
  Exporter() = default;
  // Declaration order is teardown order reversed: the server stops first
  // (no scrape reads the BPF maps while they go), then the probes detach;
  // the identity sources outlive the pipeline that reads them.
  std::unique_ptr<IdentitySources> identity_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<BpfSource> source_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<DebugApi> debug_api_;
  std::unique_ptr<HttpServer> debug_server_;
};

// The token in debug.bearer_token_file (surrounding whitespace trimmed); an
// error naming the key when it cannot be read or is empty.
absl::StatusOr<std::string> ReadBearerToken(const std::string& path);

}  // namespace redmap

#endif  // REDMAP_EXPORTER_EXPORTER_H_
