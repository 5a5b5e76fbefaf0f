#include "kernels/nvfp4/prefill_gemm.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/runtime.h"
#include "kernels/nvfp4/prefill_gemm.cuh"

namespace sparkstack::kernels::nvfp4 {
namespace {

template <int BM, int BN, int STAGES, typename OutT>
cudaError_t LaunchTyped(const GemmArgs& a, cudaStream_t stream) {
  constexpr PrefillTile kTile{BM, BN, STAGES};
  constexpr int kSmem = PrefillSmemBytes(kTile);
  static_assert(kSmem <= kGb10MaxSmemPerBlock);
  auto* kernel = &detail::PrefillGemmKernel<BM, BN, STAGES, OutT>;
  if (kSmem > kDefaultSmemPerBlock) {
    const cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
    if (e != cudaSuccess) return e;
  }
  const PrefillLaunch l = PlanPrefill(a, kTile);
  return cuda::LaunchKernel(kernel, dim3(l.grid_x, l.grid_y), l.block, kSmem, stream, a);
}

template <int BM, int BN, int STAGES>
cudaError_t LaunchTile(const GemmArgs& a, cudaStream_t stream) {
  return a.out_type == OutType::kF32 ? LaunchTyped<BM, BN, STAGES, float>(a, stream)
                                     : LaunchTyped<BM, BN, STAGES, __nv_bfloat16>(a, stream);
}

}  // namespace

int LaunchPrefillGemm(const GemmArgs& args, bool large_tile, int smem_limit, void* stream) {
  if (ValidateGemmArgs(args) != nullptr) return cudaErrorInvalidValue;
  const PrefillTile tile = large_tile ? kPrefillTileLarge : kPrefillTileSmall;
  if (PrefillSmemBytes(tile) > smem_limit) return cudaErrorInvalidValue;
  if ((args.m + tile.bm - 1) / tile.bm > 65535) return cudaErrorInvalidValue;
  const auto s = static_cast<cudaStream_t>(stream);
  if (large_tile) {
    return LaunchTile<kPrefillTileLarge.bm, kPrefillTileLarge.bn, kPrefillTileLarge.stages>(args,
                                                                                            s);
  }
  return LaunchTile<kPrefillTileSmall.bm, kPrefillTileSmall.bn, kPrefillTileSmall.stages>(args, s);
}

}  // namespace sparkstack::kernels::nvfp4
