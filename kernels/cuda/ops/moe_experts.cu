#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/moe_experts.cuh"
#include "kernels/cuda/ops/moe_experts.h"

namespace sparkstack::kernels::cuda_ops {
namespace {

bool ValidView(const MoeWeightView& v) {
  if (v.data == nullptr || v.n < 1 || v.k < 1 || v.n >= (int64_t{1} << 30) ||
      v.k >= (int64_t{1} << 30)) {
    return false;
  }
  if (v.nvfp4)
    return v.k % 16 == 0 && v.scales != nullptr && v.ld >= v.k / 2 && v.ld_scales >= v.k / 16;
  return v.ld >= v.k;
}

template <typename Row, bool kPair>
int LaunchLinear(const detail::MoeLinearArgs& a, int64_t max_rows, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((a.w0.n + detail::kMoeLinearRowsPerBlock - 1) /
                                        detail::kMoeLinearRowsPerBlock),
                  static_cast<unsigned>((max_rows + kMoeRowTile - 1) / kMoeRowTile));
  return cuda::LaunchKernel(&detail::MoeLinearKernel<Row, kPair>, grid, detail::kMoeLinearThreads,
                            0, stream, a);
}

// Picks the row reader for the weights' format.
template <bool kPair>
int LaunchFor(const detail::MoeLinearArgs& a, int64_t max_rows, cudaStream_t stream) {
  if (a.w0.nvfp4) return LaunchLinear<detail::Nvfp4Row, kPair>(a, max_rows, stream);
  switch (a.w0.type) {
    case ElemType::kF32:
      return LaunchLinear<detail::DenseRow<float>, kPair>(a, max_rows, stream);
    case ElemType::kBF16:
      return LaunchLinear<detail::DenseRow<__nv_bfloat16>, kPair>(a, max_rows, stream);
    case ElemType::kF16:
      return LaunchLinear<detail::DenseRow<__half>, kPair>(a, max_rows, stream);
  }
  return kInvalidValue;
}

bool RowsOk(int64_t max_rows) {
  return max_rows >= 0 && (max_rows + kMoeRowTile - 1) / kMoeRowTile <= 65535;
}

}  // namespace

int LaunchMoePlan(const int32_t* ids, int64_t tokens, int64_t top_k, int64_t first, int64_t local,
                  int32_t* expert_offsets, int32_t* permuted_token, int32_t* slot_row,
                  void* stream) {
  if (tokens < 0 || top_k < 1 || top_k > 0x7fffffff || local < 0 || first < 0 ||
      local > 0x7fffffff || first > 0x7fffffff || tokens * top_k > 0x7fffffff) {
    return kInvalidValue;
  }
  if (expert_offsets == nullptr ||
      (tokens > 0 && (ids == nullptr || permuted_token == nullptr || slot_row == nullptr))) {
    return kInvalidValue;
  }
  return cuda::LaunchKernel(&detail::MoePlanKernel, dim3(1), detail::kMoePlanThreads, 0,
                            static_cast<cudaStream_t>(stream), ids, static_cast<int>(tokens),
                            static_cast<int>(top_k), static_cast<int>(first),
                            static_cast<int>(local), expert_offsets, permuted_token, slot_row);
}

int LaunchMoeGateUp(const float* x, const int32_t* expert_offsets, int64_t expert,
                    const int32_t* permuted_token, const MoeWeightView& gate,
                    const MoeWeightView& up, float* g, float* u, int64_t ldh, int64_t max_rows,
                    void* stream) {
  if (!RowsOk(max_rows) || !ValidView(gate) || !ValidView(up) || gate.nvfp4 != up.nvfp4 ||
      (!gate.nvfp4 && gate.type != up.type) || gate.n != up.n || gate.k != up.k || ldh < gate.n ||
      expert < 0) {
    return kInvalidValue;
  }
  if (max_rows == 0) return 0;
  if (x == nullptr || expert_offsets == nullptr || permuted_token == nullptr || g == nullptr ||
      u == nullptr) {
    return kInvalidValue;
  }
  detail::MoeLinearArgs a;
  a.in = x;
  a.ld_in = gate.k;
  a.perm = permuted_token;
  a.offsets = expert_offsets;
  a.expert = expert;
  a.w0 = gate;
  a.w1 = up;
  a.out0 = g;
  a.out1 = u;
  a.ld_out = ldh;
  return LaunchFor<true>(a, max_rows, static_cast<cudaStream_t>(stream));
}

int LaunchMoeDown(const float* h, int64_t ldh, const int32_t* expert_offsets, int64_t expert,
                  const MoeWeightView& down, float* y, int64_t ldy, int64_t max_rows,
                  void* stream) {
  if (!RowsOk(max_rows) || !ValidView(down) || ldh < down.k || ldy < down.n || expert < 0) {
    return kInvalidValue;
  }
  if (max_rows == 0) return 0;
  if (h == nullptr || expert_offsets == nullptr || y == nullptr) return kInvalidValue;
  detail::MoeLinearArgs a;
  a.in = h;
  a.ld_in = ldh;
  a.offsets = expert_offsets;
  a.expert = expert;
  a.w0 = down;
  a.out0 = y;
  a.ld_out = ldy;
  return LaunchFor<false>(a, max_rows, static_cast<cudaStream_t>(stream));
}

int LaunchMoeCombine(const float* y, int64_t hidden, const int32_t* slot_row, const float* weights,
                     int64_t tokens, int64_t top_k, float* out, void* stream) {
  if (hidden < 0 || tokens < 0 || tokens > 0x7fffffff || top_k < 1) return kInvalidValue;
  if (hidden == 0 || tokens == 0) return 0;
  if (y == nullptr || slot_row == nullptr || weights == nullptr || out == nullptr) {
    return kInvalidValue;
  }
  return cuda::LaunchKernel(&detail::MoeCombineKernel, dim3(static_cast<unsigned>(tokens)), 128, 0,
                            static_cast<cudaStream_t>(stream), y, hidden, slot_row, weights, top_k,
                            out);
}

}  // namespace sparkstack::kernels::cuda_ops
