#include "exporter/replay.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "aggregators/pipeline.h"
#include "aggregators/red/route_normalizer.h"
#include "aggregators/sources/pcap_source.h"
#include "exporter/exporter.h"
#include "exporter/http_server.h"
#include "nlohmann/json.hpp"

namespace redmap {
namespace {

std::string EndpointString(const Endpoint& e) {
  if (e.addr.family == 6) return absl::StrCat("[", e.addr.ToString(), "]:", e.port);
  return absl::StrCat(e.addr.ToString(), ":", e.port);
}

class JsonLines : public SpanSink {
 public:
  explicit JsonLines(std::ostream& out) : out_(out) {}
  void OnSpan(const Span& span) override { out_ << SpanToJson(span) << '\n'; }

 private:
  std::ostream& out_;
};

}  // namespace

std::string SpanToJson(const Span& span) {
  nlohmann::json j;
  j["protocol"] = std::string(ProtocolName(span.protocol));
  j["side"] = span.side == Role::kServer ? "server" : "client";
  j["start_ns"] = span.start_ns;
  j["end_ns"] = span.end_ns;
  j["duration_seconds"] =
      span.end_ns >= span.start_ns ? static_cast<double>(span.end_ns - span.start_ns) / 1e9 : 0.0;
  j["method"] = span.http.method;
  j["target"] = span.http.target;
  j["route"] = NormalizeRoute(span.http.target);
  j["status"] = span.http.status;
  j["request_bytes"] = span.http.request_bytes;
  j["response_bytes"] = span.http.response_bytes;
  j["client"] = EndpointString(span.client);
  j["server"] = EndpointString(span.server);
  j["tgid"] = span.conn.tgid;
  j["tid"] = span.tid;
  if (span.has_tcp_seq) j["request_tcp_seq"] = span.request_tcp_seq;
  // Payload-derived strings may hold any bytes: replace, never throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status RunReplay(const Config& config, const std::string& pcap_path, bool print_spans,
                       std::ostream& out) {
  PipelineOptions options = PipelineOptionsFromConfig(config);
  options.resolve_processes = false;
  auto pipeline = Pipeline::Create(options);
  if (!pipeline.ok()) return pipeline.status();
  auto source = PcapSource::Open(pcap_path);
  if (!source.ok()) return source.status();
  JsonLines json(out);
  if (print_spans) (*pipeline)->AddSpanSink(&json);
  std::atomic<bool> stop{false};
  absl::Status s = (*source)->Run(pipeline->get(), stop);
  (*pipeline)->Flush();
  out << RenderExposition((*pipeline)->Collectables());
  return s;
}

}  // namespace redmap
