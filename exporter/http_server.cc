#include "exporter/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "aggregators/metadata/target_info.h"
#include "exporter/listen_address.h"
#include "prometheus/text_serializer.h"

namespace redmap {
namespace {

// civetweb logs through this; its errors reach the user as Status instead.
int QuietLog(const mg_connection*, const char*) { return 1; }

void Reply(mg_connection* conn, int status, const char* type, const std::string& body) {
  const mg_request_info* req = mg_get_request_info(conn);
  bool head = req != nullptr && req->request_method != nullptr &&
              std::strcmp(req->request_method, "HEAD") == 0;
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\n%s\r\n",
            status, mg_get_response_code_text(conn, status), type, body.size(),
            status == 405 ? "Allow: GET, HEAD\r\n" : "");
  if (!head) mg_write(conn, body.data(), body.size());
}

// Every endpoint is read-only: GET and HEAD, anything else is 405.
bool ReadOnlyMethod(mg_connection* conn) {
  const mg_request_info* req = mg_get_request_info(conn);
  const char* m = req != nullptr ? req->request_method : nullptr;
  if (m != nullptr && (std::strcmp(m, "GET") == 0 || std::strcmp(m, "HEAD") == 0)) return true;
  Reply(conn, 405, "text/plain", "method not allowed\n");
  return false;
}

// The errno of binding addr the way civetweb does, or "" if binding works.
std::string BindError(const ListenAddress& addr) {
  int fd = socket(addr.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::strerror(errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc;
  if (addr.ipv6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(addr.port);
    inet_pton(AF_INET6, addr.host.c_str(), &a.sin6_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(addr.port);
    if (!addr.host.empty()) inet_pton(AF_INET, addr.host.c_str(), &a.sin_addr);
    rc = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  if (rc == 0) rc = listen(fd, 1);
  std::string why = rc == 0 ? "" : std::strerror(errno);
  close(fd);
  for (char& c : why) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return why;
}

// One connection to the listener, closed at once; it only has to wake
// civetweb's accept loop.
void Knock(const ListenAddress& addr) {
  int fd = socket(addr.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (addr.ipv6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(addr.port);
    if (addr.host.empty() || inet_pton(AF_INET6, addr.host.c_str(), &a.sin6_addr) != 1 ||
        IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) {
      a.sin6_addr = in6addr_loopback;
    }
    (void)connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(addr.port);
    if (addr.host.empty() || inet_pton(AF_INET, addr.host.c_str(), &a.sin_addr) != 1 ||
        a.sin_addr.s_addr == htonl(INADDR_ANY)) {
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    (void)connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  close(fd);
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
  HttpServerOptions options;
  options.listen_address = listen_address;
  return Start(options, self);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& opts,
                                                              SelfMetrics* self) {
  const std::string& listen_address = opts.listen_address;
  auto addr = ParseListenAddress(listen_address);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(opts.config_key, " '", listen_address, "': ", addr.status().message()));
  }
  std::string ports = addr->ipv6 ? absl::StrCat("[", addr->host, "]:", addr->port)
                                 : (addr->host.empty() ? std::to_string(addr->port)
                                                       : absl::StrCat(addr->host, ":", addr->port));
  const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "4",
                           "request_timeout_ms", "10000", "enable_keep_alive", "yes", nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = QuietLog;

  // Debian's civetweb is built without IPv6: say so instead of civetweb's
  // "Failed to setup server ports".
  if (addr->ipv6 && mg_check_feature(MG_FEATURES_IPV6) == 0) {
    return absl::UnimplementedError(
        absl::StrCat("cannot listen on ", addr->ToString(),
                     ": this civetweb library was built without IPv6; use an IPv4 address"));
  }

  std::unique_ptr<HttpServer> server(new HttpServer());
  server->self_ = self;
  server->bearer_token_ = opts.bearer_token;
  // Reference-counted in civetweb; balanced in the destructor.
  mg_init_library(0);
  server->library_initialized_ = true;
  mg_init_data init{&callbacks, server.get(), options};
  char error_text[256] = {};
  unsigned error_code = 0;
  mg_error_data error{&error_code, error_text, sizeof(error_text)};
  server->ctx_ = mg_start2(&init, &error);
  if (server->ctx_ == nullptr) {
    // civetweb says only "Failed to setup server ports": bind ourselves to
    // learn the errno users search for ("address already in use").
    std::string why = BindError(*addr);
    if (why.empty()) why = error_text[0] != '\0' ? error_text : "unknown error";
    return absl::UnavailableError(
        absl::StrCat(opts.config_key, ": cannot listen on ", addr->ToString(), ": ", why));
  }
  mg_server_port sp[4];
  int n = mg_get_server_ports(server->ctx_, 4, sp);
  server->port_ = n > 0 ? sp[0].port : addr->port;
  server->bound_ = *addr;
  server->bound_.port = static_cast<uint16_t>(server->port_);
  server->address_ = server->bound_.ToString();
  if (opts.serve_metrics) {
    mg_set_request_handler(server->ctx_, "/metrics$", &HttpServer::HandleMetrics, server.get());
    mg_set_request_handler(server->ctx_, "/$", &HttpServer::HandleIndex, server.get());
  }
  mg_set_request_handler(server->ctx_, "/healthz$", &HttpServer::HandleHealth, server.get());
  return server;
}

HttpServer::~HttpServer() {
  if (ctx_ != nullptr) {
    // civetweb's accept loop checks for the stop only between poll()s of up
    // to 2 s; knocking on the port wakes it, so a shutdown (SIGTERM, every
    // test) takes milliseconds instead.
    std::atomic<bool> stopped{false};
    std::thread waker([this, &stopped] {
      while (!stopped.load()) {
        Knock(bound_);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    mg_stop(ctx_);
    stopped.store(true);
    waker.join();
  }
  if (library_initialized_) mg_exit_library();
}

void HttpServer::SetCollectables(
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables) {
  absl::MutexLock l(&mu_);
  collectables_ = std::move(collectables);
}

void HttpServer::SetExemplars(ExemplarLookup lookup) {
  absl::MutexLock l(&mu_);
  exemplars_ = std::move(lookup);
}

void HttpServer::Handle(const std::string& pattern, HttpHandler handler) {
  routes_.push_back(Route{this, std::move(handler)});
  mg_set_request_handler(ctx_, pattern.c_str(), &HttpServer::HandleRoute, &routes_.back());
}

bool HttpServer::Authorized(mg_connection* conn) const {
  if (bearer_token_.empty()) return true;
  const char* auth = mg_get_header(conn, "Authorization");
  const std::string want = "Bearer " + bearer_token_;
  bool ok = auth != nullptr && std::strlen(auth) == want.size();
  // Constant time over the expected length: no early exit on a mismatch.
  unsigned diff = ok ? 0 : 1;
  for (size_t i = 0; ok && i < want.size(); ++i) {
    diff |= static_cast<unsigned char>(auth[i]) ^ static_cast<unsigned char>(want[i]);
  }
  if (diff == 0) return true;
  const mg_request_info* req = mg_get_request_info(conn);
  bool head = req != nullptr && req->request_method != nullptr &&
              std::strcmp(req->request_method, "HEAD") == 0;
  const std::string body = "bearer token required\n";
  mg_printf(conn,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
            "WWW-Authenticate: Bearer realm=\"redmap\"\r\nCache-Control: no-store\r\n\r\n",
            body.size());
  if (!head) mg_write(conn, body.data(), body.size());
  return false;
}

int HttpServer::HandleRoute(mg_connection* conn, void* data) {
  auto* route = static_cast<Route*>(data);
  if (!ReadOnlyMethod(conn)) return 405;
  if (!route->server->Authorized(conn)) return 401;
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest req;
  req.method = info->request_method != nullptr ? info->request_method : "GET";
  req.path = info->local_uri != nullptr ? info->local_uri : "/";
  req.query = info->query_string != nullptr ? info->query_string : "";
  HttpResponse resp;
  try {
    resp = route->handler(req);
  } catch (const std::exception& e) {
    resp = HttpResponse{500, "text/plain", absl::StrCat("internal error: ", e.what(), "\n")};
  }
  Reply(conn, resp.status, resp.content_type.c_str(), resp.body);
  return resp.status;
}

std::string HttpServer::RenderMetrics(bool openmetrics) {
  std::vector<std::shared_ptr<prometheus::Collectable>> c;
  ExemplarLookup exemplars;
  {
    absl::MutexLock l(&mu_);
    c = collectables_;
    exemplars = exemplars_;
  }
  auto start = std::chrono::steady_clock::now();
  std::string body = openmetrics ? RenderOpenMetrics(c, exemplars) : RenderExposition(c);
  if (self_ != nullptr) {
    self_->ObserveScrapeDuration(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return body;
}

int HttpServer::HandleMetrics(mg_connection* conn, void* data) {
  auto* server = static_cast<HttpServer*>(data);
  if (!ReadOnlyMethod(conn)) return 405;
  if (!server->Authorized(conn)) return 401;
  // OpenMetrics (with exemplars) only for scrapers that ask for it.
  const char* accept = mg_get_header(conn, "Accept");
  const bool om = accept != nullptr && std::strstr(accept, "application/openmetrics-text");
  try {
    if (om) {
      Reply(conn, 200, "application/openmetrics-text; version=1.0.0; charset=utf-8",
            server->RenderMetrics(true));
    } else {
      Reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", server->RenderMetrics());
    }
  } catch (const std::exception& e) {
    Reply(conn, 500, "text/plain", absl::StrCat("collection failed: ", e.what(), "\n"));
  }
  return 200;
}

int HttpServer::HandleHealth(mg_connection* conn, void*) {
  if (!ReadOnlyMethod(conn)) return 405;
  Reply(conn, 200, "text/plain", "ok\n");
  return 200;
}

int HttpServer::HandleIndex(mg_connection* conn, void*) {
  if (!ReadOnlyMethod(conn)) return 405;
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
