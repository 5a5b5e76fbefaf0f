// Token permutation for mixture-of-experts layers: the (token, slot) pairs a router chose are
// grouped by expert so that each expert's rows are contiguous (one weight read serves all of an
// expert's tokens), then the expert outputs are weighed and summed back per token.
//
// Expert parallelism: a rank holds local experts [first_expert, first_expert + local_experts);
// slots routed elsewhere are left out here (slot_row -1) and completed by the sum over ranks.
//
// Layouts (row-major, int32 indices):
//   ids, weights     [tokens, top_k]        the router's output (moe_router.h)
//   expert_offsets   [local_experts + 1]    rows of local expert e: [offsets[e], offsets[e + 1])
//   permuted_token   [tokens * top_k]       source token of each permuted row (first `rows` used)
//   slot_row         [tokens * top_k]       permuted row of slot (t, j), or -1 when not local
// Within an expert, rows follow increasing (token, slot) order, so the plan is deterministic.
//
// Thread safety: pure functions of their inputs.
#ifndef SPARKSTACK_KERNELS_CPU_MOE_PERMUTE_H_
#define SPARKSTACK_KERNELS_CPU_MOE_PERMUTE_H_

#include <cstdint>

namespace sparkstack::kernels {

// Builds the plan (a counting sort by expert). Returns the number of permuted rows, i.e.
// expert_offsets[local_experts].
int64_t MoePermutePlan(const int32_t* ids, int64_t tokens, int64_t top_k, int64_t first_expert,
                       int64_t local_experts, int32_t* expert_offsets, int32_t* permuted_token,
                       int32_t* slot_row);

// x_perm[r, :] = x[permuted_token[r], :] for r < rows; x [tokens, hidden].
void MoeGatherRowsF32(const float* x, int64_t hidden, const int32_t* permuted_token, int64_t rows,
                      float* x_perm, int threads = 1);

// out[t, :] = sum over j with slot_row[t, j] >= 0, in increasing j, of
// weights[t, j] * y_perm[slot_row[t, j], :]; zeros for a token with no local slot. out [tokens,
// hidden] is overwritten and must not alias y_perm.
void MoeCombineF32(const float* y_perm, int64_t hidden, const int32_t* slot_row,
                   const float* weights, int64_t tokens, int64_t top_k, float* out,
                   int threads = 1);

// References: the plan by a scan per expert (no counting sort), and the combine in float64.
int64_t MoePermutePlanReference(const int32_t* ids, int64_t tokens, int64_t top_k,
                                int64_t first_expert, int64_t local_experts,
                                int32_t* expert_offsets, int32_t* permuted_token,
                                int32_t* slot_row);
void MoeCombineReference(const float* y_perm, int64_t hidden, const int32_t* slot_row,
                         const float* weights, int64_t tokens, int64_t top_k, double* out);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_MOE_PERMUTE_H_
