#include "kernels/nvfp4/quantize.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/runtime.h"
#include "kernels/nvfp4/launch_config.h"
#include "kernels/nvfp4/quantize.cuh"

namespace sparkstack::kernels::nvfp4 {
namespace {

bool ValidOutputs(int64_t rows, int64_t k, const uint8_t* codes, int64_t ldc, const uint8_t* scales,
                  int64_t lds) {
  return rows >= 1 && k >= 16 && k % 16 == 0 && codes != nullptr && scales != nullptr &&
         ldc >= k / 2 && lds >= k / 16 && rows <= (int64_t{1} << 30) && k <= (int64_t{1} << 30);
}

unsigned BlocksFor(int64_t items) {
  return static_cast<unsigned>((items + kQuantizeThreads - 1) / kQuantizeThreads);
}

template <typename T>
cudaError_t QuantizeWeightTyped(const T* w, int64_t ldw, int64_t n, int64_t k, uint8_t* codes,
                                int64_t ldc, uint8_t* scales, int64_t lds, float* global_scale,
                                uint32_t* workspace, cudaStream_t stream) {
  cudaError_t e = cudaMemsetAsync(workspace, 0, sizeof(uint32_t), stream);
  if (e != cudaSuccess) return e;
  const int64_t blocks16 = n * (k / 16);
  const unsigned amax_grid = BlocksFor(blocks16) < 4096u ? BlocksFor(blocks16) : 4096u;
  e = cuda::LaunchKernel(&detail::AmaxKernel<T>, amax_grid, kQuantizeThreads, 0, stream, w, ldw, n,
                         k, workspace);
  if (e != cudaSuccess) return e;
  return cuda::LaunchKernel(&detail::QuantizeWeightKernel<T>, BlocksFor(blocks16), kQuantizeThreads,
                            0, stream, w, ldw, n, k, static_cast<const uint32_t*>(workspace), codes,
                            ldc, scales, lds, global_scale);
}

}  // namespace

int LaunchQuantizeActivation(const void* x, int64_t ldx, int64_t m, int64_t k, float input_scale,
                             uint8_t* codes, int64_t ldc, uint8_t* scales, int64_t lds,
                             void* stream) {
  if (!ValidOutputs(m, k, codes, ldc, scales, lds) || x == nullptr || ldx < k || ldx % 8 != 0 ||
      reinterpret_cast<uintptr_t>(x) % 16 != 0 || !(input_scale > 0.0f)) {
    return cudaErrorInvalidValue;
  }
  if (BlocksFor(m * (k / 16)) > 0x7fffffffu) return cudaErrorInvalidValue;
  return cuda::LaunchKernel(&detail::QuantizeActivationKernel, BlocksFor(m * (k / 16)),
                            kQuantizeThreads, 0, static_cast<cudaStream_t>(stream),
                            static_cast<const __nv_bfloat16*>(x), ldx, m, k,
                            1.0 / static_cast<double>(input_scale), codes, ldc, scales, lds);
}

int LaunchQuantizeWeight(const void* w, QuantInType type, int64_t ldw, int64_t n, int64_t k,
                         uint8_t* codes, int64_t ldc, uint8_t* scales, int64_t lds,
                         float* global_scale, uint32_t* workspace, void* stream) {
  const int64_t elem = type == QuantInType::kF32 ? 4 : 2;
  if (!ValidOutputs(n, k, codes, ldc, scales, lds) || w == nullptr || global_scale == nullptr ||
      workspace == nullptr || ldw < k || (ldw * elem) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(w) % 16 != 0) {
    return cudaErrorInvalidValue;
  }
  const auto s = static_cast<cudaStream_t>(stream);
  if (type == QuantInType::kF32) {
    return QuantizeWeightTyped(static_cast<const float*>(w), ldw, n, k, codes, ldc, scales, lds,
                               global_scale, workspace, s);
  }
  return QuantizeWeightTyped(static_cast<const __nv_bfloat16*>(w), ldw, n, k, codes, ldc, scales,
                             lds, global_scale, workspace, s);
}

}  // namespace sparkstack::kernels::nvfp4
