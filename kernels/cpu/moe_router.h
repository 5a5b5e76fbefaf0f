// Mixture-of-experts router: from the gate's logits [tokens, experts] to each token's top-k expert
// ids and weights, in one pass per token (scores, group limit and top-k fused; nothing of size
// tokens x experts is written).
//
// Per token, with l the logits row and b the optional e_score_correction_bias:
//   s = softmax(l) over all experts, or sigmoid(l)               (the scores)
//   c = s + b  (c = s without a bias)                            (the choice scores)
//   group limit (n_group > 1 and topk_group < n_group): the experts form n_group consecutive groups
//     of equal size; a group's score is the sum of its two largest c; only the topk_group
//     best-scoring groups stay eligible (DeepSeek-V3 noaux_tc). Experts of dropped groups can never
//     be chosen (llama.cpp's -inf; transformers fills 0.0, which differs only when every kept c of
//     a choice is negative).
//   ids = the top_k eligible experts by c, in descending order of c; equal values are ordered by
//     lower expert id (and groups likewise by lower group id), so results are deterministic.
//   w = s[ids] (the unbiased scores); if norm_topk_prob: w /= (sum(w) + 1e-20);
//   w *= routed_scaling_factor.
// Softmax uses max subtraction. Scores are float32 here, float64 in the reference.
//
// Thread safety: pure functions of their inputs.
#ifndef SPARKSTACK_KERNELS_CPU_MOE_ROUTER_H_
#define SPARKSTACK_KERNELS_CPU_MOE_ROUTER_H_

#include <cstdint>

namespace sparkstack::kernels {

enum class MoeRouterScoring : uint8_t { kSoftmax, kSigmoid };

struct MoeRouterParams {
  int64_t num_experts = 0;  // E, the logits row width
  int64_t top_k = 0;        // 1 <= top_k <= E
  MoeRouterScoring scoring = MoeRouterScoring::kSoftmax;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
  int64_t n_group = 1;     // divides E; E / n_group >= 2 when the group limit applies
  int64_t topk_group = 1;  // 1 <= topk_group <= n_group; topk_group * E / n_group >= top_k
};

// Checks the constraints above; returns a message naming the first violated one, or "" if valid.
// The kernels assume valid parameters (callers check once at load).
const char* MoeRouterParamsError(const MoeRouterParams& params);

// logits f32 [tokens, E]; bias f32 [E] or nullptr; outputs ids int32 [tokens, top_k] and
// weights f32 [tokens, top_k]. Splits tokens over up to `threads` threads.
void MoeRouteF32(const float* logits, int64_t tokens, const float* bias,
                 const MoeRouterParams& params, int32_t* ids, float* weights, int threads = 1);

// The same in float64 with a full sort per token: the reference the kernel is tested against.
void MoeRouteReference(const float* logits, int64_t tokens, const float* bias,
                       const MoeRouterParams& params, int32_t* ids, double* weights);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_MOE_ROUTER_H_
