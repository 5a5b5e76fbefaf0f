#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/ops/dense_gemv.cuh"
#include "kernels/cuda/ops/dense_linear.h"

namespace sparkstack::kernels::cuda_ops {
namespace {

template <typename T, int MT>
int LaunchTile(const DenseLinearArgs& a, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vec = a.k % kVec == 0 && a.ldw % kVec == 0 && a.ldx % kVec == 0 &&
                   reinterpret_cast<uintptr_t>(a.w) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(a.x) % 16 == 0;
  const dim3 grid(static_cast<unsigned>((a.n + detail::kGemvRowsPerBlock - 1) /
                                        detail::kGemvRowsPerBlock),
                  static_cast<unsigned>((a.m + MT - 1) / MT));
  if (vec) {
    return cuda::LaunchKernel(&detail::DenseGemvKernel<T, MT, kVec>, grid, detail::kGemvThreads,
                              0, stream, a);
  }
  return cuda::LaunchKernel(&detail::DenseGemvKernel<T, MT, 1>, grid, detail::kGemvThreads, 0,
                            stream, a);
}

template <typename T>
int LaunchTyped(const DenseLinearArgs& a, cudaStream_t stream) {
  if (a.m <= 1) return LaunchTile<T, 1>(a, stream);
  if (a.m <= 2) return LaunchTile<T, 2>(a, stream);
  if (a.m <= 4) return LaunchTile<T, 4>(a, stream);
  return LaunchTile<T, kDenseGemvMaxMTile>(a, stream);
}

}  // namespace

const char* ValidateDenseLinearArgs(const DenseLinearArgs& a) {
  if (a.m < 1 || a.n < 1 || a.k < 1) return "m, n and k must be >= 1";
  if (a.m >= (int64_t{1} << 30) || a.n >= (int64_t{1} << 30) || a.k >= (int64_t{1} << 30)) {
    return "m, n and k must be below 2^30";
  }
  if (a.x == nullptr || a.w == nullptr || a.y == nullptr) return "x, w and y must be non-null";
  if (a.ldx < a.k || a.ldw < a.k || a.ldy < a.n) return "ldx, ldw >= k and ldy >= n";
  return nullptr;
}

int LaunchDenseGemv(const DenseLinearArgs& a, void* stream) {
  if (ValidateDenseLinearArgs(a) != nullptr) return kInvalidValue;
  if ((a.m + kDenseGemvMaxMTile - 1) / kDenseGemvMaxMTile > 65535) return kInvalidValue;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (a.w_type) {
    case ElemType::kF32:
      return LaunchTyped<float>(a, s);
    case ElemType::kBF16:
      return LaunchTyped<__nv_bfloat16>(a, s);
    case ElemType::kF16:
      return LaunchTyped<__half>(a, s);
  }
  return kInvalidValue;
}

}  // namespace sparkstack::kernels::cuda_ops
