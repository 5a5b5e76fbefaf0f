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
      eos_ids_(eos_ids),
      max_model_len_(max_model_len) {
  if (request_.detokenize && tokenizer != nullptr) {
    decoder_ = std::make_unique<tokenizer::StreamingDecoder>(*tokenizer,
                                                             request_.skip_special_tokens);
  }
}

std::optional<FinishReason> RequestTracker::StopAfter(int32_t token) const {
  const StoppingParams& stop = request_.stopping;
  if (num_outputs_ >= stop.min_tokens) {
    const bool eos = std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end();
    if (eos && !stop.ignore_eos) return FinishReason::kEos;
    if (std::find(stop.stop_token_ids.begin(), stop.stop_token_ids.end(), token) !=
        stop.stop_token_ids.end()) {
      return FinishReason::kStopToken;
    }
  }
  if (num_outputs_ >= stop.max_tokens) return FinishReason::kLength;
  if (std::ssize(request_.prompt_ids) + num_outputs_ >= max_model_len_) {
    return FinishReason::kLength;
  }
  return std::nullopt;
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
  const std::optional<FinishReason> reason = StopAfter(sample.token);
  if (decoder_) {
    auto text = decoder_->Step(sample.token);
    if (!text.ok()) {
      Emit(std::move(chunk));
      Finish(FinishReason::kError, text.status());
      return true;
    }
    chunk.text = *std::move(text);
    if (reason) {
      auto rest = decoder_->Flush();
      if (rest.ok()) chunk.text += *rest;
    }
  }
  if (reason) {
    chunk.finish_reason = *reason;
    if (*reason == FinishReason::kStopToken) chunk.stop_reason = absl::StrCat(sample.token);
  }
  Emit(std::move(chunk));
  return finished_;
}

void RequestTracker::Finish(FinishReason reason, absl::Status error) {
  if (finished_) return;
  RequestOutput chunk = NewChunk();
  if (decoder_ && reason != FinishReason::kAbort && reason != FinishReason::kError) {
    auto rest = decoder_->Flush();
    if (rest.ok()) chunk.text = *std::move(rest);
  }
  chunk.finish_reason = reason;
  chunk.error = std::move(error);
  Emit(std::move(chunk));
}

}  // namespace sparkstack
