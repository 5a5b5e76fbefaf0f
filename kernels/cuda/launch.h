// Kernel launch for launcher code (.cu files): kernel<<<grid, block, smem, stream>>>(args...) with
// nvcc; with SPARKSTACK_CUDA_EMULATION the emulated runtime runs the kernel to completion on the
// host before returning.
#ifndef SPARKSTACK_KERNELS_CUDA_LAUNCH_H_
#define SPARKSTACK_KERNELS_CUDA_LAUNCH_H_

#include <cstddef>

#include "kernels/cuda/runtime.h"

#if !defined(SPARKSTACK_CUDA_EMULATION) && !defined(__CUDACC__)
#error "kernels/cuda/launch.h launches kernels: compile with nvcc or SPARKSTACK_CUDA_EMULATION"
#endif

namespace sparkstack::cuda {

// Launches `kernel` and returns the launch's error (cudaGetLastError()).
template <typename... Params, typename... Args>
cudaError_t LaunchKernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem_bytes,
                         cudaStream_t stream, Args... args) {
#if defined(SPARKSTACK_CUDA_EMULATION)
  (void)stream;
  return emu::Launch(reinterpret_cast<const void*>(kernel), grid, block, smem_bytes,
                     [&] { kernel(args...); });
#else
  // clang-format does not know this header as CUDA and would split the chevrons.
  // clang-format off
  kernel<<<grid, block, smem_bytes, stream>>>(args...);
  // clang-format on
  return cudaGetLastError();
#endif
}

}  // namespace sparkstack::cuda

#endif  // SPARKSTACK_KERNELS_CUDA_LAUNCH_H_
