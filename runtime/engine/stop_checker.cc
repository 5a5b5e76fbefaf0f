#include "runtime/engine/stop_checker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sparkstack {

absl::Status ValidateStoppingParams(const StoppingParams& params) {
  if (params.max_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens must be >= 0, got ", params.max_tokens));
  }
  if (params.min_tokens < 0 || params.min_tokens > params.max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_tokens must be in [0, max_tokens = ", params.max_tokens, "], got ",
                     params.min_tokens));
  }
  for (size_t i = 0; i < params.stop_token_ids.size(); ++i) {
    if (params.stop_token_ids[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop_token_ids[", i, "] must be >= 0, got ", params.stop_token_ids[i]));
    }
  }
  for (size_t i = 0; i < params.stop_strings.size(); ++i) {
    if (params.stop_strings[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stop_strings[", i, "] is empty"));
    }
  }
  return absl::OkStatus();
}

StopChecker::StopChecker(const StoppingParams& params, std::span<const int32_t> eos_ids)
    : params_(params), eos_ids_(eos_ids.begin(), eos_ids.end()) {}

StopDecision StopChecker::Finish(FinishReason reason, size_t end, std::string stop_reason) {
  finish_reason_ = reason;
  stop_reason_ = stop_reason;
  StopDecision decision{
      .text = std::move(text_), .finish_reason = reason, .stop_reason = std::move(stop_reason)};
  decision.text.resize(end);
  text_.clear();
  return decision;
}

size_t StopChecker::HeldBack() const {
  size_t held = 0;
  for (const std::string& stop : params_.stop_strings) {
    const std::string_view text = text_;
    for (size_t length = std::min(text.size(), stop.size() - 1); length > held; --length) {
      if (text.substr(text.size() - length) == std::string_view(stop).substr(0, length)) {
        held = length;
        break;
      }
    }
  }
  return held;
}

StopDecision StopChecker::Step(int32_t token, std::string_view text) {
  if (finished()) {
    StopDecision again;
    again.finish_reason = finish_reason_;
    again.stop_reason = stop_reason_;
    return again;
  }
  ++num_tokens_;
  const bool can_stop = num_tokens_ > params_.min_tokens;
  auto contains = [token](const std::vector<int32_t>& ids) {
    return std::find(ids.begin(), ids.end(), token) != ids.end();
  };
  if (can_stop) {
    // The stop token's own text is kept only on request; what was held back is plain text now.
    const bool stop_token = contains(params_.stop_token_ids);
    if (stop_token || (!params_.ignore_eos && contains(eos_ids_))) {
      if (params_.include_stop_string) text_.append(text);
      return Finish(stop_token ? FinishReason::kStopToken : FinishReason::kEos, text_.size(),
                    stop_token ? absl::StrCat(token) : std::string());
    }
  }

  const size_t old_size = text_.size();
  text_.append(text);
  if (can_stop && !text.empty()) {
    // The stop string that ends first inside the new text (ties: the longest, so starting first).
    size_t best_end = std::string::npos, best_start = 0;
    const std::string* best = nullptr;
    for (const std::string& stop : params_.stop_strings) {
      const size_t from = old_size >= stop.size() ? old_size - stop.size() + 1 : 0;
      const size_t start = text_.find(stop, from);
      if (start == std::string::npos) continue;
      const size_t end = start + stop.size();
      if (end < best_end || (end == best_end && start < best_start)) {
        best_end = end;
        best_start = start;
        best = &stop;
      }
    }
    if (best != nullptr) {
      return Finish(FinishReason::kStopString, params_.include_stop_string ? best_end : best_start,
                    *best);
    }
  }
  if (num_tokens_ >= params_.max_tokens) {
    return Finish(FinishReason::kLength, text_.size(), std::string());
  }

  StopDecision decision;
  if (params_.stop_strings.empty()) {
    decision.text = std::move(text_);
    text_.clear();
    return decision;
  }
  const size_t release = text_.size() - HeldBack();
  decision.text = text_.substr(0, release);
  text_.erase(0, release);
  return decision;
}

std::string StopChecker::Flush() {
  std::string rest = std::move(text_);
  text_.clear();
  return rest;
}

}  // namespace sparkstack
