// Sampling as a backend op: what a request asks for (SamplingParams), what one row of a step's
// logits needs to be sampled (SamplingRow), and what comes back (SampledToken).
//
// Randomness is counter-based: the uniform draw for a sequence's n-th output token is
// u = SamplingUniform(seed, n) (Philox4x32-10, runtime/core/philox.h), so a sequence's tokens
// depend neither on its batch-mates, nor on the backend, nor on the parallel layout.
//
// Order of processing, as vLLM and Hugging Face apply them, for a row x of f32 logits:
//  1. Allowed ids are [0, vocab_limit). NaN or +inf among them is InvalidArgument; -inf is a
//     token that cannot be chosen.
//  2. Penalties give l: repetition on ids of the prompt or the output (l = x / r for x > 0, x * r
//     otherwise), then frequency and presence on ids of the output (l -= frequency * count, then
//     l -= presence, when count > 0). l is f32 by definition: each of these operations is rounded
//     to f32 (no fused multiply-add) and an overflow to +inf becomes the largest float, so every
//     backend has the same l, ties included. Banned ids (SamplingRow::banned_tokens) get
//     l = -inf. A row where every allowed l is -inf is InvalidArgument (nothing can be chosen).
//  3. Greedy (temperature 0): the argmax of l, lowest id on ties. Nothing below applies.
//  4. Temperature: w_i = exp((l_i - max l) / temperature), the unnormalized probabilities.
//  5. min-p keeps w_i >= min_p (p_i >= min_p * p_max); top-k keeps l_i >= the k-th largest l (ties
//     with it are kept, as in HF and vLLM); top-p orders what is left by l descending (ties: lower
//     id first) and keeps each token whose preceding mass is < top_p * (mass left), so at least
//     one. top-k and min-p are thresholds on l, so their order does not matter; top-p comes last.
//  6. One draw: over the kept ids in ascending id order, the first id whose cumulative w exceeds
//     u * (total kept w).
// Logprobs are of the raw distribution (log_softmax of x over the allowed ids, before penalties,
// bans and temperature), as vLLM's default reports them. Backends may compute in float where the
// reference uses float64 (kernels/cpu/sampling_reference.h): they then agree except when u falls
// within float rounding of a boundary between two tokens.
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

// One row of logits to sample, as the runner of the last pipeline stage describes it. The spans
// point to host memory that stays valid during the call; their ids must be in [0, vocab)
// (InvalidArgument otherwise).
struct SamplingRow {
  SamplingParams params = {};
  uint64_t output_index = 0;  // which output token of the sequence this is (the RNG counter)
  // Penalty history: the sequence's prompt tokens and the tokens it has generated so far. Only
  // read when a penalty is set.
  std::span<const int32_t> prompt_tokens = {};
  std::span<const int32_t> output_tokens = {};
  // Ids this row may not choose (their logprobs are still reported). The engine passes the EOS
  // and stop token ids while output_index < min_tokens, as vLLM and HF do, so that min_tokens
  // never yields an EOS that generation then runs past.
  std::span<const int32_t> banned_tokens = {};
};

// InvalidArgument when row.params is invalid (ValidateSamplingParams) or an id of the row's spans
// is outside [0, vocab), naming the span, the position and the id. Backends call it on the host
// for every row before sampling.
absl::Status ValidateSamplingRow(const SamplingRow& row, int64_t vocab);

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

// What the op returns per row. `logprob` and `top` are filled when params.logprobs >= 0 (else
// logprob is 0 and num_top 0): num_top = min(params.logprobs, vocab_limit) entries, most likely
// first (ties: lower id first); -inf logits have logprob -inf.
struct SampledToken {
  int32_t token = -1;
  float logprob = 0.0f;  // of `token` under the raw distribution
  int32_t num_top = 0;   // entries of `top` in use
  std::array<TokenLogprob, kMaxTopLogprobs> top;
};

}  // namespace sparkstack

#endif  // SPARKSTACK_RUNTIME_BACKEND_SAMPLING_H_
