// One entry point for every NVFP4 GEMM variant, for the runtime and the self-check.
#ifndef SPARKSTACK_KERNELS_NVFP4_GEMM_H_
#define SPARKSTACK_KERNELS_NVFP4_GEMM_H_

#include "kernels/nvfp4/launch_config.h"
#include "kernels/nvfp4/selector.h"

namespace sparkstack::kernels::nvfp4 {

// Enqueues y = x . dequant(W)^T with variant `v` on `stream` (a cudaStream_t). `smem_limit` is
// EffectiveSmemLimit(...) for the device. Returns a cudaError_t value (0 on success;
// cudaErrorInvalidValue for arguments the variant rejects, nothing launched).
int LaunchGemm(Variant v, const GemmArgs& args, int smem_limit, void* stream);

}  // namespace sparkstack::kernels::nvfp4

#endif  // SPARKSTACK_KERNELS_NVFP4_GEMM_H_
