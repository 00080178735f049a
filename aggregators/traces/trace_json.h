// JSON views of sampled traces: redmap's own (the debug endpoint's list and
// detail) and the Jaeger query API's (what Grafana's Jaeger data source
// reads: /api/services, /api/services/{s}/operations, /api/traces,
// /api/traces/{id}). Pure functions of a Trace; the HTTP layer only routes.
#ifndef REDMAP_AGGREGATORS_TRACES_TRACE_JSON_H_
#define REDMAP_AGGREGATORS_TRACES_TRACE_JSON_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "aggregators/traces/trace.h"
#include "nlohmann/json.hpp"

namespace redmap::traces {

struct TraceQuery {
  std::string service;    // some span's service_name
  std::string route;      // some span's http_route
  std::string operation;  // with service: a span of it named so (Jaeger)
  uint64_t min_duration_ns = 0;
  uint64_t max_duration_ns = 0;  // 0: none
  bool errors_only = false;
  int64_t start_unix_us = 0;  // trace starts at or after (0: any)
  int64_t end_unix_us = 0;    // trace starts at or before (0: any)
  // Every pair must be a tag of one span (Jaeger "tags"/"tag").
  std::vector<std::pair<std::string, std::string>> tags;
  size_t limit = 20;
};

bool Matches(const Trace& t, const TraceQuery& q);
// The traces of `newest_first` that match, at most q.limit.
std::vector<std::shared_ptr<const Trace>> Select(
    const std::vector<std::shared_ptr<const Trace>>& newest_first, const TraceQuery& q);

// "GET /api/users/{id}": method and route.
std::string OperationName(const TraceSpan& s);
// Span tags, Jaeger style; typed values.
nlohmann::json SpanTags(const TraceSpan& s);

// redmap's debug JSON.
nlohmann::json TraceSummaryJson(const Trace& t);
nlohmann::json TraceDetailJson(const Trace& t);

// Jaeger's query API JSON: one trace object, and the response envelope
// {"data": …, "total", "limit", "offset", "errors"}.
nlohmann::json JaegerTraceJson(const Trace& t);
nlohmann::json JaegerEnvelope(nlohmann::json data);
nlohmann::json JaegerError(int code, const std::string& message);

// Go-style durations as Jaeger's minDuration takes them ("1.5s", "300ms",
// "20us", "1m"); false for anything else.
bool ParseGoDuration(std::string_view s, uint64_t* ns);

// nlohmann's dump, with invalid UTF-8 replaced instead of throwing.
std::string Dump(const nlohmann::json& j);

}  // namespace redmap::traces

#endif  // REDMAP_AGGREGATORS_TRACES_TRACE_JSON_H_
