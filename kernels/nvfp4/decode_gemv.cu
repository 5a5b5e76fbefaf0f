#include "kernels/nvfp4/decode_gemv.h"

#include "kernels/cuda/launch.h"
#include "kernels/cuda/runtime.h"
#include "kernels/nvfp4/decode_gemv.cuh"

namespace sparkstack::kernels::nvfp4 {
namespace {

template <int MT, bool kVec16>
cudaError_t LaunchTyped(const GemmArgs& a, const DecodeLaunch& l, cudaStream_t stream) {
  const dim3 grid(l.grid_x, l.grid_y);
  if (a.out_type == OutType::kF32) {
    return cuda::LaunchKernel(&detail::DecodeGemvKernel<MT, kVec16, float>, grid, l.block, 0,
                              stream, a);
  }
  return cuda::LaunchKernel(&detail::DecodeGemvKernel<MT, kVec16, __nv_bfloat16>, grid, l.block, 0,
                            stream, a);
}

template <int MT>
cudaError_t LaunchTile(const GemmArgs& a, const DecodeLaunch& l, cudaStream_t stream) {
  return l.vec16 ? LaunchTyped<MT, true>(a, l, stream) : LaunchTyped<MT, false>(a, l, stream);
}

}  // namespace

int LaunchDecodeGemv(const GemmArgs& args, void* stream) {
  if (ValidateGemmArgs(args) != nullptr) return cudaErrorInvalidValue;
  const DecodeLaunch l = PlanDecode(args);
  if (l.grid_y > 65535) return cudaErrorInvalidValue;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (l.m_tile) {
    case 1:
      return LaunchTile<1>(args, l, s);
    case 2:
      return LaunchTile<2>(args, l, s);
    case 4:
      return LaunchTile<4>(args, l, s);
    case 8:
      return LaunchTile<8>(args, l, s);
    case 16:
      return LaunchTile<16>(args, l, s);
  }
  return cudaErrorInvalidValue;
}

}  // namespace sparkstack::kernels::nvfp4
