#include "exporter/debug_api.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "absl/strings/str_cat.h"
#include "aggregators/traces/trace_json.h"

namespace redmap {
namespace {

using nlohmann::json;
using traces::Dump;
using traces::Trace;
using traces::TraceId;
using traces::TraceQuery;

constexpr size_t kMaxLimit = 1000;

HttpResponse Json(int status, const json& j) { return {status, "application/json", Dump(j)}; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() + 0 && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool ParseUint(std::string_view s, uint64_t* v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      out.emplace_back(Decode(pair.substr(0, eq)),
                       eq == std::string_view::npos ? "" : Decode(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

void DebugApi::Register(HttpServer* server) const {
  auto h = [this](const HttpRequest& r) { return Handle(r); };
  for (const char* pattern : {"/$", "/debug/traces", "/api/services", "/api/operations",
                              "/api/traces"}) {
    server->Handle(pattern, h);
  }
}

HttpResponse DebugApi::Handle(const HttpRequest& r) const {
  const std::string& p = r.path;
  if (p == "/") return {200, "text/html; charset=utf-8", std::string(TracePageHtml())};
  if (p == "/debug/traces" || p == "/debug/traces/") return List(r);
  if (StartsWith(p, "/debug/traces/")) return Get(std::string_view(p).substr(14));
  if (p == "/api/services" || p == "/api/services/") return JaegerServices();
  if (StartsWith(p, "/api/services/")) {
    std::string_view rest = std::string_view(p).substr(14);
    constexpr std::string_view kOps = "/operations";
    if (rest.size() > kOps.size() && rest.substr(rest.size() - kOps.size()) == kOps) {
      return JaegerOperations(std::string(rest.substr(0, rest.size() - kOps.size())), false);
    }
  }
  if (p == "/api/operations") {
    for (const auto& [k, v] : ParseQuery(r.query)) {
      if (k == "service") return JaegerOperations(v, true);
    }
    return Json(400, traces::JaegerError(400, "parameter 'service' is required"));
  }
  if (p == "/api/traces" || p == "/api/traces/") return JaegerSearch(r);
  if (StartsWith(p, "/api/traces/")) return JaegerGet(std::string_view(p).substr(12));
  return {404, "text/plain", "not found\n"};
}

HttpResponse DebugApi::List(const HttpRequest& r) const {
  TraceQuery q;
  for (const auto& [k, v] : ParseQuery(r.query)) {
    uint64_t n = 0;
    if (k == "service") {
      q.service = v;
    } else if (k == "route") {
      q.route = v;
    } else if (k == "min_duration_ms") {
      if (!ParseUint(v, &n)) return Json(400, {{"error", "min_duration_ms: not an integer"}});
      q.min_duration_ns = n * 1000000;
    } else if (k == "error") {
      if (v != "true" && v != "false" && v != "1" && v != "0" && !v.empty()) {
        return Json(400, {{"error", "error: must be true or false"}});
      }
      q.errors_only = v == "true" || v == "1" || v.empty();
    } else if (k == "limit") {
      if (!ParseUint(v, &n) || n == 0) return Json(400, {{"error", "limit: not a positive integer"}});
      q.limit = std::min<uint64_t>(n, kMaxLimit);
    }
  }
  json list = json::array();
  for (const auto& t : traces::Select(ring_->Snapshot(), q)) {
    list.push_back(traces::TraceSummaryJson(*t));
  }
  const size_t count = list.size();
  return Json(200, {{"traces", std::move(list)}, {"count", count}});
}

HttpResponse DebugApi::Get(std::string_view id) const {
  auto parsed = TraceId::FromHex(id);
  auto t = parsed ? ring_->Find(*parsed) : nullptr;
  if (t == nullptr) return Json(404, {{"error", "trace not found"}});
  return Json(200, traces::TraceDetailJson(*t));
}

HttpResponse DebugApi::JaegerServices() const {
  std::set<std::string> services;
  for (const auto& t : ring_->Snapshot()) {
    for (const auto& s : t->spans) services.insert(s.service);
  }
  return Json(200, traces::JaegerEnvelope(json(services)));
}

HttpResponse DebugApi::JaegerOperations(const std::string& service, bool with_kind) const {
  std::set<std::pair<std::string, std::string>> ops;  // name, kind
  for (const auto& t : ring_->Snapshot()) {
    for (const auto& s : t->spans) {
      if (s.service == service) {
        ops.insert({traces::OperationName(s), s.side == Role::kServer ? "server" : "client"});
      }
    }
  }
  json data = json::array();
  if (with_kind) {
    for (const auto& [name, kind] : ops) data.push_back({{"name", name}, {"spanKind", kind}});
  } else {
    std::set<std::string> names;
    for (const auto& op : ops) names.insert(op.first);
    data = json(names);
  }
  return Json(200, traces::JaegerEnvelope(std::move(data)));
}

HttpResponse DebugApi::JaegerSearch(const HttpRequest& r) const {
  TraceQuery q;
  std::vector<std::string> ids;
  for (const auto& [k, v] : ParseQuery(r.query)) {
    uint64_t n = 0;
    if (k == "service") {
      q.service = v;
    } else if (k == "operation") {
      q.operation = v;
    } else if (k == "minDuration" || k == "maxDuration") {
      if (v.empty()) continue;
      if (!traces::ParseGoDuration(v, &n)) {
        return Json(400, traces::JaegerError(400, absl::StrCat("cannot parse ", k, " '", v, "'")));
      }
      (k == "minDuration" ? q.min_duration_ns : q.max_duration_ns) = n;
    } else if (k == "limit") {
      if (v.empty()) continue;
      if (!ParseUint(v, &n)) return Json(400, traces::JaegerError(400, "cannot parse limit"));
      q.limit = n == 0 ? kMaxLimit : std::min<uint64_t>(n, kMaxLimit);
    } else if (k == "start" || k == "end") {
      if (v.empty()) continue;
      if (!ParseUint(v, &n)) {
        return Json(400, traces::JaegerError(400, absl::StrCat("cannot parse ", k)));
      }
      (k == "start" ? q.start_unix_us : q.end_unix_us) = static_cast<int64_t>(n);
    } else if (k == "tags") {
      json tags = json::parse(v, nullptr, false);
      if (!tags.is_object()) {
        return Json(400, traces::JaegerError(400, "tags must be a JSON map of strings"));
      }
      for (auto& [tk, tv] : tags.items()) {
        q.tags.emplace_back(tk, tv.is_string() ? tv.get<std::string>() : tv.dump());
      }
    } else if (k == "tag") {
      size_t colon = v.find(':');
      if (colon == std::string::npos) {
        return Json(400, traces::JaegerError(400, "tag must be key:value"));
      }
      q.tags.emplace_back(v.substr(0, colon), v.substr(colon + 1));
    } else if (k == "traceID") {
      ids.push_back(v);
    }
  }
  json data = json::array();
  if (!ids.empty()) {
    for (const std::string& id : ids) {
      auto parsed = TraceId::FromHex(id);
      if (auto t = parsed ? ring_->Find(*parsed) : nullptr) {
        data.push_back(traces::JaegerTraceJson(*t));
      }
    }
  } else {
    if (q.service.empty()) {
      return Json(400, traces::JaegerError(400, "parameter 'service' is required"));
    }
    for (const auto& t : traces::Select(ring_->Snapshot(), q)) {
      data.push_back(traces::JaegerTraceJson(*t));
    }
  }
  return Json(200, traces::JaegerEnvelope(std::move(data)));
}

HttpResponse DebugApi::JaegerGet(std::string_view id) const {
  auto parsed = TraceId::FromHex(id);
  auto t = parsed ? ring_->Find(*parsed) : nullptr;
  if (t == nullptr) return Json(404, traces::JaegerError(404, "trace not found"));
  return Json(200, traces::JaegerEnvelope(json::array({traces::JaegerTraceJson(*t)})));
}

}  // namespace redmap
