// Grouped expert SwiGLU MLPs over permuted rows (moe_permute.h): for each local expert e,
//   y_perm[r, :] = down_e( silu(gate_e · x_perm[r, :]) * (up_e · x_perm[r, :]) )
// for the rows r in [expert_offsets[e], expert_offsets[e + 1]). gate_e and up_e are [I_e, hidden],
// down_e is [hidden, I_e]; each may be dense (f32/f16/bf16) or NVFP4 (sparkstack::Weight), and
// I_e may differ between experts (a shared expert can ride along as one more expert whose rows
// are every token).
//
// Each selected expert's weights are read once per call for all of its rows (up to a row block
// of kMoeRowBlock rows: beyond that, prefill re-reads a column block per row block, which is
// compute-bound anyway). Experts without rows are not touched.
//
// Threading: each of the two phases (gate/up, then down) splits the columns of all active experts
// into up to `threads` contiguous ranges of about equal cost (weight bytes plus row work), so
// batch-1 decode (8 experts, 1 row each) and batch-32 decode (~100 experts) both use every
// thread. Results do not depend on the thread count: every output element is one dot product
// computed by the shared linear kernels (kernels/cpu/{dense,nvfp4}_linear.h).
//
// Thread safety: pure function of its inputs; the workspace is the caller's.
#ifndef SPARKSTACK_KERNELS_CPU_MOE_EXPERTS_H_
#define SPARKSTACK_KERNELS_CPU_MOE_EXPERTS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "runtime/core/weight.h"

namespace sparkstack::kernels {

inline constexpr int64_t kMoeRowBlock = 64;
inline constexpr int64_t kMoeColumnBlock = 64;

struct MoeExpertWeights {
  const Weight* gate = nullptr;  // [I_e, hidden]
  const Weight* up = nullptr;    // [I_e, hidden]
  const Weight* down = nullptr;  // [hidden, I_e]
};

// Floats of workspace MoeExpertsSwiGluF32 needs for `rows` permuted rows, the widest expert
// `max_intermediate` and `threads` threads.
size_t MoeExpertsWorkspaceFloats(int64_t rows, int64_t max_intermediate, int threads);

// Returns "" if every expert's weights have consistent shapes (gate/up [I_e, hidden], down
// [hidden, I_e], I_e <= max_intermediate, the formats the CPU kernels run), else a message
// naming the expert and the mismatch. The kernel assumes valid weights.
std::string MoeExpertsWeightsError(std::span<const MoeExpertWeights> experts, int64_t hidden,
                                   int64_t max_intermediate);

// x_perm f32 [rows, hidden]; expert_offsets int32 [experts.size() + 1]; y_perm f32 [rows, hidden]
// (rows = expert_offsets[experts.size()]; only rows of experts are written). workspace:
// MoeExpertsWorkspaceFloats(rows, max_intermediate, threads) floats.
void MoeExpertsSwiGluF32(const float* x_perm, int64_t hidden, const int32_t* expert_offsets,
                         std::span<const MoeExpertWeights> experts, int64_t max_intermediate,
                         float* y_perm, float* workspace, int threads = 1);

// The float64 reference: weights dequantized exactly (dense widened, NVFP4 by
// Nvfp4DequantizeReference), every product and sum in float64, silu in float64.
void MoeExpertsSwiGluReference(const float* x_perm, int64_t hidden, const int32_t* expert_offsets,
                               std::span<const MoeExpertWeights> experts, double* y_perm);

}  // namespace sparkstack::kernels

#endif  // SPARKSTACK_KERNELS_CPU_MOE_EXPERTS_H_
