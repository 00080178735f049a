#include "exporter/http_server.h"

#include <civetweb.h>

#include <chrono>
#include <cstring>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "aggregators/metadata/target_info.h"
#include "exporter/listen_address.h"
#include "prometheus/text_serializer.h"

namespace redmap {
namespace {

// civetweb logs through this; its errors reach the user as Status instead.
int QuietLog(const mg_connection*, const char*) { return 1; }

void Reply(mg_connection* conn, int status, const char* type, const std::string& body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\n\r\n",
            status, mg_get_response_code_text(conn, status), type, body.size());
  mg_write(conn, body.data(), body.size());
}

}  // namespace

std::string RenderExposition(const std::vector<std::shared_ptr<prometheus::Collectable>>& c) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : c) {
    auto f = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(f.begin()),
                    std::make_move_iterator(f.end()));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen_address,
                                                              SelfMetrics* self) {
  auto addr = ParseListenAddress(listen_address);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("web.listen_address '", listen_address, "': ", addr.status().message()));
  }
  std::string ports = addr->ipv6 ? absl::StrCat("[", addr->host, "]:", addr->port)
                                 : (addr->host.empty() ? std::to_string(addr->port)
                                                       : absl::StrCat(addr->host, ":", addr->port));
  const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "4",
                           "request_timeout_ms", "10000", "enable_keep_alive", "yes", nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = QuietLog;

  std::unique_ptr<HttpServer> server(new HttpServer());
  server->self_ = self;
  mg_init_library(0);
  mg_init_data init{&callbacks, server.get(), options};
  char error_text[256] = {};
  unsigned error_code = 0;
  mg_error_data error{&error_code, error_text, sizeof(error_text)};
  server->ctx_ = mg_start2(&init, &error);
  if (server->ctx_ == nullptr) {
    std::string why = error_text;
    // Name the cause the way users search for it.
    if (why.find("in use") == std::string::npos && (why.find("bind") != std::string::npos ||
                                                      why.find("Bind") != std::string::npos)) {
      why += " (address already in use, or not an address of this host)";
    }
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", addr->ToString(), ": ", why.empty() ? "unknown" : why));
  }
  mg_server_port sp[4];
  int n = mg_get_server_ports(server->ctx_, 4, sp);
  server->port_ = n > 0 ? sp[0].port : addr->port;
  ListenAddress bound = *addr;
  bound.port = static_cast<uint16_t>(server->port_);
  server->address_ = bound.ToString();
  mg_set_request_handler(server->ctx_, "/metrics$", &HttpServer::HandleMetrics, server.get());
  mg_set_request_handler(server->ctx_, "/healthz$", &HttpServer::HandleHealth, server.get());
  mg_set_request_handler(server->ctx_, "/$", &HttpServer::HandleIndex, server.get());
  return server;
}

HttpServer::~HttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

void HttpServer::SetCollectables(
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables) {
  absl::MutexLock l(&mu_);
  collectables_ = std::move(collectables);
}

std::string HttpServer::RenderMetrics() {
  std::vector<std::shared_ptr<prometheus::Collectable>> c;
  {
    absl::MutexLock l(&mu_);
    c = collectables_;
  }
  auto start = std::chrono::steady_clock::now();
  std::string body = RenderExposition(c);
  if (self_ != nullptr) {
    self_->ObserveScrapeDuration(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return body;
}

int HttpServer::HandleMetrics(mg_connection* conn, void* data) {
  auto* server = static_cast<HttpServer*>(data);
  try {
    Reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", server->RenderMetrics());
  } catch (const std::exception& e) {
    Reply(conn, 500, "text/plain", absl::StrCat("collection failed: ", e.what(), "\n"));
  }
  return 200;
}

int HttpServer::HandleHealth(mg_connection* conn, void*) {
  Reply(conn, 200, "text/plain", "ok\n");
  return 200;
}

int HttpServer::HandleIndex(mg_connection* conn, void*) {
  Reply(conn, 200, "text/html; charset=utf-8",
        absl::StrCat("<!doctype html><html><head><title>redmap</title></head><body>"
                     "<h1>redmap ",
                     kRedmapVersion,
                     "</h1><p>eBPF RED metrics for unmodified programs.</p><ul>"
                     "<li><a href=\"/metrics\">/metrics</a> &mdash; Prometheus exposition</li>"
                     "<li><a href=\"/healthz\">/healthz</a> &mdash; liveness</li>"
                     "</ul></body></html>\n"));
  return 200;
}

}  // namespace redmap
