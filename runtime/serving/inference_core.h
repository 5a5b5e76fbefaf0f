// InferenceCore: the request path both API frontends share, top to bottom — encode the prompt
// (text, token ids, chat template), build the engine Request with the server's defaults and
// limits, admit it against the concurrency limit, submit it, and stream its outputs to the
// frontend while recording metrics. Frontends only parse their protocol into a GenerateSpec and
// format what comes back.
//
// Thread safety: every method may be called from any thread. Output sinks run on the engine core
// thread and must not block: they hand the output to the frontend's own thread.
#ifndef SPARKSTACK_RUNTIME_SERVING_INFERENCE_CORE_H_
#define SPARKSTACK_RUNTIME_SERVING_INFERENCE_CORE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "runtime/serving/engine_provider.h"
#include "runtime/serving/generate_spec.h"
#include "runtime/serving/metrics.h"
#include "runtime/serving/serving_options.h"

namespace sparkstack::serving {

using Clock = std::chrono::steady_clock;

// Seconds since the request arrived; filled in the last output.
struct RequestTimes {
  double time_to_first_token = 0.0;
  double end_to_end = 0.0;
  double mean_inter_token = 0.0;  // 0 with fewer than two tokens
};

// Receives a request's outputs on the engine core thread; must not block. `times` is filled when
// output.finished().
using OutputSink = std::function<void(RequestOutput output, const RequestTimes& times)>;

class InferenceCore;

// A request submitted to the engine. Shared by the frontend and the engine's callback; lives
// until both let go.
class ActiveRequest {
 public:
  RequestId id() const { return id_.load(std::memory_order_acquire); }
  // Ends the request with FinishReason::kAbort (its sink still gets the last output). Thread-safe;
  // nothing happens once it has finished.
  void Abort();
  bool finished() const { return finished_.load(std::memory_order_acquire); }

 private:
  friend class InferenceCore;
  ActiveRequest(InferenceCore* core, Clock::time_point arrival, int64_t prompt_tokens)
      : core_(core), arrival_(arrival), prompt_tokens_(prompt_tokens) {}
  void OnOutput(RequestOutput output, const OutputSink& sink);

  InferenceCore* core_;
  const Clock::time_point arrival_;
  const int64_t prompt_tokens_;
  std::atomic<RequestId> id_{0};
  std::atomic<bool> submitted_{false};
  std::atomic<bool> abort_requested_{false};
  std::atomic<bool> finished_{false};
  // Engine core thread only.
  Clock::time_point first_token_{};
  Clock::time_point last_token_{};
  int64_t tokens_seen_ = 0;
};

// Slots reserved against ServingLimits::max_concurrent_requests; each Submit takes one, the rest
// go back when the ticket is destroyed. Move-only.
class AdmissionTicket {
 public:
  AdmissionTicket(AdmissionTicket&& other) noexcept;
  AdmissionTicket& operator=(AdmissionTicket&&) = delete;
  ~AdmissionTicket();
  int64_t remaining() const { return slots_; }

 private:
  friend class InferenceCore;
  AdmissionTicket(std::atomic<int64_t>* active, int64_t slots) : active_(active), slots_(slots) {}
  std::atomic<int64_t>* active_;
  int64_t slots_;
};

class InferenceCore {
 public:
  // `engine` must outlive the core. options.served_model_name must be set.
  InferenceCore(EngineProvider& engine, ServingOptions options);
  // Aborts what is still running and waits (up to 10 s) for the last outputs.
  ~InferenceCore();

  const ServingOptions& options() const { return options_; }
  const ServingLimits& limits() const { return options_.limits; }
  EngineProvider& engine() const { return engine_; }
  ServingMetrics& metrics() { return metrics_; }
  int64_t max_model_len() const { return engine_.options().max_model_len; }
  int64_t active_requests() const { return active_.load(std::memory_order_relaxed); }
  double uptime_seconds() const;

  // OK when requests can be served; Unavailable with the reason otherwise.
  absl::Status Health() const;

  // The prompt's token ids: text through the tokenizer, chat messages through the chat template
  // then the tokenizer (without special tokens, as transformers' apply_chat_template), token ids
  // as given. FailedPrecondition when the model has no tokenizer or chat template;
  // InvalidArgument for invalid UTF-8 or a template that fails on these messages.
  absl::StatusOr<std::vector<int32_t>> EncodePrompt(const PromptSpec& prompt) const;
  absl::StatusOr<std::string> Decode(std::span<const int32_t> ids, bool skip_special_tokens) const;
  // One token's text (special tokens included), for logprobs.
  std::string TokenText(int32_t id) const;

  // The engine Request for `spec`: max_tokens defaults to the room left in the context (capped by
  // ServingLimits::max_tokens), an unset seed is drawn at random. InvalidArgument, naming the
  // field and the limit, for an empty prompt, a prompt that fills the context, max_tokens above
  // the limit or the room left, too many stop strings or ids, or bad sampling parameters.
  absl::StatusOr<Request> BuildRequest(const GenerateSpec& spec,
                                       std::vector<int32_t> prompt_ids) const;

  // Reserves `sequences` slots. Unavailable when the engine is not healthy; ResourceExhausted
  // when admitting them would pass max_concurrent_requests.
  absl::StatusOr<AdmissionTicket> Admit(int64_t sequences);

  // Submits `request` on one slot of `ticket` (which must have one left). `sink` receives every
  // output; the slot is released before the last output reaches it. Errors are AddRequest's.
  absl::StatusOr<std::shared_ptr<ActiveRequest>> Submit(AdmissionTicket& ticket, Request request,
                                                        Clock::time_point arrival, OutputSink sink);

  // Aborts every running request (server shutdown).
  void AbortAll();

  // Waits until the engine has delivered every request's last output, or `timeout` passes. The
  // sinks may still be handling those outputs on other threads (the HTTP connections' strands):
  // let them finish before destroying the core.
  void WaitForRequestsToEnd(std::chrono::milliseconds timeout);

 private:
  friend class ActiveRequest;
  void Finished(ActiveRequest* request, const RequestOutput& last, const RequestTimes& times);

  EngineProvider& engine_;
  const ServingOptions options_;
  const Clock::time_point start_ = Clock::now();
  ServingMetrics metrics_;
  std::atomic<int64_t> active_{0};

  std::mutex mu_;
  absl::flat_hash_map<ActiveRequest*, std::weak_ptr<ActiveRequest>> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sparkstack::serving

#endif  // SPARKSTACK_RUNTIME_SERVING_INFERENCE_CORE_H_
