// RequestTracker: the engine core's per-request state. Turns each sampled token into the request's
// output stream: counts it, detokenizes it incrementally, lets the StopChecker decide whether
// generation ends and which text may be shown (EOS, stop ids and strings, min/max tokens), ends it
// at the model's context, and hands chunks to the request's callback. Engine core thread only.
#ifndef SPARKSTACK_RUNTIME_ENGINE_REQUEST_TRACKER_H_
#define SPARKSTACK_RUNTIME_ENGINE_REQUEST_TRACKER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "runtime/engine/request.h"
#include "runtime/engine/stop_checker.h"
#include "runtime/tokenizer/tokenizer.h"

namespace sparkstack {

class RequestTracker {
 public:
  using Callback = std::function<void(RequestOutput)>;

  // `tokenizer` is required when request.detokenize; `eos_ids` are the model's end-of-sequence
  // ids. Both must outlive the tracker.
  RequestTracker(RequestId id, Request request, Callback callback,
                 const tokenizer::Tokenizer* tokenizer, std::span<const int32_t> eos_ids,
                 int64_t max_model_len);

  // The next sampled token (and the first token's logits, when asked). Emits a chunk; returns
  // true when the request has finished (the chunk was the last).
  bool OnToken(const SampledToken& sample, std::vector<float> first_logits);

  // Ends the request now (abort, error, or max_tokens 0 after its prefill) with a last chunk.
  void Finish(FinishReason reason, absl::Status error = absl::OkStatus());

  const Request& request() const { return request_; }
  int64_t num_outputs() const { return num_outputs_; }
  bool finished() const { return finished_; }
  // Prompt tokens the prefix cache served (set by the engine when the request is first
  // scheduled).
  void set_cached_prompt_tokens(int64_t tokens) { cached_prompt_tokens_ = tokens; }

 private:
  RequestOutput NewChunk() const;
  void Emit(RequestOutput chunk);

  RequestId id_;
  Request request_;
  Callback callback_;
  int64_t max_model_len_;
  StopChecker stop_;
  std::unique_ptr<tokenizer::StreamingDecoder> decoder_;
  int64_t num_outputs_ = 0;
  int64_t cached_prompt_tokens_ = 0;
  bool finished_ = false;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_ENGINE_REQUEST_TRACKER_H_
