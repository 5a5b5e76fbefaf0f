// Sampling as a backend op: what a request asks for (SamplingParams), what one row of a step's
// logits needs to be sampled (SamplingRow), and what comes back (SampledToken).
//
// Randomness is counter-based: the uniform draw for a sequence's n-th output token is a pure
// function of (seed, n) (Philox4x32-10, runtime/core/philox.h), so a sequence's tokens depend
// neither on its batch-mates, nor on the backend, nor on the parallel layout.
//
// Order of processing, as vLLM and Hugging Face apply them: ids >= vocab_limit masked; penalties
// (repetition on prompt and output tokens, presence and frequency on output tokens); greedy stops
// here (argmax, lowest id on ties); temperature; min-p, top-k and top-p over the remaining
// distribution; one draw. Logprobs are of the raw distribution (log_softmax of the logits before
// penalties and temperature, over the allowed ids), as vLLM's default reports them.
#ifndef SPARKSTACK_RUNTIME_BACKEND_SAMPLING_H_
#define SPARKSTACK_RUNTIME_BACKEND_SAMPLING_H_

#include <array>
#include <cstdint>
#include <span>

#include "absl/status/status.h"

namespace sparkstack {

// Most top logprobs a request may ask for (OpenAI allows 20).
inline constexpr int kMaxTopLogprobs = 20;

struct SamplingParams {
  float temperature = 0.0f;         // 0: greedy
  int32_t top_k = 0;                // 0: no limit
  float top_p = 1.0f;               // 1: no limit
  float min_p = 0.0f;               // 0: no limit; else drop p < min_p * p_max
  float repetition_penalty = 1.0f;  // 1: none; > 1 discourages tokens of the prompt and output
  float presence_penalty = 0.0f;    // subtracted once from tokens present in the output
  float frequency_penalty = 0.0f;   // subtracted per occurrence in the output
  uint64_t seed = 0;
  int32_t logprobs = -1;  // -1: none; 0: the chosen token's; n: also the n most likely (<= 20)

  bool operator==(const SamplingParams&) const = default;
};

// InvalidArgument naming the field and its accepted range: temperature finite >= 0, top_k >= 0,
// top_p in (0, 1], min_p in [0, 1], repetition_penalty finite > 0, presence/frequency penalties
// in [-2, 2], logprobs in [-1, kMaxTopLogprobs].
absl::Status ValidateSamplingParams(const SamplingParams& params);

// One row of logits to sample, as the runner of the last pipeline stage describes it.
struct SamplingRow {
  SamplingParams params;
  uint64_t output_index = 0;  // which output token of the sequence this is (the RNG counter)
  // Penalty history (host memory, valid during the call): the sequence's prompt tokens and the
  // tokens it has generated so far.
  std::span<const int32_t> prompt_tokens;
  std::span<const int32_t> output_tokens;
};

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t token = -1;
  float logprob = 0.0f;  // of `token` (when params.logprobs >= 0)
  int32_t num_top = 0;   // entries of `top` in use, most likely first (ties: lower id first)
  std::array<TokenLogprob, kMaxTopLogprobs> top;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_SAMPLING_H_
