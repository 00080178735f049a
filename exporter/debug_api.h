// The debug listener's routes over the trace ring: redmap's JSON
// (/debug/traces, /debug/traces/{id}), the read paths of Jaeger's query API
// that Grafana's Jaeger data source uses (/api/services,
// /api/services/{service}/operations, /api/operations, /api/traces,
// /api/traces/{id}) and the HTML page (/). Independent of civetweb, so unit
// tests call Handle() directly.
#ifndef REDMAP_EXPORTER_DEBUG_API_H_
#define REDMAP_EXPORTER_DEBUG_API_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aggregators/traces/trace_ring.h"
#include "exporter/http_server.h"

namespace redmap {

class DebugApi {
 public:
  explicit DebugApi(const traces::TraceRing* ring) : ring_(ring) {}

  HttpResponse Handle(const HttpRequest& request) const;
  // Registers every route on a server.
  void Register(HttpServer* server) const;

 private:
  HttpResponse List(const HttpRequest& r) const;
  HttpResponse Get(std::string_view id) const;
  HttpResponse JaegerServices() const;
  HttpResponse JaegerOperations(const std::string& service, bool with_kind) const;
  HttpResponse JaegerSearch(const HttpRequest& r) const;
  HttpResponse JaegerGet(std::string_view id) const;

  const traces::TraceRing* ring_;
};

// "a=1&b=x%20y" -> {{"a","1"},{"b","x y"}} ('+' is a space).
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

// The self-contained trace list + waterfall page.
std::string_view TracePageHtml();

}  // namespace redmap

#endif  // REDMAP_EXPORTER_DEBUG_API_H_
