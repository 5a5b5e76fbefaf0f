#include "runtime/engine/request_tracker.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sparkstack {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kLength: return "length";
    case FinishReason::kEos: return "eos";
    case FinishReason::kStopToken: return "stop";
    case FinishReason::kStopString: return "stop";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

RequestTracker::RequestTracker(RequestId id, Request request, Callback callback,
                               const tokenizer::Tokenizer* tokenizer,
                               std::span<const int32_t> eos_ids, int64_t max_model_len)
    : id_(id),
      request_(std::move(request)),
      callback_(std::move(callback)),
      max_model_len_(max_model_len),
      stop_(request_.stopping, eos_ids) {
  if (request_.detokenize && tokenizer != nullptr) {
    decoder_ = std::make_unique<tokenizer::StreamingDecoder>(*tokenizer,
                                                             request_.skip_special_tokens);
  }
}

RequestOutput RequestTracker::NewChunk() const {
  RequestOutput chunk;
  chunk.id = id_;
  chunk.prompt_tokens = std::ssize(request_.prompt_ids);
  chunk.cached_prompt_tokens = cached_prompt_tokens_;
  chunk.output_tokens = num_outputs_;
  return chunk;
}

void RequestTracker::Emit(RequestOutput chunk) {
  if (chunk.finished()) finished_ = true;
  callback_(std::move(chunk));
}

bool RequestTracker::OnToken(const SampledToken& sample, std::vector<float> first_logits) {
  if (finished_) return true;
  if (request_.stopping.max_tokens == 0) {  // prefill only: the logits, no token
    RequestOutput chunk = NewChunk();
    chunk.first_logits = std::move(first_logits);
    chunk.finish_reason = FinishReason::kLength;
    Emit(std::move(chunk));
    return true;
  }
  ++num_outputs_;
  RequestOutput chunk = NewChunk();
  chunk.token_ids.push_back(sample.token);
  if (request_.sampling.logprobs >= 0) chunk.logprobs.push_back(sample);
  chunk.first_logits = std::move(first_logits);
  std::string delta;
  if (decoder_) {
    auto text = decoder_->Step(sample.token);
    if (!text.ok()) {
      Emit(std::move(chunk));
      Finish(FinishReason::kError, text.status());
      return true;
    }
    delta = *std::move(text);
  }
  StopDecision decision = stop_.Step(sample.token, delta);
  chunk.text = std::move(decision.text);
  if (!decision.finished() && std::ssize(request_.prompt_ids) + num_outputs_ >= max_model_len_) {
    decision.finish_reason = FinishReason::kLength;  // the model's context is full
  }
  if (decision.finished()) {
    // A stop that ends in the middle of the text drops the rest; other ends release it all.
    if (decoder_ && decision.finish_reason == FinishReason::kLength) {
      auto rest = decoder_->Flush();
      chunk.text += stop_.Flush();
      if (rest.ok()) chunk.text += *rest;
    }
    chunk.finish_reason = decision.finish_reason;
    chunk.stop_reason = std::move(decision.stop_reason);
  }
  Emit(std::move(chunk));
  return finished_;
}

void RequestTracker::Finish(FinishReason reason, absl::Status error) {
  if (finished_) return;
  RequestOutput chunk = NewChunk();
  if (decoder_ && reason != FinishReason::kAbort && reason != FinishReason::kError) {
    chunk.text = stop_.Flush();
    auto rest = decoder_->Flush();
    if (rest.ok()) chunk.text += *rest;
  }
  chunk.finish_reason = reason;
  chunk.error = std::move(error);
  Emit(std::move(chunk));
}

}  // namespace sparkstack
