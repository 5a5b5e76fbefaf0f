#include "runtime/serving/metrics.h"

#include <algorithm>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace sparkstack::serving {
namespace {

constexpr const char* kOutcomeNames[] = {"finished", "aborted",  "failed",
                                         "invalid",  "rejected", "unauthenticated"};

// Latency buckets in seconds, as vLLM's: fine below a second (decode steps), coarse above.
const prometheus::Histogram::BucketBoundaries& TtftBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,
      0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0};
  return *b;
}
const prometheus::Histogram::BucketBoundaries& ItlBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
      0.075, 0.1,    0.15,  0.2,  0.3,   0.4,  0.5,   0.75, 1.0,  2.5};
  return *b;
}
const prometheus::Histogram::BucketBoundaries& E2eBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.01, 0.05, 0.1,  0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,  5.0,
      10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0};
  return *b;
}

void Advance(prometheus::Counter* counter, int64_t now, int64_t before) {
  if (now > before) counter->Increment(static_cast<double>(now - before));
}

}  // namespace

Outcome RefusalOutcome(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnauthenticated:
      return Outcome::kUnauthenticated;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      return Outcome::kRejected;
    default:
      return Outcome::kInvalid;
  }
}

ServingMetrics::ServingMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& outcomes = prometheus::BuildCounter()
                       .Name("sparkstack_requests_total")
                       .Help(
                           "Requests by outcome: finished, aborted or failed sequences; "
                           "invalid, rejected or unauthenticated API calls")
                       .Register(*registry_);
  for (int i = 0; i < 6; ++i) outcomes_[i] = &outcomes.Add({{"outcome", kOutcomeNames[i]}});
  auto counter = [&](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_).Add({});
  };
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  };
  auto histogram = [&](const char* name, const char* help,
                       const prometheus::Histogram::BucketBoundaries& buckets) {
    return &prometheus::BuildHistogram()
                .Name(name)
                .Help(help)
                .Register(*registry_)
                .Add({}, buckets);
  };
  prompt_tokens_ = counter("sparkstack_prompt_tokens_total", "Prompt tokens of finished requests");
  generation_tokens_ =
      counter("sparkstack_generation_tokens_total", "Tokens generated for finished requests");
  ttft_ = histogram("sparkstack_time_to_first_token_seconds",
                    "From receiving a request to its first output token", TtftBuckets());
  itl_ = histogram("sparkstack_inter_token_latency_seconds",
                   "Between consecutive output tokens of a request", ItlBuckets());
  e2e_ = histogram("sparkstack_e2e_request_latency_seconds", "From receiving a request to its end",
                   E2eBuckets());
  running_ = gauge("sparkstack_num_requests_running", "Sequences in the engine's batch");
  waiting_ = gauge("sparkstack_num_requests_waiting", "Sequences waiting to be scheduled");
  active_ = gauge("sparkstack_active_requests",
                  "Sequences admitted by the API servers and not yet finished");
  kv_total_ = gauge("sparkstack_kv_blocks_total", "KV cache blocks in the pool");
  kv_used_ = gauge("sparkstack_kv_blocks_used", "KV cache blocks held by sequences");
  kv_usage_ = gauge("sparkstack_kv_cache_usage_ratio", "KV blocks used / total");
  hit_rate_ = gauge("sparkstack_prefix_cache_hit_rate",
                    "Prompt tokens found in the prefix cache / prompt tokens looked up");
  prefix_queries_ = counter("sparkstack_prefix_cache_queries_total",
                            "Prompt tokens looked up in the prefix cache");
  prefix_hits_ =
      counter("sparkstack_prefix_cache_hits_total", "Prompt tokens found in the prefix cache");
  steps_ = counter("sparkstack_engine_steps_total", "Engine steps run");
  preemptions_ =
      counter("sparkstack_engine_preemptions_total", "Sequences preempted for lack of KV blocks");
}

ServingMetrics::~ServingMetrics() = default;

void ServingMetrics::CountOutcome(Outcome outcome) {
  outcomes_[static_cast<int>(outcome)]->Increment();
}
void ServingMetrics::ObserveTimeToFirstToken(double seconds) { ttft_->Observe(seconds); }
void ServingMetrics::ObserveInterTokenLatency(double seconds) { itl_->Observe(seconds); }
void ServingMetrics::ObserveEndToEnd(double seconds) { e2e_->Observe(seconds); }
void ServingMetrics::AddTokens(int64_t prompt_tokens, int64_t generated_tokens) {
  prompt_tokens_->Increment(static_cast<double>(prompt_tokens));
  generation_tokens_->Increment(static_cast<double>(generated_tokens));
}

std::string ServingMetrics::Render(const EngineStats& stats, int64_t active_requests) {
  std::lock_guard<std::mutex> lock(render_mu_);
  running_->Set(static_cast<double>(stats.running));
  waiting_->Set(static_cast<double>(stats.waiting));
  active_->Set(static_cast<double>(active_requests));
  kv_total_->Set(static_cast<double>(stats.kv_blocks_total));
  kv_used_->Set(static_cast<double>(stats.kv_blocks_used));
  kv_usage_->Set(stats.kv_blocks_total > 0 ? static_cast<double>(stats.kv_blocks_used) /
                                                 static_cast<double>(stats.kv_blocks_total)
                                           : 0.0);
  hit_rate_->Set(stats.prefix_cache_queries > 0
                     ? static_cast<double>(stats.prefix_cache_hits) /
                           static_cast<double>(stats.prefix_cache_queries)
                     : 0.0);
  // A replaced engine (the cluster re-formed) starts its totals again from zero.
  if (stats.steps < last_.steps) last_ = EngineStats{};
  Advance(prefix_queries_, stats.prefix_cache_queries, last_.prefix_cache_queries);
  Advance(prefix_hits_, stats.prefix_cache_hits, last_.prefix_cache_hits);
  Advance(steps_, stats.steps, last_.steps);
  Advance(preemptions_, stats.preemptions, last_.preemptions);
  last_ = stats;
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace sparkstack::serving
