// Launchers of the two dense GEMM kernels (dense_gemm_mma.cuh, dense_gemm_simt.cuh).
#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/dense_gemm_mma.cuh"
#include "kernels/cuda/ops/dense_gemm_simt.cuh"
#include "kernels/cuda/ops/dense_linear.h"

namespace sparkstack::kernels::cuda_ops {

int LaunchDenseGemmMma(const DenseLinearArgs& a, void* stream) {
  if (ValidateDenseLinearArgs(a) != nullptr || a.w_type != ElemType::kBF16) return kInvalidValue;
  const int64_t grid_y = (a.m + detail::kMmaBM - 1) / detail::kMmaBM;
  if (grid_y > 65535) return kInvalidValue;
  const dim3 grid(static_cast<unsigned>((a.n + detail::kMmaBN - 1) / detail::kMmaBN),
                  static_cast<unsigned>(grid_y));
  const bool vec = a.k % 8 == 0 && a.ldx % 4 == 0 && a.ldw % 8 == 0 &&
                   reinterpret_cast<uintptr_t>(a.x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(a.w) % 16 == 0;
  const auto s = static_cast<cudaStream_t>(stream);
  if (vec) {
    return cuda::LaunchKernel(&detail::DenseGemmMmaKernel<true>, grid, detail::kMmaThreads, 0, s,
                              a);
  }
  return cuda::LaunchKernel(&detail::DenseGemmMmaKernel<false>, grid, detail::kMmaThreads, 0, s,
                            a);
}

int LaunchDenseGemmSimt(const DenseLinearArgs& a, void* stream) {
  if (ValidateDenseLinearArgs(a) != nullptr) return kInvalidValue;
  const int64_t grid_y = (a.m + detail::kSimtTile - 1) / detail::kSimtTile;
  if (grid_y > 65535) return kInvalidValue;
  const dim3 grid(static_cast<unsigned>((a.n + detail::kSimtTile - 1) / detail::kSimtTile),
                  static_cast<unsigned>(grid_y));
  const auto s = static_cast<cudaStream_t>(stream);
  switch (a.w_type) {
    case ElemType::kF32:
      return cuda::LaunchKernel(&detail::DenseGemmSimtKernel<float>, grid, detail::kSimtThreads, 0,
                                s, a);
    case ElemType::kBF16:
      return cuda::LaunchKernel(&detail::DenseGemmSimtKernel<__nv_bfloat16>, grid,
                                detail::kSimtThreads, 0, s, a);
    case ElemType::kF16:
      return cuda::LaunchKernel(&detail::DenseGemmSimtKernel<__half>, grid, detail::kSimtThreads,
                                0, s, a);
  }
  return kInvalidValue;
}

}  // namespace sparkstack::kernels::cuda_ops
