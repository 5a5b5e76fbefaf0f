// ServingMetrics: the API servers' Prometheus metrics (prometheus-cpp), rendered by GET /metrics
// in the text exposition format. Request-level figures are recorded as requests pass through
// InferenceCore; engine-level ones (running / waiting sequences, KV blocks, prefix cache) are read
// from EngineStats at each scrape.
//
//   sparkstack_requests_total{outcome}   finished | aborted | failed (the engine's error) per
//                                        sequence that reached the engine; invalid | rejected |
//                                        unauthenticated per API call refused before it
//   sparkstack_prompt_tokens_total, sparkstack_generation_tokens_total
//   sparkstack_time_to_first_token_seconds, sparkstack_inter_token_latency_seconds,
//   sparkstack_e2e_request_latency_seconds                    histograms
//   sparkstack_num_requests_running / _waiting, sparkstack_active_requests   gauges
//   sparkstack_kv_blocks_total / _used, sparkstack_kv_cache_usage_ratio      gauges
//   sparkstack_prefix_cache_queries_total / _hits_total (tokens), sparkstack_prefix_cache_hit_rate
//   sparkstack_engine_steps_total, sparkstack_engine_preemptions_total
//
// Thread safety: every method may be called from any thread.
#ifndef SPARKSTACK_RUNTIME_SERVING_METRICS_H_
#define SPARKSTACK_RUNTIME_SERVING_METRICS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "runtime/engine/engine.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace sparkstack::serving {

enum class Outcome { kFinished, kAborted, kFailed, kInvalid, kRejected, kUnauthenticated };

// The outcome of an API call refused with `code` before reaching the engine: unauthenticated,
// rejected (a limit or the engine's health: ResourceExhausted, Unavailable) or invalid.
Outcome RefusalOutcome(absl::StatusCode code);

class ServingMetrics {
 public:
  ServingMetrics();
  ~ServingMetrics();
  ServingMetrics(const ServingMetrics&) = delete;
  ServingMetrics& operator=(const ServingMetrics&) = delete;

  void CountOutcome(Outcome outcome);
  void ObserveTimeToFirstToken(double seconds);
  void ObserveInterTokenLatency(double seconds);
  void ObserveEndToEnd(double seconds);
  void AddTokens(int64_t prompt_tokens, int64_t generated_tokens);

  // The text exposition of every metric, engine gauges taken from `stats`.
  std::string Render(const EngineStats& stats, int64_t active_requests);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* outcomes_[6] = {};
  prometheus::Counter* prompt_tokens_ = nullptr;
  prometheus::Counter* generation_tokens_ = nullptr;
  prometheus::Histogram* ttft_ = nullptr;
  prometheus::Histogram* itl_ = nullptr;
  prometheus::Histogram* e2e_ = nullptr;
  prometheus::Gauge* running_ = nullptr;
  prometheus::Gauge* waiting_ = nullptr;
  prometheus::Gauge* active_ = nullptr;
  prometheus::Gauge* kv_total_ = nullptr;
  prometheus::Gauge* kv_used_ = nullptr;
  prometheus::Gauge* kv_usage_ = nullptr;
  prometheus::Gauge* hit_rate_ = nullptr;
  prometheus::Counter* prefix_queries_ = nullptr;
  prometheus::Counter* prefix_hits_ = nullptr;
  prometheus::Counter* steps_ = nullptr;
  prometheus::Counter* preemptions_ = nullptr;

  // The engine's totals at the previous scrape: its counters advance by the difference.
  std::mutex render_mu_;
  EngineStats last_ ABSL_GUARDED_BY(render_mu_);
};

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_METRICS_H_
