#include "aggregators/pipeline.h"

#include <vector>

#include "aggregators/metadata/process_info.h"
#include "aggregators/metadata/target_info.h"

namespace redmap {

// Hands every span to each registered sink.
class FanOut : public SpanSink {
 public:
  void Add(SpanSink* s) { sinks_.push_back(s); }
  void OnSpan(const Span& span) override {
    for (SpanSink* s : sinks_) s->OnSpan(span);
  }

 private:
  std::vector<SpanSink*> sinks_;
};

class Pipeline::Impl {
 public:
  explicit Impl(const PipelineOptions& options)
      : options_(options),
        self_(std::make_shared<SelfMetrics>()),
        red_(std::make_shared<RedAggregator>(
            options.red,
            [this](const Span& s) {
              if (!options_.resolve_processes) {
                return std::string(kUnknownService);
              }
              return processes_.ServiceName(s.conn.tgid, s.end_ns, s.process_name);
            })),
        target_info_(std::make_shared<TargetInfo>(kRedmapVersion, LocalHostName())),
        tracker_(options.conntrack, &fanout_, self_.get()) {
    fanout_.Add(red_.get());
  }

  PipelineOptions options_;
  ProcessResolver processes_;
  std::shared_ptr<SelfMetrics> self_;
  std::shared_ptr<RedAggregator> red_;
  std::shared_ptr<TargetInfo> target_info_;
  FanOut fanout_;
  ConnTracker tracker_;
  uint64_t last_housekeeping_ns_ = 0;
};

Pipeline::Pipeline() = default;
Pipeline::~Pipeline() = default;

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(const PipelineOptions& options) {
  if (options.red.buckets.empty()) return absl::InvalidArgumentError("red.buckets is empty");
  for (size_t i = 1; i < options.red.buckets.size(); ++i) {
    if (!(options.red.buckets[i] > options.red.buckets[i - 1])) {
      return absl::InvalidArgumentError("red.buckets must be strictly increasing");
    }
  }
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->impl_ = std::make_unique<Impl>(options);
  return p;
}

void Pipeline::OnData(const DataEvent& event) {
  impl_->self_->AddDataEvent();
  impl_->tracker_.OnData(event);
}

void Pipeline::OnClose(const CloseEvent& event) {
  impl_->self_->AddCloseEvent();
  impl_->tracker_.OnClose(event);
}

void Pipeline::Tick(uint64_t now_ns) {
  constexpr uint64_t kEvery = 1000ull * 1000 * 1000;
  if (now_ns - impl_->last_housekeeping_ns_ < kEvery) return;
  impl_->last_housekeeping_ns_ = now_ns;
  impl_->tracker_.ExpireIdle(now_ns);
  impl_->red_->Expire(now_ns);
}

void Pipeline::Flush() { impl_->tracker_.Flush(); }

void Pipeline::AddSpanSink(SpanSink* sink) { impl_->fanout_.Add(sink); }

SelfMetrics& Pipeline::self_metrics() { return *impl_->self_; }

std::vector<std::shared_ptr<prometheus::Collectable>> Pipeline::Collectables() {
  return {impl_->red_, impl_->self_, impl_->target_info_};
}

}  // namespace redmap
