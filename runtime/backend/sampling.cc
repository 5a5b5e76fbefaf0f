#include "runtime/backend/sampling.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace sparkstack {

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  auto bad = [](const char* field, float value, const char* range) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be ", range, ", got ", value));
  };
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) {
    return bad("temperature", p.temperature, "a finite number >= 0");
  }
  if (p.top_k < 0) return bad("top_k", static_cast<float>(p.top_k), ">= 0 (0: no limit)");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return bad("top_p", p.top_p, "in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return bad("min_p", p.min_p, "in [0, 1]");
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0.0f) {
    return bad("repetition_penalty", p.repetition_penalty, "a finite number > 0");
  }
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) {
    return bad("presence_penalty", p.presence_penalty, "in [-2, 2]");
  }
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) {
    return bad("frequency_penalty", p.frequency_penalty, "in [-2, 2]");
  }
  if (p.logprobs < -1 || p.logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "logprobs must be in [0, ", kMaxTopLogprobs, "] (or absent), got ", p.logprobs));
  }
  return absl::OkStatus();
}

absl::Status ValidateSamplingRow(const SamplingRow& row, int64_t vocab) {
  if (absl::Status status = ValidateSamplingParams(row.params); !status.ok()) return status;
  auto check = [vocab](const char* name, std::span<const int32_t> ids) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, "[", i, "] = ", ids[i], " is not a token id in [0, ", vocab, ")"));
      }
    }
    return absl::OkStatus();
  };
  const SamplingParams& p = row.params;
  if (p.repetition_penalty != 1.0f) {
    if (absl::Status status = check("prompt_tokens", row.prompt_tokens); !status.ok()) {
      return status;
    }
  }
  if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    if (absl::Status status = check("output_tokens", row.output_tokens); !status.ok()) {
      return status;
    }
  }
  return check("banned_tokens", row.banned_tokens);
}

}  // namespace sparkstack
