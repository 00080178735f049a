#include "exporter/exporter.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "aggregators/metadata/identity_metrics.h"
#include "aggregators/self/process_metrics.h"
#include "exporter/tracefs.h"

namespace redmap {

std::vector<std::string> DroppedLabels(const std::vector<std::string>& names, size_t required,
                                       const std::vector<std::string>& drop,
                                       const std::vector<std::string>& keep) {
  std::vector<std::string> out = drop;
  if (keep.empty()) return out;
  for (size_t i = required; i < names.size(); ++i) {
    if (std::find(keep.begin(), keep.end(), names[i]) == keep.end() &&
        std::find(out.begin(), out.end(), names[i]) == out.end()) {
      out.push_back(names[i]);
    }
  }
  return out;
}

std::vector<std::string> DroppedLabels(bool server, const std::vector<std::string>& drop,
                                       const std::vector<std::string>& keep) {
  return DroppedLabels(RedLabelNames(server), 1, drop, keep);
}

PipelineOptions PipelineOptionsFromConfig(const Config& config) {
  PipelineOptions o;
  o.conntrack.max_connections = config.conntrack.max_connections;
  o.conntrack.idle_timeout_ns = uint64_t{config.conntrack.idle_timeout_seconds} * 1000000000ull;
  o.conntrack.max_buffer_bytes = config.conntrack.max_buffer_bytes;
  o.red.buckets = config.red.buckets;
  o.red.max_series = config.red.max_series;
  o.red.series_ttl_ns = uint64_t{config.red.series_ttl_seconds} * 1000000000ull;
  // Validated when the config was read.
  if (auto patterns = RoutePatterns::Create(config.red.route_patterns); patterns.ok()) {
    o.red.route_patterns = std::move(*patterns);
  }
  o.red.server_drop_labels =
      DroppedLabels(true, config.red.server_drop_labels, config.red.server_keep_labels);
  o.red.client_drop_labels =
      DroppedLabels(false, config.red.client_drop_labels, config.red.client_keep_labels);
  o.identity_cache.max_entries = config.identity.cache_entries;
  o.identity_cache.pod_label_at_any_level = config.identity.pod_name_label;
  o.network.connect_buckets = config.network.connect_buckets;
  o.network.rtt_buckets = config.network.rtt_buckets;
  o.network.max_connections = config.network.max_connections;
  o.network.max_series = config.network.max_series;
  o.network.series_ttl_ns = uint64_t{config.network.series_ttl_seconds} * 1000000000ull;
  o.network.drop_labels = DroppedLabels(TcpLabelNames(), kTcpEdgeLabels,
                                        config.network.drop_labels, config.network.keep_labels);
  o.service_graph.max_series = config.service_graph.max_series;
  o.service_graph.series_ttl_ns =
      uint64_t{config.service_graph.series_ttl_seconds} * 1000000000ull;
  o.service_graph.drop_labels =
      DroppedLabels(ServiceGraphLabelNames(), kServiceGraphEdgeLabels,
                    config.service_graph.drop_labels, config.service_graph.keep_labels);
  const Config::Traces& t = config.traces;
  o.traces_enabled = t.enabled;
  o.traces.assembly_wait_ns = uint64_t{t.assembly_wait_ms} * 1000000ull;
  o.traces.max_pending_spans = t.max_pending_spans;
  o.traces.payload_snippet_bytes = t.payload_snippet_bytes;
  o.traces.sample_ratio = t.sample_ratio;
  o.traces.slow_threshold_ns = uint64_t{t.slow_threshold_ms} * 1000000ull;
  o.traces.keep_slower_than_route_p99 = t.keep_slower_than_route_p99;
  o.traces.max_traces_per_second = t.max_traces_per_second;
  o.traces.max_spans_per_second = t.max_spans_per_second;
  o.traces.ring_max_bytes = t.ring_max_bytes;
  o.traces.ring_max_traces = t.ring_max_traces;
  o.traces.redact_headers = t.redact_headers;
  o.traces.redact_query_params = t.redact_query_params;
  o.traces.exemplar_max_series = 2 * size_t{config.red.max_series};
  return o;
}

absl::StatusOr<std::string> ReadBearerToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("debug.bearer_token_file: cannot read ", path,
                                                   ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  const char* ws = " \t\r\n";
  token.erase(0, token.find_first_not_of(ws));
  token.erase(token.find_last_not_of(ws) + 1);
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("debug.bearer_token_file: ", path, " is empty"));
  }
  if (token.find_first_of(ws) != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("debug.bearer_token_file: ", path, " must hold one token without spaces"));
  }
  return token;
}

