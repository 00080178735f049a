// An HTTP listener (civetweb). The exporter's main one serves /metrics
// (Prometheus text format 0.0.4, or OpenMetrics 1.0 with exemplars when the
// scraper accepts it), /healthz and / (an index page); the debug listener
// serves handlers registered with Handle(), optionally behind a bearer token.
#ifndef REDMAP_EXPORTER_HTTP_SERVER_H_
#define REDMAP_EXPORTER_HTTP_SERVER_H_

#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "aggregators/self/self_metrics.h"
#include "exporter/listen_address.h"
#include "exporter/openmetrics.h"
#include "prometheus/collectable.h"

struct mg_context;
struct mg_connection;

namespace redmap {

struct HttpRequest {
  std::string method;  // GET or HEAD (others are answered 405 before handlers)
  std::string path;    // URL-decoded, without the query
  std::string query;   // raw, without '?'
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string listen_address;                  // "HOST:PORT", port 0 picks a free one
  std::string config_key = "web.listen_address";  // names the address in errors
  bool serve_metrics = true;                   // /metrics, /healthz and the index at /
  // Not empty: every request must carry "Authorization: Bearer <token>".
  std::string bearer_token;
};

class HttpServer {
 public:
  // Binds the address. A busy port is a Status naming the address, never an
  // exception.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           SelfMetrics* self);
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen_address,
                                                           SelfMetrics* self);
  ~HttpServer();  // stops serving; in-flight requests finish first

  // What /metrics collects, in order. Safe to call while serving.
  void SetCollectables(std::vector<std::shared_ptr<prometheus::Collectable>> collectables);
  int port() const { return port_; }
  const std::string& address() const { return address_; }  // "127.0.0.1:9435"

  // Where the RED histograms' exemplars come from (OpenMetrics only).
  void SetExemplars(ExemplarLookup lookup);
  // Serves GET/HEAD requests whose path matches a civetweb pattern
  // ("/api/traces" also matches "/api/traces/x"; "/$" only "/").
  void Handle(const std::string& pattern, HttpHandler handler);

  // The exposition /metrics would serve now.
  std::string RenderMetrics(bool openmetrics = false);

 private:
  HttpServer() = default;
  struct Route {
    HttpServer* server;
    HttpHandler handler;
  };
  static int HandleRoute(mg_connection* conn, void* route);
  bool Authorized(mg_connection* conn) const;
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
  ExemplarLookup exemplars_ ABSL_GUARDED_BY(mu_);
  std::string bearer_token_;
  std::list<Route> routes_;  // stable addresses: civetweb holds pointers
};

// The exposition of a set of collectables (also used by --replay).
std::string RenderExposition(const std::vector<std::shared_ptr<prometheus::Collectable>>& c);

}  // namespace redmap

#endif  // REDMAP_EXPORTER_HTTP_SERVER_H_
