#include "kernels/nvfp4/prefill_fp4_mma.h"

#include <cmath>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/runtime.h"
#include "kernels/nvfp4/prefill_fp4_mma.cuh"

namespace sparkstack::kernels::nvfp4 {
namespace {

template <typename OutT>
cudaError_t LaunchTyped(const GemmArgs& a, cudaStream_t stream) {
  constexpr int kSmem = Fp4MmaSmemBytes();
  auto* kernel = &detail::PrefillFp4MmaKernel<OutT>;
  if (kSmem > kDefaultSmemPerBlock) {
    const cudaError_t e =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
    if (e != cudaSuccess) return e;
  }
  const dim3 grid(static_cast<unsigned>((a.n + kFp4MmaBN - 1) / kFp4MmaBN),
                  static_cast<unsigned>((a.m + kFp4MmaBM - 1) / kFp4MmaBM));
  return cuda::LaunchKernel(kernel, grid, kFp4MmaThreads, kSmem, stream, a);
}

}  // namespace

const char* ValidateFp4MmaArgs(const GemmArgs& args) {
  if (const char* why = ValidateGemmArgs(args); why != nullptr) return why;
  if (!std::isfinite(args.input_scale) || !(args.input_scale > 0.0f)) {
    return "input_scale must be finite and > 0 (W4A4 needs the static activation scale)";
  }
  if (!std::isfinite(args.global_scale)) return "global_scale must be finite";
  if ((args.m + kFp4MmaBM - 1) / kFp4MmaBM > 65535) {
    return "m too large for the grid (> 65535 tiles)";
  }
  return nullptr;
}

int LaunchPrefillFp4Mma(const GemmArgs& args, int smem_limit, void* stream) {
  if (ValidateFp4MmaArgs(args) != nullptr) return cudaErrorInvalidValue;
  if (Fp4MmaSmemBytes() > smem_limit) return cudaErrorInvalidValue;
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  int major = 0;
  if (const cudaError_t e =
          cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
      e != cudaSuccess) {
    return e;
  }
  if (major != 12) return cudaErrorInvalidDevice;
  // A 12.x device without an arch-specific cubin in this binary (e.g. a 12.0 device: we build
  // sm_121a only) would JIT the compute_80 PTX, whose body is a trap that poisons the context.
  // The function's PTX version tells which code the runtime picked for this device.
  cudaFuncAttributes attr{};
  if (const cudaError_t e = cudaFuncGetAttributes(&attr, &detail::PrefillFp4MmaKernel<float>);
      e != cudaSuccess) {
    return e;
  }
  if (attr.ptxVersion < 120) return cudaErrorNoKernelImageForDevice;
  const auto s = static_cast<cudaStream_t>(stream);
  return args.out_type == OutType::kF32 ? LaunchTyped<float>(args, s)
                                        : LaunchTyped<__nv_bfloat16>(args, s);
}

}  // namespace sparkstack::kernels::nvfp4