absl::StatusOr<std::unique_ptr<Exporter>> Exporter::Create(const Config& config) {
  std::unique_ptr<Exporter> e(new Exporter());
  auto identity = IdentitySources::Create(config);
  if (!identity.ok()) return identity.status();
  e->identity_ = std::move(*identity);
  PipelineOptions options = PipelineOptionsFromConfig(config);
  options.identity = e->identity_->resolver();
  options.k8s_store = e->identity_->store();
  options.identity_cache.node_name = e->identity_->node_name();
  options.service_graph.node_name = e->identity_->node_name();
  options.network.node_name = e->identity_->node_name();
  options.traces.unix_offset_ns = Pipeline::MonotonicToUnixOffsetNs();
  auto pipeline = Pipeline::Create(options);
  if (!pipeline.ok()) return pipeline.status();
  e->pipeline_ = std::move(*pipeline);
  SelfMetrics* self = &e->pipeline_->self_metrics();

  auto server = HttpServer::Start(config.web.listen_address, self);
  if (!server.ok()) return server.status();
  e->server_ = std::move(*server);
  // Serve what there is from the start: self-metrics and probe status are
  // worth a scrape even while the probes load.
  // The live exporter also reports its own process (CPU, RSS, fds); replay
  // output stays deterministic without it.
  auto collectables = e->pipeline_->Collectables();
  collectables.push_back(std::make_shared<IdentityMetrics>(
      e->identity_->client(), e->identity_->store(), e->identity_->resolver(),
      &e->pipeline_->identities(), e->identity_->cgroups(), e->identity_->dns_cache(),
      e->identity_->dns_capture()));
  collectables.push_back(std::make_shared<ProcessMetrics>());
  e->server_->SetCollectables(std::move(collectables));

  // Sampled traces on their own listener (loopback by default): metrics can
  // be scraped from anywhere, payload snippets stay local.
  if (traces::TraceSampler* sampler = e->pipeline_->trace_sampler()) {
    e->server_->SetExemplars(
        [sampler](std::string_view family, const std::vector<std::string>& values) {
          return sampler->exemplars().Lookup(family, values);
        });
    HttpServerOptions debug;
    debug.listen_address = config.debug.listen_address;
    debug.config_key = "debug.listen_address";
    debug.serve_metrics = false;
    if (!config.debug.bearer_token_file.empty()) {
      auto token = ReadBearerToken(config.debug.bearer_token_file);
      if (!token.ok()) return token.status();
      debug.bearer_token = *token;
    }
    auto debug_server = HttpServer::Start(debug, nullptr);
    if (!debug_server.ok()) return debug_server.status();
    e->debug_server_ = std::move(*debug_server);
    e->debug_api_ = std::make_unique<DebugApi>(&sampler->ring());
    e->debug_api_->Register(e->debug_server_.get());
  }

  auto mounted = EnsureTracefsMounted();
  if (!mounted.ok()) return mounted.status();
  if (*mounted) fprintf(stderr, "redmap: mounted tracefs at /sys/kernel/tracing\n");

  BpfSourceOptions source_options;
  source_options.capture = config.capture;
  source_options.network = config.network;
  if (!config.capture.trace_self) {
    source_options.self_tgid = static_cast<uint32_t>(getpid());
    source_options.self_port = static_cast<uint16_t>(e->server_->port());
    source_options.self_debug_port = static_cast<uint16_t>(e->debug_port());
  }
  auto source = BpfSource::Create(source_options, self);
  if (!source.ok()) return source.status();
  e->source_ = std::move(*source);

  BpfSource* src = e->source_.get();
  self->SetKernelStatsReader([src] { return src->ReadKernelStats(); });
  self->SetTableFillReader([src] { return src->ReadTableFill(); });
  Pipeline* p = e->pipeline_.get();
  src->SetTick([p](uint64_t now) { p->Tick(now); });
  return e;
}

Exporter::~Exporter() {
  debug_server_.reset();
  server_.reset();
  if (pipeline_) {
    pipeline_->self_metrics().SetKernelStatsReader(nullptr);
    pipeline_->self_metrics().SetTableFillReader(nullptr);
  }
  source_.reset();
}

absl::Status Exporter::Run(const std::atomic<bool>& stop) {
  return source_->Run(pipeline_.get(), stop);
}

}  // namespace redmap
