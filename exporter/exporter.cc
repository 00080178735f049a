#include "exporter/exporter.h"

#include <unistd.h>

#include <cstdio>

#include "exporter/tracefs.h"

namespace redmap {

PipelineOptions PipelineOptionsFromConfig(const Config& config) {
  PipelineOptions o;
  o.conntrack.max_connections = config.conntrack.max_connections;
  o.conntrack.idle_timeout_ns = uint64_t{config.conntrack.idle_timeout_seconds} * 1000000000ull;
  o.conntrack.max_buffer_bytes = config.conntrack.max_buffer_bytes;
  o.red.buckets = config.red.buckets;
  o.red.max_series = config.red.max_series;
  o.red.series_ttl_ns = uint64_t{config.red.series_ttl_seconds} * 1000000000ull;
  o.network.connect_buckets = config.network.connect_buckets;
  o.network.rtt_buckets = config.network.rtt_buckets;
  o.network.max_connections = config.network.max_connections;
  o.network.max_series = config.network.max_series;
  o.network.series_ttl_ns = uint64_t{config.network.series_ttl_seconds} * 1000000000ull;
  o.service_graph.max_series = config.service_graph.max_series;
  o.service_graph.series_ttl_ns =
      uint64_t{config.service_graph.series_ttl_seconds} * 1000000000ull;
  return o;
}

absl::StatusOr<std::unique_ptr<Exporter>> Exporter::Create(const Config& config) {
  std::unique_ptr<Exporter> e(new Exporter());
  auto pipeline = Pipeline::Create(PipelineOptionsFromConfig(config));
  if (!pipeline.ok()) return pipeline.status();
  e->pipeline_ = std::move(*pipeline);
  SelfMetrics* self = &e->pipeline_->self_metrics();

  auto server = HttpServer::Start(config.web.listen_address, self);
  if (!server.ok()) return server.status();
  e->server_ = std::move(*server);
  // Serve what there is from the start: self-metrics and probe status are
  // worth a scrape even while the probes load.
  e->server_->SetCollectables(e->pipeline_->Collectables());

  auto mounted = EnsureTracefsMounted();
  if (!mounted.ok()) return mounted.status();
  if (*mounted) fprintf(stderr, "redmap: mounted tracefs at /sys/kernel/tracing\n");

  BpfSourceOptions options;
  options.capture = config.capture;
  options.network = config.network;
  if (!config.capture.trace_self) {
    options.self_tgid = static_cast<uint32_t>(getpid());
    options.self_port = static_cast<uint16_t>(e->server_->port());
  }
  auto source = BpfSource::Create(options, self);
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
