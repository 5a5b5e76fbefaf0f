// Linear layers on dense weights (Backend::Linear for bf16 / f16 / f32 weights): y[m, n] =
// sum_k x[m, k] * W[n, k] with f32 activations and f32 accumulation. Three kernels:
//   GEMV      (LaunchDenseGemv): weight streaming for decode-sized m, any weight type; x stays
//             f32, so the result equals an f32 dot product up to summation order.
//   MMA GEMM  (LaunchDenseGemmMma): bf16 weights on mma.sync m16n8k16 tensor cores for larger m;
//             x is rounded to bf16 on its way into shared memory (relative error 2^-9 per element,
//             f32 accumulation).
//   SIMT GEMM (LaunchDenseGemmSimt): f32 and f16 weights for larger m on CUDA cores, exact f32
//             products (tensor cores would round f32 weights to bf16).
// Each row of y depends only on its row of x, but which kernel runs depends on m (the backend picks
// by DenseLinearPlan), so a row computed in a large batch and alone agree to f32 summation order
// (and bf16 rounding of x for the MMA kernel), not bit for bit.
#ifndef SPARKSTACK_KERNELS_CUDA_OPS_DENSE_LINEAR_H_
#define SPARKSTACK_KERNELS_CUDA_OPS_DENSE_LINEAR_H_

#include <cstdint>

#include "kernels/cuda/ops/types.h"

namespace sparkstack::kernels::cuda_ops {

struct DenseLinearArgs {
  const float* x = nullptr;  // [m, k], row stride ldx elements
  int64_t ldx = 0;
  const void* w = nullptr;  // [n, k] of w_type, row stride ldw elements
  int64_t ldw = 0;
  ElemType w_type = ElemType::kBF16;
  float* y = nullptr;  // [m, n], row stride ldy elements
  int64_t ldy = 0;
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
};

// nullptr when the arguments are usable by every dense kernel, else a message naming the rule:
// m, n, k >= 1 and below 2^30, non-null pointers, ldx >= k, ldw >= k, ldy >= n.
const char* ValidateDenseLinearArgs(const DenseLinearArgs& a);

// The m-tiles the GEMV is instantiated for; larger m is covered by the grid's y dimension.
inline constexpr int kDenseGemvMaxMTile = 8;

int LaunchDenseGemv(const DenseLinearArgs& a, void* stream);
// bf16 weights only (InvalidValue otherwise).
int LaunchDenseGemmMma(const DenseLinearArgs& a, void* stream);
// f32 or f16 weights (bf16 works too).
int LaunchDenseGemmSimt(const DenseLinearArgs& a, void* stream);

// Shared memory the GEMM kernels use (static), for the build's budget check.
inline constexpr int kDenseGemmMmaSmemBytes = (64 + 128) * (32 + 8) * 2;
inline constexpr int kDenseGemmSimtSmemBytes = 2 * 16 * (64 + 4) * 4;

}  // namespace sparkstack::kernels::cuda_ops

#endif  // SPARKSTACK_KERNELS_CUDA_OPS_DENSE_LINEAR_H_
