// Plain float64 reference of the sampling op (runtime/backend/sampling.h): every step written the
// obvious way (full sorts; float64 arithmetic from the f32 penalized logits on, which the contract
// defines in f32), to check the fast CPU kernel (kernels/cpu/sampling.h) and future CUDA samplers
// against. Slow; nothing on a hot path calls it.
#ifndef SPARKSTACK_KERNELS_CPU_SAMPLING_REFERENCE_H_
#define SPARKSTACK_KERNELS_CPU_SAMPLING_REFERENCE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend/sampling.h"

namespace sparkstack::kernels {

struct SamplingReferenceResult {
  int32_t token = -1;
  // The distribution the draw used, [vocab_limit] (0 for dropped ids); for greedy, 1 at `token`.
  std::vector<double> probs;
  // Raw log_softmax over the allowed ids (always computed): of `token`, and every id's.
  double logprob = 0.0;
  std::vector<double> logprobs;
  // The first min(params.logprobs, vocab_limit) ids by raw logit, descending (ties: lower id).
  std::vector<int32_t> top;
  // How far the result is from flipping under rounding: the smallest relative gap between a
  // decision taken on float64 weights and its boundary (the draw against the cumulative mass,
  // the min-p threshold, the top-p limit). Greedy and top-k compare the f32 penalized logits
  // every backend shares, so they have no margin. An implementation weighing in float agrees with
  // the reference whenever this is well above float rounding (say > 1e-5).
  double margin = 1.0;
};

// Samples row `row` of logits [vocab] (vocab = logits.size()) with the uniform `uniform` in [0, 1)
// exactly as runtime/backend/sampling.h specifies. Errors as the op's: InvalidArgument for NaN or
// +inf logits, invalid parameters, history ids outside [0, vocab), or nothing to choose.
absl::StatusOr<SamplingReferenceResult> SampleReference(std::span<const float> logits,
                                                        int64_t vocab_limit, const SamplingRow& row,
                                                        double uniform);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_SAMPLING_REFERENCE_H_
