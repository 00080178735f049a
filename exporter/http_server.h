// The exporter's one HTTP listener (civetweb): /metrics (Prometheus text
// format 0.0.4 from a list of collectables), /healthz and / (an index page).
#ifndef REDMAP_EXPORTER_HTTP_SERVER_H_
#define REDMAP_EXPORTER_HTTP_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "aggregators/self/self_metrics.h"
#include "exporter/listen_address.h"
#include "prometheus/collectable.h"

struct mg_context;
struct mg_connection;

namespace redmap {

class HttpServer {
 public:
  // Binds listen_address ("HOST:PORT", port 0 picks a free one). A busy
  // port is a Status naming the address, never an exception.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen_address,
                                                           SelfMetrics* self);
  ~HttpServer();  // stops serving; in-flight requests finish first

  // What /metrics collects, in order. Safe to call while serving.
  void SetCollectables(std::vector<std::shared_ptr<prometheus::Collectable>> collectables);
  int port() const { return port_; }
  const std::string& address() const { return address_; }  // "127.0.0.1:9435"

  // The exposition /metrics would serve now.
  std::string RenderMetrics();

 private:
  HttpServer() = default;
  static int HandleMetrics(mg_connection* conn, void* self);
  static int HandleHealth(mg_connection* conn, void* self);
  static int HandleIndex(mg_connection* conn, void* self);

  bool library_initialized_ = false;
  mg_context* ctx_ = nullptr;
  SelfMetrics* self_ = nullptr;
  int port_ = 0;
  ListenAddress bound_;
  std::string address_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_ ABSL_GUARDED_BY(mu_);
};

// The exposition of a set of collectables (also used by --replay).
std::string RenderExposition(const std::vector<std::shared_ptr<prometheus::Collectable>>& c);

}  // namespace redmap

#endif  // REDMAP_EXPORTER_HTTP_SERVER_H_
