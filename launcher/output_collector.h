// Collects the output streams of a batch of engine requests for a command-line client: the engine
// core thread appends chunks, the command's thread waits, streams text or reads the results.
#ifndef SPARKSTACK_LAUNCHER_OUTPUT_COLLECTOR_H_
#define SPARKSTACK_LAUNCHER_OUTPUT_COLLECTOR_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "runtime/engine/engine.h"

namespace sparkstack::launcher {

struct CollectedOutput {
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<SampledToken> logprobs;
  std::vector<float> first_logits;
  FinishReason finish_reason = FinishReason::kNone;
  absl::Status error;
  // When the request was submitted, and when each chunk (token) arrived.
  std::chrono::steady_clock::time_point submitted;
  std::vector<std::chrono::steady_clock::time_point> token_times;
  bool finished() const { return finish_reason != FinishReason::kNone; }
};

class OutputCollector {
 public:
  explicit OutputCollector(size_t requests) : outputs_(requests) {}

  // The callback for request `index` (call before submitting it: it stamps the submit time).
  Engine::OutputCallback CallbackFor(size_t index);

  // Waits until request `index` has text past `offset` or has finished; returns the new text.
  std::string WaitForText(size_t index, size_t offset, bool& finished);
  // Waits until every request has finished.
  void WaitAll();
  // Waits until at least `count` requests have finished.
  void WaitFinished(size_t count);
  // The results (after WaitAll).
  const std::vector<CollectedOutput>& outputs() const { return outputs_; }

 private:
  absl::Mutex mu_;
  std::vector<CollectedOutput> outputs_ ABSL_GUARDED_BY(mu_);
  size_t finished_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_OUTPUT_COLLECTOR_H_
