// The sampling op on the device (Backend::Sample; the rules are those of
// runtime/backend/sampling.h, the same as the CPU kernel kernels/cpu/sampling.cc): one thread
// block per row of f32 logits.
//
// What is bit-identical to the CPU sampler: the uniform (Philox, runtime/core/philox.h, computed
// on the device), the penalized logits l, the thresholds (min-p, top-k), the greedy token and
// every weight w_i = exp((l_i - max) / t) (the CPU's own float exp, operations rounded one by one).
// What differs: sums of weights are taken in 64-bit fixed point (w * 2^S, S = 52 - bits(vocab),
// exact and order-independent, so the device result is deterministic) where the CPU sums doubles;
// the top-p nucleus and the draw compare against these sums. A token can therefore differ from
// the CPU's only when u falls within ~2^-S of a boundary between two tokens.
//
// The row's penalties and bans arrive as a list of edits (one per distinct id of its history,
// built on the host by BuildSamplingEdits). They are applied to the logits in place and undone
// before the kernel ends (the original values travel in the edit), so the logits the caller sees
// afterwards are unchanged; logprobs are of the raw logits.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_SAMPLING_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_SAMPLING_H_

#include <cstdint>

namespace sparkstack::kernels::cuda_ops {

inline constexpr int kSamplingMaxTop = 20;

// One id of a row's history: how the row's logit of `id` changes.
struct SamplingEdit {
  int32_t id = 0;
  uint32_t count = 0;      // occurrences in the output (frequency / presence penalties)
  uint8_t seen = 0;        // in the prompt or the output (repetition penalty)
  uint8_t banned = 0;      // -inf after the penalties
  uint8_t reserved[2] = {0, 0};
  float original = 0.0f;   // written by the kernel: the logit before the edit
};

// Per row of the launch.
struct SamplingRowArgs {
  float temperature = 0.0f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t logprobs = -1;
  uint64_t seed = 0;
  uint64_t output_index = 0;
  int32_t edit_begin = 0;  // edits [edit_begin, edit_begin + edit_count) of the launch's list
  int32_t edit_count = 0;
};

enum class SamplingStatus : int32_t { kOk = 0, kBadLogit = 1, kNothingToChoose = 2 };

// What the kernel writes per row.
struct SamplingResult {
  int32_t token = -1;
  SamplingStatus status = SamplingStatus::kOk;
  int32_t bad_id = -1;  // kBadLogit: the first NaN / +inf id
  float logprob = 0.0f;
  int32_t num_top = 0;
  int32_t top_ids[kSamplingMaxTop] = {};
  float top_logprobs[kSamplingMaxTop] = {};
};

// logits f32 [rows, row_stride] (ids >= vocab_limit ignored); rows device arrays of `rows`
// entries; edits the device list the rows point into (may be null when no row has any).
int LaunchSampling(float* logits, int64_t rows, int64_t row_stride, int64_t vocab_limit,
                   const SamplingRowArgs* row_args, SamplingEdit* edits, SamplingResult* results,
                   void* stream);

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_SAMPLING_H_
