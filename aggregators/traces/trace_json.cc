#include "aggregators/traces/trace_json.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "absl/strings/str_cat.h"

namespace redmap::traces {
namespace {

using nlohmann::json;

int64_t UnixUs(const Trace& t, uint64_t ns) {
  return (static_cast<int64_t>(ns) + t.unix_offset_ns) / 1000;
}

std::string_view SideName(Role r) { return r == Role::kServer ? "server" : "client"; }

bool HasTag(const json& tags, const std::string& key, const std::string& value) {
  for (const json& t : tags) {
    if (t["key"] != key) continue;
    const json& v = t["value"];
    std::string s = v.is_string() ? v.get<std::string>() : v.dump();
    if (s == value) return true;
  }
  return false;
}

}  // namespace

std::string OperationName(const TraceSpan& s) { return absl::StrCat(s.method, " ", s.route); }

bool Matches(const Trace& t, const TraceQuery& q) {
  const uint64_t d = t.duration_ns();
  if (d < q.min_duration_ns) return false;
  if (q.max_duration_ns > 0 && d > q.max_duration_ns) return false;
  if (q.errors_only && !t.error()) return false;
  const int64_t start_us = UnixUs(t, t.start_ns());
  if (q.start_unix_us > 0 && start_us < q.start_unix_us) return false;
  if (q.end_unix_us > 0 && start_us > q.end_unix_us) return false;
  bool service = q.service.empty(), route = q.route.empty();
  bool operation = q.operation.empty();
  for (const TraceSpan& s : t.spans) {
    const bool this_service = !q.service.empty() && s.service == q.service;
    service = service || this_service;
    route = route || s.route == q.route;
    if (!operation && (q.service.empty() || this_service) && OperationName(s) == q.operation) {
      operation = true;
    }
  }
  if (!service || !route || !operation) return false;
  if (!q.tags.empty()) {
    for (const auto& [k, v] : q.tags) {
      bool found = false;
      for (const TraceSpan& s : t.spans) {
        if (HasTag(SpanTags(s), k, v)) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
  }
  return true;
}

std::vector<std::shared_ptr<const Trace>> Select(
    const std::vector<std::shared_ptr<const Trace>>& newest_first, const TraceQuery& q) {
  std::vector<std::shared_ptr<const Trace>> out;
  for (const auto& t : newest_first) {
    if (out.size() >= q.limit) break;
    if (Matches(*t, q)) out.push_back(t);
  }
  return out;
}

json SpanTags(const TraceSpan& s) {
  json tags = json::array();
  auto str = [&](const char* k, const std::string& v) {
    if (!v.empty()) tags.push_back({{"key", k}, {"type", "string"}, {"value", v}});
  };
  auto i64 = [&](const char* k, int64_t v) {
    tags.push_back({{"key", k}, {"type", "int64"}, {"value", v}});
  };
  str("span.kind", std::string(SideName(s.side)));
  str("http.method", s.method);
  str("http.target", s.target);
  str("http.route", s.route);
  if (s.status > 0) i64("http.status_code", s.status);
  if (s.error()) tags.push_back({{"key", "error"}, {"type", "bool"}, {"value", true}});
  i64("http.request_content_length", static_cast<int64_t>(s.request_bytes));
  i64("http.response_content_length", static_cast<int64_t>(s.response_bytes));
  str("client.address", Trace::EndpointString(s.client));
  str("server.address", Trace::EndpointString(s.server));
  i64("thread.id", s.tid);
  if (s.has_tcp_seq) i64("redmap.tcp_seq", s.tcp_seq);
  str("redmap.link", std::string(LinkName(s.link)));
  str("redmap.propagation", std::string(PropagationName(s.propagation)));
  if (s.header_parent_id != 0) str("redmap.propagated_parent_id", SpanIdHex(s.header_parent_id));
  str("http.request_id", s.request_id);
  str("http.request.head", s.request_head);
  str("http.response.head", s.response_head);
  return tags;
}

json TraceSummaryJson(const Trace& t) {
  const TraceSpan& root = t.spans.front();
  json services = json::array();
  for (const TraceSpan& s : t.spans) {
    if (std::find(services.begin(), services.end(), s.service) == services.end()) {
      services.push_back(s.service);
    }
  }
  return json{{"trace_id", t.id.Hex()},
              {"start_unix_us", UnixUs(t, t.start_ns())},
              {"duration_us", t.duration_ns() / 1000.0},
              {"span_count", t.spans.size()},
              {"error", t.error()},
              {"keep_reason", t.keep_reason},
              {"partial", t.partial},
              {"warnings", t.warnings},
              {"services", services},
              {"root",
               {{"service", root.service},
                {"side", SideName(root.side)},
                {"method", root.method},
                {"route", root.route},
                {"target", root.target},
                {"status", root.status}}}};
}

json TraceDetailJson(const Trace& t) {
  json j = TraceSummaryJson(t);
  const uint64_t t0 = t.start_ns();
  json spans = json::array();
  for (const TraceSpan& s : t.spans) {
    json sp{{"span_id", SpanIdHex(s.span_id)},
            {"parent_span_id", s.parent_id == 0 ? "" : SpanIdHex(s.parent_id)},
            {"link", LinkName(s.link)},
            {"protocol", ProtocolName(s.protocol)},
            {"side", SideName(s.side)},
            {"service", s.service},
            {"operation", OperationName(s)},
            {"start_unix_us", UnixUs(t, s.start_ns)},
            {"offset_us", (s.start_ns - t0) / 1000.0},
            {"duration_us", s.duration_ns() / 1000.0},
            {"error", s.error()},
            {"process", {{"pid", s.tgid}, {"tid", s.tid}, {"comm", s.process},
                         {"cgroup_id", s.cgroup_id}}},
            {"connection",
             {{"client", Trace::EndpointString(s.client)},
              {"server", Trace::EndpointString(s.server)}}},
            {"http",
             {{"method", s.method},
              {"target", s.target},
              {"route", s.route},
              {"status", s.status},
              {"request_bytes", s.request_bytes},
              {"response_bytes", s.response_bytes},
              {"request_head", s.request_head},
              {"response_head", s.response_head}}}};
    if (s.has_tcp_seq) sp["connection"]["request_tcp_seq"] = s.tcp_seq;
    if (s.propagation != Propagation::kNone) {
      sp["propagation"] = {{"format", PropagationName(s.propagation)},
                           {"trace_id", s.header_trace_id.Hex()},
                           {"parent_span_id",
                            s.header_parent_id == 0 ? "" : SpanIdHex(s.header_parent_id)},
                           {"request_id", s.request_id}};
    }
    spans.push_back(std::move(sp));
  }
  j["spans"] = std::move(spans);
  return j;
}

json JaegerTraceJson(const Trace& t) {
  const std::string trace_id = t.id.Hex();
  // One Jaeger process per observed process (service, pid).
  std::map<std::pair<std::string, uint32_t>, std::string> process_ids;
  json processes = json::object();
  json spans = json::array();
  for (const TraceSpan& s : t.spans) {
    auto key = std::make_pair(s.service, s.tgid);
    auto it = process_ids.find(key);
    if (it == process_ids.end()) {
      std::string pid = absl::StrCat("p", process_ids.size() + 1);
      it = process_ids.emplace(key, pid).first;
      processes[pid] = {{"serviceName", s.service},
                        {"tags",
                         {{{"key", "process.pid"}, {"type", "int64"}, {"value", s.tgid}},
                          {{"key", "process.executable.name"},
                           {"type", "string"},
                           {"value", s.process}}}}};
    }
    json refs = json::array();
    if (s.parent_id != 0) {
      refs.push_back(
          {{"refType", "CHILD_OF"}, {"traceID", trace_id}, {"spanID", SpanIdHex(s.parent_id)}});
    }
    json warnings = nullptr;
    if (&s == &t.spans.front() && !t.warnings.empty()) warnings = t.warnings;
    spans.push_back({{"traceID", trace_id},
                     {"spanID", SpanIdHex(s.span_id)},
                     {"flags", 1},
                     {"operationName", OperationName(s)},
                     {"references", std::move(refs)},
                     {"startTime", UnixUs(t, s.start_ns)},
                     {"duration", static_cast<int64_t>(s.duration_ns() / 1000)},
                     {"tags", SpanTags(s)},
                     {"logs", json::array()},
                     {"processID", it->second},
                     {"warnings", std::move(warnings)}});
  }
  return json{{"traceID", trace_id},
              {"spans", std::move(spans)},
              {"processes", std::move(processes)},
              {"warnings", t.warnings.empty() ? json(nullptr) : json(t.warnings)}};
}

json JaegerEnvelope(json data) {
  const size_t total = data.is_array() ? data.size() : 0;
  return json{{"data", std::move(data)},
              {"total", total},
              {"limit", 0},
              {"offset", 0},
              {"errors", nullptr}};
}

json JaegerError(int code, const std::string& message) {
  return json{{"data", nullptr},
              {"total", 0},
              {"limit", 0},
              {"offset", 0},
              {"errors", json::array({{{"code", code}, {"msg", message}}})}};
}

bool ParseGoDuration(std::string_view s, uint64_t* ns) {
  if (s.empty()) return false;
  double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == 0) return false;
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + i, v);
    if (ec != std::errc() || end != s.data() + i) return false;
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !((s[u] >= '0' && s[u] <= '9') || s[u] == '.')) ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    double scale;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\xc2\xb5s") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return false;
    total += v * scale;
  }
  if (total > 1.8e19) return false;
  *ns = static_cast<uint64_t>(total);
  return true;
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace redmap::traces
